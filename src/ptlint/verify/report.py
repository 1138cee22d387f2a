"""Rendering verify results: table, markdown, json, and an HTML report with an inline SVG chart.

Every metric is compared as the ratio bad / fixed (lower is better for all of them, so above 1x the
fix gains). A ratio is one type everywhere: a number, or None (JSON null) when it means nothing or
when it is infinite (only the bad variant has any); `infinite` says which. A difference within the
run-to-run noise (see NOISE) is "no measurable change", neither a gain nor a regression.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from ptlint.verify.compare import FAIL, PASS, SKIP
from ptlint.verify.harness import Outcome, Row

WIDTH = 120  # the default table fits this many columns; --wide shows every column in full

# (key, column title of --wide, column title of the default table)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("time_per_step", "Time/step", "Time/step"),
    ("syncs", "Syncs", "Syncs"),
    ("peak_mem", "Peak mem", "Peak mem"),
    ("mem_growth", "Mem growth", "Mem growth"),
    ("graph_nodes", "Graph nodes", "Graph"),
    ("graph_growth", "Graph growth", ""),  # --wide only
)
FORMATS = ("table", "json", "markdown")
BETTER, WORSE, SAME = "better", "worse", "same"

CONTRACTS = {
    "E0": "the results of both variants are bitwise equal (tensors: dtype, shape, device and bytes)",
    "E1": "the results of both variants are allclose within the scenario's RTOL / ATOL",
    "E2": "the bad variant breaks the scenario's invariant (or raises) and the fixed one keeps it",
    "E3": "with warnings turned into errors, the bad variant raises (or breaks the invariant) and the fixed one runs",
}


@dataclass(frozen=True)
class Noise:
    """How large a difference must be to count as a change rather than run-to-run noise.

    A difference counts when it exceeds `absolute` (in the metric's unit), when the larger value
    exceeds the smaller by more than `relative` (`single` instead when each variant ran once, so that
    nothing is known of the run-to-run noise), and when the two variants' ranges over their runs are
    apart by at least half the width of the wider one, on a log scale (their interquartile ranges over the
    timer's blocks, for a single run). Counts (syncs, graph nodes) are exact and the same in every run: any
    difference counts.
    """

    relative: float = 0.0
    absolute: float = 0.0
    single: float = 0.0


NOISE: dict[str, Noise] = {
    "time_per_step": Noise(relative=0.10, single=0.25),
    "syncs": Noise(),
    "peak_mem": Noise(relative=0.05, absolute=2**20, single=0.10),  # CPU RSS: allocator and page granularity
    "mem_growth": Noise(absolute=1024.0),  # bytes per step
    "graph_nodes": Noise(),
    "graph_growth": Noise(absolute=0.05),  # nodes per step
}
CUDA_PEAK_NOISE = Noise(relative=0.02, absolute=64 * 2**10, single=0.02)  # max_memory_allocated: exact blocks


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


def ratio(bad: float | None, fixed: float | None) -> tuple[float | None, bool]:
    """(bad / fixed, infinite): (None, True) when only the bad variant has any; None when meaningless."""
    if bad is None or fixed is None or bad < 0 or fixed < 0:
        return None, False
    if fixed == 0:
        return (None, True) if bad > 0 else (1.0, False)
    return float(bad) / float(fixed), False


def _spread(row: Row, side: str, key: str) -> dict[str, Any] | None:
    variant = row.bad if side == "bad" else row.fixed
    found = (variant or {}).get("spread", {}).get(key)
    return dict(found) if isinstance(found, dict) else None


def change(key: str, bad: float | None, fixed: float | None, spread_bad: dict[str, Any] | None = None,
           spread_fixed: dict[str, Any] | None = None, device: str = "cpu") -> str | None:
    """BETTER / WORSE when the fix measurably lowers / raises the metric, SAME within noise, None if unknown."""
    if bad is None or fixed is None:
        return None
    noise = CUDA_PEAK_NOISE if key == "peak_mem" and device.startswith("cuda") else NOISE.get(key, Noise())
    diff = bad - fixed
    if diff == 0 or abs(diff) <= noise.absolute:
        return SAME
    runs = bool(spread_bad and spread_fixed and spread_bad.get("over") == spread_fixed.get("over") == "runs")
    relative = noise.relative if runs else max(noise.relative, noise.single)
    low, high = sorted((abs(bad), abs(fixed)))
    if high <= low * (1 + relative):
        return SAME
    if spread_bad and spread_fixed:
        lo, hi = ("min", "max") if runs else ("q1", "q3")
        ends = [spread_bad[lo], spread_bad[hi], spread_fixed[lo], spread_fixed[hi]]
        f: Callable[[float], float] = math.log if min(ends) > 0 else float  # noise is multiplicative
        b_lo, b_hi, f_lo, f_hi = (f(v) for v in ends)
        gap = max(b_lo - f_hi, f_lo - b_hi)
        if gap <= 0 or gap < max(b_hi - b_lo, f_hi - f_lo) / 2:
            return SAME  # the ranges overlap, or lie closer together than half the wider one is wide
    return BETTER if diff > 0 else WORSE


def metric(row: Row, key: str) -> dict[str, Any]:
    """One metric of a row: values, ratio bad / fixed (a number or None), infinite, change and spreads."""
    bad = row.bad.get("metrics", {}).get(key) if row.bad else None
    fixed = row.fixed.get("metrics", {}).get(key) if row.fixed else None
    r, infinite = ratio(bad, fixed)
    spread_bad, spread_fixed = _spread(row, "bad", key), _spread(row, "fixed", key)
    return {"bad": bad, "fixed": fixed, "ratio": r, "infinite": infinite,
            "change": change(key, bad, fixed, spread_bad, spread_fixed, row.device),
            "bad_spread": spread_bad, "fixed_spread": spread_fixed}


def ratio_text(m: dict[str, Any]) -> str:
    """The ratio in a few characters: 2.00x, 0.50x, 2000x, inf, = (no measurable change) or n/a."""
    if m["change"] is None:
        return "n/a"
    if m["change"] == SAME:
        return "="
    if m["infinite"]:
        return "inf"
    r = m["ratio"]
    if r is None:
        return "n/a"
    return f"{r:.0f}x" if r >= 100 else f"{r:.2f}x"


def cell(row: Row, key: str) -> str:
    """A --wide cell: bad -> fixed (ratio)."""
    m = metric(row, key)
    if m["bad"] is None and m["fixed"] is None:
        return "n/a"
    fmt = FORMATTERS[key]
    bad = "n/a" if m["bad"] is None else fmt(m["bad"])
    fixed = "n/a" if m["fixed"] is None else fmt(m["fixed"])
    text = f"{bad} -> {fixed}"
    if m["change"] is not None:
        text += f" ({ratio_text(m)})"
    return text


HEADERS = ("Rule", "Device", "Contract", "Verdict") + tuple(title for _, title, _ in METRICS) + ("Detail",)
NARROW_METRICS = tuple((key, short) for key, _, short in METRICS if short)
NARROW_HEADERS = ("Rule", "Contract", "Verdict") + tuple(short for _, short in NARROW_METRICS) + ("Detail",)

LEGEND = (
    "Contracts: E0 results bitwise equal; E1 results allclose (the scenario's RTOL/ATOL); E2 the bad variant breaks",
    "  the scenario's invariant (or raises) and the fixed one keeps it; E3 with warnings as errors, the bad variant",
    "  raises and the fixed one runs. n/a rows (a GPU or module this machine lacks) count as neither pass nor fail.",
    "Metrics: the ratio bad / fixed; lower is better for every metric, so above 1x the fix gains (2.00x: half the",
    "  time, half the syncs) and below 1x it costs. inf: the fixed variant has none left. =: no measurable change",
    "  (equal, or within run-to-run noise). n/a: not measured on this device, or a variant did not run.",
    "  Columns with nothing measured are left out; --wide shows every column, with the values bad -> fixed.",
)


def cells(row: Row) -> list[str]:
    return [row.name, row.device, row.contract or "-", row.verdict] + [cell(row, k) for k, _, _ in METRICS] + [row.reason]


def narrow_cells(row: Row) -> list[str]:
    ratios = [ratio_text(metric(row, k)) if row.bad or row.fixed else "n/a" for k, _ in NARROW_METRICS]
    return [row.name, row.contract or "-", row.verdict] + ratios + [row.reason]


def summary(outcome: Outcome) -> str:
    counts = {v: sum(1 for r in outcome.rows if r.verdict == v) for v in (PASS, FAIL, SKIP)}
    torch = outcome.env.get("torch", "?")
    return (f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} n/a "
            f"(device {outcome.device}, torch {torch})")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def _layout(rows: list[list[str]], width: int | None) -> list[str]:
    """Columns padded to their widest cell; with `width`, the first and the last column shrink to fit."""
    heads = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(heads)]
    if width is not None:
        widths[0] = min(widths[0], 24)
        rest = width - sum(widths) - 2 * heads
        if rest < 24:  # long names of user scenarios: take the room from the first column
            widths[0] = max(8, widths[0] - (24 - rest))
            rest = width - sum(widths) - 2 * heads
        rows = [[_clip(r[0], widths[0])] + r[1:heads] + [_clip(r[-1], max(rest, 6))] for r in rows]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def table(outcome: Outcome, wide: bool = False) -> str:
    """Fits WIDTH columns (ratios only, the detail shortened); `wide`: every column in full."""
    if wide:
        rows = [list(HEADERS)] + [cells(r) for r in outcome.rows]
    else:
        rows = [list(NARROW_HEADERS)] + [narrow_cells(r) for r in outcome.rows]
        # metric columns with nothing measured in any row (memory growth on the CPU) are left out
        empty = {i for i in range(3, 3 + len(NARROW_METRICS)) if all(r[i] == "n/a" for r in rows[1:])}
        rows = [[c for i, c in enumerate(r) if i not in empty] for r in rows]
    lines = _layout(rows, None if wide else WIDTH)
    lines += ["", *(LEGEND[:-1] if wide else LEGEND), "", summary(outcome)]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def markdown(outcome: Outcome, wide: bool = True) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in outcome.rows]
    legend = " ".join(line.strip() for line in LEGEND[:-1])
    return "\n".join(lines) + "\n\n" + legend + "\n\n" + summary(outcome) + "\n"


def _jsonable(value: Any) -> Any:
    """JSON without NaN or infinities: they become null (ratios say `infinite` beside them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    keep = ("status", "error", "invariant", "steps", "runs", "metrics", "spread", "warnings", "diagnostics")
    return {k: v[k] for k in keep if k in v}


def as_dict(outcome: Outcome) -> dict[str, Any]:
    results = []
    for r in outcome.rows:
        results.append({
            "code": r.name, "name": r.rule_name, "device": r.device, "contract": r.contract,
            "verdict": r.verdict, "reason": r.reason, "scenario": r.scenario, "fixed_codes": r.applied,
            "description": r.description, "invariant": r.invariant, "terms": r.terms, "diff": r.diff,
            "metrics": {k: metric(r, k) for k, _, _ in METRICS},
            "bad": _variant(r.bad), "fixed": _variant(r.fixed),
        })
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for r in outcome.rows:
        counts[{PASS: "passed", FAIL: "failed"}.get(r.verdict, "skipped")] += 1
    return _jsonable({"device": outcome.device, "environment": outcome.env, "summary": counts, "results": results})


def as_json(outcome: Outcome, wide: bool = True) -> str:
    return json.dumps(as_dict(outcome), indent=2, allow_nan=False) + "\n"


def render(outcome: Outcome, fmt: str, wide: bool = False) -> str:
    return {"table": table, "json": as_json, "markdown": markdown}[fmt](outcome, wide)


# --- HTML ---------------------------------------------------------------------------------------

CHART_METRICS = (("time_per_step", "time/step", "#4c78a8"), ("peak_mem", "peak memory", "#f58518"),
                 ("syncs", "host syncs", "#54a24b"), ("mem_growth", "memory growth", "#b279a2"),
                 ("graph_nodes", "retained graph", "#e45756"))
NOUNS = {"time_per_step": ("faster", "slower"), "syncs": ("fewer host syncs", "more host syncs"),
         "peak_mem": ("less peak memory", "more peak memory"),
         "mem_growth": ("less memory growth", "more memory growth"),
         "graph_nodes": ("fewer retained graph nodes", "more retained graph nodes"),
         "graph_growth": ("slower graph growth", "faster graph growth")}
TITLES = {"time_per_step": "Time per step", "syncs": "Host syncs", "peak_mem": "Peak memory",
          "mem_growth": "Memory growth", "graph_nodes": "Retained graph nodes", "graph_growth": "Graph growth"}
SCALE = 4.0  # the chart spans 1/16x .. 16x (log2 -4 .. 4); longer bars are cut and labelled


def _esc(value: Any) -> str:
    return html.escape(str(value))


def reading(key: str, m: dict[str, Any]) -> str:
    """The ratio in words: what the fix changed, or that nothing measurable did."""
    ch = m["change"]
    if ch is None:
        if m["bad"] is None and m["fixed"] is not None:
            return "not compared: the bad variant did not run to the end"
        if m["fixed"] is None and m["bad"] is not None:
            return "not compared: the fixed variant did not run to the end"
        return "not measured"
    if ch == SAME:
        return "equal" if m["bad"] == m["fixed"] else "no measurable change (within run-to-run noise)"
    gain, loss = NOUNS[key]
    if m["infinite"]:
        what = "no growth" if key.endswith("growth") else "none left"
        return f"{what} after the fix ({FORMATTERS[key](m['bad'])} before)"
    r = m["ratio"]
    if ch == BETTER:
        return f"{r:.2f}x {gain}" if r < 100 else f"{r:.0f}x {gain}"
    if r == 0:
        return f"the fixed variant has some ({FORMATTERS[key](m['fixed'])}), the bad one none"
    return f"{1 / r:.2f}x {loss}"


def _value(key: str, value: float | None, spread: dict[str, Any] | None) -> str:
    """A measured figure with its spread over the repeats, as HTML."""
    if value is None:
        return "n/a"
    fmt = FORMATTERS[key]
    text = _esc(fmt(value))
    exact = key in ("syncs", "graph_nodes", "graph_growth")
    if spread and spread.get("repeats"):
        n, over = spread["repeats"], spread.get("over", "runs")
        if spread["min"] == spread["max"]:
            note = f"the same in all {n} runs" if over == "runs" and n > 1 else ("exact" if exact else "one run")
        elif over == "runs":
            note = f"median of {n} runs; range {_esc(fmt(spread['min']))} &ndash; {_esc(fmt(spread['max']))}"
        else:
            note = (f"median of {n} timer blocks in one run; IQR {_esc(fmt(spread['q1']))} &ndash; "
                    f"{_esc(fmt(spread['q3']))}")
    else:
        note = "exact" if exact else "one measurement"
    return text + f'<span class="spread">{note}</span>'


def contract_words(row: Row) -> str:
    """The contract of a row in words, with the scenario's own tolerances and invariant."""
    words = CONTRACTS.get(row.contract, "")
    if not words:
        return ""
    if row.contract in ("E0", "E1") and row.invariant:
        words += "; and the bad variant must break the invariant while the fixed one keeps it"
    if row.terms:
        words += f" ({row.terms})"
    return f"{row.contract}: {words}."


def svg_chart(outcome: Outcome) -> str:
    """Horizontal bars of log2(bad / fixed) per rule and metric with a measurable change.

    Right of the axis the fix gains, left it costs. Bars past 16x (and infinite ratios) reach the edge,
    end in an arrow and carry their value as a label; nothing is clipped silently.
    """
    bars = []
    for r in outcome.rows:
        for key, label, color in CHART_METRICS:
            m = metric(r, key)
            if m["change"] in (BETTER, WORSE):
                bars.append((r.name, label, color, m))
    bar_h, gap, names, half, right = 16, 6, 200, 260, 170
    left = names + 130  # room for the labels of bars that go left, past the end of the scale
    width = left + 2 * half + right
    height = max(1, len(bars)) * (bar_h + gap) + 70
    axis = left + half
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="measurable changes of the fixes">',
           f'<text x="{axis - 8}" y="14" text-anchor="end" fill="#b42318">&#8592; the fix costs</text>',
           f'<text x="{axis + 8}" y="14" fill="#1a7f37">the fix gains &#8594;</text>']
    for v in range(-int(SCALE), int(SCALE) + 1):
        x = axis + v / SCALE * half
        label = "1x" if v == 0 else (f"{2 ** v:g}x" if v > 0 else f"1/{2 ** -v:g}x")
        out.append(f'<line x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{height - 30}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 14}" text-anchor="middle" fill="#666">{label}</text>')
    y = 30
    for name, label, color, m in bars:
        q = m["ratio"]
        if m["infinite"]:
            v, shown = SCALE, "inf: none left"
        elif q == 0:
            v, shown = -SCALE, "new in the fixed variant"
        else:
            v, shown = math.log2(q), (f"{q:.0f}x" if q >= 100 else f"{q:.2f}x")
        off = abs(v) > SCALE or m["infinite"] or q == 0
        v = max(-SCALE, min(SCALE, v))
        x0, x1 = (axis, axis + v / SCALE * half) if v >= 0 else (axis + v / SCALE * half, axis)
        mid = y + bar_h / 2
        out.append(f'<text x="{names - 8}" y="{mid + 4:.1f}" text-anchor="end">{_esc(name)} {label}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" height="{bar_h}" fill="{color}">'
                   f'<title>{_esc(name)} {label}: bad / fixed = {_esc(shown)}</title></rect>')
        if off:  # an arrow head past the end of the scale: the bar is longer than drawn
            tip = x1 + 10 if v > 0 else x0 - 10
            base = x1 if v > 0 else x0
            out.append(f'<polygon points="{base:.1f},{y} {tip:.1f},{mid:.1f} {base:.1f},{y + bar_h}" fill="{color}"/>')
            shown += " (off scale)" if not m["infinite"] and q != 0 else ""
        if v >= 0:
            out.append(f'<text x="{x1 + (14 if off else 4):.1f}" y="{mid + 4:.1f}">{_esc(shown)}</text>')
        else:
            out.append(f'<text x="{x0 - (14 if off else 4):.1f}" y="{mid + 4:.1f}" text-anchor="end">'
                       f'{_esc(shown)}</text>')
        y += bar_h + gap
    if not bars:
        out.append(f'<text x="{axis}" y="{y + 14}" text-anchor="middle">no measurable change to show</text>')
    out.append(f'<line x1="{axis}" y1="24" x2="{axis}" y2="{height - 30}" stroke="#333"/>')
    out.append("</svg>")
    return "\n".join(out)


def _diff_html(diff: str) -> str:
    """A unified diff, one block per line: additions green, removals red."""
    lines = []
    for line in diff.splitlines():
        cls = ("add" if line.startswith("+") and not line.startswith("+++") else
               "del" if line.startswith("-") and not line.startswith("---") else
               "hunk" if line.startswith("@@") else "head" if line.startswith(("+++", "---")) else "ctx")
        lines.append(f'<span class="{cls}">{_esc(line) or " "}</span>')
    return "".join(lines)


def _variant_words(v: dict[str, Any]) -> str:
    if not v:
        return "did not run"
    status = v.get("status")
    if status == "ok":
        inv = {True: ", keeps the invariant", False: ", breaks the invariant"}.get(v.get("invariant"), "")
        return f"ran {v.get('steps', '?')} steps{inv}"
    return f"{status}: {v.get('error', '')}"


def _rule_section(r: Row) -> str:
    cls = {PASS: "pass", FAIL: "fail"}.get(r.verdict, "skip")
    paragraphs = [p.strip() for p in r.description.split("\n\n") if p.strip()]
    desc = "".join(f"<p>{_esc(' '.join(p.split()))}</p>" for p in paragraphs) or "<p>(no description)</p>"
    facts = [("What it checks", contract_words(r) or "&mdash;")]
    if r.invariant:
        facts.append(("Invariant", _esc(r.invariant)))
    facts.append(("Verdict", f'<b class="{cls}">{_esc(r.verdict)}</b>: {_esc(r.reason)}'))
    if r.bad or r.fixed:
        facts.append(("Bad variant", _esc(_variant_words(r.bad))))
        facts.append(("Fixed variant", _esc(_variant_words(r.fixed))))
    facts.append(("Scenario", f"<code>{_esc(r.scenario)}</code> on {_esc(r.device)}"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    parts = [f'<section class="rule {cls}" id="{_esc(r.name)}">',
             f'<h3>{_esc(r.name)} <span class="rname">{_esc(r.rule_name)}</span> '
             f'<span class="badge {cls}">{_esc(r.verdict)}</span></h3>', desc, f"<dl>{dl}</dl>"]
    if r.diff:
        parts.append(f'<h4>ptlint&rsquo;s fix</h4><pre class="diff">{_diff_html(r.diff)}</pre>')
    measured = [(key, metric(r, key)) for key, _, _ in METRICS]
    measured = [(k, m) for k, m in measured if m["bad"] is not None or m["fixed"] is not None]
    if measured:
        body = []
        for key, m in measured:
            ch = m["change"] or "none"
            body.append(f'<tr class="{ch}"><th>{TITLES[key]}</th><td>{_value(key, m["bad"], m["bad_spread"])}</td>'
                        f'<td>{_value(key, m["fixed"], m["fixed_spread"])}</td>'
                        f'<td class="num">{_esc(ratio_text(m))}</td><td>{_esc(reading(key, m))}</td></tr>')
        parts.append('<h4>Measurements</h4><table class="measure"><thead><tr><th>Metric</th><th>Bad</th>'
                     '<th>Fixed</th><th>Bad / fixed</th><th>Reading</th></tr></thead><tbody>'
                     + "".join(body) + "</tbody></table>")
    warns = sorted(set((r.bad or {}).get("warnings", []) + (r.fixed or {}).get("warnings", [])))
    if warns:
        parts.append('<p class="warn">Warnings: ' + "; ".join(_esc(w) for w in warns[:5]) + "</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _overview(outcome: Outcome) -> str:
    shown = [(key, short) for key, short in NARROW_METRICS
             if any(metric(r, key)["bad"] is not None or metric(r, key)["fixed"] is not None for r in outcome.rows)]
    heads = ["Rule", "Contract", "Verdict"] + [short for _, short in shown] + ["Detail"]
    out = ["<table class=\"overview\"><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead><tbody>"]
    for r in outcome.rows:
        cls = {PASS: "pass", FAIL: "fail"}.get(r.verdict, "skip")
        tds = [f'<td><a href="#{_esc(r.name)}">{_esc(r.name)}</a> <span class="rname">{_esc(r.rule_name)}</span></td>',
               f"<td>{_esc(r.contract or '-')}</td>", f'<td class="{cls}">{_esc(r.verdict)}</td>']
        for key, _ in shown:
            m = metric(r, key)
            tds.append(f'<td class="num {m["change"] or "none"}" title="{_esc(reading(key, m))}">'
                       f"{_esc(ratio_text(m))}</td>")
        tds.append(f"<td>{_esc(r.reason)}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #1f2328; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.pass, b.pass, .badge.pass { color: #1a7f37; font-weight: 600; }
td.fail, b.fail, .badge.fail { color: #cf222e; font-weight: 600; } td.skip, b.skip, .badge.skip { color: #6e7781; }
td.better, tr.better td.num { background: #dafbe1; } td.worse, tr.worse td.num { background: #ffebe9; }
td.same, tr.same td.num { color: #6e7781; }
.legend { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.6em 1em; font-size: 14px; }
.legend dt { font-weight: 600; float: left; width: 3em; } .legend dd { margin-left: 3.5em; }
section.rule { border: 1px solid #d0d7de; border-left: 6px solid #6e7781; border-radius: 6px;
  padding: 0.2em 1.2em 0.8em; margin: 1.2em 0; }
section.rule.pass { border-left-color: #1a7f37; } section.rule.fail { border-left-color: #cf222e; }
.rname { color: #57606a; font-family: ui-monospace, monospace; font-size: 11px; white-space: nowrap; }
table.overview td:first-child { white-space: nowrap; }
section.rule h3 .rname { font-weight: normal; color: #57606a; font-family: ui-monospace, monospace; font-size: 0.9em; }
.badge { font-size: 0.75em; padding: 1px 8px; border-radius: 10px; border: 1px solid currentColor; }
section.rule dl { display: grid; grid-template-columns: 9em 1fr; gap: 0.2em 1em; margin: 0.6em 0; }
section.rule dt { font-weight: 600; color: #57606a; } section.rule dd { margin: 0; }
pre.diff { background: #f6f8fa; padding: 0.6em; font-size: 12px; overflow-x: auto; border-radius: 4px; }
pre.diff span { display: block; }
pre.diff .add { background: #dafbe1; } pre.diff .del { background: #ffebe9; }
pre.diff .hunk { color: #8250df; } pre.diff .head { color: #57606a; }
.spread { display: block; color: #6e7781; font-size: 11px; }
table.measure td:nth-child(2), table.measure td:nth-child(3) { min-width: 12em; }
.warn { color: #9a6700; font-size: 13px; }
"""


def html_report(outcome: Outcome) -> str:
    env = ", ".join(f"{_esc(k)}: {_esc(v)}" for k, v in outcome.env.items() if k != "wall" and v is not None)
    contracts = "".join(f"<dt>{c}</dt><dd>{_esc(w)}.</dd>" for c, w in CONTRACTS.items())
    sections = "\n".join(_rule_section(r) for r in outcome.rows)
    counts = {v.get("runs", 1) for r in outcome.rows for v in (r.bad, r.fixed) if v and v.get("status") == "ok"}
    runs = f"{max(counts)} times" if counts and max(counts) > 1 else "once"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ptlint verify</title>
<style>{CSS}</style></head><body>
<h1>ptlint verify</h1>
<p><b>{_esc(summary(outcome))}</b><br><small>{env}</small></p>
<div class="legend">
<p>For every rule with a fix, ptlint ran a small program with the rule&rsquo;s bad pattern (the <em>bad</em>
variant) and the same program after ptlint&rsquo;s own fixer (the <em>fixed</em> variant), each in a fresh
process with fixed seeds, and checked the rule&rsquo;s contract:</p>
<dl>{contracts}</dl>
<p>Metrics read <b>bad / fixed</b>. Lower is better for every metric, so a ratio above 1x means the fix gains
(2.00x: half the time per step) and below 1x that it costs. <b>inf</b>: the fixed variant has none left.
<b>=</b>: no measurable change &mdash; the values are equal, or they differ within the run-to-run noise. Each
variant ran {runs} in a process of its own, the two variants&rsquo; runs interleaved; a figure is the median over
the runs. A difference counts only when the two variants&rsquo; ranges over their runs do not overlap, lie apart by
at least half the width of the wider one, and differ by more than 10% for time (5% and 1 MiB for peak memory);
host syncs and retained graph nodes are exact counts. <b>n/a</b>: not measured on this device, or a variant did
not run (it raised, which some contracts expect). n/a rows (a GPU or a module this machine lacks) count as
neither pass nor fail.</p>
</div>
<h2>Overview</h2>
{_overview(outcome)}
<h2>Measurable changes</h2>
<p>log<sub>2</sub>(bad / fixed) for each rule and metric that changed beyond the noise; metrics with no measurable
change are not drawn.</p>
{svg_chart(outcome)}
<h2>Rule by rule</h2>
{sections}
</body></html>
"""
