"""What a newcomer runs into first (issue 19): .gitignore, empty folders, stdin, `--select ""`,
unknown noqa codes, configuration errors, `--statistics` and `--help`. Exit codes through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from ptlint import gitignore

BAD = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn

    model = nn.Linear(4, 2)
    torch.save(model, "model.pt")
    """
)
MESSAGE = "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
NO_FILES = "ptlint: warning: No Python files found under the given path(s)\n"


def check(cwd: Path, *args: str, stdin: str | None = None):
    return run_cli(["check", "--no-cache", "--select", "PTL006", *args], cwd, stdin=stdin)


def concise(cwd: Path, *args: str) -> list[str]:
    result = check(cwd, "--output-format", "concise", "--quiet", *args)
    return [line.split(":")[0] for line in result.stdout.splitlines()]


# --- .gitignore ---------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A git repository (a `.git` folder is enough) with ignored and kept files, and its own HOME."""
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    root = tmp_path / "repo"
    (root / ".git" / "info").mkdir(parents=True)
    for name in ("a.py", "gen/b.py", "sub/keep/c.py", "sub/out/d.py", "data/e.py", "data/f.py", "x_tmp.py", "nb/n.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(BAD)
    (root / ".gitignore").write_text("# generated code\ngen/\n*_tmp.py\n/nb/\n")
    (root / "sub" / ".gitignore").write_text("out\n!keep/\n")
    (root / ".git" / "info" / "exclude").write_text("data/e.py\n")
    (home / ".config" / "git" / "ignore").write_text("f.py\n")
    return root


def test_gitignore_info_exclude_and_global_excludes_are_respected(repo):
    assert concise(repo) == ["a.py", "sub/keep/c.py"]
    assert concise(repo / "sub") == ["keep/c.py"]


def test_no_respect_gitignore_checks_everything(repo):
    everything = ["a.py", "data/e.py", "data/f.py", "gen/b.py", "nb/n.py", "sub/keep/c.py", "sub/out/d.py", "x_tmp.py"]
    assert concise(repo, "--no-respect-gitignore") == everything
    (repo / "pyproject.toml").write_text("[tool.ptlint]\nrespect-gitignore = false\n")
    assert concise(repo) == everything
    assert concise(repo, "--respect-gitignore") == ["a.py", "sub/keep/c.py"]


def test_core_excludesfile_of_the_git_config_wins(repo, tmp_path):
    (tmp_path / "home" / ".gitconfig").write_text(f"[user]\n\tname = x\n[core]\n\texcludesFile = {tmp_path}/mine\n")
    (tmp_path / "mine").write_text("a.py\n")
    assert concise(repo) == ["data/f.py", "sub/keep/c.py"]


def test_named_ignored_files_are_checked_unless_force_exclude(repo):
    assert concise(repo, "gen/b.py", "x_tmp.py") == ["gen/b.py", "x_tmp.py"]
    result = check(repo, "--output-format", "concise", "--force-exclude", "gen/b.py", "x_tmp.py")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", NO_FILES)


def test_gitignore_outside_a_repository_still_counts_below_the_walked_folder(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "b.py").write_text(BAD)
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / ".gitignore").write_text("build/\n")
    assert concise(tmp_path) == ["a.py"]


@pytest.mark.parametrize(
    ("pattern", "ignored", "kept"),
    [
        ("*.py", ["a.py", "x/y/b.py"], ["a.pyc"]),
        ("/a.py", ["a.py"], ["x/a.py"]),
        ("x/*.py", ["x/b.py"], ["x/y/b.py", "b.py"]),
        ("**/y/*.py", ["y/b.py", "x/y/b.py"], ["x/b.py"]),
        ("x/**/b.py", ["x/b.py", "x/y/b.py"], ["b.py"]),
        ("x/**", ["x/b.py", "x/y/b.py"], ["b.py"]),
        ("b[0-9].py", ["b1.py"], ["bx.py"]),
        ("b?.py", ["b1.py"], ["b.py", "b12.py"]),
        ("\\#a.py", ["#a.py"], ["a.py"]),
    ],
)
def test_gitignore_patterns(tmp_path, pattern, ignored, kept):
    (tmp_path / ".gitignore").write_text(pattern + "\n")
    matcher = gitignore.Matcher(tmp_path)
    assert [p for p in ignored if not matcher.ignored_with_parents(tmp_path / p, False)] == []
    assert [p for p in kept if matcher.ignored_with_parents(tmp_path / p, False)] == []


def test_gitignore_negation_and_folder_only_patterns(tmp_path):
    (tmp_path / ".gitignore").write_text("*.py\n!keep.py\nlogs/\n")
    matcher = gitignore.Matcher(tmp_path)
    assert not matcher.ignored(tmp_path / "keep.py", False)
    assert matcher.ignored(tmp_path / "logs", True) and not matcher.ignored(tmp_path / "logs", False)


# --- no files -----------------------------------------------------------------------------------


def test_an_empty_folder_warns_instead_of_passing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no python here\n")
    result = check(tmp_path, "empty")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", NO_FILES)
    sarif = check(tmp_path, "empty", "--output-format", "sarif")  # machine formats still get a report
    assert sarif.exit_code == 0 and '"results": []' in sarif.stdout and sarif.stderr == NO_FILES


# --- stdin --------------------------------------------------------------------------------------


def test_stdin_filename_alone_reads_stdin(tmp_path):
    (tmp_path / "other.py").write_text(BAD)  # must not be checked
    result = check(tmp_path, "--stdin-filename", "train.py", "--output-format", "concise", stdin=BAD)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"train.py:5:12: PTL006 {MESSAGE}"
    assert "other.py" not in result.stdout


def test_stdin_filename_with_paths_is_an_error(tmp_path):
    (tmp_path / "other.py").write_text(BAD)
    result = check(tmp_path, "--stdin-filename", "train.py", "other.py", stdin=BAD)
    assert result.exit_code == 2
    assert "--stdin-filename" in result.stderr


def test_fix_on_stdin_prints_the_fixed_source_and_reports_the_rest_on_stderr(tmp_path):
    source = BAD + 'torch.save(model, "again.pt")\ny = 1  # noqa: PTL006\n'
    result = run_cli(
        ["check", "--no-cache", "--select", "PTL006,PTL100", "--stdin-filename", "train.py", "--fix",
         "--output-format", "concise"],
        tmp_path, stdin=source,
    )
    assert result.exit_code == 1
    assert result.stdout == BAD + 'torch.save(model, "again.pt")\ny = 1\n'  # the safe PTL100 fix applied
    assert result.stderr == (
        f"train.py:5:12: PTL006 {MESSAGE}\n"
        f"train.py:6:12: PTL006 {MESSAGE}\n"
        "Found 3 findings (1 fixed, 2 remaining).\n"
        "2 more with `--fix --unsafe-fixes`.\n"
    )
    assert not (tmp_path / "train.py").exists()


def test_fix_on_stdin_through_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ptlint", "check", "--no-cache", "--select", "PTL006", "--fix", "--unsafe-fixes",
         "--stdin-filename", "t.py"],
        input=BAD, cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert (proc.returncode, proc.stderr) == (0, "Found 1 finding (1 fixed, 0 remaining).\n")
    assert proc.stdout == BAD.replace("torch.save(model,", "torch.save(model.state_dict(),")


# --- selection, noqa and configuration errors ---------------------------------------------------


@pytest.mark.parametrize("value", ["", " , "])
def test_empty_select_is_an_error(tmp_path, value):
    (tmp_path / "a.py").write_text(BAD)
    result = run_cli(["check", "--no-cache", "--select", value], tmp_path)
    assert result.exit_code == 2
    assert "ptlint: error: --select selects no rule" in result.stderr


def test_unknown_noqa_codes_warn(tmp_path):
    (tmp_path / "a.py").write_text(
        "import torch\nx = 1  # noqa: PTL999, E501\ny = 2  # noqa: F401,ptl998\n# ptlint: noqa: PTL997\n"
    )
    result = run_cli(["check", "--no-cache", "a.py"], tmp_path)
    assert result.exit_code == 0
    hint = "in a `# noqa` comment (`ptlint rule --all` lists the codes)"
    assert result.stderr == (
        f"ptlint: warning: a.py:2: unknown rule code PTL999 {hint}\n"
        f"ptlint: warning: a.py:3: unknown rule code PTL998 {hint}\n"
        f"ptlint: warning: a.py:4: unknown rule code PTL997 {hint}\n"
    )


def test_unknown_noqa_code_in_a_notebook_names_the_cell(tmp_path):
    import json

    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# t"]},
             {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
              "source": ["import torch\n", "x = 1  # noqa: PTL999\n"]}]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = run_cli(["check", "--no-cache", "nb.ipynb"], tmp_path)
    assert result.stderr.startswith("ptlint: warning: nb.ipynb:cell 2:2: unknown rule code PTL999")


def test_unknown_code_in_per_file_ignores_names_the_config_file(tmp_path):
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint.per-file-ignores]\n"scripts/*.py" = ["PTL999"]\n')
    result = run_cli(["check", "--no-cache"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ptlint: error: {tmp_path / 'pyproject.toml'}: `per-file-ignores` entry 'scripts/*.py': ")
    assert "unknown rule selector 'PTL999'" in result.stderr


@pytest.mark.parametrize(
    ("value", "wanted"),
    [("'four'", "an integer"), ("true", "an integer"), ("4.5", "an integer")],
)
def test_option_type_errors_read_well(tmp_path, value, wanted):
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "pyproject.toml").write_text(f"[tool.ptlint.rules.PTL013]\nnum-workers = {value}\n")
    result = run_cli(["check", "--no-cache"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"option 'num-workers' of PTL013 must be {wanted}\n")
    assert "a int" not in result.stderr


def test_option_type_names():
    from ptlint.config import _type_name

    assert [_type_name(v) for v in (3, True, 1.5, "s", [], {})] == [
        "an integer", "true or false", "a number", "a string", "a list", "a table"
    ]


# --- --statistics and --help --------------------------------------------------------------------


def test_statistics_columns_are_aligned_and_the_markers_explained(tmp_path):
    (tmp_path / "a.py").write_text(
        BAD + "x = torch.zeros(2).cuda()\ny = torch.ones(2).cuda()\n" + "".join(f"z{i} = 1  # noqa: PTL006\n" for i in range(10))
    )
    result = run_cli(["check", "--no-cache", "--select", "PTL005,PTL006,PTL100", "--statistics"], tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == "10  PTL100  [*]  warning  unused-noqa"
    assert [line.split()[1] for line in lines[:3]] == ["PTL100", "PTL005", "PTL006"]
    assert len({line.index("PTL") for line in lines[:3]}) == 1  # aligned columns
    assert len({line.index("[") for line in lines[:3]}) == 1
    assert lines[3] == "[*] every finding of the rule is fixable with `--fix`, [-] some are, [ ] none are"


def test_help_explains_exit_codes_and_markers(tmp_path):
    text = run_cli(["check", "--help"], tmp_path).stdout
    for needle in ("Exit codes:", "  0  ", "  1  ", "  2  ", "[*]", "[-]", "--fail-on", "--no-respect-gitignore"):
        assert needle in text, needle
