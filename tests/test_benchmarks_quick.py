"""The benchmark suite and the measuring script run (quick mode: tiny corpora, no timings checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_suite_runs_in_quick_mode(tmp_path):
    env = dict(os.environ, PTLINT_BENCH_QUICK="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "--benchmark-disable",
         str(ROOT / "benchmarks" / "test_throughput.py"), "--basetemp", str(tmp_path / "bench")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed, 4 skipped" in result.stdout


def test_corpus_is_deterministic_and_has_findings(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import corpus
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    one = corpus.generate(tmp_path / "a", 1200)
    two = corpus.generate(tmp_path / "b", 1200)
    assert one.lines >= 1200 and len(one.files) == len(two.files)
    assert [p.read_text() for p in one.files] == [p.read_text() for p in two.files]
    single = corpus.single_file(500)
    assert single.count("\n") == 500
    compile(single, "single.py", "exec")
    from ptlint.api import lint_text

    codes = {f.code for p in one.files for f in lint_text(p.read_text(), str(p)).findings}
    assert len(codes) >= 3, codes


def test_measure_script_quick_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "measure.py"), "--quick", "--no-torchfix", "--repo",
         str(ROOT / "fixtures" / "demo"), "--work", str(tmp_path / "work")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "| Figure | Bar | Measured | Met |"
    for figure in ("Warm run / cold run", "Peak RSS", "One 500-line file", "Linearity", "--jobs 1 / --jobs 2"):
        assert any(line.startswith(f"| {figure}") for line in lines), figure


def test_warm_run_answers_from_the_cache_without_workers(tmp_path, monkeypatch):
    from ptlint import runner
    from ptlint.config import Overrides, Resolver

    files = []
    for i in range(6):
        path = tmp_path / f"m{i}.py"
        path.write_text("import torch\n\nx = torch.zeros(2).cuda()\n" if i % 2 else "import os\n")
        files.append(path)
    resolver = Resolver(Overrides(select=("ALL",)), None)
    mode = runner.Mode(cache_dir=str(tmp_path / "cache"))
    cold = runner.run_files(files, resolver, mode, 1)

    def no_pool(*args, **kwargs):
        raise AssertionError("a warm run started worker processes")

    import concurrent.futures

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    warm = runner.run_files(files, resolver, mode, 2)
    assert [(r.path, r.findings) for r in warm] == [(r.path, r.findings) for r in cold]
    assert sum(len(r.findings) for r in warm) >= 3
