"""`path:line:col: CODE [*] message`, one finding a line."""

from __future__ import annotations

from ptlint.reporters import RunInfo
from ptlint.reporters.text import headline, summary
from ptlint.finding import Finding


def render(findings: list[Finding], run: RunInfo) -> str:
    body = "".join(headline(f, run) + "\n" for f in findings)
    return body + summary(findings, run)
