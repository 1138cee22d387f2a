"""GitLab Code Quality: a JSON list of issues with stable fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from ptlint.finding import Finding, severity_of
from ptlint.reporters import RunInfo

SEVERITY = {"error": "critical", "warning": "major", "info": "minor"}


def line_text(f: Finding) -> str:
    """The finding's first line, stripped (from the context lines the runner attaches)."""
    for number, text in f.lines or []:
        if number == f.start.line:
            return text.strip()
    return ""


def fingerprint(f: Finding, occurrence: int) -> str:
    """A hash of path, cell, code and the line's text (not its number), so moving code keeps it.

    `occurrence` tells apart identical lines with the same code in one file.
    """
    key = "\0".join([f.path, str(f.cell or ""), f.code, line_text(f), str(occurrence)])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def render(findings: list[Finding], run: RunInfo) -> str:
    seen: Counter[tuple[str, int | None, str, str]] = Counter()
    issues: list[dict[str, Any]] = []
    for f in findings:
        key = (f.path, f.cell, f.code, line_text(f))
        seen[key] += 1
        description = f"{f.code} {f.message}"
        lines = {"begin": f.start.line, "end": f.end.line}
        if f.cell is not None:
            description = f"cell {f.cell}, line {f.start.line}: {description}"
            if f.file_start is not None:  # the lines of the .ipynb file that hold the cell's lines
                lines = {"begin": f.file_start.line, "end": (f.file_end or f.file_start).line}
        issue: dict[str, Any] = {
            "description": description,
            "check_name": f.code,
            "fingerprint": fingerprint(f, seen[key]),
            "severity": SEVERITY[severity_of(f)],
            "location": {"path": f.path, "lines": lines},
        }
        issues.append(issue)
    return json.dumps(issues, indent=2) + "\n"
