"""PTL015, PTL037, PTL039, PTL040 beyond their fixtures: target versions, rule interplay, determinism."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import SRC, check_concise

from ptlint.api import lint_text, parses
from ptlint.registry import all_rules

AMP = """import torch

scaler = torch.cuda.amp.GradScaler(enabled=True)
with torch.cuda.amp.autocast(dtype=torch.bfloat16):
    pass
"""


def rules(*codes: str):
    return [r for r in all_rules() if r.code in codes]


def test_target_version_withholds_grad_scaler_fix(tmp_path):
    (tmp_path / "train.py").write_text(AMP)
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint]\ntarget-torch-version = "2.1"\n')
    result = check_concise(tmp_path, "--select", "PTL015", "--fix")
    assert result.output.splitlines() == [
        "train.py:3:10: PTL015 `torch.cuda.amp.GradScaler` is deprecated; "
        'use `torch.amp.GradScaler` with device type "cuda"'
        " (fix withheld: torch.amp.GradScaler needs torch 2.3, target-torch-version is 2.1)"
    ]
    assert (tmp_path / "train.py").read_text() == AMP.replace(
        "torch.cuda.amp.autocast(dtype", 'torch.amp.autocast("cuda", dtype'
    )


def test_project_pin_withholds_fix(tmp_path):
    (tmp_path / "train.py").write_text(AMP)
    (tmp_path / "requirements.txt").write_text("numpy\ntorch>=1.9\n")
    result = check_concise(tmp_path, "--select", "PTL015")
    assert result.output.splitlines() == [
        "train.py:3:10: PTL015 `torch.cuda.amp.GradScaler` is deprecated; "
        'use `torch.amp.GradScaler` with device type "cuda"'
        " (fix withheld: torch.amp.GradScaler needs torch 2.3, the project's torch pin is 1.9)",
        'train.py:4:6: PTL015 `torch.cuda.amp.autocast` is deprecated; use `torch.amp.autocast` with device type "cuda"'
        " (fix withheld: torch.amp.autocast needs torch 1.10, the project's torch pin is 1.9)",
    ]


def test_import_group_is_withheld_for_old_target(tmp_path):
    source = "from torch.cuda.amp import GradScaler, autocast\n\nscaler = GradScaler()\nwith autocast():\n    pass\n"
    (tmp_path / "a.py").write_text(source)
    (tmp_path / "ptlint.toml").write_text('target-torch-version = "2.2"\n')
    result = check_concise(tmp_path, "--select", "PTL015", "--fix")
    assert result.exit_code == 1
    assert (tmp_path / "a.py").read_text() == source
    assert all("fix withheld: torch.amp.GradScaler needs torch 2.3" in line for line in result.output.splitlines())


def test_volatile_then_variable_then_import():
    source = (
        "import torch\n"
        "from torch.autograd import Variable\n"
        "\n"
        "\n"
        "def evaluate(model, batch):\n"
        "    x = Variable(batch, volatile=True)\n"
        "    return model(x).argmax(1)\n"
    )
    result = lint_text(source, "a.py", rules("PTL039", "PTL040"), fix=True, unsafe=True)
    assert result.text == (
        "import torch\n"
        "\n"
        "\n"
        "def evaluate(model, batch):\n"
        "    with torch.no_grad():\n"
        "        x = batch\n"
        "        return model(x).argmax(1)\n"
    )
    assert result.findings == [] and not result.errors
    safe = lint_text(source, "a.py", rules("PTL039", "PTL040"), fix=True)
    assert safe.text == source  # both fixes wait for the unsafe no_grad block
    assert [(f.code, f.start.line) for f in safe.findings] == [("PTL039", 6), ("PTL040", 6)]


def test_variable_around_legacy_constructor():
    source = "import torch\nfrom torch.autograd import Variable\n\nx = Variable(torch.LongTensor([[1, 2]])).t()\n"
    result = lint_text(source, "a.py", rules("PTL037", "PTL039"), fix=True)
    assert result.text == "import torch\n\nx = torch.tensor([[1, 2]], dtype=torch.long).t()\n"
    assert result.findings == [] and parses(result.text)


def test_default_dtype_change_blocks_data_fix():
    source = (
        "import torch\ntorch.set_default_dtype(torch.float64)\n\n\n"
        "def f(xs):\n    xs = list(xs)\n    return torch.Tensor(xs), torch.Tensor([1, 2])\n"
    )
    result = lint_text(source, "a.py", rules("PTL037"), fix=True)
    assert result.text == source.replace("torch.Tensor([1, 2])", "torch.tensor([1.0, 2.0])")
    assert [f.message for f in result.findings] == [
        "`torch.Tensor(...)` is a legacy constructor; no automatic fix: the argument may be data "
        "(use `torch.tensor`) or a size (use `torch.empty`)"
    ]


def test_legacy_constructor_values_match():
    import torch

    pairs = [
        (torch.Tensor([1, 2, -3]), torch.tensor([1.0, 2.0, -3.0])),
        (torch.LongTensor([1.7, -2.5]), torch.tensor([1.7, -2.5], dtype=torch.long)),
        (torch.ByteTensor([[1, 0]]), torch.tensor([[1, 0]], dtype=torch.uint8)),
        (torch.Tensor(), torch.empty(0)),
    ]
    for old, new in pairs:
        assert old.dtype == new.dtype and torch.equal(old, new)


def test_same_findings_under_any_hash_seed(tmp_path):
    source = (
        "import torch\n"
        "try:\n"
        "    from torch.amp import GradScaler\n"
        "except ImportError:\n"
        "    from torch.cuda.amp import GradScaler\n"
        "from torch.cuda import amp\n"
        "from torch.autograd import Variable\n"
        "s = GradScaler('cuda')\n"
        "t = amp.GradScaler()\n"
        "v = Variable(torch.Tensor([1]), volatile=True)\n"
        "print(v)\n"
    )
    path = tmp_path / "a.py"
    path.write_text(source)
    outputs = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
        cmd = [sys.executable, "-m", "ptlint", "check", "--no-cache", "--output-format", "concise",
               "--select", "PTL015,PTL037,PTL039,PTL040", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    lines = [line.split(" ")[0:2] for line in outputs.pop().splitlines() if "PTL" in line]
    assert [code for _, code in lines] == ["PTL015", "PTL015", "PTL039", "PTL037", "PTL040"]
