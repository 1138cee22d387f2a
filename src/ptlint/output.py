"""What `ptlint check` prints: the report in the chosen format, statistics, fixes, and where it goes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from ptlint.reporters import RunInfo, renderer
from ptlint.finding import Finding

if TYPE_CHECKING:
    from ptlint.runner import FileReport

TEXT_FORMATS = ("full", "concise")


def report_text(
    output_format: str,
    findings: list[Finding],
    run: RunInfo,
    reports: Sequence["FileReport"],
    statistics: bool = False,
    show_fixes: bool = False,
) -> str:
    """The report; `--statistics` replaces the findings (JSON for `json`, a table otherwise);
    `--show-fixes` appends the applied and available fixes to the text formats."""
    from ptlint.reporters import statistics as stats

    if statistics:
        return (stats.render_json if output_format == "json" else stats.render)(findings, run)
    text = renderer(output_format)(findings, run)
    if show_fixes and output_format in TEXT_FORMATS:
        from ptlint.reporters import show_fixes as fixes

        applied = [(r.path, r.fixed_codes, r.fixed) for r in reports] if run.fixed else []
        text += "\n" + fixes.render(applied, findings)
    return text


def emit(text: str, output_file: str | None, err: bool = False) -> None:
    """Print `text` (on stderr with `err`), or write it to `output_file` (UTF-8, the folder must exist)."""
    if output_file is None:
        click.echo(text, nl=False, err=err)
        return
    try:
        Path(output_file).write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"ptlint: error: cannot write {output_file}: {exc.strerror or exc}", err=True)
        sys.exit(2)


def add_noqa(reports: Sequence["FileReport"], files: Sequence[Path], findings: list[Finding]) -> bool:
    """`--add-noqa`: write the comments and say how many were added; False when findings were left
    without a comment (the reasons are printed as errors)."""
    from ptlint.add_noqa import add_noqa as write
    from ptlint.runner import display_path

    outcome = write({display_path(p): p for p in files}, findings)
    for warning in outcome.warnings:
        click.echo(f"ptlint: warning: {warning}", err=True)
    for problem in outcome.errors:
        click.echo(f"ptlint: error: {problem}", err=True)
    noun = "code" if outcome.added == 1 else "codes"
    where = f" in {outcome.files} {'file' if outcome.files == 1 else 'files'}" if outcome.added else ""
    click.echo(f"Added {outcome.added} noqa {noun}{where}.")
    if outcome.left:
        noun = "finding is" if outcome.left == 1 else "findings are"
        click.echo(f"{outcome.left} {noun} left without a noqa comment.")
    return not outcome.left


def print_errors(reports: Sequence["FileReport"], missing: Sequence[str]) -> bool:
    """Print internal errors and missing paths on stderr; whether there were any."""
    internal = [e for r in reports for e in r.internal_errors]
    for message in internal:
        click.echo(f"ptlint: error: {message}", err=True)
    for path in missing:
        click.echo(f"ptlint: error: {path}: no such file or directory", err=True)
    return bool(internal or missing)
