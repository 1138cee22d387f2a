"""The language server's latency benchmark runs (quick mode: a few rounds, no timings checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_server_latency_benchmark_runs_in_quick_mode(tmp_path):
    pytest.importorskip("pygls")
    env = dict(os.environ, PTLINT_BENCH_QUICK="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "--benchmark-disable",
         str(ROOT / "benchmarks" / "test_server_latency.py"), "--basetemp", str(tmp_path / "bench")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
