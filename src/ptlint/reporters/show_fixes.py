"""`--show-fixes`: the fixes applied (with --fix) and still available, per file."""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Sequence

from ptlint.finding import Finding, FixSafety


def _applied(path: str, codes: Sequence[str], fixed: int) -> list[str]:
    from ptlint.registry import by_code_or_name

    out = [f"- {path}:"]
    for code, count in sorted(Counter(codes).items()):
        rule = by_code_or_name(code)
        out.append(f"    {count} x {code} ({rule.name if rule else '?'})")
    if fixed > len(codes):
        out.append(f"    {fixed - len(codes)} x (rule not recorded)")
    return out


def render(fixed: Sequence[tuple[str, Sequence[str], int]], findings: list[Finding]) -> str:
    """`fixed` holds (path, codes of the applied fixes, number applied) per file."""
    blocks: list[str] = []
    done = [item for item in fixed if item[2]]
    if done:
        total = sum(item[2] for item in done)
        lines = [f"Fixed {total} {'finding' if total == 1 else 'findings'}:"]
        for path, codes, count in done:
            lines += _applied(path, codes, count)
        blocks.append("\n".join(lines))
    open_fixes = [f for f in findings if f.fix is not None and f.fix.safety is not FixSafety.NONE]
    if open_fixes:
        lines = ["Fixes available:"]
        for path, group in groupby(open_fixes, key=lambda f: f.path):
            lines.append(f"- {path}:")
            for f in group:
                cell = f"cell {f.cell}:" if f.cell is not None else ""
                safety = " (unsafe)" if f.fix is not None and f.fix.safety is FixSafety.UNSAFE else ""
                title = f.fix.title if f.fix is not None else ""
                lines.append(f"    {cell}{f.start.line}:{f.start.column} {f.code}{safety} {title}")
        blocks.append("\n".join(lines))
    if not blocks:
        return "No fixes applied or available.\n"
    return "\n\n".join(blocks) + "\n"
