"""The model's train/eval mode facts (semantic/modes.py), and the rules that ask them by node."""

from __future__ import annotations

import libcst as cst

from ptlint.api import lint_text
from ptlint.context import Context
from ptlint.engine import parse
from ptlint.registry import by_code_or_name
from ptlint.semantic import Model
from ptlint.semantic.modes import Mode, Root


def model_of(text: str) -> Model:
    return Context(parse(text), "t.py", text).model


def calls(m: Model, spelled: str) -> list[cst.Call]:
    from ptlint.facts.imports import dotted_name

    return [c for c in m.tree.of_type(cst.Call) if dotted_name(c.func) == spelled]  # type: ignore[misc]


def test_mode_calls_unwrap_the_receiver():
    m = model_of(
        "model.module.eval()\nmodel.train(False)\nmodel.train(mode=flag)\nmodel.train()\n"
        "DDP(model).apply(set_bn_eval)\nx.eval(1)\n"
    )
    found = [m.modes.mode_call(c) for c in m.tree.of_type(cst.Call)]  # type: ignore[arg-type]
    modes = [(cst.Module([]).code_for_node(r), mode) for r, mode in filter(None, found)]
    assert modes == [("model", Mode.EVAL), ("model", Mode.EVAL), ("model", Mode.UNKNOWN), ("model", Mode.TRAIN),
                     ("DDP(model)", Mode.PARTIAL)]


def test_root_goes_through_aliases_wrappers_and_in_place_transforms():
    text = (
        "import torch\n"
        "def f(net):\n"
        "    m = torch.compile(net.module)\n"
        "    m = fuse(m, cfg)\n"
        "    k = getattr(m, 'module', m)\n"
        "    k.eval()\n"
        "    return net(x)\n"
    )
    m = model_of(text)
    (eval_call,) = calls(m, "k.eval")
    (net_call,) = calls(m, "net")
    root = m.modes.root(net_call.func)
    assert root is not None and root.name == "net" and root.binding is not None and root.binding.kind == "param"
    assert m.modes.root(eval_call.func.value) == root  # type: ignore[attr-defined]


def test_changes_follow_one_level_of_in_file_helpers_and_self_aliases():
    text = (
        "def set_mode(model, flag):\n"
        "    model.eval()\n"
        "    model.train()\n"
        "    model.eval()\n"
        "\n"
        "class Runner:\n"
        "    def setup(self, teacher):\n"
        "        teacher.eval()\n"
        "        self.teacher = teacher\n"
        "\n"
        "def main(net):\n"
        "    set_mode(flag=True, model=net)\n"
        "    freeze_bn_eval_mode(net)\n"
    )
    m = model_of(text)
    main = m.module.body[2]
    got = [(c.root.name, c.mode) for c in m.modes.changes(main)]
    assert got == [("net", Mode.EVAL), ("net", Mode.PARTIAL)]
    setup = m.module.body[1].body.body[0]  # type: ignore[attr-defined]
    assert [(c.root.name, c.mode) for c in m.modes.changes(setup)] == [("teacher", Mode.EVAL), ("self.teacher", Mode.EVAL)]


def test_callee_is_the_definition_the_name_has_where_it_is_called():
    text = (
        "def evaluate(m):\n    return 1\n\n"
        "def evaluate(m):\n    m.eval()\n\n"
        "def main():\n"
        "    def run(m):\n        m.train()\n"
        "    run(net)\n    evaluate(net)\n"
    )
    m = model_of(text)
    (run_call,) = calls(m, "run")
    (eval_call,) = calls(m, "evaluate")
    assert m.program.callee(run_call) is m.tree.of_type(cst.FunctionDef)[3]
    assert m.program.callee(eval_call) is m.module.body[1]  # the runtime (last) definition


def test_dominates_respects_the_branches_of_the_common_ancestor():
    m = model_of("def f(x):\n    if x:\n        a = 1\n    else:\n        b = 2\n    c = 3\n")
    a, b, c = m.tree.of_type(cst.Assign)
    assert not m.flow.dominates(a, b) and not m.flow.dominates(a, c)


def test_exit_stack_no_grad_turns_gradients_off_for_what_follows():
    text = (
        "import torch\nfrom contextlib import ExitStack\n"
        "def evaluate(model, x):\n"
        "    with ExitStack() as stack:\n"
        "        early = model(x)\n"
        "        stack.enter_context(torch.no_grad())\n"
        "        late = model(x)\n"
    )
    m = model_of(text)
    early, late = calls(m, "model")
    assert not m.grad_disabled(early) and m.grad_disabled(late)


CLOSURE = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))

    def predict(self, chunks):
        def run(chunk):
            with torch.no_grad():
                return self.backbone(chunk)

        return [run(c) for c in chunks]

    def predict_one(self, chunk):
        with torch.no_grad():
            return self.backbone(chunk)
"""


def test_ptl001_asks_the_class_around_the_call_not_the_walk():
    # A closure in a module method sees the same `self` as the method: both calls are a submodule run
    # by its parent, whose caller sets the mode. Before the model, the closure was judged by the class
    # of which it is a direct method (none) and reported.
    m = model_of(CLOSURE)
    in_closure, in_method = calls(m, "self.backbone")
    assert m.class_info(in_closure) is m.class_info(in_method) is not None
    assert m.modes.root(in_closure.func) == m.modes.root(in_method.func) == Root("self.backbone")
    assert lint_text(CLOSURE, "net.py", [by_code_or_name("PTL001")]).findings == []


def test_module_evidence_from_eval_and_no_module_from_action_names():
    text = (
        "from model import EncoderCNN\n"
        "encoder = EncoderCNN(256).eval()\n"
        "encoder = encoder.to(device)\n"
        "feature = encoder(image)\n"
        "class Runner(Base):\n"
        "    def run(self):\n"
        "        self.print_network(self.net_d)\n"
        "        self.model_to_device(self.net_d)\n"
    )
    m = model_of(text)
    (encoder_call,) = calls(m, "encoder")
    assert m.is_module(encoder_call.func)
    assert not any(m.is_module(c.func) for c in calls(m, "self.print_network") + calls(m, "self.model_to_device"))
