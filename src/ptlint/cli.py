"""The `ptlint` command line: check and rule."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from ptlint import __version__, cache
from ptlint.config import ConfigError, Overrides, Resolver, expand
from ptlint.reporters import FORMATS, RunInfo, renderer
from ptlint.rule import Finding

if TYPE_CHECKING:
    from ptlint import runner

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _fail(message: str) -> None:
    click.echo(f"ptlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


class _Group(click.Group):
    """Turns unexpected exceptions into exit code 2 with one clear line."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(str(exc))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:  # pragma: no cover - reported, never a traceback
            _fail(f"internal error: {exc!r}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ptlint")
def main() -> None:
    """ptlint: find and fix PyTorch anti-patterns."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--fix", is_flag=True, help="Apply safe fixes in place.")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also apply (and show) unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a diff; write nothing; exit 1 if any.")
@click.option("--select", multiple=True, help="Rules to enable: codes, names, prefixes or ALL.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the selection.")
@click.option("--output-format", type=click.Choice(FORMATS), default="full", show_default=True)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even if findings remain.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Use this configuration file.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPUs).")
@click.option("--stdin-filename", help="The file name to report for source read from `-`.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
def check(
    paths: tuple[str, ...],
    fix: bool,
    unsafe_fixes: bool | None,
    diff: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    output_format: str,
    exit_zero: bool,
    config_file: str | None,
    jobs: int | None,
    stdin_filename: str | None,
    quiet: bool,
    no_cache: bool,
) -> None:
    """Check PATHS (default: the current folder) for PyTorch anti-patterns."""
    from ptlint import runner

    overrides = Overrides(
        select=_split(select) or None,
        ignore=_split(ignore),
        extend_select=_split(extend_select),
        unsafe_fixes=unsafe_fixes,
    )
    for group in (overrides.select or (), overrides.ignore, overrides.extend_select):
        expand(group)
    if config_file is not None and not Path(config_file).is_file():
        _fail(f"configuration file not found: {config_file}")
    resolver = Resolver(overrides, Path(config_file) if config_file else None)
    mode = runner.Mode(
        fix=fix,
        diff=diff,
        with_edits=output_format == "json",
        with_lines=output_format == "full",
        cache_dir=None if no_cache else str(cache.folder().resolve()),
    )
    paths = paths or (".",)
    reports: list[runner.FileReport] = []
    missing: list[str] = []
    stdin_text = ""
    if "-" in paths:
        if len(paths) > 1:
            _fail("`-` (stdin) cannot be combined with other paths")
        report, stdin_text = _check_stdin(stdin_filename, resolver, mode)
        reports.append(report)
    else:
        found = runner.discover(paths, resolver)
        missing = found.missing
        reports = runner.run_files(found.files, resolver, mode, jobs or os.cpu_count() or 1)

    findings: list[Finding] = sorted((f for r in reports for f in r.findings), key=Finding.sort_key)
    fixed = sum(r.fixed for r in reports)
    for report in reports:
        for warning in report.warnings:
            click.echo(f"ptlint: warning: {warning}", err=True)
    unsafe = resolver.for_path(Path(".") if paths[0] == "-" else Path(paths[0])).unsafe_fixes
    run = RunInfo(
        unsafe_fixes=unsafe, fixed=fixed if (fix and not diff) else 0, color=_use_color(), show_summary=not quiet and not missing
    )
    if diff:
        click.echo("".join(r.diff for r in reports), nl=False)
    elif "-" in paths and fix:
        click.echo(reports[0].fixed_text if reports[0].fixed_text is not None else stdin_text, nl=False)
    else:
        click.echo(renderer(output_format)(findings, run), nl=False)
    internal = [e for r in reports for e in r.internal_errors]
    for message in internal:
        click.echo(f"ptlint: error: {message}", err=True)
    for path in missing:
        click.echo(f"ptlint: error: {path}: no such file or directory", err=True)
    if internal or missing:
        sys.exit(EXIT_ERROR)
    if diff:
        sys.exit(EXIT_FINDINGS if any(r.diff for r in reports) and not exit_zero else EXIT_CLEAN)
    if findings and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def _check_stdin(filename: str | None, resolver: Resolver, mode: "runner.Mode") -> tuple["runner.FileReport", str]:
    from ptlint import runner
    from ptlint.source import DecodeError, decode

    shown = filename or "-"
    data = sys.stdin.buffer.read()
    try:
        source = decode(data)
    except DecodeError as exc:
        _fail(f"{shown}: cannot decode: {exc}")
    path = Path(filename) if filename else Path("-")
    settings = resolver.for_path(path.parent if filename else Path("."))
    return runner.check_text(source.text, shown, settings, mode, path), source.text


@main.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rule(code: str | None, show_all: bool, output_format: str) -> None:
    """Show the docs of rule CODE (a code or a name), or list them all with --all."""
    from ptlint import docs
    from ptlint.registry import all_rules, by_code_or_name

    if show_all:
        rules = [r for r in all_rules()]
        if output_format == "json":
            click.echo(docs.rules_json(rules))
        else:
            click.echo(docs.rules_table(rules), nl=False)
        return
    if code is None:
        _fail("give a rule code or name, or --all")
    found = by_code_or_name(code)
    if found is None:
        _fail(f"unknown rule {code!r}; `ptlint rule --all` lists them")
    if output_format == "json":
        click.echo(docs.rules_json([found], single=True))
    else:
        click.echo(docs.rule_markdown(found), nl=False)


@main.command()
def clean() -> None:
    """Remove the result cache (.ptlint_cache) of the current folder."""
    removed = cache.clean(cache.folder())
    click.echo("Removed .ptlint_cache" if removed else "No cache to remove")
