"""What the language server knows of a document: its findings and the texts its fixes produce.

Nothing here speaks LSP: positions are those of `ptlint.finding.Finding` (1-based lines and columns in
code points), and every fix is returned as the new full text of each document it changes (the
protocol layer turns that into minimal text edits). Three kinds of documents:

- `PythonLint`: one Python file, checked with `engine.analyze`; the libcst tree is kept so that a
  quick fix applies exactly the fix of the finding it was asked for.
- `NotebookLint`: the Python code cells of a notebook, joined into one program as `ptlint check` does
  (`ptlint.notebook`), with each finding moved onto its cell's document.
- `PlainLint`: a non-Python file that some rule checks line by line (shell scripts, Makefiles).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ptlint.config import Settings
from ptlint.finding import Finding, FixSafety, allowed, syntax_at

LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
# Codes of the rules that report a deprecated API: their diagnostics carry the `Deprecated` tag.
DEPRECATED_CODES = frozenset({"PTL015", "PTL016", "PTL017", "PTL018", "PTL039", "PTL040"})
UNUSED_NOQA_CODE = "PTL100"
NO_NOQA_CODES = frozenset({"PTL000", "PTL100"})  # a syntax error and a stale noqa are not suppressed
PROJECT_URL = "https://github.com/ptlint/ptlint"


def lines_of(text: str) -> list[str]:
    """The lines of `text` with their endings, split as LSP and libcst split them (\\n, \\r\\n, \\r)."""
    return LINE_RE.findall(text)


def rule_of(code: str) -> Any:
    """The rule class of `code`, or None."""
    from ptlint.registry import by_code_or_name

    return by_code_or_name(code)


def severity_of(code: str, rule: Any, own: Any = None) -> str:
    """"error", "warning", "information" or "hint": the finding's own severity, else its rule's
    `severity` where rules have one, else warning (error for a file that does not parse)."""
    value = own or (getattr(rule, "severity", None) if rule is not None else None)
    value = getattr(value, "value", value)  # an enum member
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
        return ("error", "warning", "information", "hint")[value - 1]
    if isinstance(value, str):
        name = value.strip().lower()
        aliases = {"error": "error", "fatal": "error", "warning": "warning", "warn": "warning",
                   "info": "information", "information": "information", "note": "information",
                   "hint": "hint", "style": "hint"}
        if name in aliases:
            return aliases[name]
    return "error" if code == "PTL000" else "warning"


def is_deprecation(code: str, rule: Any) -> bool:
    return code in DEPRECATED_CODES or str(getattr(rule, "name", "")).startswith("deprecated")


def docs_url(code: str, rule: Any) -> str | None:
    """The rule's section of docs/rules.md, as the SARIF report links it."""
    if rule is None:
        return None
    try:
        from ptlint.reporters.sarif import help_uri

        return help_uri(rule)
    except Exception:  # the reporter moved: link the same page ourselves
        return f"{PROJECT_URL}/blob/main/docs/rules.md#{code.lower()}-{rule.name}"


@dataclass
class Problem:
    """One diagnostic: a finding on one document (a file, or one cell of a notebook)."""

    uri: str
    finding: Finding  # positions within that document's text
    key: int  # its index in the lint's problems

    @property
    def code(self) -> str:
        return self.finding.code

    def safety(self) -> FixSafety | None:
        fix = self.finding.fix
        return None if fix is None or fix.safety is FixSafety.NONE else fix.safety


@dataclass
class Lint:
    """The outcome of checking one document (a file or a whole notebook) at one version."""

    uri: str  # the file's or the notebook's URI
    version: int | None
    texts: dict[str, str]  # document URI -> the text that was checked (one per cell for notebooks)
    settings: Settings | None
    problems: list[Problem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # rules' internal errors, fixes that were dropped
    epoch: int = 0  # the settings generation it was computed under

    def fix_texts(self, problem: Problem) -> dict[str, str] | None:
        """New texts per document after the fix of `problem` alone, or None if it has no usable fix."""
        return None

    def noqa_texts(self, problem: Problem) -> dict[str, str] | None:
        """New texts with `# noqa: CODE` added (or extended) on the problem's line, or None."""
        return None

    def fix_all_texts(self) -> dict[str, str]:
        """New texts of the documents that the safe fixes change (applied to a fixed point)."""
        return {}

    def has_safe_fix(self) -> bool:
        return any(p.safety() is FixSafety.SAFE for p in self.problems)


def _noqa(text: str, finding: Finding) -> str | None:
    from ptlint.add_noqa import add_to_text

    if finding.code in NO_NOQA_CODES:
        return None
    try:
        new, added, _ = add_to_text(text, [finding])
    except Exception:  # not tokenizable (a shell script, a half-typed string): no comment to add
        return None
    return new if added and new != text else None


def _rules(settings: Settings, path: Path) -> list[Any]:
    return settings.enabled_rules(path)


# --- Python files ---------------------------------------------------------------------------------


class PythonLint(Lint):
    """A Python file. Keeps the analysis (its libcst tree) for quick fixes."""

    analysis: Any = None
    path: Path
    shown: str

    def fix_texts(self, problem: Problem) -> dict[str, str] | None:
        text = self.texts[self.uri]
        new = _apply_one(self.analysis, problem.finding, text)
        return {self.uri: new} if new is not None else None

    def noqa_texts(self, problem: Problem) -> dict[str, str] | None:
        new = _noqa(self.texts[self.uri], problem.finding)
        return {self.uri: new} if new is not None else None

    def fix_all_texts(self) -> dict[str, str]:
        from ptlint.api import lint_text

        assert self.settings is not None
        text = self.texts[self.uri]
        if "\x00" in text:
            return {}
        result = lint_text(text, self.shown, _rules(self.settings, self.path), fix=True, unsafe=False,
                           options=self.settings.rule_options, settings=self.settings)
        return {self.uri: result.text} if result.text != text else {}


def _apply_one(analysis: Any, finding: Finding, text: str) -> str | None:
    """The text after `finding`'s fix alone, if it changes the text and the result still parses."""
    from ptlint.api import parses
    from ptlint.fixer import apply_fixes

    fix = finding.fix
    if analysis is None or analysis.module is None or fix is None or fix.safety is FixSafety.NONE or not fix.edits:
        return None
    new = apply_fixes(analysis.module, [fix])
    if new == text or not parses(new):
        return None
    return new


def lint_python(uri: str, text: str, version: int | None, path: Path, shown: str, settings: Settings,
                analyze: Callable[..., Any] | None = None) -> PythonLint:
    """Check one Python text with the rules that `settings` enable for `path`."""
    from ptlint import engine

    result = PythonLint(uri, version, {uri: text}, settings)
    result.path, result.shown = path, shown
    if "\x00" in text:
        findings = [syntax_at(shown, 1, 1, "the file contains null bytes")]
    else:
        run = analyze or engine.analyze
        analysis = run(text, shown, _rules(settings, path), settings.rule_options, settings)
        result.analysis = analysis
        result.errors = list(analysis.errors)
        findings = sorted(analysis.findings, key=Finding.sort_key)
    result.problems = [Problem(uri, f, k) for k, f in enumerate(findings)]
    return result


# --- notebooks ------------------------------------------------------------------------------------


@dataclass
class Cell:
    """A code cell as the client holds it."""

    uri: str
    text: str


class NotebookLint(Lint):
    """The Python cells of a notebook as one program (imports in cell 1 resolve in cell 5)."""

    analysis: Any = None
    nb: Any = None
    cells: list[Cell]
    path: Path
    shown: str

    def _cell_uri(self, number: int) -> str:
        return self.cells[number - 1].uri

    def _to_cells(self, program: str) -> dict[str, str] | None:
        """New cell texts for a changed program, or None if the change does not map onto cells."""
        from ptlint.notebook import restore, split_program

        programs = split_program(self.nb, program)
        if not programs:
            return None
        out = {}
        for number, cell_program in programs.items():
            source = restore(self.nb.cell(number), cell_program)
            if source is None:
                return None
            uri = self._cell_uri(number)
            if source != self.texts[uri]:
                out[uri] = source
        return out or None

    def fix_texts(self, problem: Problem) -> dict[str, str] | None:
        program_finding = self._program_findings.get(problem.key)
        if program_finding is None:
            return None
        new = _apply_one(self.analysis, program_finding, self.nb.program)
        return self._to_cells(new) if new is not None else None

    def noqa_texts(self, problem: Problem) -> dict[str, str] | None:
        from ptlint.notebook import restore

        finding = problem.finding
        if finding.cell is None:
            return None
        cell = self.nb.cell(finding.cell)
        if cell.frozen:
            return None
        program = _noqa(cell.program, finding)
        source = restore(cell, program) if program is not None else None
        if source is None or source == self.texts[problem.uri]:
            return None
        return {problem.uri: source}

    def fix_all_texts(self) -> dict[str, str]:
        from ptlint.api import lint_text

        assert self.settings is not None
        if not self.nb.program.strip():
            return {}
        result = lint_text(self.nb.program, self.shown, _rules(self.settings, self.path), fix=True, unsafe=False,
                           options=self.settings.rule_options, settings=self.settings)
        if result.text == self.nb.program:
            return {}
        return self._to_cells(result.text) or {}

    _program_findings: dict[int, Finding]


def notebook_json(cells: Sequence[str]) -> str:
    """An nbformat 4 notebook of code cells with these sources (what `ptlint.notebook.load` reads)."""
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
                  for s in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    })


def lint_notebook(uri: str, cells: Sequence[Cell], version: int | None, path: Path, shown: str,
                  settings: Settings, analyze: Callable[..., Any] | None = None) -> NotebookLint:
    """Check the Python code cells of a notebook as one program; each problem is on its cell."""
    from ptlint import engine
    from ptlint.notebook import load, syntax_findings, to_cell

    result = NotebookLint(uri, version, {c.uri: c.text for c in cells}, settings)
    result.cells, result.path, result.shown = list(cells), path, shown
    result._program_findings = {}
    nb = result.nb = load(notebook_json([c.text for c in cells]))
    pairs: list[tuple[Finding, Finding | None]] = []
    if nb.program.strip():
        run = analyze or engine.analyze
        analysis = result.analysis = run(nb.program, shown, _rules(settings, path), settings.rule_options, settings)
        result.errors = list(analysis.errors)
        for finding in analysis.findings:
            pairs.append((to_cell(nb, finding), finding))
    pairs += [(f, None) for f in syntax_findings(nb, shown)]
    pairs.sort(key=lambda pair: pair[0].sort_key())
    for finding, program_finding in pairs:
        if finding.cell is None or not 1 <= finding.cell <= len(result.cells):
            continue
        key = len(result.problems)
        result.problems.append(Problem(result._cell_uri(finding.cell), finding, key))
        if program_finding is not None:
            result._program_findings[key] = program_finding
    return result


# --- non-Python files that a rule checks line by line ---------------------------------------------


class PlainLint(Lint):
    path: Path
    shown: str

    def _hits(self) -> list[tuple[str, Any]]:
        from ptlint.textfiles import text_rules

        assert self.settings is not None
        text = self.texts[self.uri]
        return [(rule.code, hit) for rule in text_rules(_rules(self.settings, self.path), self.shown)
                for hit in rule.check_text(text, self.shown)]

    def fix_texts(self, problem: Problem) -> dict[str, str] | None:
        f = problem.finding
        for code, hit in self._hits():
            if (code, hit.line, hit.start, hit.end) == (f.code, f.start.line, f.start.column, f.end.column):
                if hit.replacement is None:
                    return None
                lines = lines_of(self.texts[self.uri])
                line = lines[hit.line - 1]
                lines[hit.line - 1] = line[: hit.start - 1] + hit.replacement + line[hit.end - 1:]
                return {self.uri: "".join(lines)}
        return None

    def noqa_texts(self, problem: Problem) -> dict[str, str] | None:
        new = _noqa(self.texts[self.uri], problem.finding)
        return {self.uri: new} if new is not None else None

    def fix_all_texts(self) -> dict[str, str]:
        from ptlint.api import lint_text

        assert self.settings is not None
        text = self.texts[self.uri]
        result = lint_text(text, self.shown, _rules(self.settings, self.path), fix=True, unsafe=False)
        return {self.uri: result.text} if result.text != text else {}


def lint_plain(uri: str, text: str, version: int | None, path: Path, shown: str, settings: Settings) -> PlainLint:
    from ptlint.api import lint_text

    result = PlainLint(uri, version, {uri: text}, settings)
    result.path, result.shown = path, shown
    found = lint_text(text, shown, _rules(settings, path)).findings
    result.problems = [Problem(uri, f, k) for k, f in enumerate(found)]
    return result


def wants_plain(path: Path, settings: Settings) -> bool:
    """Whether some enabled rule checks a non-Python file of this name line by line."""
    from ptlint.textfiles import text_rules

    return bool(text_rules(_rules(settings, path), path.name))


def fix_allowed(problem: Problem, unsafe: bool) -> bool:
    return allowed(problem.finding.fix, unsafe)
