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


def sample() -> Outcome:
    bad = {"status": "ok", "metrics": {"time_per_step": 0.002, "syncs": 4, "peak_mem": 3 * 2**20,
                                       "graph_nodes": 120, "graph_growth": 6.0}}
    fixed = {"status": "ok", "metrics": {"time_per_step": 0.001, "syncs": 0, "peak_mem": 2**20,
                                         "graph_nodes": 0, "graph_growth": 0.0}}
    rows = [
        Row("PTL003", "graph-retaining-accumulation", "cpu", "E0", PASS, "results bitwise equal", "s.py", ["PTL003"], bad, fixed),
        Row("PTL024", "cudnn-benchmark-conflict", "cpu", "E1", SKIP, "needs CUDA", "t.py"),
        Row("PTL001", "missing-eval-mode", "cpu", "E2", FAIL, "the fixed variant breaks the invariant", "u.py"),
    ]
    return Outcome(rows, "cpu", {"torch": "2.13.0", "cuda": False})


def test_table_format():
    lines = report.table(sample()).splitlines()
    assert lines[0].split() == ["Rule", "Device", "Contract", "Verdict", "Time/step", "Syncs", "Peak", "mem",
                                "Mem", "growth", "Graph", "nodes", "Graph", "growth", "Detail"]
    assert lines[1].split()[:4] == ["PTL003", "cpu", "E0", "PASS"]
    assert "2.00ms -> 1.00ms (2.00x)" in lines[1]
    assert "4 -> 0 (inf)" in lines[1]
    assert "3.0MiB -> 1.0MiB (3.00x)" in lines[1]
    assert "120 -> 0 (inf)" in lines[1]
    assert "6.0/step -> 0.0/step" in lines[1]
    assert lines[2].split()[:4] == ["PTL024", "cpu", "E1", "n/a"] and lines[2].endswith("needs CUDA")
    assert lines[-1] == "1 passed, 1 failed, 1 n/a (device cpu, torch 2.13.0)"


def test_markdown_format():
    lines = report.markdown(sample()).splitlines()
    assert lines[0] == "| " + " | ".join(report.HEADERS) + " |"
    assert lines[1] == "|" + " --- |" * len(report.HEADERS)
    assert lines[2].startswith("| PTL003 | cpu | E0 | PASS | 2.00ms -> 1.00ms (2.00x) |")
    assert lines[-1] == "1 passed, 1 failed, 1 n/a (device cpu, torch 2.13.0)"


def test_json_format():
    data = json.loads(report.as_json(sample()))
    assert data["summary"] == {"passed": 1, "failed": 1, "skipped": 1}
    first = data["results"][0]
    assert first["code"] == "PTL003" and first["verdict"] == "PASS" and first["contract"] == "E0"
    assert first["metrics"]["time_per_step"] == {"bad": 0.002, "fixed": 0.001, "ratio": 2.0}
    assert first["metrics"]["syncs"] == {"bad": 4, "fixed": 0, "ratio": "inf"}
    assert first["metrics"]["mem_growth"] == {"bad": None, "fixed": None, "ratio": None}


def test_html_report_has_an_svg_chart():
    page = report.html_report(sample())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1 and "PTL003 time/step" in page and "<td>PTL024</td>" in page


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


@torch_needed
def test_every_fixable_rule_verifies_on_cpu():
    result = invoke(["--device", "cpu"], ROOT)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Rule  ")
    verdicts = {line.split()[0]: line.split()[3] for line in lines[1:] if line.startswith("PTL")}
    assert set(verdicts) == {r.code for r in fixable_rules()}
    assert set(verdicts.values()) <= {PASS, SKIP}


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
    outcome = verify(["PTL001", "PTL003", "PTL004"], "cpu", steps=5, fixer=broken_fixer, jobs=2)
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
    args = ["--device", "cpu", "--jobs", "1", "--output-format", "json"]
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
def test_cuda_device_is_skipped_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = invoke(["--device", "cuda", "PTL005", "PTL001"], ROOT)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:3]]
    assert [r[:4] for r in rows] == [["PTL001", "cuda", "E2", "n/a"], ["PTL005", "cuda", "E0", "n/a"]]
    assert result.output.splitlines()[1].endswith("CUDA is not available")


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
    outcome = verify([], "cpu", scenario_paths=[tmp_path / "sleepy.py"], jobs=1, timeout=2)
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
