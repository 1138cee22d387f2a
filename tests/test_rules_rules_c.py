"""PTL016, PTL017, PTL023, PTL024 beyond their fixtures: launcher files, options, packages, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, check_concise

from ptlint.api import lint_text
from ptlint.registry import all_rules

RULES = {r.code: r for r in all_rules()}


def _found(text: str, path: str, code: str) -> list[tuple[int, int, str]]:
    result = lint_text(text, path, [RULES[code]])
    assert not result.errors
    return [(f.start.line, f.start.column, f.code) for f in result.findings]


# --- PTL017: the launcher half in shell scripts, Makefiles, YAML and Markdown ---

LAUNCH_SH = """#!/bin/bash
set -e
python -m torch.distributed.launch --nproc_per_node=4 train.py --lr 0.1
# python -m torch.distributed.launch --nproc_per_node=4 old.py
python3 -m torch.distributed.launch --use_env --nproc_per_node 2 train.py  # noqa: PTL017
"""


def test_launcher_in_shell_script_is_reported_and_fixed(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text(LAUNCH_SH)
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL017", ".")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "run.sh:3:1: PTL017 `python -m torch.distributed.launch` is deprecated; use `torchrun`"
    )
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL017", "--fix", "--unsafe-fixes", ".")
    assert result.exit_code == 0
    assert (tmp_path / "run.sh").read_text() == LAUNCH_SH.replace(
        "python -m torch.distributed.launch --nproc_per_node=4 train.py", "torchrun --nproc_per_node=4 train.py"
    )
    again = check_concise(tmp_path, "--no-cache", "--select", "PTL017", "--fix", "--unsafe-fixes", ".")
    assert again.exit_code == 0


def test_launcher_safe_fix_alone_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text(LAUNCH_SH)
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL017", "--fix", ".")
    assert result.exit_code == 1
    assert (tmp_path / "run.sh").read_text() == LAUNCH_SH


def test_launcher_markdown_only_in_code_blocks_and_use_env_has_no_fix() -> None:
    text = (
        "# Training\n"
        "Do not use `python -m torch.distributed.launch` any more.\n"
        "```bash\n"
        "OMP_NUM_THREADS=1 python -m torch.distributed.launch --nproc_per_node=8 main.py \\\n"
        "    --use_env --epochs 10\n"
        "```\n"
        "    python -m torch.distributed.launch --nproc_per_node=2 main.py\n"
    )
    result = lint_text(text, "README.md", [RULES["PTL017"]], fix=True, unsafe=True)
    assert [(f.start.line, f.start.column, f.fix is None) for f in result.findings] == [(4, 19, True)]
    assert "no fix: `torchrun` has no `--use_env` option" in result.findings[0].message
    assert result.text == text.replace(
        "    python -m torch.distributed.launch --nproc_per_node=2", "    torchrun --nproc_per_node=2"
    )


def test_launcher_in_makefile_yaml_and_dockerfile() -> None:
    make = "train:\n\tpython -m torch.distributed.launch --nproc_per_node=2 train.py\n"
    yaml = "script:\n  - python -m torch.distributed.launch --nproc_per_node=2 train.py\n"
    docker = "FROM pytorch\nCMD python -m torch.distributed.launch train.py\n# RUN python -m torch.distributed.launch x.py\n"
    assert _found(make, "Makefile", "PTL017") == [(2, 2, "PTL017")]
    assert _found(yaml, "ci/train.yml", "PTL017") == [(2, 5, "PTL017")]
    assert _found(docker, "Dockerfile", "PTL017") == [(2, 5, "PTL017")]


def test_text_files_are_discovered_only_for_rules_that_want_them(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text(LAUNCH_SH)
    (tmp_path / "notes.txt").write_text("python -m torch.distributed.launch\n")
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL005", ".")
    # No rule selected here reads shell scripts, so nothing is discovered (issue 19: say so).
    assert (result.exit_code, result.output) == (0, "ptlint: warning: No Python files found under the given path(s)\n")
    # An explicitly named shell script is never parsed as Python (no PTL000).
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL000,PTL005", "run.sh")
    assert (result.exit_code, result.output) == (0, "")


def test_python_half_withholds_fix_in_compat_code() -> None:
    src = (FIXTURES / "PTL017" / "positive_compat_read.py").read_text()
    result = lint_text(src, "x.py", [RULES["PTL017"]])
    assert result.findings[0].fix is None
    assert result.findings[0].message.endswith("(no fix: inside a `try`/`except AttributeError` compatibility block)")


# --- PTL023: options, packages ---

UNSEEDED = """import torch

if __name__ == "__main__":
    w = torch.randn(3, requires_grad=True)
    fix_randomness()
    w.sum().backward()
"""


def test_unseeded_entrypoint_seeding_functions_option(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(UNSEEDED)
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL023", ".")
    assert result.output.startswith("train.py:3:4: PTL023 ")
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint.rules.PTL023]\nseeding-functions = ["fix_randomness"]\n')
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL023", ".")
    assert (result.exit_code, result.output) == (0, "")


def test_unseeded_entrypoint_library_module_demo_is_silent(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "unet.py").write_text(UNSEEDED)
    (package / "train_unet.py").write_text(UNSEEDED)
    result = check_concise(tmp_path, "--no-cache", "--select", "PTL023", ".")
    assert [line.split(" ")[0] for line in result.output.splitlines()] == ["pkg/train_unet.py:3:4:"]


# --- determinism of the four rules across hash seeds ---


def test_same_findings_under_any_hash_seed() -> None:
    folders = [str(FIXTURES / c) for c in ("PTL016", "PTL017", "PTL023", "PTL024")]
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-m", "ptlint", "check", "--no-cache", "--jobs", "1", "--output-format", "concise",
             "--select", "PTL016,PTL017,PTL023,PTL024", *folders],
            capture_output=True, text=True, env=env, timeout=120,
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1
