"""PTL100 unused-noqa (findings, precision, its fix) and `ptlint check --add-noqa`."""

from __future__ import annotations

import codecs
import json

import pytest
from click.testing import CliRunner
from conftest import run_cli

from ptlint.add_noqa import add_to_text
from ptlint.api import lint_text
from ptlint.cli import main
from ptlint.registry import all_rules, by_code_or_name

HEAD = "import torch\nmodel = torch.nn.Linear(2, 2)\n"
SAVE = 'torch.save(model, "m.pt")'


def found(source: str, rules: list[str] | None = None) -> list[tuple[int, int, str, str]]:
    chosen = [r for r in all_rules() if rules is None or r.code in rules]
    return [(f.start.line, f.start.column, f.code, f.message) for f in lint_text(source, rules=chosen).findings]


def fixed(source: str) -> str:
    result = lint_text(source, fix=True)
    assert not result.errors
    again = lint_text(result.text, fix=True)
    assert again.text == result.text
    return result.text


run = run_cli


# --- PTL100 findings ------------------------------------------------------------------------


def test_stale_code_is_reported_and_used_code_is_not():
    source = HEAD + 'torch.save(model.state_dict(), "m.pt")  # noqa: PTL006\n' + SAVE + "  # noqa: PTL006\n"
    assert found(source) == [(3, 41, "PTL100", "`noqa` code PTL006 suppresses nothing on this line")]


def test_several_stale_codes_in_one_finding():
    source = HEAD + "x = 1  # noqa: PTL005, PTL001\n"
    assert found(source) == [(3, 8, "PTL100", "`noqa` codes PTL005, PTL001 suppress nothing on this line")]


@pytest.mark.parametrize(
    "line",
    [
        "x = 1  # noqa",  # bare noqa: may be for another tool
        "x = 1  # noqa: E501, F401",  # other tools' codes
        "x = 1  # noqa: PTL999",  # not a ptlint rule
        's = "# noqa: PTL006"',  # a string, not a comment
        's = "# noqa: E1"  # noqa: PTL006',  # the directive that counts is the one in the string
        "x = 1  # noqa: PTL000",  # syntax errors are never suppressed
        "x = 1  # noqa: PTL006, PTL100",  # PTL100 in the list keeps the rest
    ],
)
def test_never_reported(line):
    assert found(HEAD + line + "\n") == []


def test_codes_of_disabled_rules_are_not_reported():
    source = HEAD + "x = 1  # noqa: PTL006\n"
    assert found(source, ["PTL001", "PTL100"]) == []
    assert found(source, ["PTL006", "PTL100"]) == [(3, 8, "PTL100", "`noqa` code PTL006 suppresses nothing on this line")]


def test_file_level_noqa_turns_it_off_or_covers_codes():
    assert found("# ptlint: noqa: PTL100\n" + HEAD + "x = 1  # noqa: PTL006\n") == []
    assert found("# ptlint: noqa: PTL006\n" + HEAD + "x = 1  # noqa: PTL006\n") == []
    assert found("# ptlint: noqa\n" + HEAD + "x = 1  # noqa: PTL006\n") == []


def test_noqa_on_either_line_of_a_multiline_statement_counts_as_used():
    source = HEAD + 'torch.save(  # noqa: PTL006\n    model,\n    "m.pt",\n)  # noqa: PTL006\n'
    assert found(source) == []
    middle = HEAD + 'torch.save(\n    model,  # noqa: PTL006\n    "m.pt",\n)\n'
    assert [f[:3] for f in found(middle)] == [(4, 5, "PTL006"), (4, 13, "PTL100")]


def test_ptl100_is_a_known_rule():
    rule = by_code_or_name("unused-noqa")
    assert rule is not None and rule.code == "PTL100" and rule.fix_safety.value == "safe"
    assert list(rule.docs()) == ["What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "References"]
    result = CliRunner().invoke(main, ["rule", "PTL100"])
    assert result.exit_code == 0 and result.output.startswith("# PTL100 unused-noqa\n\nSeverity: warning. Fix: safe.\n")


def test_select_and_ignore(tmp_path):
    (tmp_path / "a.py").write_text("x = 1  # noqa: PTL006\n")
    shown = "a.py:1:8: PTL100 [*] `noqa` code PTL006 suppresses nothing on this line\n"
    assert run(["check", "--no-cache", "-q", "--output-format", "concise"], tmp_path).stdout == shown
    ignored = run(["check", "--no-cache", "-q", "--output-format", "concise", "--ignore", "unused-noqa"], tmp_path)
    assert (ignored.exit_code, ignored.stdout) == (0, "")
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint.per-file-ignores]\n"a.py" = ["PTL006"]\n')
    assert run(["check", "--no-cache", "-q"], tmp_path).exit_code == 0


# --- PTL100 fix -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x = 1  # noqa: PTL006", "x = 1"),
        ("x = 1  # noqa: PTL001, PTL006, E501", "x = 1  # noqa: E501"),
        ("x = 1  #noqa:PTL006 E501", "x = 1  #noqa:E501"),
        ("x = 1  # type: ignore  # noqa: PTL006", "x = 1  # type: ignore"),
        ("x = 1  # noqa: PTL006 legacy reasons", "x = 1  # legacy reasons"),
        ("x = 1  # noqa: PTL006  # keep", "x = 1  # keep"),
        ("x = 1  # NOQA: PTL100", "x = 1"),
    ],
)
def test_fix_removes_only_the_stale_codes(line, expected):
    assert fixed(HEAD + line + "\n") == HEAD + expected + "\n"


def test_fix_removes_an_own_line_comment_with_its_line():
    source = HEAD + "def f():\n    # noqa: PTL006\n    return 1\n    # noqa: PTL001\n"
    assert fixed(source) == HEAD + "def f():\n    return 1\n"


def test_fix_keeps_crlf_and_a_used_code():
    source = (HEAD + SAVE + "  # noqa: PTL001, PTL006\r\n").replace("\n", "\r\n").replace("\r\r", "\r")
    assert fixed(source) == source.replace("PTL001, ", "")


# --- --add-noqa ----------------------------------------------------------------------------------


def add(source: str, rules: tuple[str, ...] = ("PTL006",)) -> tuple[str, int, int]:
    chosen = [r for r in all_rules() if r.code in rules]
    return add_to_text(source, lint_text(source, rules=chosen).findings)


def test_add_noqa_appends_and_merges():
    source = HEAD + SAVE + "\n" + SAVE + "  # noqa: PTL001\n" + SAVE + "  # keep\n" + SAVE + "  #noqa:E501 X1\n"
    text, added, skipped = add(source)
    assert (added, skipped) == (4, 0)
    assert text == HEAD + (
        SAVE + "  # noqa: PTL006\n"
        + SAVE + "  # noqa: PTL001, PTL006\n"
        + SAVE + "  # keep  # noqa: PTL006\n"
        + SAVE + "  #noqa:E501 X1 PTL006\n"
    )
    assert lint_text(text, rules=[by_code_or_name("PTL006"), by_code_or_name("PTL100")]).findings == []


def test_add_noqa_avoids_lines_that_end_inside_a_string_or_continue():
    source = (
        HEAD
        + 'torch.save(model, """a\nb.pt""")\n'
        + 'torch.save(model, \\\n    "c.pt")\n'
        + 'torch.save(\n    model, "d.pt")  # noqa: PTL001\n'
        + 'torch.save(\n    model, f"""{1}\n""")\n'
    )
    text, added, skipped = add(source)
    assert (added, skipped) == (4, 0)
    assert text == (
        HEAD
        + 'torch.save(model, """a\nb.pt""")  # noqa: PTL006\n'
        + 'torch.save(model, \\\n    "c.pt")  # noqa: PTL006\n'
        + 'torch.save(\n    model, "d.pt")  # noqa: PTL001, PTL006\n'
        + 'torch.save(  # noqa: PTL006\n    model, f"""{1}\n""")\n'
    )
    assert lint_text(text, rules=[by_code_or_name("PTL006"), by_code_or_name("PTL100")]).findings == []


def test_add_noqa_skips_a_line_whose_string_holds_a_directive():
    source = HEAD + 's = "# noqa: X1"; ' + SAVE + "\n"
    assert add(source) == (source, 0, 1)


def test_add_noqa_cli_keeps_bytes_and_reports(tmp_path):
    latin = ("# -*- coding: latin-1 -*-\n" + HEAD + "name = 'caf\u00e9'\n" + SAVE + "\r\n").encode("latin-1")
    bom = codecs.BOM_UTF8 + (HEAD + SAVE + "\n").encode()
    (tmp_path / "latin.py").write_bytes(latin)
    (tmp_path / "bom.py").write_bytes(bom)
    (tmp_path / "clean.py").write_text("x = 1\n")
    result = run(["check", "--no-cache", "--select", "PTL006,PTL100", "--add-noqa"], tmp_path)
    assert (result.exit_code, result.stdout) == (0, "Added 2 noqa codes in 2 files.\n")
    assert (tmp_path / "latin.py").read_bytes() == latin.replace(b"\r\n", b"  # noqa: PTL006\r\n")
    assert (tmp_path / "bom.py").read_bytes() == bom[:-1] + b"  # noqa: PTL006\n"
    assert run(["check", "--no-cache"], tmp_path).exit_code == 0
    again = run(["check", "--no-cache", "--add-noqa"], tmp_path)
    assert (again.exit_code, again.stdout) == (0, "Added 0 noqa codes.\n")


def test_add_noqa_refuses_fix_and_stdin(tmp_path):
    result = run(["check", "--add-noqa", "--fix"], tmp_path)
    assert result.exit_code == 2
    assert "--add-noqa cannot be combined" in result.stderr
    assert run(["check", "--add-noqa", "-"], tmp_path).exit_code == 2


def test_add_noqa_writes_comments_into_notebook_cells(tmp_path):
    lines = [*HEAD.splitlines(keepends=True), SAVE + "\n"]
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}
    magic = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": ["%time x = 1\n", SAVE]}
    note = {"cell_type": "markdown", "metadata": {}, "source": ["# notes"]}
    doc = {"cells": [cell, note, magic], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(doc, indent=1) + "\n"
    (tmp_path / "nb.ipynb").write_text(text)
    result = run(["check", "--no-cache", "--select", "PTL006", "--add-noqa"], tmp_path)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Added 2 noqa codes in 1 file.\n", "")
    cell["source"][-1] = SAVE + "  # noqa: PTL006\n"
    magic["source"][-1] = SAVE + "  # noqa: PTL006"
    assert (tmp_path / "nb.ipynb").read_text() == json.dumps(doc, indent=1) + "\n"
    assert run(["check", "--no-cache", "--select", "PTL006,PTL100"], tmp_path).exit_code == 0


def test_add_noqa_fails_and_says_why_when_findings_are_left(tmp_path):
    source = HEAD + 's = "# noqa: X1"; ' + SAVE + "\n"
    (tmp_path / "a.py").write_text(source)
    result = run(["check", "--no-cache", "--select", "PTL006", "--add-noqa"], tmp_path)
    assert result.exit_code == 1
    assert result.stdout == "Added 0 noqa codes.\n1 finding is left without a noqa comment.\n"
    assert "ptlint: error: a.py: 1 finding(s) left without a noqa comment (no safe line for it)" in result.stderr
    assert (tmp_path / "a.py").read_text() == source
