"""Comparing the bad and fixed variants by the rule's contract; pure Python, no torch.

E0: bitwise-equal results; E1: allclose (RTOL/ATOL); E2: the bad variant breaks the invariant
and the fixed one keeps it; E3: both ran with warnings as errors, the fixed one runs (and keeps the
invariant if declared), the bad one raises or breaks the invariant.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "n/a"

_FORMATS = {
    "float64": "d", "float32": "f", "float16": "e", "int64": "q", "int32": "i", "int16": "h",
    "int8": "b", "uint8": "B", "bool": "?",
}


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (linear interpolation, as numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(values: list[float], over: str = "runs") -> dict[str, Any]:
    """Median, quartiles, extremes and count of repeated measurements; `over`: "runs" or "blocks"."""
    return {"median": quantile(values, 0.5), "q1": quantile(values, 0.25), "q3": quantile(values, 0.75),
            "min": min(values), "max": max(values), "repeats": len(values), "over": over}


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's outcome from its repeated runs (separate processes).

    The first run gives the status, result and invariant that the contract judges; each metric is the
    median over the runs that completed, with its spread over them. With a single run, the time's
    spread is the one over the timer's blocks within that run.
    """
    first = dict(runs[0])
    ok = [r for r in runs if r.get("status") == "ok"]
    if first.get("status") != "ok" or len(runs) == 1:
        return first
    values: dict[str, list[float]] = {}
    for run in ok:
        for key, value in run.get("metrics", {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(key, []).append(value)
    first["metrics"] = {k: _median_like(v) for k, v in values.items()}
    first["spread"] = {k: spread([float(x) for x in v]) for k, v in values.items()}
    first["runs"] = len(ok)
    failed = [r for r in runs[1:] if r.get("status") != "ok"]
    if failed:
        first["warnings"] = list(first.get("warnings", [])) + [
            f"{len(failed)} of {len(runs)} runs did not complete: {_failure(failed[0])}"]
    return first


def _median_like(values: list[float]) -> float:
    """The median, an int when the values are ints that agree (exact counts stay counts)."""
    if all(isinstance(v, int) for v in values) and len(set(values)) == 1:
        return values[0]
    return quantile([float(v) for v in values], 0.5)


@dataclass
class Verdict:
    verdict: str
    reason: str


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def tensor_values(t: dict[str, Any]) -> list[float] | None:
    """The elements of an encoded tensor as numbers, or None for dtypes compared only bitwise."""
    raw = base64.b64decode(t["data"])
    dtype = t["__tensor__"]
    if dtype == "bfloat16":
        halves = struct.unpack(f"<{len(raw) // 2}H", raw)
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
    fmt = _FORMATS.get(dtype)
    if fmt is None:
        return None
    size = struct.calcsize(fmt)
    return list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))


def _float(value: Any) -> float | None:
    if isinstance(value, dict) and "__float__" in value:
        return float(value["__float__"])
    if isinstance(value, float):
        return value
    return None


def difference(bad: Any, fixed: Any, exact: bool, rtol: float, atol: float, where: str = "result") -> str | None:
    """A description of the first difference between two encoded results, or None when they match."""
    if isinstance(bad, dict) and "__tensor__" in bad:
        if not (isinstance(fixed, dict) and "__tensor__" in fixed):
            return f"{where}: a tensor in the bad variant, {type(fixed).__name__} in the fixed one"
        for key in ("__tensor__", "shape", "device"):
            if bad[key] != fixed[key]:
                return f"{where}: {key.strip('_')} {bad[key]} != {fixed[key]}"
        if bad["data"] == fixed["data"]:
            return None
        if exact:
            return f"{where}: tensors differ bitwise"
        a, b = tensor_values(bad), tensor_values(fixed)
        if a is None or b is None:
            return f"{where}: tensors differ"
        for i, (x, y) in enumerate(zip(a, b)):
            if not _close(x, y, rtol, atol):
                return f"{where}[{i}]: {x!r} != {y!r} (rtol={rtol}, atol={atol})"
        return None
    fa, fb = _float(bad), _float(fixed)
    if fa is not None and fb is not None:
        same = (_bits(fa) == _bits(fb) or (math.isnan(fa) and math.isnan(fb))) if exact else _close(fa, fb, rtol, atol)
        return None if same else f"{where}: {fa!r} != {fb!r}"
    if isinstance(bad, dict) and isinstance(fixed, dict):
        if sorted(bad) != sorted(fixed):
            return f"{where}: keys {sorted(bad)} != {sorted(fixed)}"
        for key in sorted(bad):
            found = difference(bad[key], fixed[key], exact, rtol, atol, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(bad, list) and isinstance(fixed, list):
        if len(bad) != len(fixed):
            return f"{where}: length {len(bad)} != {len(fixed)}"
        for i, (x, y) in enumerate(zip(bad, fixed)):
            found = difference(x, y, exact, rtol, atol, f"{where}[{i}]")
            if found:
                return found
        return None
    if type(bad) is not type(fixed) or bad != fixed:
        return f"{where}: {_short(bad)} != {_short(fixed)}"
    return None


def _close(x: float, y: float, rtol: float, atol: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= atol + rtol * abs(y)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ran(outcome: dict[str, Any]) -> bool:
    return outcome.get("status") == "ok"


def _failure(outcome: dict[str, Any]) -> str:
    status = outcome.get("status")
    if status == "raised":
        return f"raised {outcome.get('error', '')}".strip()
    return f"{status}: {outcome.get('error', '')}".strip(": ")


def judge(contract: str, decl: dict[str, Any], device: str, bad: dict[str, Any], fixed: dict[str, Any]) -> Verdict:
    """The verdict of one scenario on one device from the two variants' outcomes."""
    has_invariant = bool(decl.get("has_invariant"))
    for outcome in (bad, fixed):
        if outcome.get("status") == "unavailable":  # a module in NEEDS is installed but broken
            return Verdict(SKIP, str(outcome.get("error", "a module the scenario needs does not import")))
    if not _ran(fixed):
        return Verdict(FAIL, f"the fixed variant {_failure(fixed)}")
    if bad.get("status") not in ("ok", "raised"):
        return Verdict(FAIL, f"the bad variant {_failure(bad)}")
    fixed_keeps = fixed.get("invariant") is not False
    bad_breaks = not _ran(bad) or bad.get("invariant") is False
    if contract in ("E2", "E3"):
        if contract == "E2" and not has_invariant:
            return Verdict(FAIL, "an E2 scenario must declare INVARIANT and invariant()")
        if not fixed_keeps:
            return Verdict(FAIL, "the fixed variant breaks the invariant")
        if not bad_breaks:
            what = "keeps the invariant" if has_invariant else "runs without error under -W error"
            return Verdict(FAIL, f"the bad variant {what}; the scenario does not show the problem")
        how = _failure(bad) if not _ran(bad) else "breaks the invariant"
        return Verdict(PASS, f"bad {how}; fixed {'keeps it' if has_invariant else 'runs'}")
    # E0 / E1
    expected_raise = device.split(":")[0] in tuple(decl.get("bad_raises_on", ()))
    if not _ran(bad):
        if not expected_raise:
            return Verdict(FAIL, f"the bad variant {_failure(bad)}")
        if has_invariant and not fixed_keeps:
            return Verdict(FAIL, "the fixed variant breaks the invariant")
        return Verdict(PASS, f"bad {_failure(bad)} (expected on {device}); fixed runs")
    if expected_raise:
        return Verdict(FAIL, f"the bad variant was expected to raise on {device} but ran")
    exact = contract == "E0"
    rtol = float(decl.get("rtol", 1e-5))
    atol = float(decl.get("atol", 1e-8))
    diff = difference(bad.get("result"), fixed.get("result"), exact, rtol, atol)
    if diff:
        return Verdict(FAIL, f"results differ: {diff}")
    if has_invariant:
        if not fixed_keeps:
            return Verdict(FAIL, "the fixed variant breaks the invariant")
        if not bad_breaks:
            return Verdict(FAIL, "the bad variant keeps the invariant; the scenario does not show the problem")
    same = "bitwise equal" if exact else f"allclose (rtol={rtol:g}, atol={atol:g})"
    return Verdict(PASS, f"results {same}" + ("; bad breaks the invariant, fixed keeps it" if has_invariant else ""))
