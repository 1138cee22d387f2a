"""CI output formats (github, sarif, junit, gitlab), --output-file, --statistics, --show-fixes,
--exit-non-zero-on-fix, and the concise format's problem-matcher pattern."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from ptlint import docs
from ptlint.registry import all_rules, by_code_or_name
from ptlint.reporters import RunInfo, github, gitlab, junit, sarif
from ptlint.rule import Finding, Fix, FixSafety, Position

SOURCE = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn

    model = nn.Linear(4, 2)
    torch.save(model, "model.pt")
    torch.save(model, "backup.pt")
    y = 1  # noqa: PTL006
    """
)
SELECT = ["--select", "PTL006,PTL100", "--no-cache"]
MESSAGE = "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
STALE = "`noqa` code PTL006 suppresses nothing on this line"
SCHEMA = ROOT.parent / "shared" / "data" / "sarif-schema-2.1.0.json"


run = run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "bad.py").write_text(SOURCE)
    (tmp_path / "clean.py").write_text("import torch\n\nx = torch.zeros(2)\n")
    return tmp_path


def check(project: Path, *args: str):
    return run(["check", *SELECT, *args], project)


# --- concise: editors' problem matchers -------------------------------------------------------

CONCISE_RE = re.compile(r"^[^:]+:\d+:\d+: PTL\d{3} .+$")


def test_concise_lines_match_the_problem_matcher_pattern(project):
    result = check(project, "--output-format", "concise", "--quiet", "--select", "ALL")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and len(lines) >= 3
    assert [line for line in lines if not CONCISE_RE.match(line)] == []


def test_concise_finding_lines_match_with_the_summary(project):
    result = check(project, "--output-format", "concise")
    lines = result.stdout.splitlines()
    assert [bool(CONCISE_RE.match(line)) for line in lines] == [True, True, True, False, False]


# --- github -----------------------------------------------------------------------------------


def test_github_output(project):
    result = check(project, "--output-format", "github")
    assert result.exit_code == 1
    assert result.stdout == (
        f"::warning file=bad.py,line=5,col=12,endLine=5,endColumn=17,title=PTL006 (save-whole-model)::{MESSAGE}\n"
        f"::warning file=bad.py,line=6,col=12,endLine=6,endColumn=17,title=PTL006 (save-whole-model)::{MESSAGE}\n"
        f"::warning file=bad.py,line=7,col=8,endLine=7,endColumn=22,title=PTL100 (unused-noqa)::{STALE}\n"
    )


def _finding(path: str = "a.py", message: str = "m", cell: int | None = None, fix: Fix | None = None) -> Finding:
    return Finding("PTL006", "save-whole-model", message, path, Position(3, 2), Position(4, 5), fix, (3, 4), cell=cell)


def test_github_escapes_message_and_properties():
    assert github.escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = github.annotation(_finding("dir,x/a:b.py", "line one\nline: two, 50%"))
    assert line == (
        "::warning file=dir%2Cx/a%3Ab.py,line=3,col=2,endLine=4,endColumn=5,title=PTL006 (save-whole-model)"
        "::line one%0Aline: two, 50%25"
    )


def test_github_notebook_cell_goes_into_the_message():
    line = github.annotation(_finding("nb.ipynb", "m", cell=2))
    assert line == "::warning file=nb.ipynb,title=PTL006 (save-whole-model)::cell 2:3:2: m"


def test_github_no_findings_prints_nothing(project):
    result = run(["check", "--no-cache", "--output-format", "github", "clean.py"], project)
    assert (result.exit_code, result.stdout) == (0, "")


# --- sarif ------------------------------------------------------------------------------------


def _validate(doc: dict) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


def test_sarif_output_validates_and_is_exact(project):
    result = check(project, "--output-format", "sarif")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    _validate(doc)
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run_ = doc["runs"][0]
    driver = run_["tool"]["driver"]
    assert (driver["name"], driver["version"], driver["informationUri"]) == ("ptlint", "0.1.0", sarif.PROJECT_URL)
    assert [r["id"] for r in driver["rules"]] == [r.code for r in all_rules()]
    codes = [r.code for r in all_rules()]
    i006, i100 = codes.index("PTL006"), codes.index("PTL100")
    stale = by_code_or_name("PTL100")
    assert driver["rules"][i100] == {
        "id": "PTL100",
        "name": "unused-noqa",
        "shortDescription": {"text": "A `# noqa` code that suppresses nothing."},
        "fullDescription": {"text": stale.summary()},
        "help": {"text": sarif.help_text(stale), "markdown": docs.rule_markdown(stale)},
        "helpUri": f"{sarif.PROJECT_URL}/blob/main/docs/rules.md#ptl100-unused-noqa",
        "defaultConfiguration": {"level": "warning"},
        "properties": {"fix": "safe", "severity": "warning"},
    }
    assert stale.summary().startswith("Reports a `# noqa: PTLxxx` comment whose code no longer matches")
    assert docs.rule_markdown(stale).startswith("# PTL100 unused-noqa\n\nSeverity: warning. Fix: safe.\n\n## What it does\n")
    assert sarif.help_text(stale).startswith("What it does:\nReports a `# noqa: PTLxxx` comment")
    assert "\n\nFix safety:\nThe fix is safe" in sarif.help_text(stale)
    assert driver["rules"][i006]["helpUri"] == f"{sarif.PROJECT_URL}/blob/main/docs/rules.md#ptl006-save-whole-model"
    uri = {"uri": "bad.py", "uriBaseId": "%SRCROOT%"}

    def region(line: int, col: int, end: int) -> dict:
        return {"startLine": line, "startColumn": col, "endLine": line, "endColumn": end}

    def fix(title: str, safety: str, line: int, text: str | None) -> list:
        replacement: dict = {"deletedRegion": {"startLine": line, "startColumn": 1, "endLine": line + 1, "endColumn": 1}}
        if text is not None:
            replacement["insertedContent"] = {"text": text}
        change = {"artifactLocation": uri, "replacements": [replacement]}
        return [{"description": {"text": title}, "artifactChanges": [change], "properties": {"safety": safety}}]

    assert run_["columnKind"] == "unicodeCodePoints"
    assert run_["results"] == [
        {
            "ruleId": "PTL006",
            "ruleIndex": i006,
            "level": "warning",
            "message": {"text": MESSAGE},
            "locations": [{"physicalLocation": {"artifactLocation": uri, "region": region(5, 12, 17)}}],
            "fixes": fix("Save the module's `state_dict()`", "unsafe", 5, 'torch.save(model.state_dict(), "model.pt")\n'),
        },
        {
            "ruleId": "PTL006",
            "ruleIndex": i006,
            "level": "warning",
            "message": {"text": MESSAGE},
            "locations": [{"physicalLocation": {"artifactLocation": uri, "region": region(6, 12, 17)}}],
            "fixes": fix("Save the module's `state_dict()`", "unsafe", 6, 'torch.save(model.state_dict(), "backup.pt")\n'),
        },
        {
            "ruleId": "PTL100",
            "ruleIndex": i100,
            "level": "warning",
            "message": {"text": STALE},
            "locations": [{"physicalLocation": {"artifactLocation": uri, "region": region(7, 8, 22)}}],
            "fixes": fix("Remove the unused `noqa` directive", "safe", 7, "y = 1\n"),
        },
    ]


def test_sarif_notebook_cell_absolute_path_and_no_fix_edits():
    absolute = str(Path("/tmp/x y/nb.ipynb"))
    fix = Fix("Save the state_dict", FixSafety.UNSAFE, ())
    doc = sarif.log([_finding(absolute, cell=3, fix=fix)])
    _validate(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["properties"] == {"cell": 3, "cellLine": 3, "cellColumn": 2, "cellEndLine": 4, "cellEndColumn": 5}
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "file:///tmp/x%20y/nb.ipynb"}
    assert "fixes" not in result  # no edits were computed for this finding


def test_sarif_without_findings_validates(project):
    result = run(["check", "--no-cache", "--output-format", "sarif", "clean.py"], project)
    doc = json.loads(result.stdout)
    _validate(doc)
    assert (result.exit_code, doc["runs"][0]["results"]) == (0, [])


# --- junit ------------------------------------------------------------------------------------


def test_junit_output(project):
    result = check(project, "--output-format", "junit")
    assert result.exit_code == 1

    def case(line: int, col: int, code: str, name: str, message: str) -> str:
        m = message
        return (
            f'    <testcase name="{code} ({name}) at line {line}, column {col}" classname="bad.py" file="bad.py"'
            f' line="{line}">\n'
            "      <properties>\n"
            '        <property name="severity" value="warning"/>\n'
            "      </properties>\n"
            f'      <failure message="{m}" type="{code}">bad.py:{line}:{col}: warning: {code} {m}</failure>\n'
            "    </testcase>\n"
        )

    assert result.stdout == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testsuites name="ptlint" tests="3" failures="3" errors="0">\n'
        '  <testsuite name="bad.py" tests="3" failures="3" errors="0">\n'
        + case(5, 12, "PTL006", "save-whole-model", MESSAGE)
        + case(6, 12, "PTL006", "save-whole-model", MESSAGE)
        + case(7, 8, "PTL100", "unused-noqa", STALE)
        + "  </testsuite>\n</testsuites>\n"
    )
    ET.fromstring(result.stdout.encode())


def test_junit_escapes_and_groups_files():
    findings = [_finding("a.py", 'a <b> & "c"'), _finding("b.py", "x", cell=1)]
    text = junit.render(findings, RunInfo(unsafe_fixes=False, fixed=0))
    root = ET.fromstring(text.encode())
    assert [s.get("name") for s in root] == ["a.py", "b.py"]
    failure = root[0][0].find("failure")
    assert failure.get("message") == 'a <b> & "c"'
    assert failure.text == 'a.py:3:2: warning: PTL006 a <b> & "c"'
    assert root[1][0].get("name") == "PTL006 (save-whole-model) at cell 1, line 3, column 2"
    assert root[1][0].find("failure").text == "b.py:cell 1:3:2: warning: PTL006 x"


def test_junit_without_findings_has_one_passing_case(project):
    result = run(["check", "--no-cache", "--output-format", "junit", "clean.py"], project)
    assert result.exit_code == 0
    assert result.stdout == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testsuites name="ptlint" tests="1" failures="0" errors="0">\n'
        '  <testsuite name="ptlint" tests="1" failures="0" errors="0">\n'
        '    <testcase name="no findings" classname="ptlint"/>\n'
        "  </testsuite>\n"
        "</testsuites>\n"
    )


# --- gitlab -----------------------------------------------------------------------------------


def test_gitlab_output(project):
    result = check(project, "--output-format", "gitlab")
    assert result.exit_code == 1
    issues = json.loads(result.stdout)

    def issue(code: str, message: str, line: int, fingerprint: str) -> dict:
        return {
            "description": f"{code} {message}",
            "check_name": code,
            "fingerprint": fingerprint,
            "severity": "major",
            "location": {"path": "bad.py", "lines": {"begin": line, "end": line}},
        }

    assert issues == [
        issue("PTL006", MESSAGE, 5, "0c70387b545edf72cb9e34bad25f2bbf"),
        issue("PTL006", MESSAGE, 6, "2deb193734438980fe2df3e46018b57b"),
        issue("PTL100", STALE, 7, "4e544f88c3c31e771929707b3f457823"),
    ]


def test_gitlab_fingerprint_survives_moved_lines_and_tells_duplicates_apart(project):
    before = [i["fingerprint"] for i in json.loads(check(project, "--output-format", "gitlab").stdout)]
    (project / "bad.py").write_text("# a new first line\n\n" + SOURCE)
    after = json.loads(check(project, "--output-format", "gitlab").stdout)
    assert [i["fingerprint"] for i in after] == before
    assert [i["location"]["lines"]["begin"] for i in after] == [7, 8, 9]
    same_line = SOURCE.replace('"backup.pt"', '"model.pt"')
    (project / "bad.py").write_text(same_line)
    prints = [i["fingerprint"] for i in json.loads(check(project, "--output-format", "gitlab").stdout)]
    assert len(set(prints)) == 3


def test_gitlab_cell_and_syntax_error():
    f = _finding("nb.ipynb", "m", cell=2)
    (item,) = json.loads(gitlab.render([f], RunInfo(unsafe_fixes=False, fixed=0)))
    assert item["description"] == "cell 2, line 3: PTL006 m"
    bad = Finding("PTL000", "syntax-error", "SyntaxError: x", "a.py", Position(1, 1), Position(1, 1))
    (item,) = json.loads(gitlab.render([bad], RunInfo(unsafe_fixes=False, fixed=0)))
    assert item["severity"] == "critical"


# --- --output-file ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["full", "concise", "json", "github", "sarif", "junit", "gitlab"])
def test_output_file_gets_the_report_and_stdout_stays_clean(project, fmt):
    expected = check(project, "--output-format", fmt).stdout
    result = check(project, "--output-format", fmt, "--output-file", "report.out")
    assert (result.exit_code, result.stdout) == (1, "")
    assert (project / "report.out").read_text(encoding="utf-8") == expected


def test_output_file_in_a_missing_folder_is_an_error(project):
    result = check(project, "--output-file", "nope/report.txt")
    assert result.exit_code == 2
    assert "ptlint: error: cannot write nope/report.txt" in result.stderr


# --- --statistics -----------------------------------------------------------------------------


def test_statistics_text(project):
    result = check(project, "--statistics")
    assert result.exit_code == 1
    assert result.stdout == (
        "2  PTL006  [ ]  warning  save-whole-model\n"
        "1  PTL100  [*]  warning  unused-noqa\n"
        "[*] every finding of the rule is fixable with `--fix`, [-] some are, [ ] none are\n"
        "Found 3 findings.\n"
        "[*] 1 fixable with the `--fix` option (2 more with `--fix --unsafe-fixes`).\n"
    )


def test_statistics_marks_and_alignment():
    from ptlint.reporters import statistics

    safe, unsafe = Fix("t", FixSafety.SAFE, ()), Fix("t", FixSafety.UNSAFE, ())
    findings = [_finding(fix=safe) for _ in range(10)] + [_finding(fix=unsafe)]
    findings.append(Finding("PTL100", "unused-noqa", "m", "a.py", Position(1, 1), Position(1, 2), safe))
    text = statistics.render(findings, RunInfo(unsafe_fixes=False, fixed=0, show_summary=False))
    assert text == "11  PTL006  [-]  warning  save-whole-model\n 1  PTL100  [*]  warning  unused-noqa\n"


def test_statistics_json(project):
    result = check(project, "--statistics", "--output-format", "json", "--unsafe-fixes")
    assert json.loads(result.stdout) == [
        {"code": "PTL006", "name": "save-whole-model", "severity": "warning", "count": 2, "fixable": 2},
        {"code": "PTL100", "name": "unused-noqa", "severity": "warning", "count": 1, "fixable": 1},
    ]


# --- --show-fixes and --exit-non-zero-on-fix ---------------------------------------------------


def test_show_fixes_lists_available_fixes(project):
    result = check(project, "--output-format", "concise", "--quiet", "--show-fixes")
    assert result.stdout == (
        f"bad.py:5:12: PTL006 {MESSAGE}\n"
        f"bad.py:6:12: PTL006 {MESSAGE}\n"
        f"bad.py:7:8: PTL100 [*] {STALE}\n"
        "\n"
        "Fixes available:\n"
        "- bad.py:\n"
        "    5:12 PTL006 (unsafe) Save the module's `state_dict()`\n"
        "    6:12 PTL006 (unsafe) Save the module's `state_dict()`\n"
        "    7:8 PTL100 Remove the unused `noqa` directive\n"
    )


def test_show_fixes_lists_applied_fixes(project):
    result = check(project, "--output-format", "concise", "--fix", "--unsafe-fixes", "--show-fixes")
    assert result.exit_code == 0
    assert result.stdout == (
        "Found 3 findings (3 fixed, 0 remaining).\n"
        "\n"
        "Fixed 3 findings:\n"
        "- bad.py:\n"
        "    2 x PTL006 (save-whole-model)\n"
        "    1 x PTL100 (unused-noqa)\n"
    )


def test_show_fixes_with_nothing_to_fix(project):
    result = run(["check", "--no-cache", "--show-fixes", "clean.py"], project)
    assert result.stdout == "All checks passed!\n\nNo fixes applied or available.\n"


def test_exit_non_zero_on_fix(project):
    (project / "bad.py").write_text("x = 1  # noqa: PTL006\n")
    assert check(project, "--fix").exit_code == 0
    (project / "bad.py").write_text("x = 1  # noqa: PTL006\n")
    result = check(project, "--fix", "--exit-non-zero-on-fix")
    assert result.exit_code == 1
    assert (project / "bad.py").read_text() == "x = 1\n"
    # Nothing left to fix: exit 0 again.
    assert check(project, "--fix", "--exit-non-zero-on-fix").exit_code == 0
