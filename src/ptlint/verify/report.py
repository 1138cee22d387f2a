"""Rendering verify results: table, markdown, json, and an HTML report with an inline SVG chart."""

from __future__ import annotations

import html
import json
import math
from typing import Any, Callable

from ptlint.verify.compare import FAIL, PASS, SKIP
from ptlint.verify.harness import Outcome, Row

# (key, column title) of the metrics shown per row; FORMATTERS format their values
METRICS: tuple[tuple[str, str], ...] = (
    ("time_per_step", "Time/step"),
    ("syncs", "Syncs"),
    ("peak_mem", "Peak mem"),
    ("mem_growth", "Mem growth"),
    ("graph_nodes", "Graph nodes"),
    ("graph_growth", "Graph growth"),
)
FORMATS = ("table", "json", "markdown")


def _seconds(v: float) -> str:
    if v >= 1:
        return f"{v:.2f}s"
    if v >= 1e-3:
        return f"{v * 1e3:.2f}ms"
    return f"{v * 1e6:.1f}us"


def _bytes(v: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= size:
            return f"{v / size:.1f}{unit}"
    return f"{v:.0f}B"


FORMATTERS: dict[str, Callable[[float], str]] = {
    "time_per_step": _seconds,
    "syncs": lambda v: f"{v:.0f}",
    "peak_mem": _bytes,
    "mem_growth": lambda v: f"{_bytes(v)}/step",
    "graph_nodes": lambda v: f"{v:.0f}",
    "graph_growth": lambda v: f"{v:.1f}/step",
}


def ratio(bad: float | None, fixed: float | None) -> float | None:
    """bad / fixed; inf when only the bad variant has any; None when it means nothing."""
    if bad is None or fixed is None:
        return None
    if fixed == 0:
        return math.inf if bad > 0 else None
    if bad < 0 or fixed < 0:
        return None
    return bad / fixed


def metric(row: Row, key: str) -> dict[str, Any]:
    bad = row.bad.get("metrics", {}).get(key) if row.bad else None
    fixed = row.fixed.get("metrics", {}).get(key) if row.fixed else None
    return {"bad": bad, "fixed": fixed, "ratio": ratio(bad, fixed)}


def cell(row: Row, key: str) -> str:
    m = metric(row, key)
    if m["bad"] is None and m["fixed"] is None:
        return "n/a"
    fmt = FORMATTERS[key]
    bad = "n/a" if m["bad"] is None else fmt(m["bad"])
    fixed = "n/a" if m["fixed"] is None else fmt(m["fixed"])
    text = f"{bad} -> {fixed}"
    r = m["ratio"]
    if r is not None and key in ("time_per_step", "peak_mem", "syncs", "graph_nodes"):
        text += " (inf)" if math.isinf(r) else f" ({r:.2f}x)"
    return text


HEADERS = ("Rule", "Device", "Contract", "Verdict") + tuple(title for _, title in METRICS) + ("Detail",)


def cells(row: Row) -> list[str]:
    return [row.name, row.device, row.contract or "-", row.verdict] + [cell(row, k) for k, _ in METRICS] + [row.reason]


def summary(outcome: Outcome) -> str:
    counts = {v: sum(1 for r in outcome.rows if r.verdict == v) for v in (PASS, FAIL, SKIP)}
    torch = outcome.env.get("torch", "?")
    return (f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} n/a "
            f"(device {outcome.device}, torch {torch})")


def table(outcome: Outcome) -> str:
    rows = [list(HEADERS)] + [cells(r) for r in outcome.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    lines.append("")
    lines.append(summary(outcome))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def markdown(outcome: Outcome) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in outcome.rows]
    return "\n".join(lines) + "\n\n" + summary(outcome) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    keep = ("status", "error", "invariant", "steps", "metrics", "warnings", "diagnostics")
    return {k: v[k] for k in keep if k in v}


def as_dict(outcome: Outcome) -> dict[str, Any]:
    results = []
    for r in outcome.rows:
        results.append({
            "code": r.name, "name": r.rule_name, "device": r.device, "contract": r.contract,
            "verdict": r.verdict, "reason": r.reason, "scenario": r.scenario, "fixed_codes": r.applied,
            "metrics": {k: metric(r, k) for k, _ in METRICS},
            "bad": _variant(r.bad), "fixed": _variant(r.fixed),
        })
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for r in outcome.rows:
        counts[{PASS: "passed", FAIL: "failed"}.get(r.verdict, "skipped")] += 1
    return _jsonable({"device": outcome.device, "environment": outcome.env, "summary": counts, "results": results})


def as_json(outcome: Outcome) -> str:
    return json.dumps(as_dict(outcome), indent=2, allow_nan=False) + "\n"


def render(outcome: Outcome, fmt: str) -> str:
    return {"table": table, "json": as_json, "markdown": markdown}[fmt](outcome)


# --- HTML ---------------------------------------------------------------------------------------

CHART_METRICS = (("time_per_step", "time/step", "#4c78a8"), ("peak_mem", "peak memory", "#f58518"),
                 ("syncs", "syncs", "#54a24b"), ("graph_nodes", "retained graph", "#e45756"))


def svg_chart(outcome: Outcome) -> str:
    """Horizontal bars of log2(bad / fixed) per rule and metric: right of the axis, the fix gains."""
    bars = []
    for r in outcome.rows:
        for key, label, color in CHART_METRICS:
            q = metric(r, key)["ratio"]
            if q is not None and q > 0:
                bars.append((r.name, label, color, q))
    bar_h, gap, left, width, half = 14, 4, 170, 640, 240
    height = max(1, len(bars)) * (bar_h + gap) + 60
    axis = left + half
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11" role="img" aria-label="gains of the fixes">',
           f'<text x="{axis}" y="14" text-anchor="middle">'
           "log2(bad / fixed): right of the axis, the fixed variant is better</text>"]
    y = 28
    for name, label, color, q in bars:
        v = 4.0 if math.isinf(q) else max(-4.0, min(4.0, math.log2(q)))
        x0, x1 = (axis, axis + v / 4 * half) if v >= 0 else (axis + v / 4 * half, axis)
        shown = "inf" if math.isinf(q) else f"{q:.2f}x"
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 3}" text-anchor="end">{html.escape(name)} {label}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" height="{bar_h}" fill="{color}">'
                   f'<title>{html.escape(name)} {label}: {shown}</title></rect>')
        out.append(f'<text x="{max(x0, x1) + 4:.1f}" y="{y + bar_h - 3}">{shown}</text>')
        y += bar_h + gap
    if not bars:
        out.append(f'<text x="{axis}" y="{y + 10}" text-anchor="middle">no metric to compare</text>')
    out.append(f'<line x1="{axis}" y1="20" x2="{axis}" y2="{max(y, 40)}" stroke="#333"/>')
    out.append("</svg>")
    return "\n".join(out)


def html_report(outcome: Outcome) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = []
    for r in outcome.rows:
        cls = {PASS: "pass", FAIL: "fail"}.get(r.verdict, "skip")
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>")
    env = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in outcome.env.items() if k != "wall")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ptlint verify</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
tr.pass td:nth-child(4) {{ color: #1a7f37; font-weight: bold; }}
tr.fail td:nth-child(4) {{ color: #cf222e; font-weight: bold; }}
tr.skip td:nth-child(4) {{ color: #777; }}
</style></head><body>
<h1>ptlint verify</h1>
<p>{html.escape(summary(outcome))}</p>
<p>{env}</p>
<h2>Gains of the fixes</h2>
{svg_chart(outcome)}
<h2>Results</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<p>Each metric reads bad -&gt; fixed (ratio bad / fixed). n/a: the metric means nothing on this device or
the variant did not run.</p>
</body></html>
"""
