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
    for scenario in ROOT.glob("fixtures/*/verify/*.py"):  # package data: ptlint.verify.bundled
        target = tree / scenario.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scenario, target)
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


def test_installed_ptlint_ships_the_verify_scenarios(installed, tmp_path):
    """`ptlint verify` outside a checkout finds a scenario for every fixable rule (installed as package data)."""
    script = (
        "from ptlint.verify.scenario import FIXTURES, builtin\n"
        "scenarios, missing = builtin()\n"
        "print(FIXTURES)\n"
        "print(len(scenarios), missing)\n"
    )
    proc = subprocess.run([str(installed / "bin" / "python"), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    where, counts = proc.stdout.splitlines()
    assert where.endswith("site-packages/ptlint/verify/bundled")
    assert counts == f"{len(list(ROOT.glob('fixtures/*/verify/*.py')))} []"
