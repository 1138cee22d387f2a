"""Output formats: one module per format, each with `render(findings, run) -> str`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ptlint.finding import Finding

FORMATS = ("full", "concise", "json", "github", "sarif", "junit", "gitlab")


@dataclass(frozen=True)
class RunInfo:
    """What the reporters need to know about the run besides the findings."""

    unsafe_fixes: bool
    fixed: int
    color: bool = False
    show_summary: bool = True


def renderer(name: str) -> Callable[[list[Finding], RunInfo], str]:
    module = importlib.import_module(f"ptlint.reporters.{name}")
    return module.render  # type: ignore[no-any-return]
