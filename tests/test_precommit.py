"""The pre-commit hooks, driven by the real `pre-commit try-repo` in temporary git repositories.

try-repo installs the hook's environment (pip, from the local index) into a temporary store on every
call, so the test makes two calls only: one that runs both hooks on bad files, one on a clean project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PRE_COMMIT = shutil.which("pre-commit")
pytestmark = pytest.mark.skipif(PRE_COMMIT is None or shutil.which("git") is None, reason="needs pre-commit and git")

CONFIG = '[tool.ptlint]\nselect = ["PTL005", "PTL006"]\n'  # rules added later must not change the outputs
BAD = 'import torch\n\ndevice = torch.device("cuda" if torch.cuda.is_available() else "cpu")\nmodel = torch.nn.Linear(2, 2).cuda()\n'
FIXED = BAD.replace(".cuda()", ".to(device)")
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["import torch\n"]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": ["model = torch.nn.Linear(2, 2)\n", "torch.save(model, 'm.pt')\n"]},
    ],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}
CLEAN = "import torch\n\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model.state_dict(), 'm.pt')\n"


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    """A committed copy of the parts of the checkout that `pip install .` needs, plus the hooks file."""
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in ("src", "rules"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, repo / name)
    for scenario in ROOT.glob("fixtures/*/verify/*.py"):  # package data: ptlint.verify.bundled
        (repo / scenario.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scenario, repo / scenario.relative_to(ROOT))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hooks")
    return repo


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    return root


def try_repo(hook_repo: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "GIT_"))}
    env["PRE_COMMIT_HOME"] = str(cwd.parent / f"{cwd.name}-store")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(hook_repo), *args, "--all-files", "--color", "never"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )


def test_hooks_fail_on_bad_files_and_the_fix_hook_fixes(hook_repo, tmp_path):
    repo = project(tmp_path / "bad", {
        "pyproject.toml": CONFIG, "train.py": BAD, "notes.ipynb": json.dumps(NOTEBOOK, indent=1) + "\n",
    })
    proc = try_repo(hook_repo, repo)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "ptlint" + "." * 10 in out and "Failed" in out
    assert "notes.ipynb:cell 2:2:12: PTL006" in out
    assert "train.py:4:9: PTL005 [*]" in out
    fix_hook = out[out.index("- hook id: ptlint-fix"):]
    assert "- files were modified by this hook" in fix_hook
    assert (repo / "train.py").read_text() == FIXED


def test_hook_passes_on_a_clean_project_and_honours_excludes(hook_repo, tmp_path):
    repo = project(tmp_path / "clean", {"pyproject.toml": CONFIG, "train.py": CLEAN, "build/generated.py": BAD})
    proc = try_repo(hook_repo, repo, "ptlint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout
    assert (repo / "build/generated.py").read_text() == BAD
