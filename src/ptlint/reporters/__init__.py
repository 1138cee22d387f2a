"""Output formats: one module per format, each with `render(findings, run) -> str`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ptlint.finding import Finding

FORMATS = ("full", "concise", "json", "github", "sarif", "junit", "gitlab")
PROJECT_URL = "https://github.com/ptlint/ptlint"


def rule_url(code: str, name: str) -> str:
    """The rule's section of docs/rules.md (GitHub's heading anchor)."""
    return f"{PROJECT_URL}/blob/main/docs/rules.md#{code.lower()}-{name}"


@dataclass(frozen=True)
class RunInfo:
    """What the reporters need to know about the run besides the findings."""

    unsafe_fixes: bool
    fixed: int
    color: bool = False
    show_summary: bool = True
    # The least severe severity that fails the run ("info": every finding does).
    fail_on: str = "info"
    # Internal errors of the run (a rule crashed on a file): SARIF reports them as notifications.
    internal_errors: tuple[str, ...] = ()


def renderer(name: str) -> Callable[[list[Finding], RunInfo], str]:
    module = importlib.import_module(f"ptlint.reporters.{name}")
    return module.render  # type: ignore[no-any-return]
