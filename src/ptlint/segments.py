"""Very large files are checked in parts, so memory and cost per line stay those of ordinary files.

libcst's tree takes about 17 KB per line of dense code: a generated 227,000-line file would need
several GB as one tree. Such a file is cut between top-level statements into parts of about
PART_LINES lines; each part is parsed and checked on its own, with the file's top-level imports
in front so names resolve as in the whole file. Findings come back at their lines in the file.

What a part cannot see: module-level facts of the other parts other than their imports. So fixes,
which may depend on such facts, are not offered for these files; the findings stay, and a warning
says so.
"""

from __future__ import annotations

import ast
from typing import Callable

from ptlint.engine import Analysis, _python_syntax_error
from ptlint.finding import Position, syntax_at
from ptlint.noqa import parse_suppressions

LARGE_LINES = 30_000
LARGE_BYTES = 1_500_000
PART_LINES = 8_000


def is_large(text: str) -> bool:
    return len(text) > LARGE_BYTES and text.count("\n") > LARGE_LINES


def parts(tree: ast.Module, total: int) -> list[tuple[int, int]]:
    """(first line, line after the last) of each part, cut only between top-level statements."""
    starts = [_first_line(stmt) for stmt in tree.body]
    out: list[tuple[int, int]] = []
    begin = 1
    for start in starts[1:]:
        if start - begin >= PART_LINES:
            out.append((begin, start))
            begin = start
    out.append((begin, total + 1))
    return out


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", None)
    return min([stmt.lineno, *(d.lineno for d in decorators)]) if decorators else stmt.lineno


def prelude(tree: ast.Module, lines: list[str]) -> str:
    """The source of the file's top-level imports (`from __future__` ones excepted), one after another."""
    out = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and getattr(stmt, "module", None) != "__future__":
            out.extend(lines[stmt.lineno - 1:stmt.end_lineno])  # type: ignore[misc]
    text = "".join(out)
    return text if not text or text.endswith("\n") else text + "\n"


def analyze_in_parts(text: str, path: str, check: Callable[[str], Analysis]) -> Analysis:
    """Check `text` part by part with `check`; the result has no tree (so nothing is fixed)."""
    result = Analysis(None)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        error = _python_syntax_error(text)
        if error is None:
            return check(text)  # let the whole-file path report it in its own words
        result.findings.append(syntax_at(path, *error))
        return result
    lines = text.splitlines(keepends=True)
    spans = parts(tree, len(lines))
    if len(spans) == 1:
        return check(text)  # one statement (a large literal): one tree, and a small one
    head = prelude(tree, lines)
    head_lines = head.count("\n")
    result.suppressions = parse_suppressions(text)
    fixable = 0
    del tree
    for index, (first, stop) in enumerate(spans):
        lead = head if index else ""
        lead_lines = head_lines if index else 0
        part = check(lead + "".join(lines[first - 1:stop - 1]))
        shift = first - 1 - lead_lines
        for finding in part.findings:
            if finding.start.line <= lead_lines:
                continue  # a finding on the repeated imports belongs to the first part
            finding.start = Position(finding.start.line + shift, finding.start.column)
            finding.end = Position(finding.end.line + shift, finding.end.column)
            finding.stmt_lines = (finding.stmt_lines[0] + shift, finding.stmt_lines[1] + shift)
            fixable += finding.fix is not None
            finding.fix = None
            if not result.suppressions.suppresses(finding.code, *finding.stmt_lines):
                result.findings.append(finding)
        result.errors.extend(e for e in part.errors if e not in result.errors)
    result.errors.append(
        f"{path} has {len(lines):,} lines: checked in {len(spans)} parts of about {PART_LINES:,} lines, each seeing"
        f" the file's imports but not the other parts' other definitions; fixes are not offered"
        + (f" ({fixable} withheld)" if fixable else "")
    )
    return result
