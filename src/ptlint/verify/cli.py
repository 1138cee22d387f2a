"""The body of `ptlint verify`; the click command in ptlint.cli only parses options."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from ptlint.registry import by_code_or_name
from ptlint.rule import FixSafety
from ptlint.verify import harness, report
from ptlint.verify.pool import TorchMissing

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def main(
    codes: Sequence[str],
    device: str,
    output_format: str,
    steps: int | None,
    report_file: str | None,
    scenarios: Sequence[str],
    jobs: int | None,
    timeout: int,
    wide: bool = False,
    repeats: int = harness.DEFAULT_REPEATS,
) -> int:
    for code in codes:
        rule = by_code_or_name(code)
        if rule is None:
            click.echo(f"ptlint: error: unknown rule {code!r}; `ptlint rule --all` lists them", err=True)
            return EXIT_ERROR
        if rule.fix_safety == FixSafety.NONE:
            click.echo(f"ptlint: warning: {rule.code} has no fix; there is nothing to verify", err=True)
    try:
        outcome = harness.verify(
            codes, device, steps, [Path(p) for p in scenarios], jobs=jobs or harness.default_jobs(), timeout=timeout,
            repeats=repeats,
        )
    except (TorchMissing, harness.DeviceUnavailable) as exc:
        click.echo(f"ptlint: error: {exc}", err=True)
        return EXIT_ERROR
    click.echo(report.render(outcome, output_format, wide=wide), nl=False)
    if report_file:
        Path(report_file).write_text(report.html_report(outcome), encoding="utf-8")
    return EXIT_FAILED if outcome.failed else EXIT_OK
