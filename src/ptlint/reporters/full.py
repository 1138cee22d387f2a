"""Each finding with its source lines, a caret under the span, and the fix title."""

from __future__ import annotations

import click

from ptlint.finding import Finding, severity_of
from ptlint.reporters import RunInfo
from ptlint.reporters.text import COLORS, headline, summary


def _snippet(f: Finding, run: RunInfo) -> list[str]:
    lines = f.lines or []
    if not lines:
        return []
    width = len(str(lines[-1][0]))
    gutter = " " * width + " |"
    out = [gutter]
    for number, text in lines:
        text = text.expandtabs(4) if "\t" in text else text
        out.append(f"{number:>{width}} | {text}".rstrip())
        if number == f.start.line:
            start = f.start.column - 1
            end = f.end.column - 1 if f.end.line == f.start.line else len(text)
            carets = "^" * max(1, end - start)
            severity = severity_of(f)
            mark = f"{carets} {f.code} ({severity})"
            out.append(f"{gutter} {' ' * start}{click.style(mark, fg=COLORS[severity]) if run.color else mark}")
    out.append(gutter)
    if f.fix is not None:
        label = "help" if f.fix.safety.value == "safe" else f"help ({f.fix.safety.value} fix)"
        out.append(f"{' ' * width} = {label}: {f.fix.title}")
    return out


def render(findings: list[Finding], run: RunInfo) -> str:
    blocks = []
    for f in findings:
        blocks.append("\n".join([headline(f, run), *_snippet(f, run)]) + "\n")
    body = "\n".join(blocks)
    return body + ("\n" if blocks else "") + summary(findings, run)
