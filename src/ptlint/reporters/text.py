"""Shared pieces of the human-readable formats: headlines and the summary."""

from __future__ import annotations

import click

from ptlint.finding import Finding, allowed, fails, severity_of
from ptlint.reporters import RunInfo

COLORS = {"error": "red", "warning": "yellow", "info": "cyan"}


def location(f: Finding) -> str:
    cell = f"cell {f.cell}:" if f.cell is not None else ""
    return f"{f.path}:{cell}{f.start.line}:{f.start.column}"


def headline(f: Finding, run: RunInfo) -> str:
    mark = " [*]" if allowed(f.fix, run.unsafe_fixes) else ""
    code = click.style(f.code, fg=COLORS[severity_of(f)], bold=True) if run.color else f.code
    path = click.style(location(f), bold=True) if run.color else location(f)
    return f"{path}: {code}{mark} {f.message}"


def summary(findings: list[Finding], run: RunInfo) -> str:
    """`Found N findings (M fixed, N remaining).` plus what --fix and --unsafe-fixes would do."""
    if not run.show_summary:
        return ""
    lines = []
    n = len(findings)
    if n == 0 and run.fixed == 0:
        return "All checks passed!\n"
    word = "finding" if n + run.fixed == 1 else "findings"
    if run.fixed:
        lines.append(f"Found {n + run.fixed} {word} ({run.fixed} fixed, {n} remaining).")
    else:
        lines.append(f"Found {n} {word}.")
    safe = sum(1 for f in findings if allowed(f.fix, False))
    unsafe_only = sum(1 for f in findings if allowed(f.fix, True) and not allowed(f.fix, False))
    if run.unsafe_fixes:
        fixable = safe + unsafe_only
        if fixable:
            lines.append(f"[*] {fixable} fixable with the `--fix` option.")
    else:
        parts = []
        if safe:
            parts.append(f"[*] {safe} fixable with the `--fix` option")
        if unsafe_only:
            parts.append(f"{unsafe_only} more with `--fix --unsafe-fixes`")
        if parts:
            lines.append(" (".join(parts) + (")." if len(parts) == 2 else "."))
    passing = sum(1 for f in findings if not fails(severity_of(f), run.fail_on))
    if passing:
        noun, verb = ("finding is", "does") if passing == 1 else ("findings are", "do")
        lines.append(f"{passing} {noun} below the `fail-on` level ({run.fail_on}) and {verb} not fail the run.")
    return "\n".join(lines) + "\n"
