"""A plain, non-editable `pip install .` into a fresh venv gives a working `ptlint` with every rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from conftest import ROOT

from ptlint.registry import all_rules


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("install")
    tree = base / "src-tree"
    for name in ("src", "rules", "pyproject.toml", "README.md"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy(source, tree / name)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(tree)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip install failed:\n{proc.stdout}\n{proc.stderr}")
    return env_dir


def test_installed_ptlint_has_every_rule(installed, tmp_path):
    exe = installed / "bin" / "ptlint"
    proc = subprocess.run([str(exe), "rule", "--all", "--output-format", "json"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["code"] for r in json.loads(proc.stdout)] == [r.code for r in all_rules()]


def test_installed_ptlint_checks_a_file(installed, tmp_path):
    (tmp_path / "a.py").write_text('import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, "m.pt")\n')
    proc = subprocess.run(
        [str(installed / "bin" / "ptlint"), "check", "a.py", "--output-format", "concise", "--quiet"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("a.py:3:12: PTL006 ")


def test_installed_package_is_not_the_checkout(installed, tmp_path):
    proc = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import ptlint.rules, ptlint; print(ptlint.rules.__file__)"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "site-packages" in proc.stdout and str(ROOT) not in proc.stdout
