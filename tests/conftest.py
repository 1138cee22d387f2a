"""Shared test helpers: the fixture corpus of every rule."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

FIXTURES = ROOT / "fixtures"


def run_cli(args: list[str], cwd: Path, stdin: str | None = None, catch_exceptions: bool = False):
    """Run `ptlint ARGS` in `cwd` through click's runner."""
    from click.testing import CliRunner

    from ptlint.cli import main

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, input=stdin, catch_exceptions=catch_exceptions)
    finally:
        os.chdir(old)


def check_concise(cwd: Path, *args: str):
    """Run `ptlint check --output-format concise --quiet ARGS` in `cwd` through click's runner."""
    return run_cli(["check", "--output-format", "concise", "--quiet", *args], cwd, catch_exceptions=True)
