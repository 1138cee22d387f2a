"""Throughput benchmarks on a generated corpus (pytest-benchmark).

    python -m pytest benchmarks/test_throughput.py --benchmark-only          # the real figures
    PTLINT_BENCH_QUICK=1 python -m pytest benchmarks/test_throughput.py      # quick: checks it runs

Without `--benchmark-only`, or with PTLINT_BENCH_QUICK=1, every benchmark runs once on a small corpus
and nothing is timed seriously. Each benchmark stores `lines_per_second` in its extra info.
Timings are never asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

from ptlint import runner  # noqa: E402
from ptlint.config import Overrides, Resolver  # noqa: E402

SIZES = (10_000, 50_000, 150_000)
QUICK_LINES = 600


def quick(config: pytest.Config) -> bool:
    return os.environ.get("PTLINT_BENCH_QUICK") == "1" or not config.getoption("benchmark_only", False)


@pytest.fixture(scope="session")
def corpora(tmp_path_factory: pytest.TempPathFactory):
    made: dict[int, corpus.Corpus] = {}

    def get(lines: int) -> corpus.Corpus:
        if lines not in made:
            made[lines] = corpus.generate(tmp_path_factory.mktemp(f"corpus{lines}"), lines)
        return made[lines]

    return get


def size_for(request: pytest.FixtureRequest, lines: int, every_size: bool = False) -> int:
    if quick(request.config):
        if lines != SIZES[0] and not every_size:
            pytest.skip("quick mode runs the smallest size only")
        return QUICK_LINES
    return lines


def check(files: list[Path], jobs: int, cache_dir: str | None) -> list[runner.FileReport]:
    resolver = Resolver(Overrides(select=("ALL",)), None)
    mode = runner.Mode(cache_dir=cache_dir)
    return runner.run_files(files, resolver, mode, jobs)


def record(benchmark, lines: int) -> None:
    stats = getattr(benchmark, "stats", None)
    mean = getattr(getattr(stats, "stats", None), "mean", None)
    benchmark.extra_info["lines"] = lines
    if mean:
        benchmark.extra_info["lines_per_second"] = round(lines / mean)


def rounds(request: pytest.FixtureRequest) -> int:
    return 1 if quick(request.config) else 3


@pytest.mark.parametrize("lines", SIZES)
def test_cold(benchmark, request, corpora, tmp_path, lines):
    made = corpora(size_for(request, lines))
    counter = iter(range(1000))

    def fresh_cache():
        return (made.files, 1, str(tmp_path / f"cache{next(counter)}")), {}

    reports = benchmark.pedantic(check, setup=fresh_cache, rounds=rounds(request), iterations=1)
    assert len(reports) == len(made.files)
    assert any(r.findings for r in reports)
    record(benchmark, made.lines)


@pytest.mark.parametrize("lines", SIZES)
def test_warm(benchmark, request, corpora, tmp_path, lines):
    made = corpora(size_for(request, lines))
    cache_dir = str(tmp_path / "cache")
    first = check(made.files, 1, cache_dir)
    reports = benchmark.pedantic(check, args=(made.files, 1, cache_dir), rounds=rounds(request), iterations=1)
    assert [r.findings for r in reports] == [r.findings for r in first]
    record(benchmark, made.lines)


@pytest.mark.parametrize("jobs", (1, 2))
def test_jobs(benchmark, request, corpora, jobs):
    made = corpora(size_for(request, SIZES[1], every_size=True))
    reports = benchmark.pedantic(check, args=(made.files, jobs, None), rounds=rounds(request), iterations=1)
    assert len(reports) == len(made.files)
    record(benchmark, made.lines)


def test_single_file_latency(benchmark, request, tmp_path):
    """`ptlint check` on one 500-line file in a fresh process: start-up included."""
    target = tmp_path / "train.py"
    target.write_text(corpus.single_file(500))
    command = [sys.executable, "-m", "ptlint", "check", "--no-cache", "--quiet", "--exit-zero", str(target)]

    def once() -> int:
        return subprocess.run(command, cwd=tmp_path, stdout=subprocess.DEVNULL, check=True).returncode

    assert benchmark.pedantic(once, rounds=1 if quick(request.config) else 10, iterations=1) == 0
    record(benchmark, 500)
