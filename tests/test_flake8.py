"""The flake8 plugin, driven through the real flake8 (`python -m flake8 --select PTL`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("flake8") is None, reason="flake8 is not installed")

SOURCE = (
    "import torch\n"
    "\n"
    "model = torch.nn.Linear(2, 2)\n"
    "torch.save(model, 'm.pt')\n"
    "x = torch.zeros(1).cuda()  # noqa: PTL005\n"
    "y = torch.ones(1).cuda()\n"
)


def flake8(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # cwd is a temporary folder: a stale ptlint.egg-info in the checkout would hide the entry point.
    return subprocess.run([sys.executable, "-m", "flake8", *args], cwd=cwd, capture_output=True, text=True)


CONFIG = '[tool.ptlint]\nselect = ["PTL005", "PTL006"]\n'  # rules added later must not change the outputs


def test_flake8_select_ptl_runs_ptlint(tmp_path):
    (tmp_path / "train.py").write_text(SOURCE)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    proc = flake8(tmp_path, "--select", "PTL", "train.py")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        "train.py:4:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
        "train.py:6:5: PTL005 `.cuda()` hard-codes the CUDA device; use `.to(device)`\n"
    )


def test_flake8_honours_ptlint_configuration_and_its_own_selection(tmp_path):
    (tmp_path / "train.py").write_text(SOURCE)
    (tmp_path / "pyproject.toml").write_text(CONFIG + 'ignore = ["PTL006"]\n')
    proc = flake8(tmp_path, "--select", "PTL005", "train.py")
    assert proc.stdout == "train.py:6:5: PTL005 `.cuda()` hard-codes the CUDA device; use `.to(device)`\n"
    clean = flake8(tmp_path, "--select", "PTL", "--extend-ignore", "PTL005", "train.py")
    assert (clean.returncode, clean.stdout) == (0, "")


def test_flake8_leaves_syntax_errors_to_e999(tmp_path):
    (tmp_path / "broken.py").write_text("import torch\ndef f(:\n")
    proc = flake8(tmp_path, "--select", "PTL,E999", "broken.py")
    assert [line.split(" ")[1] for line in proc.stdout.splitlines()] == ["E999"]


def test_flake8_without_ptl_selected_does_not_run_ptlint(tmp_path):
    """Installing ptlint costs a flake8 run that selects no PTL code nothing: the plugin returns before it
    imports the linter (benchmarks/flake8_overhead.py measures the time)."""
    (tmp_path / "train.py").write_text(SOURCE + "z = 1  # " + "x" * 90 + "\n")
    script = (
        "import sys\n"
        "from flake8.main.cli import main\n"
        "rc = main(['--jobs', '1', *sys.argv[1:], 'train.py'])\n"
        "assert 'ptlint.flake8_plugin' in sys.modules\n"
        "print(rc, sorted(m for m in ('libcst', 'ptlint.api', 'ptlint.registry') if m in sys.modules))\n"
    )
    unselected = subprocess.run([sys.executable, "-c", script, "--select", "E501"], cwd=tmp_path, capture_output=True, text=True)
    assert unselected.stdout.splitlines()[-1] == "1 []", unselected.stderr
    assert unselected.stdout.splitlines()[0].startswith("train.py:7:80: E501")
    selected = subprocess.run([sys.executable, "-c", script, "--select", "E501,PTL006"], cwd=tmp_path, capture_output=True, text=True)
    assert selected.stdout.splitlines()[-1] == "1 ['libcst', 'ptlint.api', 'ptlint.registry']", selected.stderr
    assert [line.split(" ")[1] for line in selected.stdout.splitlines()[:-1]] == ["PTL006", "E501"]


def test_overhead_benchmark_runs_in_quick_mode():
    """benchmarks/flake8_overhead.py runs (its timings are printed, never asserted)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "flake8_overhead.py"), "--quick"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| without ptlint, `--select E501` | with ptlint, `--select E501` | overhead |" in proc.stdout
