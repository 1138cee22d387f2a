"""ruff-compatible JSON: a list of findings with locations, fixes and edits."""

from __future__ import annotations

import json
import os
from typing import Any

from ptlint.finding import Finding, severity_of
from ptlint.reporters import RunInfo, rule_url


def finding_dict(f: Finding) -> dict[str, Any]:
    fix = None
    if f.fix is not None:
        fix = {"applicability": f.fix.safety.value, "message": f.fix.title, "edits": f.edits or []}
    return {
        "code": f.code,
        "name": f.name,
        "message": f.message,
        "filename": f.path if f.path == "-" else os.path.abspath(f.path),
        "location": {"row": f.start.line, "column": f.start.column},
        "end_location": {"row": f.end.line, "column": f.end.column},
        "fix": fix,
        "noqa_row": f.stmt_lines[0] or f.start.line,
        "cell": f.cell,
        "url": rule_url(f.code, f.name),
        "severity": severity_of(f),
    }


def render(findings: list[Finding], run: RunInfo) -> str:
    return json.dumps([finding_dict(f) for f in findings], indent=2) + "\n"
