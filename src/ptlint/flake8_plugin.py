"""A flake8 plugin: `flake8 --select PTL` reports ptlint's findings (entry point `flake8.extension`, PTL)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Sequence

from ptlint import __version__


class Plugin:
    """flake8 calls this once per file with the file's lines; PTL000 is left to flake8's own E999."""

    name = "ptlint"
    version = __version__

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        self.filename = filename
        self.lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        from ptlint.api import lint_text
        from ptlint.config import Overrides, Resolver

        path = Path(self.filename)
        settings = Resolver(Overrides()).for_path(path if self.filename not in ("-", "stdin") else Path("."))
        rules = [r for r in settings.enabled_rules(path) if r.code != "PTL000"]
        result = lint_text("".join(self.lines), self.filename, rules, options=settings.rule_options, settings=settings)
        for finding in result.findings:
            if finding.code != "PTL000":
                yield finding.start.line, finding.start.column - 1, f"{finding.code} {finding.message}", type(self)
