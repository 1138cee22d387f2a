"""Findings and fixes as reporters and the cache see them; importing this never imports libcst."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptlint.rule import Edit


SYNTAX_CODE, SYNTAX_NAME = "PTL000", "syntax-error"
# The severities of rules, most severe first; `fail-on` names the least severe one that fails a run.
SEVERITIES = ("error", "warning", "info")


class FixSafety(str, enum.Enum):
    """How a fix may be applied: `safe` with --fix, `unsafe` only with --unsafe-fixes."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    NONE = "none"


@dataclass(frozen=True)
class Fix:
    """A titled group of edits that is applied together or not at all."""

    title: str
    safety: FixSafety
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


@dataclass
class Finding:
    """One reported problem in one file."""

    code: str
    name: str
    message: str
    path: str
    start: Position
    end: Position
    fix: Fix | None = None
    stmt_lines: tuple[int, int] = (0, 0)
    edits: list[dict[str, Any]] | None = None
    cell: int | None = None
    lines: list[tuple[int, str]] | None = None
    # The rule's severity ("error", "warning" or "info"); "" until the runner sets it (see `severity_of`).
    severity: str = ""
    # For a notebook finding: where its start and end lie in the .ipynb file's own text.
    file_start: Position | None = None
    file_end: Position | None = None

    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (self.path, self.cell or 0, self.start.line, self.start.column, self.code)


def severity_of(f: Finding) -> str:
    """The finding's severity, from its rule when the finding does not carry it."""
    if f.severity:
        return f.severity
    if f.code == SYNTAX_CODE:
        return "error"
    from ptlint.registry import by_code_or_name

    rule = by_code_or_name(f.code)
    return rule.severity if rule is not None else "warning"


def fails(severity: str, fail_on: str) -> bool:
    """Whether a finding of `severity` fails a run whose `fail-on` level is `fail_on`."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(fail_on)


def allowed(fix: Fix | None, unsafe: bool) -> bool:
    """Whether `fix` applies: safe fixes always, unsafe ones with --unsafe-fixes."""
    if fix is None or fix.safety is FixSafety.NONE:
        return False
    return fix.safety is FixSafety.SAFE or unsafe


def syntax_at(path: str, line: int, col: int, message: str) -> Finding:
    """A PTL000 finding (also used for unreadable and undecodable files)."""
    pos = Position(max(line, 1), max(col, 1))
    return Finding(SYNTAX_CODE, SYNTAX_NAME, message, path, pos, pos, None, (pos.line, pos.line), severity="error")
