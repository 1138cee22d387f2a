"""The Rule base class and the shared types: findings, fixes and edits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, Union

import libcst as cst

from ptlint.finding import Finding, Fix, FixSafety, Position, allowed  # noqa: F401  (re-exported: rules import them from here)

if TYPE_CHECKING:
    from ptlint.context import Context

DOC_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "References")


@dataclass(frozen=True)
class Replace:
    """Replace `old` (a node of the parsed tree) with `new`."""

    old: cst.CSTNode
    new: cst.CSTNode


@dataclass(frozen=True)
class InsertBefore:
    """Insert statements before `anchor`, a statement in a block's body."""

    anchor: cst.BaseStatement
    statements: tuple[cst.BaseStatement, ...]


@dataclass(frozen=True)
class InsertAfter:
    """Insert statements after `anchor`, a statement in a block's body."""

    anchor: cst.BaseStatement
    statements: tuple[cst.BaseStatement, ...]


Edit = Union[Replace, InsertBefore, InsertAfter]


@dataclass
class RawFinding:
    """A finding as a rule reports it, before positions are resolved."""

    rule: "type[Rule] | Rule"  # only `code` and `name` are read
    node: cst.CSTNode
    message: str
    fix: Fix | None
    stmt: cst.CSTNode | None = field(default=None)


class Rule:
    """Base class of every rule.

    A subclass sets `code`, `name`, `message`, `fix_safety`, `severity` and `triggers`, writes its
    docs in the docstring with the sections of DOC_SECTIONS, and defines visitor methods
    named `visit_<NodeType>` / `leave_<NodeType>` for the libcst node types it needs.
    An instance lives for one file; `self.ctx` holds the shared facts of that file.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    message: ClassVar[str] = ""
    fix_safety: ClassVar[FixSafety] = FixSafety.NONE
    # How bad a finding is: "error", "warning" or "info" (the catalog's severity); `fail-on` compares it.
    severity: ClassVar[str] = "warning"
    # Substrings of which at least one must occur in the source for the rule to run.
    triggers: ClassVar[tuple[str, ...]] = ("torch",)
    # Per-rule options with their defaults; `[tool.ptlint.rules.<code>]` overrides them.
    options: ClassVar[dict[str, Any]] = {}
    # The verifier's contract for the rule's fix: E0, E1, E2 or E3 (see the catalog).
    contract: ClassVar[str] = ""
    # Its fixes change what other rules see (they add `torch.no_grad()`, say): the fixer applies them in a
    # round of their own first, so no other fix is made for code that the same run puts under them.
    fix_first: ClassVar[bool] = False
    # File-name globs of non-Python files (`*.sh`, `Makefile`) that `check_text` checks line by line.
    text_globs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_text(cls, text: str, path: str) -> list[Any]:
        """`ptlint.textfiles.TextHit`s for a non-Python file matching `text_globs`."""
        return []

    def __init__(self, ctx: "Context", options: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.opts: dict[str, Any] = {**self.options, **(options or {})}
        self.reports: list[RawFinding] = []

    def report(
        self,
        node: cst.CSTNode,
        message: str | None = None,
        fix: Fix | None = None,
    ) -> None:
        """Report a finding at `node`, optionally with a fix."""
        # The class, not the instance: a finding must not hold its rule (and so the tree) in a cycle.
        self.reports.append(RawFinding(type(self), node, message or self.message, fix, self.ctx.statement()))

    # --- class-level helpers used by the engine and the docs generator ---

    @classmethod
    def summary(cls) -> str:
        return cls.docs().get("What it does", "").split("\n\n")[0].replace("\n", " ").strip()

    @classmethod
    def docs(cls) -> dict[str, str]:
        """The docstring split into its sections."""
        return split_sections(cls.__doc__ or "")

    @classmethod
    def visitor_names(cls) -> Sequence[str]:
        return _visitor_names(cls)


@lru_cache(maxsize=None)
def _visitor_names(cls: type) -> tuple[str, ...]:
    """The visit_/leave_ methods of a rule class, looked up once per class rather than per file."""
    return tuple(n for n in dir(cls) if n.startswith(("visit_", "leave_")))


_SECTION_RE = re.compile(r"^## (.+)$", re.MULTILINE)


def split_sections(doc: str) -> dict[str, str]:
    """Split a docstring with `## Title` headings into a title -> text map."""
    import textwrap

    text = textwrap.dedent(doc.split("\n", 1)[1] if "\n" in doc else "")
    parts = _SECTION_RE.split(text)
    sections: dict[str, str] = {}
    for title, body in zip(parts[1::2], parts[2::2]):
        sections[title.strip()] = body.strip("\n").rstrip()
    return sections
