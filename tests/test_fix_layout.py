"""How fixed code is laid out (issue 19): the project's line length, a blank line after the imports,
readable helper names, no `.detach()` under a `no_grad` the same run adds, device indices kept."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

from ptlint.api import lint_text
from ptlint.config import line_length_for
from ptlint.registry import by_code_or_name
from ptlint.wrap import grown_lines, wrap_long_lines

LOADER = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader
    from mydata import load


    def main(args):
        train_dataset = load(args.data)
        train_loader = DataLoader(train_dataset, batch_size=args.batch_size, shuffle=True)
        return train_loader
    """
)


def fixed(source: str, *codes: str, path: str = "train.py", **kw) -> str:
    rules = [by_code_or_name(c) for c in codes]
    result = lint_text(source, path, rules, fix=True, unsafe=True, **kw)
    assert not result.errors, result.errors
    again = lint_text(result.text, path, rules, fix=True, unsafe=True, **kw)
    assert again.text == result.text, "a second fix must change nothing"
    return result.text


# --- line length --------------------------------------------------------------------------------


def test_ptl013_fix_stays_within_88_columns():
    text = fixed(LOADER, "PTL013")
    assert max(len(line) for line in text.splitlines()) <= 88
    assert "    train_loader = DataLoader(\n        train_dataset,\n        batch_size=args.batch_size,\n" in text
    assert "        persistent_workers=True,\n    )\n    return train_loader\n" in text


def test_line_length_comes_from_ruff_or_black(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 200\n")
    (tmp_path / "train.py").write_text(LOADER)
    assert line_length_for(tmp_path) == 200
    result = run_cli(["check", "--no-cache", "--select", "PTL013", "--fix", "--unsafe-fixes"], tmp_path)
    assert result.exit_code == 0
    assert "    train_loader = DataLoader(train_dataset, batch_size=args.batch_size, shuffle=True, num_workers=4, " in (
        tmp_path / "train.py"
    ).read_text()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ruff.toml").write_text("line-length = 100\n")
    assert line_length_for(tmp_path / "sub") == 100
    (tmp_path / "sub" / "train.py").write_text(LOADER)
    run_cli(["check", "--no-cache", "--select", "PTL013", "--fix", "--unsafe-fixes"], tmp_path / "sub")
    text = (tmp_path / "sub" / "train.py").read_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\n        train_dataset, batch_size=args.batch_size, shuffle=True, num_workers=4, " not in text


def test_ruff_line_length_wins_over_black_and_defaults_to_88(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 120\n[tool.black]\nline-length = 100\n")
    assert line_length_for(tmp_path) == 120
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert line_length_for(tmp_path / "x") == 120  # a pyproject without either: the one above
    assert line_length_for(Path("/")) == 88


def test_wrap_compact_form_when_it_fits():
    before = "x = f(a)\n"
    after = "x = f(a, " + ", ".join(f"k{i}={i}" for i in range(13)) + ")\n"
    assert wrap_long_lines(before, after, 90) == "x = f(\n    a, " + ", ".join(f"k{i}={i}" for i in range(13)) + "\n)\n"


def test_wrap_leaves_old_long_lines_comments_and_unwrappable_code_alone():
    long_old = "y = g(" + "a, " * 40 + "b)\n"
    assert wrap_long_lines(long_old, long_old + "z = 1\n", 88) == long_old + "z = 1\n"
    commented = "x = f(a, b)  # " + "c" * 90 + "\n"
    assert grown_lines("x = f(a)  # " + "c" * 90 + "\n", commented, 88) == set()
    inside = "x = 1 + f(" + ", ".join(f"k{i}={i}" for i in range(14)) + ")\n"
    assert wrap_long_lines("x = 1\n", inside, 88) == inside  # not the statement's value: left as is
    fstring = 'x = f"{g(' + ", ".join(f"k{i}={i}" for i in range(14)) + ')}"\n'
    assert wrap_long_lines("x = 1\n", fstring, 88) == fstring


# --- inserted statements ------------------------------------------------------------------------


def test_seed_after_the_imports_is_set_off_by_a_blank_line():
    source = textwrap.dedent(
        """\
        import torch

        w = torch.randn(3, requires_grad=True)
        for step in range(10):
            loss = (w * 2).sum()
            loss.backward()
            torch.optim.SGD([w], lr=0.1).step()
        """
    )
    text = fixed(source, "PTL023")
    assert text.startswith("import torch\n\ntorch.manual_seed(0)\n\nw = torch.randn(3")


def test_inserted_import_joins_the_import_block():
    source = "import torch\n\nx = torch.zeros(2).cuda()\n"
    text = fixed(source, "PTL005")
    assert text.startswith("import torch\n\ndevice = torch.device(")
    assert "\n\n\ndevice" not in text


def test_no_ptl_prefixed_names_in_fixed_code():
    source = textwrap.dedent(
        """\
        import torch


        def validate(model, loader):
            was_training = "taken"
            outs = []
            with torch.no_grad():
                for x in loader:
                    outs.append(model(x))
            return outs, was_training


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()

            def forward(self, x):
                return torch.nn.Linear(4, 4)(x)
        """
    )
    text = fixed(source, "PTL001", "PTL025")
    assert "_ptl_" not in text
    assert "was_training_2 = model.training" in text and "model.train(was_training_2)" in text
    assert "self.linear = torch.nn.Linear(4, 4)" in text


def test_no_detach_under_a_no_grad_the_same_run_adds():
    source = textwrap.dedent(
        """\
        import torch


        def evaluate(model, loader):
            model.eval()
            outputs = []
            total = 0
            for x, y in loader:
                out = model(x)
                outputs.append(out)
                total += torch.nn.functional.cross_entropy(out, y)
            return outputs, total
        """
    )
    text = fixed(source, "PTL003", "PTL027")
    assert "@torch.no_grad()\ndef evaluate" in text
    assert ".detach()" not in text and ".item()" not in text


# --- PTL005 and device indices --------------------------------------------------------------------


@pytest.mark.parametrize("index", ["cuda:1", "cuda:0"])
def test_ptl005_keeps_an_explicit_device_index(index):
    source = f'import torch\n\nx = torch.zeros(2)\ny = x.to("{index}")\nz = torch.ones(2, device="{index}")\n'
    text = fixed(source, "PTL005")
    assert f'x.to("{index}" if torch.cuda.is_available() else "cpu")' in text
    assert f'device="{index}" if torch.cuda.is_available() else "cpu"' in text
    assert "torch.device(" not in text


def test_ptl005_still_uses_the_device_variable_without_an_index():
    source = 'import torch\n\ndevice = torch.device("cpu")\nx = torch.zeros(2).to("cuda")\n'
    assert "x = torch.zeros(2).to(device)" in fixed(source, "PTL005")


def test_rules_that_add_no_grad_fix_first():
    assert [r for r in ("PTL027", "PTL040") if not by_code_or_name(r).fix_first] == []
