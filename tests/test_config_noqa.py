"""Configuration discovery and validation, per-file-ignores, noqa and file-level noqa."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import check_concise
from click.testing import CliRunner

from ptlint.api import lint_text
from ptlint.cli import main
from ptlint.config import ConfigError, from_table

SAVE = 'import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, "m.pt"){}\n'


def codes(source: str) -> list[tuple[int, int, str]]:
    # PTL100 (stale noqa codes such as the PTL001 below) has its own tests in test_noqa_extra.py.
    return [(f.start.line, f.start.column, f.code) for f in lint_text(source).findings if f.code != "PTL100"]


@pytest.mark.parametrize(
    "comment",
    ["  # noqa: PTL006", "  # noqa", "  #noqa:PTL006", "  # NOQA: PTL001, PTL006", "  # noqa: PTL001 PTL006"],
)
def test_line_noqa_suppresses(comment):
    assert codes(SAVE.format(comment)) == []


def test_noqa_for_another_code_does_not_suppress():
    assert codes(SAVE.format("  # noqa: PTL001")) == [(3, 12, "PTL006")]


def test_multiline_statement_noqa_on_first_or_last_line():
    first = 'import torch\nm = torch.nn.Linear(2, 2)\ntorch.save(  # noqa: PTL006\n    m,\n    "m.pt",\n)\n'
    last = 'import torch\nm = torch.nn.Linear(2, 2)\ntorch.save(\n    m,\n    "m.pt",\n)  # noqa: PTL006\n'
    middle = 'import torch\nm = torch.nn.Linear(2, 2)\ntorch.save(\n    m,\n    "m.pt",  # noqa: PTL006\n)\n'
    assert codes(first) == []
    assert codes(last) == []
    # A noqa on an inner line that is neither the finding's line nor the statement's ends does nothing.
    assert codes(middle) == [(4, 5, "PTL006")]


def test_noqa_is_respected_by_fix():
    source = SAVE.format("  # noqa: PTL006")
    assert lint_text(source, fix=True, unsafe=True).text == source


@pytest.mark.parametrize("header", ["# ptlint: noqa\n", "# ptlint: noqa: PTL006\n", "#ptlint:noqa:PTL001,PTL006\n"])
def test_file_level_noqa(header):
    assert codes(header + SAVE.format("")) == []


def test_file_level_noqa_other_code():
    assert codes("# ptlint: noqa: PTL001\n" + SAVE.format("")) == [(4, 12, "PTL006")]


def test_per_file_ignores(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "export.py").write_text(SAVE.format(""))
    (tmp_path / "train.py").write_text(SAVE.format(""))
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint.per-file-ignores]\n"scripts/*.py" = ["PTL006"]\n')
    result = check_concise(tmp_path)
    assert result.output.splitlines() == [
        "train.py:3:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    ]


def test_ptlint_toml_and_nearest_config(tmp_path):
    sub = tmp_path / "pkg"
    sub.mkdir()
    (sub / "a.py").write_text(SAVE.format(""))
    (tmp_path / "b.py").write_text(SAVE.format(""))
    (sub / "ptlint.toml").write_text('ignore = ["save-whole-model"]\n')
    result = check_concise(tmp_path)
    assert [line.split(":")[0] for line in result.output.splitlines()] == ["b.py"]


def test_cli_select_wins_over_config(tmp_path):
    (tmp_path / "a.py").write_text(SAVE.format(""))
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint]\nselect = ["PTL000"]\n')
    assert check_concise(tmp_path).exit_code == 0
    assert check_concise(tmp_path, "--select", "PTL006").exit_code == 1


def test_explicit_config_file(tmp_path):
    (tmp_path / "a.py").write_text(SAVE.format(""))
    (tmp_path / "custom.toml").write_text('[tool.ptlint]\nignore = ["PTL006"]\n')
    assert check_concise(tmp_path, "--config", "custom.toml").exit_code == 0
    result = check_concise(tmp_path, "--config", "missing.toml")
    assert result.exit_code == 2
    assert "configuration file not found: missing.toml" in result.output


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.ptlint]\nselectt = []\n", "unknown configuration key(s): selectt"),
        ('[tool.ptlint]\nselect = ["PTL999"]\n', "unknown rule selector 'PTL999'"),
        ('[tool.ptlint]\nselect = "PTL001"\n', "`select` must be a list of strings"),
        ("[tool.ptlint]\nunsafe-fixes = 1\n", "`unsafe-fixes` must be true or false"),
        ("[tool.ptlint.rules.PTL999]\nx = 1\n", "unknown rule 'PTL999' in [tool.ptlint.rules]"),
        ("[tool.ptlint.rules.save-whole-model]\nnope = 1\n", "rule PTL006 has no option 'nope'"),
        ('[tool.ptlint.per-file-ignores]\n"a.py" = ["NOPE1"]\n', "unknown rule selector 'NOPE1'"),
        ("[tool.ptlint\n", "cannot read configuration"),
    ],
)
def test_config_errors_exit_2(tmp_path, toml, message):
    (tmp_path / "a.py").write_text(SAVE.format(""))
    (tmp_path / "pyproject.toml").write_text(toml)
    result = check_concise(tmp_path)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.startswith("ptlint: error: ")


def test_rule_options_reach_the_rule(tmp_path):
    from ptlint.registry import all_rules

    with_options = [r for r in all_rules() if r.options]
    if not with_options:
        pytest.skip("no rule has options")
    rule = with_options[0]
    name, default = next(iter(rule.options.items()))
    settings = from_table({"rules": {rule.code: {name: default}}}, Path("pyproject.toml"))
    assert settings.rule_options == {rule.code: {name: default}}


def test_type_checked_option_value():
    from ptlint.registry import all_rules

    with_options = [r for r in all_rules() if r.options and any(v is not None for v in r.options.values())]
    if not with_options:
        pytest.skip("no rule has typed options")
    rule = with_options[0]
    name = next(k for k, v in rule.options.items() if v is not None)
    with pytest.raises(ConfigError):
        from_table({"rules": {rule.code: {name: object()}}}, Path("pyproject.toml"))


def test_crlf_bom_and_latin1_are_kept(tmp_path):
    crlf = SAVE.format("").replace("\n", "\r\n").encode()
    bom = b"\xef\xbb\xbf" + SAVE.format("").encode()
    latin = ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + SAVE.format("")).encode("latin-1")
    for name, data in (("crlf.py", crlf), ("bom.py", bom), ("latin.py", latin)):
        (tmp_path / name).write_bytes(data)
    result = check_concise(tmp_path, "--fix", "--unsafe-fixes")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "crlf.py").read_bytes() == crlf.replace(b"(model,", b"(model.state_dict(),")
    assert (tmp_path / "bom.py").read_bytes() == bom.replace(b"(model,", b"(model.state_dict(),")
    assert (tmp_path / "latin.py").read_bytes() == latin.replace(b"(model,", b"(model.state_dict(),")


def test_rule_command(tmp_path):
    result = CliRunner().invoke(main, ["rule", "save-whole-model"])
    assert result.exit_code == 0
    assert result.output.startswith("# PTL006 save-whole-model\n\nSeverity: warning. Fix: unsafe.\n\n## What it does\n")
    for section in ("## Why is this bad?", "## Example", "## Use instead", "## Fix safety", "## References"):
        assert section in result.output
    unknown = CliRunner().invoke(main, ["rule", "PTL999"])
    assert unknown.exit_code == 2


def test_rule_all_json():
    import json

    result = CliRunner().invoke(main, ["rule", "--all", "--output-format", "json"])
    data = json.loads(result.output)
    entry = next(d for d in data if d["code"] == "PTL006")
    assert entry["name"] == "save-whole-model" and entry["fix"] == "unsafe" and entry["summary"]
    assert {"code", "name", "summary", "fix"} <= set(entry)


def test_docs_are_current():
    from conftest import ROOT

    from ptlint.docs import readme_with_table, rules_page
    from ptlint.registry import all_rules

    assert (ROOT / "docs" / "rules.md").read_text() == rules_page(all_rules()), "run `python -m ptlint.docs`"
    readme = (ROOT / "README.md").read_text()
    assert readme_with_table(readme, all_rules()) == readme, "run `python -m ptlint.docs`"


def test_every_rule_has_all_doc_sections():
    from ptlint.registry import all_rules
    from ptlint.rule import DOC_SECTIONS

    for rule in all_rules():
        assert list(rule.docs()) == list(DOC_SECTIONS), rule.code
        assert rule.name == rule.name.lower() and " " not in rule.name
        assert rule.summary()

