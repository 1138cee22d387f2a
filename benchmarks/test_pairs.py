"""pytest-benchmark over every verify scenario's bad and fixed variants.

    pytest benchmarks/test_pairs.py --benchmark-only              # CPU, or CUDA when there is one
    PTLINT_BENCH_DEVICE=cpu pytest benchmarks/test_pairs.py --benchmark-only --benchmark-json out.json
    PTLINT_BENCH_THREADS=4 ...                                     # intra-op threads (default 1)

The fixed variant is made by ptlint's own fixer, as in `ptlint verify`. A variant that raises on this
device (the bad PTL002, the bad PTL005 without CUDA, ...) is skipped: there is nothing to time.
Results on a GPU go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ptlint.verify.harness import needs_skip  # noqa: E402
from ptlint.verify.scenario import builtin, default_fixer  # noqa: E402

DEVICE = os.environ.get("PTLINT_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
torch.set_num_threads(int(os.environ.get("PTLINT_BENCH_THREADS", "1")))  # as in `ptlint verify`
SCENARIOS, _ = builtin()
PAIRS = [(s, kind) for s in SCENARIOS for kind in ("bad", "fixed")]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{s.name}-{k}" for s, k in PAIRS])
def test_pair(pair, benchmark, tmp_path):
    scenario, kind = pair
    env = {"gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    reason = needs_skip(scenario, DEVICE, env)
    if reason:
        pytest.skip(reason)
    text = scenario.path.read_text()
    if kind == "fixed":
        text = default_fixer(text, str(scenario.path), scenario.rules)
    path = tmp_path / scenario.path.name
    path.write_text(text)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        module = _load(path, f"ptlint_bench_{scenario.name.replace('/', '_')}_{kind}")
        try:
            module.run(DEVICE)
        except Exception as exc:
            pytest.skip(f"the {kind} variant raises on {DEVICE}: {type(exc).__name__}")
        benchmark.group = f"{scenario.name} ({DEVICE})"
        benchmark(module.run, DEVICE)
    finally:
        os.chdir(old)
