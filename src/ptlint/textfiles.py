"""Non-Python files (shell scripts, Makefiles, YAML, Markdown) that some rules check line by line.

A rule opts in with `text_globs` (file-name patterns such as `*.sh` or `Makefile`) and a
`check_text(text, path)` classmethod that returns `TextHit`s. Such files are never parsed as
Python: only the rules whose globs match the file's name run on it. A hit with a replacement
is a fix that replaces the hit's columns on its line; `# noqa` comments work as in Python files.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ptlint.noqa import parse_suppressions
from ptlint.finding import Finding, Fix, FixSafety, Position

if TYPE_CHECKING:
    from ptlint.rule import Rule

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def lines_of(text: str) -> list[str]:
    """The lines of `text` with their endings (\\n, \\r\\n or \\r); hits count lines in this way."""
    return _LINE_RE.findall(text)


@dataclass(frozen=True)
class TextHit:
    """One finding on one line: 1-based line, start and end columns (end exclusive)."""

    line: int
    start: int
    end: int
    message: str
    replacement: str | None = None


def text_rules(rules: Sequence[type[Rule]], path: str) -> list[type[Rule]]:
    """The rules among `rules` whose `text_globs` match the file name of `path` (never for .py files)."""
    name = os.path.basename(path)
    if name.endswith((".py", ".pyi", ".ipynb")):
        return []
    return [r for r in rules if any(fnmatch.fnmatch(name, g) for g in getattr(r, "text_globs", ()))]


def is_plain(path: str) -> bool:
    """Whether `path` is a non-Python file that some registered rule checks as plain text."""
    from ptlint.registry import all_rules

    return bool(text_rules(all_rules(), path))


def wants(name: str, rules: Sequence[type[Rule]]) -> bool:
    """Whether discovery should pick up a non-Python file called `name`."""
    return bool(text_rules(rules, name))


def lint_plain(
    text: str, path: str, rules: Sequence[type[Rule]], fix: bool = False, unsafe: bool = False
) -> tuple[list[Finding], str, list[str]]:
    """(findings left, text after fixes, codes of the fixes applied) for a non-Python text."""
    suppressions = parse_suppressions(text)
    found: list[tuple[Finding, TextHit]] = []
    for rule in text_rules(rules, path):
        for hit in rule.check_text(text, path):
            start, end = Position(hit.line, hit.start), Position(hit.line, hit.end)
            safety = rule.fix_safety if hit.replacement is not None else FixSafety.NONE
            fix_obj = Fix("Replace the command", safety, ()) if hit.replacement is not None else None
            finding = Finding(rule.code, rule.name, hit.message, path, start, end, fix_obj, (hit.line, hit.line))
            if not suppressions.suppresses(rule.code, hit.line, hit.line):
                found.append((finding, hit))
    found.sort(key=lambda item: item[0].sort_key())
    if not fix:
        return [f for f, _ in found], text, []
    applicable = [
        (f, h) for f, h in found
        if f.fix is not None and (f.fix.safety == FixSafety.SAFE or (unsafe and f.fix.safety == FixSafety.UNSAFE))
    ]
    lines = lines_of(text)
    codes = []
    # Right to left within a line, so earlier columns stay valid; overlapping hits are skipped.
    for finding, hit in sorted(applicable, key=lambda item: (item[1].line, -item[1].start)):
        line = lines[hit.line - 1]
        if hit.end - 1 > len(line.rstrip("\r\n")):
            continue
        lines[hit.line - 1] = line[: hit.start - 1] + (hit.replacement or "") + line[hit.end - 1:]
        codes.append(finding.code)
    applied = {id(f) for f, _ in applicable}
    return [f for f, _ in found if id(f) not in applied], "".join(lines), codes
