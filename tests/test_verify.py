"""`ptlint verify`: scenarios of every fixable rule, contracts, broken fixers, output formats."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, run_cli

from ptlint.api import lint_text
from ptlint.verify import report
from ptlint.verify.compare import FAIL, PASS, SKIP, difference, judge
from ptlint.verify.harness import Outcome, Row, verify
from ptlint.verify.scenario import builtin, declarations, default_fixer, fixable_rules, scenario_files

FOUNDING = ["PTL001", "PTL002", "PTL003", "PTL004", "PTL005", "PTL006"]
SCENARIOS, _ = builtin()


def invoke(args: list[str], cwd: Path) -> "object":
    return run_cli(["verify", *args], cwd, catch_exceptions=True)


# -- static checks: no torch needed ----------------------------------------------------------------


@pytest.mark.parametrize("rule", fixable_rules(), ids=lambda r: r.code)
def test_every_fixable_rule_has_a_scenario(rule):
    assert scenario_files(rule.code), f"{rule.code} has a fix but no fixtures/{rule.code}/verify/scenario.py"
    assert rule.contract in ("E0", "E1", "E2", "E3"), f"{rule.code} declares no verify contract"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_is_reported_and_fixed(scenario):
    text = scenario.path.read_text()
    tree = ast.parse(text)
    runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
    assert runs and runs[0].args.args[0].arg == "device", "a scenario defines run(device, ...)"
    found = lint_text(text, str(scenario.path), scenario.rules).findings
    assert found, f"{scenario.name}: the rule reports nothing in its scenario"
    fixed = default_fixer(text, str(scenario.path), scenario.rules)
    assert fixed != text, f"{scenario.name}: the fixer changes nothing"
    if scenario.contract == "E2":
        assert declarations(text).get("has_invariant"), "an E2 scenario declares invariant()"


def test_fixture_harness_ignores_verify_scenarios():
    from ptlint.fixtures import positives, traps

    for code in FOUNDING:
        folder = FIXTURES / code
        assert all("verify" not in p.path.parts for p in positives(folder))
        assert all("verify" not in t.parts for t in traps(folder))


def test_declarations_are_read_without_running():
    text = 'RTOL = 1e-3\nATOL = 0\nNEEDS = "cuda"\nBAD_RAISES_ON = "cpu"\nINVARIANT = "x"\ndef invariant(r):\n    return True\n'
    assert declarations(text) == {
        "rtol": 1e-3, "atol": 0, "needs": "cuda", "bad_raises_on": ("cpu",), "invariant_text": "x", "has_invariant": True
    }


# -- comparison and verdicts: pure Python ----------------------------------------------------------


def tensor(data: bytes, dtype: str = "float32", shape=(1,)) -> dict:
    import base64

    return {"__tensor__": dtype, "shape": list(shape), "device": "cpu", "data": base64.b64encode(data).decode()}


def test_difference_is_bitwise_for_e0_and_tolerant_for_e1():
    import struct

    a = tensor(struct.pack("<f", 1.0))
    b = tensor(struct.pack("<f", 1.0 + 2**-20))
    assert difference(a, a, True, 0, 0) is None
    assert difference(a, b, True, 0, 0) == "result: tensors differ bitwise"
    assert difference(a, b, False, 1e-5, 0) is None
    assert difference({"x": [1.0, 2]}, {"x": [1.0, 3]}, True, 0, 0) == "result['x'][1]: 2 != 3"
    assert difference(0.0, -0.0, True, 0, 0) == "result: 0.0 != -0.0"
    assert difference({"__float__": "nan"}, {"__float__": "nan"}, True, 0, 0) is None
    assert difference(a, tensor(struct.pack("<d", 1.0), "float64"), True, 0, 0) == "result: tensor float32 != float64"


def ok(result=None, invariant=None) -> dict:
    return {"status": "ok", "result": result or {}, "invariant": invariant, "metrics": {}}


RAISED = {"status": "raised", "error": "AttributeError: no"}


@pytest.mark.parametrize(
    "contract, decl, bad, fixed, verdict",
    [
        ("E2", {"has_invariant": True}, ok(invariant=False), ok(invariant=True), PASS),
        ("E2", {"has_invariant": True}, RAISED, ok(invariant=True), PASS),
        ("E2", {"has_invariant": True}, ok(invariant=True), ok(invariant=True), FAIL),
        ("E2", {"has_invariant": True}, ok(invariant=False), ok(invariant=False), FAIL),
        ("E2", {}, RAISED, ok(), FAIL),
        ("E0", {}, ok({"a": 1}), ok({"a": 1}), PASS),
        ("E0", {}, ok({"a": 1.0}), ok({"a": 1.0000001}), FAIL),
        ("E1", {"rtol": 1e-3}, ok({"a": 1.0}), ok({"a": 1.0000001}), PASS),
        ("E0", {}, RAISED, ok(), FAIL),
        ("E0", {"bad_raises_on": ("cpu",)}, RAISED, ok(), PASS),
        ("E0", {"bad_raises_on": ("cpu",)}, ok(), ok(), FAIL),
        ("E0", {"has_invariant": True}, ok(invariant=True), ok(invariant=True), FAIL),
        ("E3", {}, RAISED, ok(), PASS),
        ("E3", {}, ok(), ok(), FAIL),
        ("E3", {}, RAISED, RAISED, FAIL),
        ("E0", {}, ok(), {"status": "timeout", "error": "no result within 1 s"}, FAIL),
    ],
)
def test_judge(contract, decl, bad, fixed, verdict):
    assert judge(contract, decl, "cpu", bad, fixed).verdict == verdict


# -- output formats from a hand-made outcome --------------------------------------------------------


def runs(values: list[float]) -> dict:
    """The spread of a metric over runs, as combine() makes it."""
    from ptlint.verify.compare import spread

    return spread(values)


LONG_REASON = "bad raised RuntimeError: one of the variables needed for gradient computation has been modified by an inplace operation"
DIFF = "--- bad/scenario.py\n+++ fixed/scenario.py\n@@ -1 +1 @@\n-    losses.append(loss)\n+    losses.append(loss.detach())\n"


def sample() -> Outcome:
    bad = {"status": "ok", "steps": 50, "metrics": {"time_per_step": 0.002, "syncs": 4, "peak_mem": 3 * 2**20,
                                                    "graph_nodes": 120, "graph_growth": 6.0}}
    fixed = {"status": "ok", "steps": 50, "metrics": {"time_per_step": 0.001, "syncs": 0, "peak_mem": 2**20,
                                                      "graph_nodes": 0, "graph_growth": 0.0}}
    # PTL009: times whose runs overlap (noise), 6000 syncs against 3, memory within noise
    noisy_bad = {"status": "ok", "steps": 20, "metrics": {"time_per_step": 0.0012, "syncs": 6000, "peak_mem": 20 * 2**20},
                 "spread": {"time_per_step": runs([0.0010, 0.0012, 0.0016])}}
    noisy_fixed = {"status": "ok", "steps": 20, "metrics": {"time_per_step": 0.0010, "syncs": 3, "peak_mem": 20.2 * 2**20},
                   "spread": {"time_per_step": runs([0.0009, 0.0010, 0.0013])}}
    rows = [
        Row("PTL003", "graph-retaining-accumulation", "cpu", "E0", PASS, "results bitwise equal", "s.py", ["PTL003"], bad, fixed,
            description="PTL003 verify scenario: a training loop keeps every step's loss, graph included.",
            invariant="the autograd graph retained by the logged losses does not grow", diff=DIFF),
        Row("PTL009", "elementwise-item-loop", "cpu", "E0", PASS, "results bitwise equal", "v.py", ["PTL009"],
            noisy_bad, noisy_fixed, description="PTL009 scenario: per-element `.item()` reads."),
        Row("PTL024", "cudnn-benchmark-conflict", "cpu", "E1", SKIP, "needs CUDA", "t.py"),
        Row("PTL001", "missing-eval-mode", "cpu", "E2", FAIL, "the fixed variant breaks the invariant", "u.py"),
        Row("a_really_long_user_scenario_file_name.py", "user scenario", "cpu", "E2", FAIL, LONG_REASON, "w.py"),
    ]
    return Outcome(rows, "cpu", {"torch": "2.13.0", "cuda": False})


def test_table_fits_120_columns_with_a_legend():
    text = report.table(sample())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, "\n".join(line for line in lines if len(line) > 120)
    # memory growth is measured on CUDA only: no column for it here
    assert lines[0].split() == ["Rule", "Contract", "Verdict", "Time/step", "Syncs", "Peak", "mem", "Graph", "Detail"]
    assert lines[1].split() == ["PTL003", "E0", "PASS", "2.00x", "inf", "3.00x", "inf", "results", "bitwise", "equal"]
    assert lines[2].split()[:7] == ["PTL009", "E0", "PASS", "=", "2000x", "=", "n/a"]  # noise is "="
    assert lines[3].split()[:3] == ["PTL024", "E1", "n/a"] and lines[3].endswith("needs CUDA")
    assert lines[5].startswith("a_really_long_user_sc...") and lines[5].endswith("...")
    legend = text[text.index("Contracts:"):]
    for words in ("E0 results bitwise equal", "E1 results allclose", "E2 the bad variant breaks", "E3 with warnings",
                  "ratio bad / fixed", "above 1x the fix gains", "inf: the fixed variant has none left",
                  "=: no measurable change", "--wide"):
        assert words in " ".join(legend.split()), words
    assert lines[-1] == "2 passed, 2 failed, 1 n/a (device cpu, torch 2.13.0)"


def test_wide_table_has_every_column_in_full():
    lines = report.table(sample(), wide=True).splitlines()
    assert lines[0].split() == ["Rule", "Device", "Contract", "Verdict", "Time/step", "Syncs", "Peak", "mem",
                                "Mem", "growth", "Graph", "nodes", "Graph", "growth", "Detail"]
    assert lines[1].split()[:4] == ["PTL003", "cpu", "E0", "PASS"]
    assert "2.00ms -> 1.00ms (2.00x)" in lines[1]
    assert "4 -> 0 (inf)" in lines[1]
    assert "3.0MiB -> 1.0MiB (3.00x)" in lines[1]
    assert "120 -> 0 (inf)" in lines[1]
    assert "6.0/step -> 0.0/step (inf)" in lines[1]
    assert "1.20ms -> 1.00ms (=)" in lines[2] and "6000 -> 3 (2000x)" in lines[2]
    assert lines[5].endswith(LONG_REASON)
    assert lines[-1] == "2 passed, 2 failed, 1 n/a (device cpu, torch 2.13.0)"


def test_wide_flag_through_the_cli(monkeypatch):
    from ptlint.verify import harness

    monkeypatch.setattr(harness, "verify", lambda *a, **k: sample())
    narrow, wide = invoke(["--device", "cpu"], ROOT), invoke(["--device", "cpu", "--wide"], ROOT)
    assert narrow.exit_code == wide.exit_code == 1
    assert max(map(len, narrow.output.splitlines())) <= 120 < max(map(len, wide.output.splitlines()))
    assert LONG_REASON in wide.output and LONG_REASON not in narrow.output


def test_markdown_format():
    lines = report.markdown(sample()).splitlines()
    assert lines[0] == "| " + " | ".join(report.HEADERS) + " |"
    assert lines[1] == "|" + " --- |" * len(report.HEADERS)
    assert lines[2].startswith("| PTL003 | cpu | E0 | PASS | 2.00ms -> 1.00ms (2.00x) |")
    assert "Contracts: E0 results bitwise equal" in lines[-3]
    assert lines[-1] == "2 passed, 2 failed, 1 n/a (device cpu, torch 2.13.0)"


def test_json_ratios_are_numbers_or_null_with_an_infinite_flag():
    text = report.as_json(sample())
    assert '"inf"' not in text and "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    assert data["summary"] == {"passed": 2, "failed": 2, "skipped": 1}
    first = data["results"][0]
    assert first["code"] == "PTL003" and first["verdict"] == "PASS" and first["contract"] == "E0"
    assert first["description"].startswith("PTL003 verify scenario") and first["diff"] == DIFF
    assert first["invariant"] == "the autograd graph retained by the logged losses does not grow"
    m = first["metrics"]
    assert m["time_per_step"] | {"bad_spread": None} == {
        "bad": 0.002, "fixed": 0.001, "ratio": 2.0, "infinite": False, "change": "better",
        "bad_spread": None, "fixed_spread": None}
    assert m["syncs"]["ratio"] is None and m["syncs"]["infinite"] is True and m["syncs"]["change"] == "better"
    assert m["mem_growth"] == {"bad": None, "fixed": None, "ratio": None, "infinite": False, "change": None,
                               "bad_spread": None, "fixed_spread": None}
    second = data["results"][1]["metrics"]
    assert second["time_per_step"]["change"] == "same" and second["time_per_step"]["bad_spread"]["repeats"] == 3
    assert second["syncs"]["ratio"] == 2000.0 and second["peak_mem"]["change"] == "same"
    for result in data["results"]:
        for key, metric in result["metrics"].items():
            assert metric["ratio"] is None or type(metric["ratio"]) is float, (result["code"], key)
            assert type(metric["infinite"]) is bool
            assert metric["change"] in (None, "better", "worse", "same")
            assert not (metric["infinite"] and metric["ratio"] is not None)


def test_json_has_no_infinity_anywhere():
    outcome = sample()
    outcome.env["odd"] = float("inf")
    outcome.rows[0].bad["metrics"]["time_per_step"] = float("inf")
    data = json.loads(report.as_json(outcome))
    assert data["environment"]["odd"] is None and data["results"][0]["metrics"]["time_per_step"]["bad"] is None


@pytest.mark.parametrize(
    "key, bad, fixed, bad_runs, fixed_runs, expected",
    [
        ("time_per_step", 2.0, 1.0, None, None, "better"),  # one run, no spread: a 2x change counts
        ("time_per_step", 1.2, 1.0, None, None, "same"),  # one run: under 25% is noise
        ("time_per_step", 1.0, 2.0, [0.9, 1.0, 1.1], [1.9, 2.0, 2.1], "worse"),
        ("time_per_step", 1.0, 1.3, [0.8, 1.0, 1.5], [1.1, 1.3, 1.4], "same"),  # the runs overlap
        ("time_per_step", 1.0, 1.3, [0.7, 1.0, 1.15], [1.2, 1.3, 1.4], "same"),  # apart by less than they are wide
        ("time_per_step", 1.0, 1.05, [1.0, 1.0, 1.0], [1.05, 1.05, 1.05], "same"),  # under 10%
        ("time_per_step", 12.0, 1.0, [10.0, 12.0, 30.0], [0.9, 1.0, 1.1], "better"),  # an outlier run
        ("syncs", 20, 20, None, None, "same"),
        ("syncs", 20, 21, None, None, "worse"),  # exact counts: any difference
        ("syncs", 5, 0, None, None, "better"),
        ("peak_mem", 20 * 2**20, 20.5 * 2**20, None, None, "same"),  # under 1 MiB
        ("peak_mem", 30 * 2**20, 20 * 2**20, None, None, "better"),
        ("mem_growth", 512.0, 0.0, None, None, "same"),
        ("time_per_step", None, 1.0, None, None, None),
    ],
)
def test_changes_within_noise_are_no_measurable_change(key, bad, fixed, bad_runs, fixed_runs, expected):
    spreads = (runs(bad_runs), runs(fixed_runs)) if bad_runs else (None, None)
    assert report.change(key, bad, fixed, *spreads) == expected


def test_combine_takes_medians_over_runs_and_the_first_result():
    from ptlint.verify.compare import combine

    def run(t, syncs, status="ok"):
        return {"status": status, "result": {"x": t}, "metrics": {"time_per_step": t, "syncs": syncs}}

    got = combine([run(3.0, 7), run(1.0, 7), run(2.0, 7)])
    assert got["result"] == {"x": 3.0} and got["metrics"] == {"time_per_step": 2.0, "syncs": 7}
    assert got["spread"]["time_per_step"] | {} == {"median": 2.0, "q1": 1.5, "q3": 2.5, "min": 1.0, "max": 3.0,
                                                    "repeats": 3, "over": "runs"}
    assert combine([{"status": "raised", "error": "E"}, run(1.0, 1)])["status"] == "raised"
    assert combine([run(1.0, 1), {"status": "timeout", "error": "no result"}])["warnings"] == [
        "1 of 2 runs did not complete: timeout: no result"]


def test_html_report_tells_what_was_tested():
    page = report.html_report(sample())
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    section = page[page.index('<section class="rule pass" id="PTL003">'):]
    section = section[: section.index("</section>")]
    # the scenario's description and invariant, the contract in words, the fix as a diff
    assert "a training loop keeps every step&#x27;s loss, graph included." in section
    assert "the autograd graph retained by the logged losses does not grow" in section
    assert "E0: the results of both variants are bitwise equal" in section
    assert "the bad variant must break the invariant while the fixed one keeps it" in section
    assert '<span class="add">+    losses.append(loss.detach())</span>' in section
    assert '<span class="del">-    losses.append(loss)</span>' in section
    # measured figures with their spread; infinite ratios in words
    assert "none left after the fix (4 before)" in section and "2.00x faster" in section
    noisy = page[page.index('id="PTL009"'):]
    noisy = noisy[: noisy.index("</section>")]
    assert "median of 3 runs; range 1.00ms &ndash; 1.60ms" in noisy
    assert "no measurable change (within run-to-run noise)" in noisy and "2000x fewer host syncs" in noisy
    # the legend: contracts and the direction of the ratios
    assert "<dt>E3</dt>" in page and "Metrics read <b>bad / fixed</b>" in page
    assert '<td class="skip">n/a</td>' in page and "needs CUDA" in page


def test_html_chart_labels_infinite_and_large_ratios_and_leaves_out_noise():
    chart = report.svg_chart(sample())
    assert "PTL003 host syncs" in chart and "inf: none left" in chart  # 4 -> 0: to the edge, labelled
    assert "2000x (off scale)" in chart  # past 16x: an arrow and the value, not a clipped bar
    assert chart.count("<polygon") == 3  # PTL003 syncs and graph, PTL009 syncs
    assert "PTL009 time/step" not in chart and "PTL009 peak memory" not in chart  # within noise: no bar
    assert "PTL003 time/step" in chart and ">2.00x<" in chart


# -- running scenarios: needs torch ----------------------------------------------------------------

torch_needed = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("torch") is None, reason="torch is not installed"
)


@torch_needed
def test_founding_rules_verify_on_cpu(tmp_path):
    html = tmp_path / "report.html"
    result = invoke(["--device", "cpu", *FOUNDING, "--output-format", "json", "--report", str(html)], ROOT)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    got = {r["code"]: (r["contract"], r["verdict"], r["reason"]) for r in data["results"]}
    assert got == {
        "PTL001": ("E2", "PASS", "bad breaks the invariant; fixed keeps it"),
        "PTL002": ("E2", "PASS", "bad raised AttributeError: 'float' object has no attribute 'backward'; fixed keeps it"),
        "PTL003": ("E0", "PASS", "results bitwise equal; bad breaks the invariant, fixed keeps it"),
        "PTL004": ("E0", "PASS", "results bitwise equal; bad breaks the invariant, fixed keeps it"),
        "PTL005": ("E0", "PASS", "bad raised AssertionError: Torch not compiled with CUDA enabled (expected on cpu); fixed runs"),
        "PTL006": ("E3", "PASS", "bad raised UnpicklingError: Weights only load failed; fixed keeps it"),
    }
    by = {r["code"]: r for r in data["results"]}
    # PTL003: the bad loop's retained graph grows every step, the fixed one retains none.
    assert by["PTL003"]["metrics"]["graph_growth"]["bad"] > 0
    assert by["PTL003"]["metrics"]["graph_growth"]["fixed"] == 0
    assert by["PTL003"]["bad"]["steps"] == 50
    # PTL004: the module no longer keeps a graph after the step.
    assert by["PTL004"]["metrics"]["graph_nodes"]["bad"] > 0 == by["PTL004"]["metrics"]["graph_nodes"]["fixed"]
    # PTL002: the fixed loop trains like the reference loop.
    assert by["PTL002"]["fixed"]["invariant"] is True and by["PTL002"]["fixed"]["metrics"]["syncs"] > 0
    for row in data["results"]:
        assert row["fixed"]["metrics"]["time_per_step"] > 0
    assert "<svg" in html.read_text()


def extra_modules() -> dict[str, str]:
    """The `verify` extra of pyproject.toml: {distribution name: requirement}."""
    import re
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["verify"]
    return {re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower(): req for req in extra}


def acceptable_na(reason: str) -> bool:
    """n/a is fine for what a CPU cannot run, and for a module of the extra that this environment lacks."""
    if reason in ("needs CUDA", "needs 2 GPUs"):
        return True
    return any(reason.startswith((f"needs {m} (not installed)", f"{m} ")) for m in extra_modules())


@torch_needed
def test_every_fixable_rule_verifies_on_cpu():
    result = invoke(["--device", "cpu"], ROOT)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Rule  ")
    assert max(len(line) for line in lines) <= 120
    verdicts = {line.split()[0]: line.split()[2] for line in lines[1:] if line.startswith("PTL")}
    assert {name.split("/")[0] for name in verdicts} == {r.code for r in fixable_rules()}  # PTL010/index_tensors
    assert set(verdicts.values()) <= {PASS, SKIP}
    # n/a only where a CPU cannot run the scenario (or this environment lacks a module of the extra)
    skipped = sorted({c.split("/")[0] for c, v in verdicts.items() if v == SKIP})
    if skipped:  # n/a rows run nothing: this second call only reads their reasons
        data = json.loads(invoke(["--device", "cpu", "--output-format", "json", *skipped], ROOT).output)
        assert all(acceptable_na(r["reason"]) for r in data["results"] if r["verdict"] == SKIP), data["results"]


def test_the_verify_extra_has_what_the_scenarios_import():
    """`pip install 'ptlint[verify]'` then `ptlint verify --device cpu`: no scenario lacks a module."""
    import re
    import sys as _sys

    extra = extra_modules()
    readme_pin = re.search(r"pip install (torch==[\d.]+) -e", (ROOT / "README.md").read_text()).group(1)
    assert extra["torch"] == readme_pin  # the README's (and CI's) torch
    # torchvision pins its torch exactly: an open range could pull another (CUDA) torch
    assert re.fullmatch(r"torchvision==[\d.]+", extra["torchvision"])
    local = {path.name for path in ROOT.glob("fixtures/*/verify/*.py")}
    for scenario in SCENARIOS:
        tree = ast.parse(scenario.path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        third_party = {m for m in imported if m not in _sys.stdlib_module_names and f"{m}.py" not in local}
        # the bad variant may import what no longer exists (PTL016's pytorch_lightning.metrics)
        fixed = default_fixer(scenario.path.read_text(), str(scenario.path), scenario.rules)
        tree = ast.parse(fixed)
        needed = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        needed |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        missing = {m for m in needed & third_party if m not in extra and m != "ptlint"}
        assert not missing, f"{scenario.name} imports {missing}: add them to the verify extra"
        decl_needs = scenario.decl.get("needs") or ()
        for need in (decl_needs,) if isinstance(decl_needs, str) else decl_needs:
            assert need in ("cuda", "2gpus") or need in extra, f"{scenario.name}: NEEDS {need!r} is not in the extra"


def test_the_scenarios_ship_with_the_package():
    """Installed from a wheel, outside a checkout, `ptlint verify` still finds every scenario."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "ptlint.verify.bundled" in config["packages"]
    assert config["package-dir"]["ptlint.verify.bundled"] == "fixtures"
    patterns = config["package-data"]["ptlint.verify.bundled"]
    for scenario in SCENARIOS:
        rel = scenario.path.relative_to(FIXTURES).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
    # and the lookup falls back to the installed copy when there is no checkout beside the code
    source = (ROOT / "src/ptlint/verify/scenario.py").read_text()
    assert 'Path(__file__).resolve().parent / "bundled"' in source


@torch_needed
def test_a_needed_module_that_is_installed_but_broken_is_na_with_the_reason(tmp_path, monkeypatch):
    """A CUDA build of torchvision beside a CPU-only torch fails at import: say so, do not fail the contract."""
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "ptlint_broken_dependency.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    (tmp_path / "mine.py").write_text(USER_SCENARIO.replace("import torch\n", 'import torch\n\nNEEDS = "ptlint_broken_dependency"\n', 1))
    monkeypatch.syspath_prepend(str(tmp_path / "deps"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "deps"))
    outcome = verify([], "cpu", scenario_paths=[tmp_path / "mine.py"], jobs=1, repeats=1)
    assert [(r.verdict, r.reason) for r in outcome.rows] == [(SKIP, (
        "ptlint_broken_dependency is installed but does not import with torch "
        f"{outcome.env['torch']}: RuntimeError: operator torchvision::nms does not exist"))]


def broken_fixer(text, path, rules):
    """ptlint's fixer, broken on purpose: drops the inserted eval(), flips a sign, or does nothing."""
    fixed = default_fixer(text, path, rules)
    code = rules[0].code
    if code == "PTL001":
        return "".join(line for line in fixed.splitlines(keepends=True) if line.strip() != "model.eval()")
    if code == "PTL003":
        return fixed.replace("losses.append(loss.detach())", "losses.append(-loss.detach())")
    return text


@torch_needed
def test_a_broken_fixer_makes_verify_fail():
    outcome = verify(["PTL001", "PTL003", "PTL004"], "cpu", steps=5, fixer=broken_fixer, jobs=2, repeats=1)
    got = {r.name: (r.verdict, r.reason) for r in outcome.rows}
    assert [r.bad["steps"] for r in outcome.rows if r.name == "PTL003"] == [5]
    assert got["PTL001"] == (FAIL, "the fixed variant breaks the invariant")
    assert got["PTL003"][0] == FAIL and got["PTL003"][1].startswith("results differ: result['losses']")
    assert got["PTL004"] == (FAIL, "the fix does not apply: the fixer changed nothing")
    assert outcome.failed


USER_SCENARIO = '''import torch
from torch import nn


def run(device):
    torch.manual_seed(0)
    model = nn.Linear(4, 1).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = []
    for _ in range(5):
        loss = model(torch.randn(8, 4, device=device)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss)
    return {"history": torch.stack(history).detach()}
'''

CLEAN_SCENARIO = '''import torch


def run(device):
    return {"x": torch.ones(2, device=device)}
'''

CUDA_SCENARIO = 'import torch\n\nNEEDS = "cuda"\n\n\ndef run(device):\n    return {"x": torch.ones(1).cuda()}\n'


@torch_needed
def test_user_scenarios_in_separate_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("PTLINT_VERIFY_ISOLATION", "spawn")  # the path taken where os.fork is missing
    (tmp_path / "mine.py").write_text(USER_SCENARIO)
    (tmp_path / "clean.py").write_text(CLEAN_SCENARIO)
    (tmp_path / "gpu.py").write_text(CUDA_SCENARIO)
    args = ["--device", "cpu", "--jobs", "1", "--output-format", "json", "--repeats", "1"]
    result = invoke([*args, "--scenario", "mine.py", "--scenario", "clean.py", "--scenario", "gpu.py"], tmp_path)
    assert result.exit_code == 1, result.output
    got = {r["code"]: (r["contract"], r["verdict"], r["reason"], r["fixed_codes"]) for r in json.loads(result.output)["results"]}
    assert got == {
        "mine.py": ("E0", "PASS", "results bitwise equal", ["PTL003"]),
        "clean.py": ("E0", "FAIL", "any rule reports nothing in the scenario", []),
        "gpu.py": ("E0", "n/a", "needs CUDA", []),
    }
    assert not list(tmp_path.glob("*.fixed*")), "the user's files are never changed"
    assert (tmp_path / "mine.py").read_text() == USER_SCENARIO


@torch_needed
def test_cuda_device_without_cuda_is_a_usage_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = invoke(["--device", "cuda", "PTL005", "PTL001"], ROOT)
    assert result.exit_code == 2, result.output
    assert "ptlint: error: CUDA is not available: torch " in result.output
    assert "--device cpu" in result.output and "PTL001" not in result.output
    assert invoke(["--device", "cuda", "--output-format", "json", "PTL001"], ROOT).exit_code == 2


@torch_needed
def test_the_fork_server_does_not_poison_cuda_for_its_children():
    """warm() must not ask the CUDA runtime anything: a child forked after it could not use CUDA."""
    script = (
        "import os\n"
        "from ptlint.verify import worker\n"
        "worker.warm()\n"
        "import torch\n"
        "assert os.environ['PYTORCH_NVML_BASED_CUDA_CHECK'] == '1'\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(3 if torch.cuda._is_in_bad_fork() else 0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.WEXITSTATUS(status))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_NVML_BASED_CUDA_CHECK"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr


def test_cuda_unavailable_message():
    from ptlint.verify.harness import cuda_unavailable

    assert cuda_unavailable({"torch": "2.13.0+cpu", "cuda_build": None}) == (
        "CUDA is not available: torch 2.13.0+cpu is built without CUDA; use --device cpu (or --device auto)")
    assert "torch 2.13.0 finds no CUDA device" in cuda_unavailable({"torch": "2.13.0", "cuda_build": "13.0"})


@torch_needed
def test_cuda_paths_on_a_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    result = invoke(["--device", "cuda", "PTL005", "PTL003", "--output-format", "json"], ROOT)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["code"]: r["verdict"] for r in data["results"]} == {"PTL003": PASS, "PTL005": PASS}
    assert all(r["bad"]["metrics"]["mem_growth"] is not None for r in data["results"] if r["code"] == "PTL003")


SLEEPY_SCENARIO = '''import time

import torch


def run(device):
    x = torch.ones(2).cuda()
    time.sleep(30)
    return {"x": x}
'''


@torch_needed
def test_a_variant_past_its_timeout_fails(tmp_path):
    (tmp_path / "sleepy.py").write_text(SLEEPY_SCENARIO)
    outcome = verify([], "cpu", scenario_paths=[tmp_path / "sleepy.py"], jobs=1, timeout=2, repeats=1)
    assert [(r.verdict, r.reason) for r in outcome.rows] == [(FAIL, "the fixed variant timeout: no result within 2 s")]


def test_missing_torch_exits_2_with_the_pip_hint():
    script = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from ptlint.cli import main\n"
        "sys.argv = ['ptlint', 'verify', '--device', 'cpu', 'PTL001']\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'ptlint[verify]'" in proc.stderr


def test_unknown_rule_is_a_usage_error():
    result = invoke(["PTL999"], ROOT)
    assert result.exit_code == 2
