"""Model queries that PTL005, PTL006, PTL015 and PTL019 ask: early exits, reaching definitions at any node,
the module classifier's evidence, and what `torch.save` pickles."""

from __future__ import annotations

import libcst as cst

from ptlint.context import Context
from ptlint.engine import parse
from ptlint.facts.walk import iter_nodes
from ptlint.semantic import Model


def model_of(text: str) -> Model:
    return Context(parse(text), "t.py", text).model


def calls(model: Model, name: str) -> list[cst.Call]:
    return [
        n for n in iter_nodes(model.module, enter_scopes=True)
        if isinstance(n, cst.Call) and isinstance(n.func, (cst.Name, cst.Attribute))
        and (n.func.value if isinstance(n.func, cst.Name) else n.func.attr.value) == name
    ]


def test_early_exits_are_the_guards_before_a_node_in_every_block_around_it():
    m = model_of(
        "import sys\n"
        "if not ok():\n    sys.exit(1)\n"
        "def f(x):\n"
        "    use(x)\n"
        "    assert x\n"
        "    if x is None:\n        return\n"
        "    if x:\n        later(x)\n"
        "    done(x)\n"
    )
    before, later, done = calls(m, "use")[0], calls(m, "later")[0], calls(m, "done")[0]
    kinds = lambda node, **kw: [type(g).__name__ for g in m.flow.early_exits(node, **kw)]  # noqa: E731
    assert kinds(before) == ["If"]  # only the module's `if not ok(): sys.exit(1)`
    assert kinds(done) == ["Assert", "If", "If"]  # innermost block first
    assert kinds(later) == ["Assert", "If", "If"]
    assert kinds(done, terminal_calls=False) == ["Assert", "If"]  # `sys.exit()` counts only when asked


def test_reaching_at_answers_for_nodes_in_nested_scopes():
    m = model_of("def outer():\n    device = None\n    def inner():\n        go(device)\n    device = pick()\n    return inner\n")
    call = calls(m, "go")[0]
    outer = m.module.body[0]
    binding = m.names.reaching_at("device", call, outer)  # the binding that reaches `def inner`
    assert binding is not None and isinstance(binding.value, cst.Name) and binding.value.value == "None"
    assert m.names.reaching_at("device", call) is None  # `inner` binds nothing


def test_module_evidence_from_annotations_unwrap_model_and_data_words():
    m = model_of(
        "from typing import Dict, Optional\nimport torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n    def dump(self):\n        save(self)\n\n"
        "def a(m: nn.Module, model: Dict[str, torch.Tensor], enc: Optional[Net]):\n    save(m, model, enc)\n\n"
        "def b(acc, model_preds, model_class):\n    save(acc.unwrap_model(x), model_preds, model_class)\n"
    )
    args = [arg.value for call in calls(m, "save") for arg in call.args]
    assert [m.is_module(a) for a in args[1:]] == [True, False, True, True, False, False]
    assert m.checkpoints.is_pickled_module(args[0])  # `torch.save(self, path)` in a module's method


def test_checkpoints_finds_modules_in_saved_dicts_and_skips_script_modules():
    m = model_of(
        "import torch\nfrom torch import nn\n\n"
        "def f(path):\n"
        "    model = nn.Linear(2, 2)\n"
        "    scripted = torch.jit.script(model)\n"
        "    ckpt = {'epoch': 1}\n"
        "    ckpt['model'] = model\n"
        "    torch.save(ckpt, path)\n"
        "    torch.save(scripted, path)\n"
        "    torch.save(model.state_dict(), path)\n"
    )
    saves = calls(m, "save")
    hits = [m.checkpoints.saved_modules(call) for call in saves]
    assert [len(h) for h in hits] == [1, 0, 0]
    target, leaves = hits[0][0]
    assert isinstance(target, cst.Name) and target.value == "model" and leaves == [target]
