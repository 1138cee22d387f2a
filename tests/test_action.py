"""The composite GitHub Action: its shape, and its `Run ptlint` step executed with bash as a runner would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

yaml = pytest.importorskip("yaml")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

BAD = "import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, 'm.pt')\n"
CLEAN = "import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model.state_dict(), 'm.pt')\n"


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def step(action: dict, name: str) -> dict:
    return next(s for s in action["runs"]["steps"] if s.get("name") == name)


def test_action_is_a_composite_that_uploads_sarif(action):
    assert action["runs"]["using"] == "composite"
    upload = step(action, "Upload SARIF")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    for s in action["runs"]["steps"]:
        if "run" in s:
            assert s["shell"] == "bash"
            assert "${{" not in s["run"], "inputs reach scripts through env, never by text substitution"


def run_check_step(action: dict, cwd: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the `Run ptlint` step's script the way a runner does (bash -e -o pipefail), inputs from env."""
    values = {name: spec.get("default", "") for name, spec in action["inputs"].items()} | inputs
    s = step(action, "Run ptlint")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
    for key, template in s["env"].items():
        env[key] = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], template)
    output = cwd / "github_output"
    output.write_text("")
    env.update(GITHUB_OUTPUT=str(output), GITHUB_ACTIONS="true", CI="true")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s["run"]], cwd=cwd, env=env, capture_output=True, text=True
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return proc, outputs


def test_run_step_writes_sarif_and_annotations(action, tmp_path):
    (tmp_path / "train.py").write_text(BAD)
    proc, outputs = run_check_step(action, tmp_path, args="--select PTL006 --no-cache")
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"exit-code": "1"}
    assert proc.stdout == (
        "::warning file=train.py,line=3,col=12,endLine=3,endColumn=17,title=PTL006 (save-whole-model)::"
        "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
    )
    sarif = json.loads((tmp_path / "ptlint.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["PTL006"]


def test_run_step_on_a_clean_project(action, tmp_path):
    (tmp_path / "train.py").write_text(CLEAN)
    proc, outputs = run_check_step(action, tmp_path, args="--select PTL006 --no-cache", **{"sarif-file": "out/report.sarif"})
    assert (proc.returncode, outputs) == (0, {"exit-code": "0"}), proc.stderr
    assert json.loads((tmp_path / "out/report.sarif").read_text())["runs"][0]["results"] == []
