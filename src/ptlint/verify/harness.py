"""`ptlint verify`: make the variants, run them in worker processes, judge them by contract."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ptlint.runner import display_path
from ptlint.verify.compare import FAIL, SKIP, Verdict, combine, judge
from ptlint.verify.pool import Pool, TorchMissing, probe
from ptlint.verify.scenario import (
    Fixer, Scenario, Variants, builtin, default_fixer, description, make_variants, needed_modules, user,
)

DEFAULT_TIMEOUT = 120  # seconds per variant
DEFAULT_REPEATS = 3  # runs of each variant, in separate processes, for the run-to-run spread
PIP_HINT = "torch is not installed; `ptlint verify` needs it: pip install 'ptlint[verify]'"


class DeviceUnavailable(RuntimeError):
    """The device asked for is not there (`--device cuda` without CUDA): a usage error."""


@dataclass
class Row:
    """One scenario on one device."""

    name: str
    rule_name: str
    device: str
    contract: str
    verdict: str
    reason: str
    scenario: str
    applied: list[str] = field(default_factory=list)
    bad: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""  # the scenario's docstring
    invariant: str = ""  # its INVARIANT, in words
    diff: str = ""  # what ptlint's fixer changed, as a unified diff
    terms: str = ""  # the scenario's own terms of the contract: tolerances, devices where the bad variant raises


@dataclass
class Outcome:
    rows: list[Row]
    device: str
    env: dict[str, Any]
    missing: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.verdict == FAIL for r in self.rows)


def torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ValueError, ImportError):
        return False


def _skip(scenario: Scenario, device: str, reason: str) -> Row:
    return Row(scenario.name, scenario.rule_name, device, scenario.contract, SKIP, reason, display_path(scenario.path),
               **_about(scenario))


def _about(scenario: Scenario, variants: Variants | None = None) -> dict[str, str]:
    """What the report tells about the scenario: its description, invariant and the fix."""
    text = scenario.path.read_text(encoding="utf-8")
    decl = scenario.decl
    terms = []
    if scenario.contract == "E1":
        terms.append(f"RTOL={decl.get('rtol', 1e-5):g}, ATOL={decl.get('atol', 1e-8):g}")
    if decl.get("bad_raises_on"):
        where = ", ".join(decl["bad_raises_on"])
        terms.append(f"on {where} the bad variant is expected to raise, and the fixed one must run")
    return {"description": description(text), "invariant": str(decl.get("invariant_text") or ""),
            "diff": variants.diff if variants is not None else "", "terms": "; ".join(terms)}


def cuda_unavailable(env: dict[str, Any]) -> str:
    """Why `--device cuda` cannot run here."""
    torch = env.get("torch", "?")
    why = (f"torch {torch} finds no CUDA device" if env.get("cuda_build")
           else f"torch {torch} is built without CUDA")
    return f"CUDA is not available: {why}; use --device cpu (or --device auto)"


def needs_skip(scenario: Scenario, device: str, env: dict[str, Any]) -> str | None:
    """Why the scenario cannot run here: NEEDS is "cuda", "2gpus" or a module name, or a tuple of them."""
    needs = scenario.decl.get("needs") or ()
    for need in (needs,) if isinstance(needs, str) else tuple(needs):
        if need == "cuda" and not device.startswith("cuda"):
            return "needs CUDA"
        if need == "2gpus" and (not device.startswith("cuda") or int(env.get("gpus", 0)) < 2):
            return "needs 2 GPUs"
        if need not in ("cuda", "2gpus") and not _importable(str(need)):
            return f"needs {need} (not installed)"
    return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def verify(
    codes: Sequence[str] = (),
    device: str = "cpu",
    steps: int | None = None,
    scenario_paths: Sequence[Path] = (),
    fixer: Fixer = default_fixer,
    jobs: int = 2,
    timeout: int = DEFAULT_TIMEOUT,
    repeats: int = DEFAULT_REPEATS,
) -> Outcome:
    """Verify the scenarios of `codes` (all fixable rules when neither codes nor scenarios are given)."""
    if not torch_installed():
        raise TorchMissing(PIP_HINT)
    scenarios: list[Scenario] = []
    missing: list[str] = []
    if codes or not scenario_paths:
        scenarios, missing = builtin(codes)
    scenarios += [user(Path(p)) for p in scenario_paths]
    with tempfile.TemporaryDirectory(prefix="ptlint-verify-") as tmp:
        root = Path(tmp)
        env = {"torch": _torch_version()} if device == "cpu" else probe(_probe_job(root, timeout))
        if env.get("status") in ("crashed", "timeout", "error"):
            raise TorchMissing(f"{PIP_HINT} ({env.get('error')})")
        if device.startswith("cuda") and not env.get("cuda"):
            raise DeviceUnavailable(cuda_unavailable(env))
        resolved = ("cuda" if env.get("cuda") else "cpu") if device == "auto" else device
        rows: list[Row | None] = []
        work: list[tuple[int, Scenario, Variants]] = []
        for i, sc in enumerate(scenarios):
            folder = root / f"s{i}"
            reason = needs_skip(sc, resolved, env)
            if reason:
                rows.append(_skip(sc, resolved, reason))
                continue
            variants = make_variants(sc, folder, fixer)
            if variants.error:
                rows.append(Row(sc.name, sc.rule_name, resolved, sc.contract, FAIL, variants.error,
                                display_path(sc.path), variants.applied, **_about(sc, variants)))
                continue
            rows.append(None)
            work.append((i, sc, variants))
        job_list = []
        slots: list[tuple[int, str]] = []  # (index in work, "bad" or "fixed") of each job
        repeats = max(1, repeats)
        for n, (i, sc, variants) in enumerate(work):
            werror = sc.contract == "E3"
            # bad, fixed, fixed, bad, bad, fixed...: the runs of both variants meet the machine's ups and downs
            # alike, and with parallel workers neither variant always lands on the same one
            order = [("bad", variants.bad), ("fixed", variants.fixed)]
            for k, (kind, path) in ((k, v) for k in range(repeats) for v in (order if k % 2 == 0 else order[::-1])):
                slots.append((n, kind))
                folder = path.parent / f"run{k + 1}"
                folder.mkdir(parents=True, exist_ok=True)
                job_list.append({
                    "path": str(path), "device": resolved, "steps": steps, "werror": werror, "timeout": timeout,
                    "out": str(folder / "answer.json"), "log": str(folder / "log.txt"), "cwd": str(folder),
                    "needs": needed_modules(sc.decl),
                })
        with Pool(jobs) as pool:
            answers = pool.map(job_list) if job_list else []
    for n, (i, sc, variants) in enumerate(work):
        bad = combine([a for a, (m, kind) in zip(answers, slots) if m == n and kind == "bad"])
        fixed = combine([a for a, (m, kind) in zip(answers, slots) if m == n and kind == "fixed"])
        verdict: Verdict = judge(sc.contract, sc.decl, resolved, bad, fixed)
        rows[i] = Row(sc.name, sc.rule_name, resolved, sc.contract, verdict.verdict, verdict.reason,
                      display_path(sc.path), variants.applied, bad, fixed, **_about(sc, variants))
    for code in missing:
        rows.append(Row(code, "", resolved, "", FAIL, f"no verify scenario in fixtures/{code}/verify/", ""))
    return Outcome([r for r in rows if r is not None], resolved, env, missing)


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "?"


def _probe_job(root: Path, timeout: int) -> dict[str, Any]:
    folder = root / "probe"
    folder.mkdir(parents=True, exist_ok=True)
    return {"probe": True, "out": str(folder / "answer.json"), "log": str(folder / "log.txt"),
            "cwd": str(folder), "timeout": timeout}


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))
