"""SARIF 2.1.0: one run whose driver lists every rule, one result per finding, fixes from the edits."""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from ptlint import __version__
from ptlint.docs import rule_markdown
from ptlint.finding import severity_of
from ptlint.reporters import PROJECT_URL, RunInfo, rule_url
from ptlint.rule import DOC_SECTIONS, Finding, Rule

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def help_uri(rule: type[Rule]) -> str:
    """The rule's section of docs/rules.md (GitHub's heading anchor)."""
    return rule_url(rule.code, rule.name)


def help_text(rule: type[Rule]) -> str:
    docs = rule.docs()
    return "\n\n".join(f"{title}:\n{docs[title]}" for title in DOC_SECTIONS if title in docs)


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.__doc__.strip().split("\n")[0] if rule.__doc__ else rule.message},
        "fullDescription": {"text": rule.summary() or rule.message},
        "help": {"text": help_text(rule), "markdown": rule_markdown(rule)},
        "helpUri": help_uri(rule),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"fix": rule.fix_safety.value, "severity": rule.severity},
    }


def artifact(path: str) -> dict[str, Any]:
    """A relative path becomes a URI under %SRCROOT%; an absolute one a file: URI."""
    if os.path.isabs(path):
        return {"uri": PurePath(path).as_uri()}
    return {"uri": quote(PurePath(path).as_posix()), "uriBaseId": SRCROOT}


def _replacement(edit: dict[str, Any]) -> dict[str, Any]:
    start, end = edit["location"], edit["end_location"]
    out: dict[str, Any] = {
        "deletedRegion": {
            "startLine": start["row"],
            "startColumn": start["column"],
            "endLine": end["row"],
            "endColumn": end["column"],
        }
    }
    if edit["content"]:
        out["insertedContent"] = {"text": edit["content"]}
    return out


def _region(f: Finding) -> dict[str, int]:
    """Where the finding is in the file: for a notebook, in the .ipynb file's text (not its cell)."""
    start, end = f.start, f.end
    if f.cell is not None and f.file_start is not None:
        start, end = f.file_start, f.file_end or f.file_start
    return {"startLine": start.line, "startColumn": start.column, "endLine": end.line, "endColumn": end.column}


def result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"ruleId": f.code}
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    out.update({
        "level": LEVELS[severity_of(f)],
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {"artifactLocation": artifact(f.path), "region": _region(f)}}],
    })
    if f.fix is not None and f.edits and f.cell is None:
        out["fixes"] = [
            {
                "description": {"text": f.fix.title},
                "artifactChanges": [
                    {"artifactLocation": artifact(f.path), "replacements": [_replacement(e) for e in f.edits]}
                ],
                "properties": {"safety": f.fix.safety.value},
            }
        ]
    if f.cell is not None:
        # The region is in the .ipynb file; these count from the top of the notebook cell.
        out["properties"] = {
            "cell": f.cell,
            "cellLine": f.start.line,
            "cellColumn": f.start.column,
            "cellEndLine": f.end.line,
            "cellEndColumn": f.end.column,
        }
    return out


def notification(message: str) -> dict[str, Any]:
    """An internal error as a tool execution notification."""
    return {"level": "error", "message": {"text": message}, "descriptor": {"id": "internal-error"}}


def log(findings: list[Finding], internal_errors: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    from ptlint.registry import all_rules

    rules = list(all_rules())
    index = {r.code: i for i, r in enumerate(rules)}
    driver = {
        "name": "ptlint",
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": PROJECT_URL,
        "rules": [rule_descriptor(r) for r in rules],
    }
    invocation = {
        "executionSuccessful": not internal_errors,
        "toolExecutionNotifications": [notification(e) for e in internal_errors],
    }
    run = {
        "tool": {"driver": driver},
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": [result(f, index) for f in findings],
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(findings: list[Finding], run: RunInfo) -> str:
    return json.dumps(log(findings, run.internal_errors), indent=2) + "\n"
