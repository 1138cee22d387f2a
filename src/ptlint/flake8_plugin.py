"""A flake8 plugin: `flake8 --select PTL` reports ptlint's findings (entry point `flake8.extension`, PTL).

flake8 runs every installed plugin on every file and filters the results by `--select` afterwards.
So that installing ptlint costs nothing when no PTL code is selected, the plugin reads flake8's
selection in `parse_options` and, when it cannot select any PTL code, returns before it imports
anything (benchmarks/flake8_overhead.py measures it). When some are selected it runs only those.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from ptlint import __version__

PREFIX = "PTL"
_UNSET: Any = object()  # parse_options was not called (the plugin used without flake8's option parsing)


def _may_select(options: Any) -> Any:
    """flake8's decision engine when the options may select a PTL code, else None."""
    from flake8.style_guide import DecisionEngine

    engine = DecisionEngine(options)
    prefixes = (*engine.selected_explicitly, *engine.selected)
    if not any(p.startswith(PREFIX) or PREFIX.startswith(p) for p in prefixes):
        return None
    return engine


class Plugin:
    """flake8 calls this once per file with the file's lines; PTL000 is left to flake8's own E999."""

    name = "ptlint"
    version = __version__
    # flake8's decision engine for this run; None: no PTL code can be selected; _UNSET: run every rule.
    _decider: ClassVar[Any] = _UNSET
    _selected: ClassVar[frozenset[str] | None] = None  # the PTL codes flake8 reports, once known

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        self.filename = filename
        self.lines = lines

    @classmethod
    def parse_options(cls, options: Any) -> None:
        try:
            cls._decider = _may_select(options)
        except Exception:  # another flake8 version: run every rule and let flake8 filter
            cls._decider = _UNSET
        cls._selected = None

    @classmethod
    def _codes(cls) -> frozenset[str] | None:
        """The PTL codes that flake8 would report, or None for all of them."""
        if cls._decider is _UNSET:
            return None
        if cls._selected is None:
            from flake8.style_guide import Decision

            from ptlint.registry import all_rules

            decider = cls._decider
            cls._selected = frozenset(
                r.code for r in all_rules() if decider is not None and decider.decision_for(r.code) is Decision.Selected
            )
        return cls._selected

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        if self._decider is None:
            return  # nothing PTL is selected: no import, no parse
        codes = self._codes()
        if codes is not None and not codes:
            return
        from ptlint.api import lint_text
        from ptlint.config import Overrides, Resolver

        path = Path(self.filename)
        settings = Resolver(Overrides()).for_path(path if self.filename not in ("-", "stdin") else Path("."))
        rules = [r for r in settings.enabled_rules(path) if r.code != "PTL000" and (codes is None or r.code in codes)]
        if not rules:
            return
        result = lint_text("".join(self.lines), self.filename, rules, options=settings.rule_options, settings=settings)
        for finding in result.findings:
            if finding.code != "PTL000":
                yield finding.start.line, finding.start.column - 1, f"{finding.code} {finding.message}", type(self)
