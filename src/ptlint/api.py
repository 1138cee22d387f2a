"""The programmatic API that the CLI, the verifier and the tests call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ptlint.engine import Analysis, analyze, parse
from ptlint.fixer import edits_for, fix_to_fixed_point
from ptlint.registry import all_rules
from ptlint.rule import Finding, Rule
from ptlint.textfiles import is_plain, lint_plain


@dataclass
class TextResult:
    """Findings left in a text after an optional fix, and the fixed text."""

    findings: list[Finding]
    text: str
    fixed: int = 0
    errors: list[str] = field(default_factory=list)
    fixed_codes: list[str] = field(default_factory=list)  # the rule code of each applied fix

    @property
    def changed(self) -> bool:
        return self.fixed > 0


def parses(text: str) -> bool:
    try:
        parse(text)
    except Exception:
        return False
    try:
        compile(text, "<fixed>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    except (ValueError, RecursionError, MemoryError):
        return True
    return True


def line_length(path: str, settings: Any = None) -> int:
    """The longest line a fix may write: the settings' `line_length`, else the project's
    (`line-length` of [tool.ruff] or [tool.black], else 88)."""
    from pathlib import Path

    from ptlint.config import line_length_for

    given = getattr(settings, "line_length", 0)
    if given:
        return int(given)
    folder = Path(path).parent if path not in ("-", "<string>") else Path(".")
    return line_length_for(folder)


def lint_text(
    text: str,
    path: str = "<string>",
    rules: Sequence[type[Rule]] | None = None,
    fix: bool = False,
    unsafe: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
    settings: Any = None,
    with_edits: bool = False,
) -> TextResult:
    """Lint `text`; with `fix`, apply fixes to a fixed point and report what remains."""
    chosen = list(rules) if rules is not None else list(all_rules())
    if is_plain(path):  # a shell script, Makefile, YAML or Markdown file: never parsed as Python
        findings, final, codes = lint_plain(text, path, chosen, fix, unsafe)
        return TextResult(findings, final, len(codes), [], codes)

    def run(t: str) -> Analysis:
        return analyze(t, path, chosen, options, settings)

    limit = line_length(path, settings) if fix or with_edits else 0
    if fix:
        outcome, result = fix_to_fixed_point(text, run, unsafe, parses, limit)
        final, fixed, errors, codes = outcome.text, outcome.applied, outcome.errors, outcome.codes
    else:
        result, final, fixed, errors, codes = run(text), text, 0, [], []
    errors = errors + result.errors
    if with_edits and result.module is not None:
        for raw, finding in zip(result.raws, [f for f in result.findings if f.code != "PTL000"]):
            if raw.fix is not None:
                finding.edits = edits_for(result.module, raw.fix, final, limit)
    return TextResult(sorted(result.findings, key=Finding.sort_key), final, fixed, errors, codes)
