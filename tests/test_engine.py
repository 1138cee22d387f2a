"""Engine mechanics with small test rules: dispatch, facts, fixed-point fixing, broken fixes and rules."""

from __future__ import annotations

import libcst as cst

from ptlint.api import lint_text
from ptlint.context import Context
from ptlint.engine import analyze
from ptlint.rule import Fix, FixSafety, InsertBefore, Replace, Rule


class RenameOld(Rule):
    """Renames `old` to `new`, one occurrence per finding."""

    code, name, message = "PTL901", "rename-old", "old name"
    fix_safety = FixSafety.SAFE
    triggers = ("old",)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "old":
            self.report(node, fix=Fix("rename", FixSafety.SAFE, (Replace(node, cst.Name("new")),)))


class WrapCall(Rule):
    """Wraps `f(...)` calls in `g(...)`; nested calls need several rounds."""

    code, name, message = "PTL902", "wrap-call", "bare f call"
    fix_safety = FixSafety.SAFE
    triggers = ("f(",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "f":
            parent = self.ctx.parent()
            if isinstance(parent, cst.Arg) and isinstance(self.ctx.parent(2), cst.Call):
                outer = self.ctx.parent(2)
                if isinstance(outer.func, cst.Name) and outer.func.value == "g":
                    return
            self.report(node, fix=Fix("wrap", FixSafety.SAFE, (Replace(node, cst.Call(cst.Name("g"), [cst.Arg(node)])),)))


class BreaksSyntax(Rule):
    """A rule whose fix produces invalid code."""

    code, name, message = "PTL903", "breaks-syntax", "bad"
    fix_safety = FixSafety.SAFE
    triggers = ("bad",)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "bad":
            self.report(node, fix=Fix("break", FixSafety.SAFE, (Replace(node, cst.Name("lambda")),)))


class Crashes(Rule):
    """A rule that raises."""

    code, name, message = "PTL904", "crashes", "x"
    triggers = ()

    def visit_Module(self, node: cst.Module) -> None:
        raise ValueError("boom")


class InsertsHeader(Rule):
    """Inserts the same statement before every `print` call's statement, unsafely."""

    code, name, message = "PTL905", "inserts-header", "print"
    fix_safety = FixSafety.UNSAFE
    triggers = ("print",)
    options = {"label": "hdr"}

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "print":
            stmt = self.ctx.statement()
            label = self.opts["label"]
            if f"{label} = 1" in self.ctx.source:
                return
            first = self.ctx.module.body[0]
            new = cst.parse_statement(f"{label} = 1\n")
            self.report(node, fix=Fix("insert", FixSafety.UNSAFE, (InsertBefore(first, (new,)),)))
            assert stmt is not None


def findings(text: str, rules: list[type[Rule]]) -> list[tuple[int, int, str]]:
    return [(f.start.line, f.start.column, f.code) for f in lint_text(text, rules=rules).findings]


def test_positions_are_one_based():
    assert findings("x = old\n\nold()\n", [RenameOld]) == [(1, 5, "PTL901"), (3, 1, "PTL901")]


def test_fix_keeps_comments_and_whitespace():
    text = "x  =  old   # keep me\n\n\n# and me\ny = [old,\n     1]\n"
    result = lint_text(text, rules=[RenameOld], fix=True)
    assert result.text == text.replace("old", "new")
    assert result.fixed == 2 and result.findings == []


def test_nested_fixes_reach_a_fixed_point():
    result = lint_text("y = f(f(1))\n", rules=[WrapCall], fix=True)
    assert result.text == "y = g(f(g(f(1))))\n"
    again = lint_text(result.text, rules=[WrapCall], fix=True)
    assert again.text == result.text and again.fixed == 0


def test_fix_that_does_not_parse_is_dropped_and_reported():
    result = lint_text("bad = old\n", rules=[BreaksSyntax, RenameOld], fix=True)
    assert result.text == "bad = new\n"
    assert result.errors == ["dropped a fix that did not re-parse: break"]
    assert [f.code for f in result.findings] == ["PTL903"]


def test_crashing_rule_is_isolated():
    result = lint_text("x = old\n", rules=[Crashes, RenameOld])
    assert [f.code for f in result.findings] == ["PTL901"]
    assert len(result.errors) == 1 and result.errors[0].startswith("internal error in rule PTL904")


def test_unsafe_fix_needs_unsafe_and_identical_inserts_are_merged():
    text = "import os\nprint(1)\nprint(2)\n"
    assert lint_text(text, rules=[InsertsHeader], fix=True).text == text
    fixed = lint_text(text, rules=[InsertsHeader], fix=True, unsafe=True)
    assert fixed.text == "hdr = 1\nimport os\nprint(1)\nprint(2)\n"


def test_rule_options_reach_the_rule():
    fixed = lint_text("print(1)\n", rules=[InsertsHeader], fix=True, unsafe=True, options={"PTL905": {"label": "L"}})
    assert fixed.text == "L = 1\nprint(1)\n"


def test_trigger_prefilter_skips_rules():
    assert findings("x = 1\n", [RenameOld]) == []
    assert analyze("x = 1\n", "x.py", [RenameOld]).module is None  # nothing needed the tree


def _ctx(text: str) -> Context:
    return Context(cst.parse_module(text), "x.py", text)


def test_import_aliases_resolve():
    ctx = _ctx(
        "import torch as T\nimport torch.nn.functional as F\nfrom torch import save as S, nn\n"
        "from torch.nn import Module\nimport torch.cuda\n"
    )
    expr = cst.parse_expression
    assert ctx.qualname(expr("T.nn.Linear")) == "torch.nn.Linear"
    assert ctx.qualname(expr("F.relu")) == "torch.nn.functional.relu"
    assert ctx.qualname(expr("S")) == "torch.save"
    assert ctx.qualname(expr("nn.Conv2d")) == "torch.nn.Conv2d"
    assert ctx.qualname(expr("Module")) == "torch.nn.Module"
    assert ctx.qualname(expr("torch.cuda.is_available")) == "torch.cuda.is_available"
    assert ctx.qualname(expr("model.cuda")) is None
    assert ctx.torch_name("torch.device") == "T.device"


def test_module_subclasses_are_found_transitively():
    ctx = _ctx(
        "import torch.nn as nn\nimport pytorch_lightning as pl\n"
        "class A(nn.Module): pass\nclass B(A): pass\nclass C: pass\nclass L(pl.LightningModule): pass\n"
    )
    assert ctx.classes["A"].is_module and ctx.classes["B"].is_module
    assert not ctx.classes["C"].is_module
    assert ctx.classes["L"].is_module and ctx.classes["L"].is_lightning


def test_def_use_in_order():
    from ptlint.facts.dataflow import ScopeFacts

    func = cst.parse_module("def f(a):\n    x = a.item()\n    x = g(x)\n    x.backward()\n").body[0]
    facts = ScopeFacts(func)
    binds = facts.bindings_of("x")
    assert [b.kind for b in binds] == ["assign", "assign"]
    last_use = facts.uses["x"][-1]
    assert facts.reaching("x", last_use.node) is binds[1]
    first_use = facts.uses["x"][0]  # the `x` inside g(x)
    assert facts.reaching("x", first_use.node) is binds[0]
