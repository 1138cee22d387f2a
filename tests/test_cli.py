"""The `ptlint check` command: exit codes, formats, stdin, --diff, --fix, selection and suppression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_cli


BAD = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn

    model = nn.Linear(4, 2)
    torch.save(model, "model.pt")
    """
)
CLEAN = textwrap.dedent(
    """\
    import torch

    model = torch.nn.Linear(4, 2)
    torch.save(model.state_dict(), "model.pt")
    """
)
FIXED = BAD.replace('torch.save(model, "model.pt")', 'torch.save(model.state_dict(), "model.pt")')


run = run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_concise_output_and_exit_1(project):
    result = run(["check", "--output-format", "concise"], project)
    assert result.exit_code == 1
    assert result.output == (
        "bad.py:5:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
        "Found 1 finding.\n"
        "1 more with `--fix --unsafe-fixes`.\n"
    )


def test_concise_marks_fixable_with_unsafe_fixes(project):
    result = run(["check", "--output-format", "concise", "--unsafe-fixes"], project)
    assert result.output.splitlines()[0] == (
        "bad.py:5:12: PTL006 [*] `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    )
    assert result.output.splitlines()[-1] == "[*] 1 fixable with the `--fix` option."


def test_full_output(project):
    result = run(["check", "bad.py"], project)
    assert result.exit_code == 1
    assert result.output == textwrap.dedent(
        """\
        bad.py:5:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead
          |
        4 | model = nn.Linear(4, 2)
        5 | torch.save(model, "model.pt")
          |            ^^^^^ PTL006 (warning)
        6 |
          |
          = help (unsafe fix): Save the module's `state_dict()`

        Found 1 finding.
        1 more with `--fix --unsafe-fixes`.
        """
    )


def test_json_output(project):
    result = run(["check", "bad.py", "--output-format", "json"], project)
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data == [
        {
            "code": "PTL006",
            "name": "save-whole-model",
            "message": "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead",
            "filename": str(project / "bad.py"),
            "location": {"row": 5, "column": 12},
            "end_location": {"row": 5, "column": 17},
            "fix": {
                "applicability": "unsafe",
                "message": "Save the module's `state_dict()`",
                "edits": [
                    {
                        "content": 'torch.save(model.state_dict(), "model.pt")\n',
                        "location": {"row": 5, "column": 1},
                        "end_location": {"row": 6, "column": 1},
                    }
                ],
            },
            "noqa_row": 5,
            "cell": None,
            "url": "https://github.com/ptlint/ptlint/blob/main/docs/rules.md#ptl006-save-whole-model",
            "severity": "warning",
        }
    ]


def test_clean_exit_0(project):
    result = run(["check", "clean.py"], project)
    assert result.exit_code == 0
    assert result.output == "All checks passed!\n"


def test_exit_zero(project):
    assert run(["check", "--exit-zero"], project).exit_code == 0


def test_missing_path_exit_2(project):
    result = run(["check", "clean.py", "nope.py"], project)
    assert result.exit_code == 2
    assert "ptlint: error: nope.py: no such file or directory" in result.output


def test_unknown_selector_exit_2(project):
    result = run(["check", "--select", "PTL999"], project)
    assert result.exit_code == 2
    assert "unknown rule selector 'PTL999'" in result.output


def test_syntax_error_is_a_finding_and_others_still_run(project):
    (project / "broken.py").write_text("def f(:\n    pass\n")
    result = run(["check", "--output-format", "concise"], project)
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "bad.py:5:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead",
        "broken.py:1:7: PTL000 SyntaxError: invalid syntax",
    ]


def test_fix_safe_only_leaves_unsafe(project):
    result = run(["check", "--fix"], project)
    assert result.exit_code == 1
    assert (project / "bad.py").read_text() == BAD


def test_fix_unsafe_rewrites_and_exits_0(project):
    result = run(["check", "--fix", "--unsafe-fixes", "--output-format", "concise"], project)
    assert result.exit_code == 0, result.output
    assert result.output == "Found 1 finding (1 fixed, 0 remaining).\n"
    assert (project / "bad.py").read_text() == FIXED
    again = run(["check", "--fix", "--unsafe-fixes"], project)
    assert again.exit_code == 0
    assert (project / "bad.py").read_text() == FIXED


def test_unsafe_fixes_from_config(project):
    (project / "pyproject.toml").write_text("[tool.ptlint]\nunsafe-fixes = true\n")
    assert run(["check", "--fix"], project).exit_code == 0
    assert (project / "bad.py").read_text() == FIXED


def test_diff_writes_nothing_and_exits_1(project):
    result = run(["check", "--diff", "--unsafe-fixes"], project)
    assert result.exit_code == 1
    assert result.output == (
        "--- a/bad.py\n+++ b/bad.py\n@@ -2,4 +2,4 @@\n import torch.nn as nn\n \n"
        " model = nn.Linear(4, 2)\n-torch.save(model, \"model.pt\")\n"
        "+torch.save(model.state_dict(), \"model.pt\")\n"
    )
    assert (project / "bad.py").read_text() == BAD
    clean = run(["check", "--diff", "clean.py"], project)
    assert clean.exit_code == 0 and clean.output == ""


def test_stdin(project):
    result = run(["check", "-", "--stdin-filename", "x.py", "--output-format", "concise"], project, stdin=BAD)
    assert result.exit_code == 1
    assert result.output.startswith("x.py:5:12: PTL006 ")


def test_stdin_fix_prints_fixed_source(project):
    result = run(["check", "-", "--fix", "--unsafe-fixes"], project, stdin=BAD)
    assert result.exit_code == 0
    assert result.stdout == FIXED
    assert result.stderr == "Found 1 finding (1 fixed, 0 remaining).\n"


@pytest.mark.parametrize("selector", ["PTL006", "save-whole-model", "PTL0", "ALL", "ptl006"])
def test_select_forms(project, selector):
    result = run(["check", "bad.py", "--select", selector, "--output-format", "concise"], project)
    assert result.exit_code == 1


@pytest.mark.parametrize("selector", ["PTL006", "save-whole-model", "PTL00"])
def test_ignore_forms(project, selector):
    assert run(["check", "bad.py", "--ignore", selector], project).exit_code == 0


def test_extend_select_on_top_of_config(project):
    (project / "pyproject.toml").write_text('[tool.ptlint]\nselect = ["PTL000"]\n')
    assert run(["check", "bad.py"], project).exit_code == 0
    assert run(["check", "bad.py", "--extend-select", "PTL006"], project).exit_code == 1


def test_python_dash_m(project):
    proc = subprocess.run(
        [sys.executable, "-m", "ptlint", "check", "bad.py", "--output-format", "concise", "--jobs", "1"],
        cwd=project, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("bad.py:5:12: PTL006")


def test_parallel_output_is_sorted(tmp_path):
    for i in range(12):
        (tmp_path / f"m{i:02d}.py").write_text(BAD)
    result = run(["check", "--jobs", "2", "--output-format", "concise", "--quiet"], tmp_path)
    lines = result.output.splitlines()
    assert lines == [
        f"m{i:02d}.py:5:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
        for i in range(12)
    ]


def test_exclude_skips_folders(project):
    venv = project / ".venv"
    venv.mkdir()
    (venv / "lib.py").write_text(BAD)
    (project / "gen").mkdir()
    (project / "gen" / "out.py").write_text(BAD)
    (project / "pyproject.toml").write_text('[tool.ptlint]\nextend-exclude = ["gen"]\n')
    result = run(["check", "--output-format", "concise", "--quiet"], project)
    assert [line.split(":")[0] for line in result.output.splitlines()] == ["bad.py"]


def test_torch_is_never_imported_by_a_check():
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ptlint.cli import main\n"
        "r = CliRunner().invoke(main, ['check', 'fixtures', '--jobs', '1', '--unsafe-fixes', '--diff'])\n"
        "assert r.exit_code in (0, 1), r.output\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cache_is_used_and_keyed_on_content(project, monkeypatch):
    from ptlint import runner

    first = run(["check", "--output-format", "concise"], project)
    assert (project / ".ptlint_cache" / "CACHEDIR.TAG").is_file()
    calls = []
    real = runner.check_text
    monkeypatch.setattr(runner, "check_text", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    second = run(["check", "--output-format", "concise", "--jobs", "1"], project)
    assert second.output == first.output and calls == []
    (project / "bad.py").write_text(BAD + "\n# edited\n")
    third = run(["check", "--output-format", "concise", "--jobs", "1"], project)
    assert calls == ["bad.py"] and third.output == first.output
    run(["check", "--no-cache", "--jobs", "1"], project)
    assert calls == ["bad.py", "bad.py", "clean.py"]
    assert run(["clean"], project).output == "Removed .ptlint_cache\n"
    assert not (project / ".ptlint_cache").exists()
