"""`--statistics`: one line per rule with its count, code, fixability, severity and name, most frequent first."""

from __future__ import annotations

import json
from collections import defaultdict

from ptlint.finding import Finding, allowed, severity_of
from ptlint.reporters import RunInfo
from ptlint.reporters.text import summary


def legend(run: RunInfo) -> str:
    """What the markers mean."""
    option = "--fix --unsafe-fixes" if run.unsafe_fixes else "--fix"
    return f"[*] every finding of the rule is fixable with `{option}`, [-] some are, [ ] none are\n"


def _rows(findings: list[Finding], run: RunInfo) -> list[tuple[int, str, str, int, str]]:
    """(count, code, name, fixable count, severity), by count descending, then code."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        groups[f.code].append(f)
    rows = [
        (len(items), code, items[0].name, sum(1 for f in items if allowed(f.fix, run.unsafe_fixes)), severity_of(items[0]))
        for code, items in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row[0], row[1]))


def mark(count: int, fixable: int) -> str:
    """`[*]` every finding of the rule is fixable with these settings, `[-]` some are, `[ ]` none."""
    return "[*]" if fixable == count else "[-]" if fixable else "[ ]"


def render(findings: list[Finding], run: RunInfo) -> str:
    rows = _rows(findings, run)
    if not rows:
        return summary(findings, run)
    count_w = max(len(str(row[0])) for row in rows)
    code_w = max(len(row[1]) for row in rows)
    sev_w = max(len(row[4]) for row in rows)
    body = "".join(
        f"{count:>{count_w}}  {code:<{code_w}}  {mark(count, fixable)}  {severity:<{sev_w}}  {name}\n"
        for count, code, name, fixable, severity in rows
    )
    return body + (legend(run) if run.show_summary else "") + summary(findings, run)


def render_json(findings: list[Finding], run: RunInfo) -> str:
    items = [
        {"code": code, "name": name, "severity": severity, "count": count, "fixable": fixable}
        for count, code, name, fixable, severity in _rows(findings, run)
    ]
    return json.dumps(items, indent=2) + "\n"
