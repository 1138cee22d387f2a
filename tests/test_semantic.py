"""The semantic model: node-addressed answers, and the defects it exists to fix."""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from ptlint.context import Context
from ptlint.engine import analyze, parse
from ptlint.registry import all_rules
from ptlint.rule import Rule
from ptlint.semantic import Kind, Model
from ptlint.semantic.flow import exits

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "semantic"


def model_of(text: str) -> Model:
    return Context(parse(text), "t.py", text).model


def names(model: Model, value: str) -> list[cst.Name]:
    return [n for n in _nodes(model.module) if isinstance(n, cst.Name) and n.value == value]


def _nodes(root: cst.CSTNode) -> list[cst.CSTNode]:
    from ptlint.facts.walk import iter_nodes

    return list(iter_nodes(root, enter_scopes=True))


def test_tree_links_and_order():
    m = model_of("def f(a):\n    for x in a:\n        if x:\n            g(x)\n")
    call = next(n for n in _nodes(m.module) if isinstance(n, cst.Call))
    func = m.module.body[0]
    assert m.tree.function(call) is func
    assert [type(n).__name__ for n in m.tree.loops(call)] == ["For"]
    assert m.tree.contains(func, call) and not m.tree.contains(call, func)
    assert m.tree.path(call)[0] is m.module and m.tree.path(call)[-1] is call
    assert isinstance(m.tree.statement(call), cst.SimpleStatementLine)


def test_name_on_its_own_right_hand_side_gets_the_previous_binding():
    m = model_of("x = make()\nx = x.cuda()\n")
    read = next(n for n in names(m, "x") if isinstance(m.tree.parent(n), cst.Attribute))  # the x in `x.cuda()`
    binding = m.binding(read)
    assert binding is not None and isinstance(binding.value, cst.Call) and binding.value.func.value == "make"


def test_tuple_unpacking_values():
    m = model_of("a, b = 1, model(x)\nprint(b)\n")
    b = names(m, "b")[-1]
    assert isinstance(m.value(b), cst.Call)


def test_answers_do_not_depend_on_where_the_walk_is():
    text = "def build():\n    net = make()\n    return net\n\n\ndef use():\n    return 1\n"
    seen: list[object] = []

    class Probe(Rule):
        code, name, triggers = "PTL990", "probe", ()

        def visit_Return(self, node: cst.Return) -> None:
            read = next(n for n in _nodes(self.ctx.module) if isinstance(n, cst.Name) and n.value == "net" and n is not None and n is not _first_net(self.ctx.module))
            seen.append(self.ctx.reaching(read))

    analyze(text, "t.py", [Probe])
    assert len(seen) == 2 and seen[0] is not None and seen[0] == seen[1]


def _first_net(module: cst.Module) -> cst.Name:
    return next(n for n in _nodes(module) if isinstance(n, cst.Name) and n.value == "net")


def test_parameter_named_like_a_module_is_not_the_module():
    m = model_of("import torch\n\ndef restore(torch, path):\n    return torch.load(path)\n\ntorch.load('x')\n")
    loads = [n for n in _nodes(m.module) if isinstance(n, cst.Call)]
    assert m.qualified_name(loads[0].func) is None
    assert m.qualified_name(loads[1].func) == "torch.load"


def test_kinds_from_evidence():
    text = (
        "import torch\n"
        "sgd = torch.optim.SGD(params, lr=0.1)\n"
        "net = torch.nn.Linear(2, 2)\n"
        "pred = net(x).max(1)[1]\n"
        "for n in pred.squeeze():\n"
        "    print(n)\n"
        "sgd.step()\n"
        "def show(t: torch.Tensor):\n"
        "    return t\n"
    )
    m = model_of(text)
    assert m.kind(names(m, "sgd")[-1]) is Kind.OPTIMIZER
    assert m.kind(names(m, "pred")[-1]) is Kind.TENSOR
    assert m.kind(names(m, "n")[-1]) is Kind.TENSOR
    assert m.kind(names(m, "t")[-1]) is Kind.TENSOR


def test_project_no_grad_wrapper_turns_gradients_off():
    text = (
        "from utils import smart_inference_mode\n"
        "@smart_inference_mode()\n"
        "def run(model, x):\n"
        "    return model(x)\n"
    )
    m = model_of(text)
    call = next(n for n in _nodes(m.module) if isinstance(n, cst.Call) and isinstance(n.func, cst.Name) and n.func.value == "model")
    assert m.grad_disabled(call)


def test_flow_exits_and_dominance():
    m = model_of("def f(x):\n    a = 1\n    if x:\n        b = 2\n        return b\n    c = 3\n")
    func = m.module.body[0]
    assigns = [n for n in _nodes(func) if isinstance(n, cst.Assign)]
    a, b, c = assigns
    assert m.flow.dominates(a, c) and not m.flow.dominates(b, c)
    if_stmt = next(n for n in _nodes(func) if isinstance(n, cst.If))
    assert exits(if_stmt.body)


def test_program_callee_and_arguments():
    m = model_of("def helper(model, loader):\n    pass\n\nhelper(net, loader=dl)\n")
    call = next(n for n in _nodes(m.module) if isinstance(n, cst.Call))
    func = m.program.callee(call)
    assert func is m.module.body[0]
    assert m.program.argument(call, func, "loader").value == "dl"
    assert m.program.call_sites(func) == [call]


def test_name_rebound_from_itself_at_module_level_keeps_every_finding():
    """A GAN script with `G_AB = G_AB.cuda()` under `if cuda:` once recursed without end (PTL000)."""
    text = (FIXTURES / "gan_rebound_from_itself.py").read_text()
    result = analyze(text, "gan.py", [r for r in all_rules() if r.code != "PTL000"])
    assert result.errors == []
    assert "PTL000" not in {f.code for f in result.findings}
    assert {f.code for f in result.findings} >= {"PTL006"}


class Recurses(Rule):
    code, name, triggers = "PTL991", "recurses", ()

    def visit_Module(self, node: cst.Module) -> None:
        def down(n: int) -> int:
            return down(n + 1)

        down(0)


class Reports(Rule):
    code, name, triggers = "PTL992", "reports", ()

    def visit_Name(self, node: cst.Name) -> None:
        self.report(node)


def test_recursion_in_one_rule_is_its_internal_error_only():
    result = analyze("x = 1\n", "t.py", [Recurses, Reports])
    assert [f.code for f in result.findings] == ["PTL992"]
    assert len(result.errors) == 1 and result.errors[0].startswith("internal error in rule PTL991")
    assert "RecursionError" in result.errors[0]


def test_recursion_in_a_rule_exits_2_and_keeps_the_other_findings(tmp_path, monkeypatch):
    from ptlint.config import Settings
    from tests.conftest import run_cli

    path = tmp_path / "t.py"
    path.write_text("import torch\nx = 1\n")
    real = Settings.enabled_rules

    monkeypatch.setattr(Settings, "enabled_rules", lambda self, *a, **k: [*real(self, *a, **k), Recurses, Reports])
    result = run_cli(["check", "--no-cache", "--select", "ALL", "--jobs", "1", "--output-format", "concise", str(path)], cwd=tmp_path)
    assert result.exit_code == 2
    assert "PTL992" in result.output
    assert "internal error in rule PTL991" in result.output


def test_facts_and_model_do_not_import_the_context():
    """The model and the fact modules stand alone: no context <-> facts import cycle."""
    import ast as pyast

    src = Path(__file__).resolve().parent.parent / "src" / "ptlint"
    for path in [*sorted((src / "facts").glob("*.py")), *sorted((src / "semantic").glob("*.py"))]:
        tree = pyast.parse(path.read_text())
        imported = {n.module for n in pyast.walk(tree) if isinstance(n, pyast.ImportFrom)}
        assert "ptlint.context" not in imported, path.name


def test_no_rule_module_is_over_500_lines():
    rules = Path(__file__).resolve().parent.parent / "rules"
    sizes = {p.name: p.read_text().count("\n") for p in rules.glob("ptl*.py")}
    assert {name: n for name, n in sizes.items() if n > 500} == {}
