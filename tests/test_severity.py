"""Severities (issue 19): on every rule class, in `ptlint rule`, in every output format, and `fail-on`;
notebook findings at their .ipynb lines in the CI formats; internal errors in SARIF and the exit code."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from ptlint.finding import SEVERITIES
from ptlint.registry import all_rules, by_code_or_name

SCHEMA = ROOT.parent / "shared" / "data" / "sarif-schema-2.1.0.json"
CATALOG = ROOT.parent / "shared" / "design" / "rules-catalog.md"

# The catalog's severity of each rule; where it names two ("info/warning", "error when ..., else
# info"), the first. PTL039, PTL040 and PTL100 are not in the catalog.
EXPECTED = {
    "PTL000": "error", "PTL001": "error", "PTL002": "error", "PTL003": "error", "PTL004": "warning",
    "PTL005": "warning", "PTL006": "warning", "PTL007": "warning", "PTL008": "info", "PTL009": "warning",
    "PTL010": "warning", "PTL011": "warning", "PTL012": "error", "PTL013": "info", "PTL014": "warning",
    "PTL015": "warning", "PTL016": "warning", "PTL017": "warning", "PTL018": "warning", "PTL019": "warning",
    "PTL020": "warning", "PTL021": "error", "PTL022": "error", "PTL023": "info", "PTL024": "warning",
    "PTL025": "error", "PTL026": "warning", "PTL027": "warning", "PTL028": "error", "PTL029": "error",
    "PTL030": "warning", "PTL031": "error", "PTL032": "warning", "PTL033": "info", "PTL034": "warning",
    "PTL035": "info", "PTL036": "warning", "PTL037": "warning", "PTL038": "info", "PTL039": "warning",
    "PTL040": "warning", "PTL100": "warning",
}

SOURCE = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader
    from mydata import load

    ds = load()
    loader = DataLoader(ds, batch_size=8)
    model = torch.nn.Linear(2, 2)
    torch.save(model, "m.pt")
    """
)
SELECT = ["--select", "PTL000,PTL006,PTL013", "--no-cache"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "broken.py").write_text("def f(:\n")  # PTL000: error
    (tmp_path / "train.py").write_text(SOURCE)  # PTL013: info, PTL006: warning
    return tmp_path


def check(project: Path, *args: str):
    return run_cli(["check", *SELECT, *args], project)


def validate(doc: dict) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


# --- the rule classes and their docs ------------------------------------------------------------


def test_every_rule_declares_a_severity_of_the_catalog():
    rules = all_rules()
    assert [r.code for r in rules if "severity" not in vars(r) or r.severity not in SEVERITIES] == []
    assert {r.code: r.severity for r in rules if r.code in EXPECTED} == EXPECTED


def test_expected_severities_follow_the_catalog_headings():
    if not CATALOG.is_file():
        pytest.skip(f"the rule catalog is not at {CATALOG}")
    headings = re.findall(r"^### (PTL\d{3}) `[^`]+` \(([^)]*)\)", CATALOG.read_text(encoding="utf-8"), re.M)
    assert len(headings) >= 38
    for code, attrs in headings:
        first = re.search(r"\b(error|warning|info)\b", attrs)
        assert first is not None and EXPECTED[code] == first.group(1), (code, attrs)


def test_rule_command_shows_the_severity(tmp_path):
    result = run_cli(["rule", "PTL033"], tmp_path)
    assert result.stdout.startswith("# PTL033 conv-bias-before-batchnorm\n\nSeverity: info. Fix: unsafe.\n")
    table = run_cli(["rule", "--all"], tmp_path).stdout
    assert table.startswith("| Code | Name | Severity | Fix | Summary |")
    assert "| PTL001 | `missing-eval-mode` | error | unsafe |" in table
    items = json.loads(run_cli(["rule", "--all", "--output-format", "json"], tmp_path).stdout)
    assert {i["code"]: i["severity"] for i in items} == {r.code: r.severity for r in all_rules()}


def test_generated_docs_show_the_severity():
    text = (ROOT / "docs" / "rules.md").read_text()
    assert "| Code | Name | Severity | Fix | Summary |" in text
    assert "## PTL033 conv-bias-before-batchnorm\n\nSeverity: info. Fix: unsafe.\n" in text


# --- the formats --------------------------------------------------------------------------------


def test_sarif_levels_and_default_configuration(project):
    result = check(project, "--output-format", "sarif")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    validate(doc)
    run = doc["runs"][0]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in run["tool"]["driver"]["rules"]}
    assert (levels["PTL000"], levels["PTL006"], levels["PTL013"], levels["PTL033"]) == ("error", "warning", "note", "note")
    assert {r["id"]: r["properties"]["severity"] for r in run["tool"]["driver"]["rules"]} == {
        r.code: r.severity for r in all_rules()
    }
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("PTL000", "error"), ("PTL013", "note"), ("PTL006", "warning")
    ]
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]


def test_gitlab_severities(project):
    issues = json.loads(check(project, "--output-format", "gitlab").stdout)
    assert [(i["check_name"], i["severity"]) for i in issues] == [
        ("PTL000", "critical"), ("PTL013", "minor"), ("PTL006", "major")
    ]


def test_github_commands(project):
    lines = check(project, "--output-format", "github").stdout.splitlines()
    pattern = re.compile(r"^::(error|warning|notice) file=([^,]+),line=(\d+),col=\d+,endLine=\d+,endColumn=\d+,title=(PTL\d{3}) \([a-z-]+\)::.+$")
    parsed = [pattern.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(1), m.group(4)) for m in parsed] == [("error", "PTL000"), ("notice", "PTL013"), ("warning", "PTL006")]


def test_junit_carries_the_severity(project):
    root = ET.fromstring(check(project, "--output-format", "junit").stdout.encode())
    cases = root.findall(".//testcase")
    severities = [c.find("properties/property[@name='severity']").get("value") for c in cases]
    assert severities == ["error", "info", "warning"]
    assert [c.find("failure").text.split(": ")[1] for c in cases] == ["error", "info", "warning"]


def test_json_severity_and_url_to_the_rule_docs(project):
    items = json.loads(check(project, "--output-format", "json").stdout)
    assert [(i["code"], i["severity"]) for i in items] == [("PTL000", "error"), ("PTL013", "info"), ("PTL006", "warning")]
    docs = (ROOT / "docs" / "rules.md").read_text()
    for item in items:
        assert item["url"] == f"https://github.com/ptlint/ptlint/blob/main/docs/rules.md#{item['code'].lower()}-{item['name']}"
        assert f"\n## {item['code']} {item['name']}\n" in docs  # GitHub's anchor of that heading


def test_full_and_concise_formats(project):
    full = check(project, "--output-format", "full").stdout
    assert "^^^^^ PTL006 (warning)" in full and "PTL013 (info)" in full and "PTL000 (error)" in full
    concise = check(project, "--output-format", "concise").stdout.splitlines()
    assert concise[1].startswith("train.py:6:10: PTL013 DataLoader")  # unchanged for problem matchers


def test_statistics_json_has_the_severity(project):
    items = json.loads(check(project, "--statistics", "--output-format", "json").stdout)
    assert {i["code"]: i["severity"] for i in items} == {"PTL000": "error", "PTL006": "warning", "PTL013": "info"}


# --- fail-on ------------------------------------------------------------------------------------


def test_default_fail_on_keeps_every_finding_failing(tmp_path):
    (tmp_path / "train.py").write_text(SOURCE)
    assert run_cli(["check", "--no-cache", "--select", "PTL013"], tmp_path).exit_code == 1


def test_fail_on_option(tmp_path):
    (tmp_path / "train.py").write_text(SOURCE)
    info_only = run_cli(["check", "--no-cache", "--select", "PTL013", "--fail-on", "warning"], tmp_path)
    assert info_only.exit_code == 0
    assert info_only.stdout.endswith(
        "1 finding is below the `fail-on` level (warning) and does not fail the run.\n"
    )
    both = ["check", "--no-cache", "--select", "PTL006,PTL013"]
    assert run_cli([*both, "--fail-on", "warning"], tmp_path).exit_code == 1
    assert run_cli([*both, "--fail-on", "error"], tmp_path).exit_code == 0
    (tmp_path / "broken.py").write_text("def f(:\n")
    assert run_cli([*both, "--fail-on", "error"], tmp_path).exit_code == 1  # PTL000 is an error
    assert run_cli([*both, "--fail-on", "nope"], tmp_path).exit_code == 2


def test_fail_on_setting(tmp_path):
    (tmp_path / "train.py").write_text(SOURCE)
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint]\nfail-on = "error"\nselect = ["PTL006", "PTL013"]\n')
    assert run_cli(["check", "--no-cache"], tmp_path).exit_code == 0
    assert run_cli(["check", "--no-cache", "--fail-on", "info"], tmp_path).exit_code == 1  # the option wins
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint]\nfail-on = "severe"\n')
    bad = run_cli(["check", "--no-cache"], tmp_path)
    assert bad.exit_code == 2 and "`fail-on` must be one of 'error', 'warning', 'info'" in bad.stderr


# --- notebooks in the CI formats ----------------------------------------------------------------


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Training\n", "A long \"markdown\" cell, caf\u00e9.\n"]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": ["import torch\n", "model = torch.nn.Linear(2, 2)\n"]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": ["%time x = 1\n", "name = \"caf\u00e9\"; torch.save(model, \"m.pt\")\n"]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "y = 2\ntorch.save(model, 'b.pt')\n"},
    ]
    doc = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")


def _located(text: str, line: int, start: int, end: int) -> str:
    return text.splitlines()[line - 1][start - 1 : end - 1]


def test_notebook_findings_point_at_the_ipynb_lines(tmp_path):
    nb = tmp_path / "train.ipynb"
    _notebook(nb)
    text = nb.read_text()
    sel = ["check", "--no-cache", "--select", "PTL006"]
    doc = json.loads(run_cli([*sel, "--output-format", "sarif"], tmp_path).stdout)
    validate(doc)
    results = doc["runs"][0]["results"]
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in results]
    for region in regions:  # each region holds the reported `model` in the notebook's JSON text
        assert region["startLine"] == region["endLine"]
        assert _located(text, region["startLine"], region["startColumn"], region["endColumn"]) == "model"
    assert regions[0]["startLine"] == text.splitlines().index('    "name = \\"caf\\u00e9\\"; torch.save(model, \\"m.pt\\")\\n"') + 1
    assert [r["properties"] for r in results] == [
        {"cell": 3, "cellLine": 2, "cellColumn": 27, "cellEndLine": 2, "cellEndColumn": 32},
        {"cell": 4, "cellLine": 2, "cellColumn": 12, "cellEndLine": 2, "cellEndColumn": 17},
    ]
    issues = json.loads(run_cli([*sel, "--output-format", "gitlab"], tmp_path).stdout)
    assert [i["location"]["lines"]["begin"] for i in issues] == [r["startLine"] for r in regions]
    assert [i["description"][:20] for i in issues] == ["cell 3, line 2: PTL0", "cell 4, line 2: PTL0"]
    root = ET.fromstring(run_cli([*sel, "--output-format", "junit"], tmp_path).stdout.encode())
    cases = root.findall(".//testcase")
    assert [int(c.get("line")) for c in cases] == [r["startLine"] for r in regions]
    props = [{p.get("name"): p.get("value") for p in c.findall("properties/property")} for c in cases]
    assert props[0] == {"severity": "warning", "cell": "3", "cell_line": "2", "cell_column": "27"}
    github = run_cli([*sel, "--output-format", "github"], tmp_path).stdout.splitlines()
    assert github[0].startswith(f"::warning file=train.ipynb,line={regions[0]['startLine']},endLine=")
    assert github[0].endswith("::cell 3:2:27: `torch.save` pickles a whole nn.Module; save its `state_dict()` instead")


def test_notebook_syntax_error_points_at_its_ipynb_line(tmp_path):
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["x = 1\n", "def f(:\n"]}]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1))
    doc = json.loads(run_cli(["check", "--no-cache", "--output-format", "sarif"], tmp_path).stdout)
    validate(doc)
    (result,) = doc["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    line = (tmp_path / "nb.ipynb").read_text().splitlines()[region["startLine"] - 1]
    assert line.strip() == '"def f(:\\n"' and result["level"] == "error"


# --- internal errors ----------------------------------------------------------------------------


@pytest.fixture
def crashing_rule(monkeypatch):
    rule = by_code_or_name("PTL006")

    def boom(self, node):
        raise RuntimeError("boom")

    monkeypatch.setattr(rule, "visit_Call", boom)
    return rule


def test_internal_errors_are_tool_notifications_in_sarif_and_exit_2(tmp_path, crashing_rule):
    (tmp_path / "train.py").write_text(SOURCE)
    result = run_cli(["check", "--no-cache", "--jobs", "1", "--select", "PTL006", "--output-format", "sarif"], tmp_path)
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    validate(doc)
    (invocation,) = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"].startswith("train.py: internal error")
    assert "boom" in note["message"]["text"]
    assert "ptlint: error: train.py: internal error" in result.stderr


def test_internal_errors_in_junit_and_the_text_summary(tmp_path, crashing_rule):
    (tmp_path / "train.py").write_text(SOURCE)
    args = ["check", "--no-cache", "--jobs", "1", "--select", "PTL006"]
    junit = run_cli([*args, "--output-format", "junit"], tmp_path)
    root = ET.fromstring(junit.stdout.encode())
    assert junit.exit_code == 2 and root.get("errors") == "1"
    assert root.find(".//testcase/error").get("type") == "internal-error"
    text = run_cli(args, tmp_path)
    assert text.exit_code == 2 and "All checks passed!" not in text.stdout


def test_merged_sarif_keeps_one_invocation(tmp_path):
    from ptlint import merge
    from ptlint.reporters import sarif

    ok, failed = sarif.log([]), sarif.log([], ["a.py: internal error: x"])
    (run,) = merge.merge_sarif([ok, failed])["runs"]
    assert run["invocations"] == [{
        "executionSuccessful": False,
        "toolExecutionNotifications": [sarif.notification("a.py: internal error: x")],
    }]
    validate(merge.merge_sarif([ok, failed]))
