"""`--statistics`: one line per rule with its count, code, fixability and name, most frequent first."""

from __future__ import annotations

import json
from collections import defaultdict

from ptlint.finding import allowed
from ptlint.reporters import RunInfo
from ptlint.reporters.text import summary
from ptlint.finding import Finding


def _rows(findings: list[Finding], run: RunInfo) -> list[tuple[int, str, str, int]]:
    """(count, code, name, fixable count), by count descending, then code."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        groups[f.code].append(f)
    rows = [
        (len(items), code, items[0].name, sum(1 for f in items if allowed(f.fix, run.unsafe_fixes)))
        for code, items in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row[0], row[1]))


def mark(count: int, fixable: int) -> str:
    """`[*]` every finding of the rule is fixable with these settings, `[-]` some are, `[ ]` none."""
    return "[*]" if fixable == count else "[-]" if fixable else "[ ]"


def render(findings: list[Finding], run: RunInfo) -> str:
    rows = _rows(findings, run)
    width = max((len(str(row[0])) for row in rows), default=1)
    body = "".join(f"{count:>{width}}\t{code}\t{mark(count, fixable)}\t{name}\n" for count, code, name, fixable in rows)
    return body + summary(findings, run)


def render_json(findings: list[Finding], run: RunInfo) -> str:
    items = [
        {"code": code, "name": name, "count": count, "fixable": fixable}
        for count, code, name, fixable in _rows(findings, run)
    ]
    return json.dumps(items, indent=2) + "\n"
