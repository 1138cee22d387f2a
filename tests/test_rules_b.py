"""PTL014, PTL018, PTL019, PTL020: behaviour that the fixtures cannot show (target versions, file names)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from conftest import check_concise

from ptlint.callargs import append_keyword
from ptlint.facts import versions

LOAD = "import torch\n\n\ndef restore(path):\n    return torch.load(path, map_location='cpu')\n"
CHECKPOINT = "from torch.utils.checkpoint import checkpoint\n\n\ndef f(block, x):\n    return checkpoint(block, x)\n"
PRETRAINED = "from torchvision import models\n\nnet = models.resnet18(pretrained=True)\n"


def _project(tmp_path: Path, source: str, target: str | None = None, requirements: str | None = None) -> Path:
    versions.project_pin.cache_clear()
    if target is not None:
        (tmp_path / "pyproject.toml").write_text(f'[tool.ptlint]\ntarget-torch-version = "{target}"\n')
    if requirements is not None:
        (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "train.py").write_text(source)
    return tmp_path


def _check(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = check_concise(tmp_path, "--no-cache", *args)
    return result.exit_code, result.output


def test_load_silent_when_target_defaults_to_weights_only(tmp_path: Path) -> None:
    _project(tmp_path, LOAD, target="2.6")
    assert _check(tmp_path, "--select", "PTL019") == (0, "")


def test_load_message_names_the_configured_target(tmp_path: Path) -> None:
    _project(tmp_path, LOAD, target="2.1")
    code, out = _check(tmp_path, "--select", "PTL019", "--unsafe-fixes")
    assert code == 1
    assert out == (
        "train.py:5:12: PTL019 [*] `torch.load` without `weights_only=True` unpickles arbitrary objects "
        "(target-torch-version is 2.1)\n"
    )


def test_load_fix_withheld_before_weights_only_existed(tmp_path: Path) -> None:
    _project(tmp_path, LOAD, target="1.8")
    code, out = _check(tmp_path, "--select", "PTL019", "--fix", "--unsafe-fixes")
    assert code == 1
    assert out == (
        "train.py:5:12: PTL019 `torch.load` without `weights_only=True` unpickles arbitrary objects "
        "(target-torch-version is 1.8); fix withheld: `weights_only` needs torch 1.13, target-torch-version is 1.8\n"
    )
    assert (tmp_path / "train.py").read_text() == LOAD


def test_load_reads_the_project_pin(tmp_path: Path) -> None:
    _project(tmp_path, LOAD, requirements="torch>=1.13.1\n")
    code, out = _check(tmp_path, "--select", "PTL019", "--fix", "--unsafe-fixes")
    assert code == 0
    assert out == ""
    fixed = LOAD.replace("map_location='cpu')", "map_location='cpu', weights_only=True)")
    assert (tmp_path / "train.py").read_text() == fixed


def test_load_pin_at_or_after_2_6_is_silent(tmp_path: Path) -> None:
    _project(tmp_path, LOAD, requirements="torch>=2.6\n")
    assert _check(tmp_path, "--select", "PTL019") == (0, "")


def test_pickle_module_reported_even_on_new_torch(tmp_path: Path) -> None:
    _project(tmp_path, "import dill\nimport torch\n\nx = torch.load('a.pt', pickle_module=dill)\n", target="2.8")
    code, out = _check(tmp_path, "--select", "PTL019")
    assert code == 1
    assert out.startswith("train.py:4:5: PTL019 `torch.load` with `pickle_module=`")


def test_checkpoint_fix_withheld_before_use_reentrant(tmp_path: Path) -> None:
    _project(tmp_path, CHECKPOINT, target="1.10")
    code, out = _check(tmp_path, "--select", "PTL020", "--fix", "--unsafe-fixes")
    assert code == 1
    assert out.endswith("withheld: `checkpoint(use_reentrant=...)` needs torch 1.11, target-torch-version is 1.10\n")
    assert (tmp_path / "train.py").read_text() == CHECKPOINT


def test_checkpoint_sequential_needs_torch_2(tmp_path: Path) -> None:
    source = "from torch.utils.checkpoint import checkpoint_sequential as cs\n\ny = cs(seq, 2, x)\n"
    _project(tmp_path, source, requirements="torch==1.13.1\n")
    code, out = _check(tmp_path, "--select", "PTL020")
    assert code == 1
    assert out.endswith("needs torch 2.0, the project's torch pin is 1.13\n")


def test_pretrained_fix_withheld_before_torchvision_0_13(tmp_path: Path) -> None:
    _project(tmp_path, PRETRAINED, target="1.11")
    code, out = _check(tmp_path, "--select", "PTL018", "--fix")
    assert code == 1
    assert out.endswith("fix withheld: `weights=` needs torchvision 0.13 (torch 1.12), target-torch-version is 1.11\n")


def test_pretrained_safe_fix(tmp_path: Path) -> None:
    _project(tmp_path, PRETRAINED)
    assert _check(tmp_path, "--select", "PTL018", "--fix") == (0, "")
    assert (tmp_path / "train.py").read_text() == PRETRAINED.replace(
        "pretrained=True", "weights=models.ResNet18_Weights.IMAGENET1K_V1"
    )


@pytest.mark.parametrize("name", ["test_parallel.py", "parallel_test.py", "conftest.py"])
def test_dataparallel_silent_in_test_files(tmp_path: Path, name: str) -> None:
    source = "import torch\n\nm = torch.nn.DataParallel(model)\nm(x).sum().backward()\n"
    (tmp_path / name).write_text(source)
    assert _check(tmp_path, "--select", "PTL014") == (0, "")
    (tmp_path / name).rename(tmp_path / "train.py")
    code, out = _check(tmp_path, "--select", "PTL014")
    assert (code, out.split(": PTL014")[0]) == (1, "train.py:3:5")


@pytest.mark.parametrize(
    "source, expected",
    [
        ("f(a)", "f(a, k=True)"),
        ("f()", "f(k=True)"),
        ("f(a, )", "f(a, k=True, )"),
        ("f(a, b = 1)", "f(a, b = 1, k = True)"),
        ("f(\n    a,\n    b,\n)", "f(\n    a,\n    b,\n    k=True,\n)"),
        ("f(\n    a  # note\n)", "f(\n    a,  # note\n    k=True\n)"),
        ("f(a,\n  b)", "f(a,\n  b,\n  k=True)"),
    ],
)
def test_append_keyword_keeps_layout(source: str, expected: str) -> None:
    module = cst.parse_module(source)
    call = module.body[0].body[0].value  # type: ignore[attr-defined]
    assert module.code_for_node(append_keyword(call, "k", cst.Name("True"))) == expected


def test_parameter_named_torch_is_not_the_module(tmp_path: Path) -> None:
    """Issue 15, defect 4: `def restore(torch, path): torch.load(path)` loads with whatever was passed."""
    shadowed = (
        "import torch\n\n\ndef restore(torch, path):\n    return torch.load(path)\n\n\n"
        "def export(torch, model, path):\n    torch.save(model, path)\n"
    )
    _project(tmp_path, shadowed)
    assert _check(tmp_path, "--select", "PTL006,PTL019") == (0, "")
    # The same calls through the imported module are reported.
    _project(tmp_path, shadowed.replace("(torch, ", "("))
    code, out = _check(tmp_path, "--select", "PTL006,PTL019")
    assert code == 1
    assert [line.split(" ")[1] for line in out.splitlines() if line.startswith("train.py:")] == ["PTL019", "PTL006"]
