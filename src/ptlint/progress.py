"""A progress bar on stderr for long interactive runs; never in CI, in pipes or with --quiet."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

import click

MIN_FILES = 50


def wanted(total: int, quiet: bool) -> bool:
    """Show a bar only to a person: stderr is a terminal, not CI, not --quiet, and enough files."""
    if quiet or total <= MIN_FILES or os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def bar(total: int, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """Yields a callback that advances the bar by n files, or None when no bar is shown."""
    if not wanted(total, quiet):
        yield None
        return
    with click.progressbar(length=total, label="Checking", file=sys.stderr, show_pos=True, width=30) as progress:
        yield progress.update
