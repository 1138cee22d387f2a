"""The `ptlint` command line: check and rule."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from ptlint import __version__, cache
from ptlint.config import FAIL_ON, ConfigError, Overrides, Resolver, expand
from ptlint.reporters import FORMATS, RunInfo
from ptlint.finding import Finding, fails, severity_of

if TYPE_CHECKING:
    from ptlint import runner

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _fail(message: str) -> None:
    click.echo(f"ptlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _use_color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


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


def _shard_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    from ptlint.shard import ShardError, parse

    if value is None:
        return None
    try:
        return parse(value)
    except ShardError as exc:
        raise click.BadParameter(str(exc)) from None


CHECK_EPILOG = """\b
Markers:
  [*]  a finding that `--fix` would fix (with `--unsafe-fixes`, unsafe fixes count too)
  [-]  in `--statistics`: some of the rule's findings are fixable, not all
  [ ]  in `--statistics`: none of the rule's findings are fixable

\b
Exit codes:
  0  nothing left to report (or only findings below `--fail-on`, or --exit-zero)
  1  findings remain at or above the `fail-on` severity (default: info, so any finding);
     with --diff: something would change; with --exit-non-zero-on-fix: a fix was applied
  2  a usage or configuration error, a path that does not exist, or an internal error
"""


@main.command(epilog=CHECK_EPILOG)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--fix", is_flag=True, help="Apply safe fixes in place.")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also apply (and show) unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a diff; write nothing; exit 1 if any.")
@click.option("--select", multiple=True, help="Rules to enable: codes, names, prefixes or ALL.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the selection.")
@click.option("--output-format", type=click.Choice(FORMATS), default="full", show_default=True)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even if findings remain.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="The least severe severity that fails the run (default: info, so any finding).")
@click.option("--respect-gitignore/--no-respect-gitignore", default=None,
              help="Skip files ignored by .gitignore, .git/info/exclude and git's global excludes (default: on).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Use this configuration file.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPUs).")
@click.option("--stdin-filename", help="Read the source from stdin and report it under this file name.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--force-exclude", is_flag=True, help="Apply exclusions to paths named on the command line too.")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--statistics", is_flag=True, help="Print one line per rule: count, code, fixability, name.")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied and available per file.")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` comments for every finding.")
@click.option("--exit-non-zero-on-fix", is_flag=True, help="Exit 1 if any fix was applied.")
@click.option("--shard", callback=_shard_option, help="Check only shard I of N (e.g. 2/4), split by path hash.")
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
    fail_on: str | None,
    respect_gitignore: bool | None,
    config_file: str | None,
    jobs: int | None,
    stdin_filename: str | None,
    quiet: bool,
    no_cache: bool,
    force_exclude: bool,
    output_file: str | None,
    statistics: bool,
    show_fixes: bool,
    add_noqa: bool,
    exit_non_zero_on_fix: bool,
    shard: tuple[int, int] | None,
) -> None:
    """Check PATHS (default: the current folder) for PyTorch anti-patterns."""
    from ptlint import catalog, output, runner

    if select and not _split(select):
        _fail("--select selects no rule: give codes, names, prefixes such as PTL0, or ALL")
    cache_root = None if no_cache else cache.folder().resolve()
    if cache_root is not None:
        catalog.load(cache_root)  # a warm run then never imports libcst or the rules
    overrides = Overrides(
        select=_split(select) or None,
        ignore=_split(ignore),
        extend_select=_split(extend_select),
        unsafe_fixes=unsafe_fixes,
        fail_on=fail_on,
        respect_gitignore=respect_gitignore,
    )
    for group in (overrides.select or (), overrides.ignore, overrides.extend_select):
        expand(group)
    if config_file is not None and not Path(config_file).is_file():
        _fail(f"configuration file not found: {config_file}")
    resolver = Resolver(overrides, Path(config_file) if config_file else None)
    mode = runner.Mode(
        fix=fix,
        diff=diff,
        with_edits=output_format in ("json", "sarif"),
        with_lines=output_format in ("full", "gitlab"),
        cache_dir=None if cache_root is None else str(cache_root),
    )
    if stdin_filename is not None and paths and "-" not in paths:
        _fail("--stdin-filename names the source read from stdin: give `-` or no path, not files to check")
    use_stdin = "-" in paths or stdin_filename is not None
    paths = paths or (".",)
    if add_noqa and (fix or diff or use_stdin):
        _fail("--add-noqa cannot be combined with --fix, --diff or `-` (stdin)")
    reports: list[runner.FileReport] = []
    missing: list[str] = []
    stdin_text = ""
    no_files = False
    if use_stdin:
        if len(paths) > 1 or shard:
            _fail("`-` (stdin) cannot be combined with other paths or --shard")
        report, stdin_text = _check_stdin(stdin_filename, resolver, mode)
        reports.append(report)
    else:
        from ptlint import progress

        found = runner.discover(paths, resolver, force_exclude)
        missing = found.missing
        no_files = not found.files and not missing
        if shard:
            from ptlint.shard import select_paths

            found.files = select_paths(found.files, shard)
        with progress.bar(len(found.files), quiet) as advance:
            reports = runner.run_files(found.files, resolver, mode, jobs or os.cpu_count() or 1, advance)
        if cache_root is not None:
            catalog.save(cache_root)

    findings: list[Finding] = sorted((f for r in reports for f in r.findings), key=Finding.sort_key)
    fixed = sum(r.fixed for r in reports)
    for report in reports:
        for warning in report.warnings:
            click.echo(f"ptlint: warning: {warning}", err=True)
    if no_files:
        click.echo("ptlint: warning: No Python files found under the given path(s)", err=True)
    if add_noqa:
        complete = output.add_noqa(reports, found.files, findings)
        if output.print_errors(reports, missing):
            sys.exit(EXIT_ERROR)
        sys.exit(EXIT_CLEAN if complete else EXIT_FINDINGS)
    settings = resolver.for_path(Path(stdin_filename or ".").parent if use_stdin else Path(paths[0]))
    internal = [e for r in reports for e in r.internal_errors]
    run = RunInfo(
        unsafe_fixes=settings.unsafe_fixes,
        fixed=fixed if (fix and not diff) else 0,
        color=_use_color() and not output_file,
        show_summary=not quiet and not missing and not no_files and not internal,
        fail_on=settings.fail_on,
        internal_errors=tuple(internal),
    )
    if diff:
        output.emit("".join(r.diff for r in reports), output_file)
    elif use_stdin and fix:
        # The fixed source is the output; what remains to report goes to stderr.
        click.echo(reports[0].fixed_text if reports[0].fixed_text is not None else stdin_text, nl=False)
        remaining = output.report_text(output_format, findings, replace(run, color=False), reports, statistics, show_fixes)
        if findings or not quiet:
            output.emit(remaining, output_file, err=True)
    elif not (no_files and output_format in output.TEXT_FORMATS and not statistics):
        output.emit(output.report_text(output_format, findings, run, reports, statistics, show_fixes), output_file)
    for message in internal:
        click.echo(f"ptlint: error: {message}", err=True)
    for path in missing:
        click.echo(f"ptlint: error: {path}: no such file or directory", err=True)
    if internal or missing:
        sys.exit(EXIT_ERROR)
    if diff:
        sys.exit(EXIT_FINDINGS if any(r.diff for r in reports) and not exit_zero else EXIT_CLEAN)
    if any(fails(severity_of(f), run.fail_on) for f in findings) and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    if exit_non_zero_on_fix and run.fixed:
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
    if filename and filename.lower().endswith(".ipynb"):
        from ptlint.notebook import check_notebook_text

        report, fixed = check_notebook_text(source.text, shown, settings, mode, path)
        report.fixed_text = fixed
        return report, source.text
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


@main.command()
def server() -> None:
    """Run the language server on stdin/stdout (editors; needs `pip install 'ptlint[server]'`)."""
    from ptlint.server import MISSING, available, main as serve

    if not available():
        _fail(MISSING)
    serve()


@main.command("merge-reports")
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the merged report to this file.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even if the merged report has findings.")
def merge_reports(reports: tuple[str, ...], output_file: str | None, exit_zero: bool) -> None:
    """Merge the JSON or SARIF reports of sharded `check --shard I/N` runs into one report."""
    from ptlint import merge

    try:
        kind, merged = merge.merge_files([Path(r) for r in reports])
    except merge.MergeError as exc:
        _fail(str(exc))
    text = merge.dumps(merged)
    if output_file:
        Path(output_file).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    sys.exit(EXIT_FINDINGS if merge.count_findings(kind, merged) and not exit_zero else EXIT_CLEAN)


@main.command()
@click.argument("codes", nargs=-1)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="auto", show_default=True)
@click.option("--output-format", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps per scenario (default: each scenario's own).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), help="Also write an HTML report to this file.")
@click.option("--scenario", "scenarios", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Verify your own scenario file (a `run(device)` entry point); repeatable.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Variants run in parallel (default: 2).")
@click.option("--timeout", type=click.IntRange(min=1), default=120, show_default=True, help="Seconds per variant.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs of each variant (separate processes): the run-to-run spread that tells changes from noise.")
@click.option("--wide", is_flag=True, help="Table: every column in full (by default it fits 120 columns).")
def verify(codes: tuple[str, ...], device: str, output_format: str, steps: int | None, report_file: str | None,
           scenarios: tuple[str, ...], jobs: int | None, timeout: int, repeats: int, wide: bool) -> None:
    """Run each fixable rule's scenario before and after ptlint's fix and check the rule's contract."""
    from ptlint.verify.cli import main as verify_main

    sys.exit(verify_main(_split(codes), device, output_format, steps, report_file, scenarios, jobs, timeout, wide,
                         repeats))
