"""The shared autograd-graph analysis (semantic/graph.py) and the issue 15 defects it fixes for
PTL002, PTL003, PTL004 and PTL009."""

from __future__ import annotations

import re

import libcst as cst
import pytest

from ptlint.api import lint_text
from ptlint.context import Context
from ptlint.engine import parse
from ptlint.registry import all_rules
from ptlint.semantic import Carry, Kind, Model

RULES = {r.code: r for r in all_rules()}


def model_of(text: str) -> Model:
    return Context(parse(text), "t.py", text).model


def expr(model: Model, code: str) -> cst.CSTNode:
    """The first expression of the file whose source is `code`."""
    for node in model.tree.of_type(cst.BaseExpression):
        if model.module.code_for_node(node) == code:
            return node
    raise AssertionError(code)


def codes(text: str, code: str) -> list[tuple[int, str]]:
    return [(f.start.line, f.code) for f in lint_text(text, "t.py", [RULES[code]]).findings]


GRAPH = """\
import torch
import torch.nn.functional as F
from torch import nn


def step(model, helper, x, y, loader):
    out = model(x)
    loss = F.cross_entropy(out, y)
    idx = out.max(1)[1]
    _, top = out.max(1)
    values, _ = out.max(1)
    value = loss.item()
    kept = loss.detach()
    shape = out.shape
    scaled = helper(out)
    pair = (out, y)
    for batch in loader:
        pass
    frozen = teacher(x)
    return out, loss, idx, top, values, value, kept, shape, scaled, pair, batch, frozen


teacher = nn.Linear(2, 2)
teacher.requires_grad_(False)


class Net(nn.Module):
    def forward(self, x, mask, steps: int):
        h = x * 2
        return h, mask, steps
"""


@pytest.mark.parametrize(
    ("code", "carry"),
    [
        ("out", Carry.YES),  # a model call
        ("loss", Carry.YES),  # a loss of a graph value passes it on
        ("idx", Carry.NO),  # the indices of (values, indices)
        ("top", Carry.NO),
        ("values", Carry.YES),
        ("value", Carry.NO),  # .item()
        ("kept", Carry.NO),  # .detach()
        ("shape", Carry.NO),  # metadata
        ("scaled", Carry.MAYBE),  # a function the analysis cannot see into
        ("pair", Carry.MAYBE),  # a container
        ("batch", Carry.NO),  # iterating what carries nothing
        ("frozen", Carry.NO),  # a model frozen in the file, given no graph
        ("h", Carry.MAYBE),  # an activation parameter of forward
        ("mask", Carry.NO),  # a mask parameter
        ("steps", Carry.NO),  # an int parameter
    ],
)
def test_carries(code: str, carry: Carry) -> None:
    m = model_of(GRAPH)
    ret = [n for n in m.tree.of_type(cst.Name) if n.value == code and isinstance(m.tree.parent(n), cst.Element)]
    assert m.graph.carries(ret[-1]) is carry


def test_detached_names_how_the_graph_was_lost() -> None:
    m = model_of(
        "import torch\n"
        "def f(model, x, beta=4.0):\n"
        "    a = model(x).item()\n"
        "    b = float(model(x)) * beta + 0.5\n"
        "    c = torch.tensor(a, requires_grad=True)\n"
        "    d = model(x)\n"
        "    return a, b, c, d\n"
    )
    found = {n.value: m.graph.detached(n) for n in m.tree.of_type(cst.Name) if isinstance(m.tree.parent(n), cst.Element)}
    assert found == {"a": "`.item()`", "b": "`float()`", "c": "torch.tensor()", "d": None}


# --- defect 3: a project's own no-grad decorator, one answer for PTL003 and PTL004 ---

DEFINED_HERE = """\
import torch


def smart_inference_mode(torch_1_9=True):
    def decorate(fn):
        return (torch.inference_mode if torch_1_9 else torch.no_grad)()(fn)

    return decorate
"""
IMPORTED = "import torch\nfrom utils.torch_utils import smart_inference_mode\n"
BODIES = """\
from torch import nn


@DECORATOR
def run_val(model, loader):
    outputs = []
    for images in loader:
        outputs.append(model(images))
    return outputs


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 16, 3)

    @DECORATOR
    def forward(self, x):
        features = self.backbone(x)
        self.last_features = features
        return features
"""


@pytest.mark.parametrize("header", [DEFINED_HERE, IMPORTED], ids=["defined-here", "imported"])
def test_project_no_grad_decorator_gives_ptl003_and_ptl004_one_answer(header: str) -> None:
    text = header + BODIES.replace("DECORATOR", "smart_inference_mode()")
    m = model_of(text)
    accumulation = expr(m, "outputs.append(model(images))")
    store = expr(m, "features")
    assert m.grad_disabled(accumulation) and m.grad_disabled(store)
    assert codes(text, "PTL003") == [] and codes(text, "PTL004") == []
    plain = header + re.sub(r" *@DECORATOR\n", "", BODIES)
    lines = plain.splitlines()
    assert codes(plain, "PTL003") == [(lines.index("        outputs.append(model(images))") + 1, "PTL003")]
    assert codes(plain, "PTL004") == [(lines.index("        self.last_features = features") + 1, "PTL004")]


# --- defect 5: tensors through the data flow ---

PREDICTIONS = """\
def per_class_hits(model, loader, hits):
    for x in loader:
        pred = model(x).max(1)[1]
        for n in pred.squeeze():
            hits[n.item()] += 1
        for i in range(len(pred)):
            hits[pred[i].item()] += 1
"""


def test_values_from_a_model_call_and_tensor_methods_are_tensors() -> None:
    m = model_of(PREDICTIONS)
    pred = next(x for x in m.tree.of_type(cst.Name) if x.value == "pred" and isinstance(m.tree.parent(x), cst.Attribute))
    n = next(x for x in m.tree.of_type(cst.Name) if x.value == "n" and isinstance(m.tree.parent(x), cst.Attribute))
    assert m.kind(pred) is Kind.TENSOR and m.torch.one_tensor(pred) is True
    assert m.kind(expr(m, "pred.squeeze()")) is Kind.TENSOR and m.kind(n) is Kind.TENSOR
    assert codes(PREDICTIONS, "PTL009") == [(5, "PTL009"), (7, "PTL009")]


def test_a_model_output_that_may_be_a_tuple_is_not_read_elementwise() -> None:
    text = "def f(model, x):\n    outs = model(x)\n    for o in outs:\n        print(o.item())\n"
    assert codes(text, "PTL009") == []


# --- the rules ask the model ---


@pytest.mark.parametrize("code", ["PTL002", "PTL003", "PTL004"])
def test_graph_rules_have_no_private_tree_analysis(code: str) -> None:
    import inspect

    source = inspect.getsource(inspect.getmodule(RULES[code]))
    for needle in ("children(", "iter_nodes(", "_parent_map", "_parents", "ctx.module", "_unpacked", "_is_true", "_is_false"):
        assert needle not in source, needle
