"""PTL021, PTL025, PTL031, PTL034 beyond their fixtures: file paths and repeated fixes."""

from __future__ import annotations

from ptlint.api import lint_text
from ptlint.registry import all_rules

RULES = {r.code: r for r in all_rules()}

ANOMALY = """import torch


def train(model, loader, optimizer):
    torch.autograd.set_detect_anomaly(True)
    for x in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
"""


def _found(text: str, path: str, code: str) -> list[tuple[int, int, str]]:
    result = lint_text(text, path, [RULES[code]])
    assert not result.errors
    return [(f.start.line, f.start.column, f.code) for f in result.findings]


def test_debug_api_is_reported_in_a_training_script() -> None:
    assert _found(ANOMALY, "train.py", "PTL034") == [(5, 5, "PTL034")]


def test_debug_api_is_silent_in_test_files() -> None:
    for path in ("tests/test_train.py", "pkg/test/helpers.py", "train_test.py", "conftest.py"):
        assert _found(ANOMALY, path, "PTL034") == [], path


def test_two_layers_in_forward_get_distinct_names() -> None:
    text = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self._ptl_0 = nn.Identity()

    def forward(self, x):
        return nn.Linear(4, 4)(nn.Linear(4, 4)(self._ptl_0(x)))
"""
    result = lint_text(text, "net.py", [RULES["PTL025"]], fix=True, unsafe=True)
    assert "self.linear = nn.Linear(4, 4)" in result.text
    assert "self.linear_2 = nn.Linear(4, 4)" in result.text
    assert "return self.linear_2(self.linear(self._ptl_0(x)))" in result.text or "return self.linear(self.linear_2(self._ptl_0(x)))" in result.text
    assert "self._ptl_1" not in result.text and "self._ptl_2" not in result.text
    again = lint_text(result.text, "net.py", [RULES["PTL025"]], fix=True, unsafe=True)
    assert again.text == result.text and not again.findings


def test_zero_grad_fix_for_two_optimizers_is_stable() -> None:
    text = """def train(g, d, loader, opt_g, opt_d):
    for x in loader:
        d(x).mean().backward()
        opt_d.step()
        g(x).mean().backward()
        opt_g.step()
"""
    result = lint_text(text, "gan.py", [RULES["PTL021"]], fix=True, unsafe=True)
    assert "opt_d.zero_grad()" in result.text and "opt_g.zero_grad()" in result.text
    again = lint_text(result.text, "gan.py", [RULES["PTL021"]], fix=True, unsafe=True)
    assert again.text == result.text and not again.findings


def test_layer_names_never_shadow_module_attributes_or_methods() -> None:
    text = """import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Identity()

    def head(self, x):
        return x

    def forward(self, x):
        head = nn.Linear(4, 4)
        train = nn.LSTM(4, 4)
        return head(self.linear(x)), train(x), nn.GRUCell(4, 4)(x)
"""
    result = lint_text(text, "net.py", [RULES["PTL025"]], fix=True, unsafe=True)
    assert "self.linear_2 = nn.Linear(4, 4)" in result.text  # `head` is a method, `linear` is taken
    assert "self.lstm = nn.LSTM(4, 4)" in result.text  # `train` is nn.Module's
    assert "self.gru_cell = nn.GRUCell(4, 4)" in result.text
    assert "_ptl_" not in result.text
