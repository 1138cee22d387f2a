"""SARIF 2.1.0: one run whose driver lists every rule, one result per finding, fixes from the edits."""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from ptlint import __version__
from ptlint.docs import rule_markdown
from ptlint.reporters import RunInfo
from ptlint.rule import DOC_SECTIONS, Finding, Rule

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
PROJECT_URL = "https://github.com/ptlint/ptlint"
SRCROOT = "%SRCROOT%"


def help_uri(rule: type[Rule]) -> str:
    """The rule's section of docs/rules.md (GitHub's heading anchor)."""
    return f"{PROJECT_URL}/blob/main/docs/rules.md#{rule.code.lower()}-{rule.name}"


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
        "defaultConfiguration": {"level": "error"},
        "properties": {"fix": rule.fix_safety.value},
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


def result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"ruleId": f.code}
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    out.update({
        "level": "error",
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact(f.path),
                    "region": {
                        "startLine": f.start.line,
                        "startColumn": f.start.column,
                        "endLine": f.end.line,
                        "endColumn": f.end.column,
                    },
                }
            }
        ],
    })
    if f.fix is not None and f.edits:
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
        # Lines and columns count from the top of this notebook cell.
        out["properties"] = {"cell": f.cell}
    return out


def log(findings: list[Finding]) -> dict[str, Any]:
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
    run = {"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": [result(f, index) for f in findings]}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(findings: list[Finding], run: RunInfo) -> str:
    return json.dumps(log(findings), indent=2) + "\n"
