"""PTL033 conv-bias-before-batchnorm."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.callargs import append_keyword
from ptlint.rule import Fix, FixSafety, Replace, Rule

CONV = re.compile(r"^torch\.nn\.(modules\.conv\.)?Conv(Transpose)?([123])d$")
NORM = re.compile(r"^torch\.nn\.(modules\.batchnorm\.)?(BatchNorm([123])d|SyncBatchNorm)$")
# Conv constructors take `bias` as the 8th positional argument (ConvTranspose as the 8th too).
BIAS_POSITION = 7


class ConvBiasBeforeBatchNorm(Rule):
    """A convolution with a bias feeding straight into batch normalization.

    ## What it does
    Flags `nn.Conv1d/2d/3d` (and `ConvTranspose`) built without `bias=False` when its output goes
    straight into a batch norm of the same dimension: consecutive layers of `nn.Sequential(...)` or
    of a list literal, and `self.bn(self.conv(x))` or `x = self.conv(x)` then `x = self.bn(x)` in
    `forward` (only when that conv is called once in the class). Info level.

    ## Why is this bad?
    Batch norm subtracts the per-channel mean right away, which cancels any constant the
    convolution adds: the bias is a parameter that can never change the output. It still costs
    memory, an extra add in every forward and backward pass, and optimizer state.

    ## Example
    ```python
    block = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU())
    ```

    ## Use instead
    ```python
    block = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU())
    ```

    ## Fix safety
    Unsafe: `bias=False` is added to the convolution, so `conv.bias` disappears from the
    state_dict and strict loading of older checkpoints fails until their bias entries are dropped.

    ## References
    - [Performance tuning guide: disable bias for convolutions directly followed by a batch norm](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    """

    code = "PTL033"
    name = "conv-bias-before-batchnorm"
    message = "The convolution's bias is cancelled by the batch norm that follows; pass `bias=False`"
    fix_safety = FixSafety.UNSAFE
    severity = "info"
    triggers = ("BatchNorm",)
    contract = "E1"

    def __init__(self, ctx, options=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx, options)
        self._seen: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if (self.ctx.qualname(node.func) or "") in {"torch.nn.Sequential", "torch.nn.modules.container.Sequential"}:
            self._pairs([a.value for a in node.args if not a.star])

    def visit_List(self, node: cst.List) -> None:
        self._pairs([e.value for e in node.elements if isinstance(e, cst.Element)])

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        info = self.ctx.classes.get(node.name.value)
        if info is None or info.node is not node or not info.is_module:
            return
        init, forward = info.methods.get("__init__"), info.methods.get("forward")
        if init is None or forward is None:
            return
        tree = self.ctx.model.tree
        layers: dict[str, cst.Call] = {}
        for stmt in tree.below(init, cst.Assign, scopes=False):
            if len(stmt.targets) == 1 and isinstance(stmt.value, cst.Call):  # type: ignore[attr-defined]
                target = stmt.targets[0].target  # type: ignore[attr-defined]
                if isinstance(target, cst.Attribute) and dotted_name(target.value) == "self":
                    layers[target.attr.value] = stmt.value  # type: ignore[attr-defined]
        chains = [(c, n) for c, n in _chains(tree.below(forward, (cst.Call, cst.IndentedBlock), scopes=False)) if c in layers and n in layers]
        if not chains:
            return
        calls = _self_calls(tree.below(node, cst.Call))  # the whole class: only when a conv-then-norm chain exists
        for conv_attr, norm_attr in chains:
            if calls.get(conv_attr) == 1:
                self._check(layers[conv_attr], layers[norm_attr])

    def _pairs(self, items: list[cst.BaseExpression]) -> None:
        for first, second in zip(items, items[1:]):
            if isinstance(first, cst.Call) and isinstance(second, cst.Call):
                self._check(first, second)

    def _check(self, conv: cst.Call, norm: cst.Call) -> None:
        c = CONV.match(self.ctx.qualname(conv.func) or "")
        n = NORM.match(self.ctx.qualname(norm.func) or "")
        if c is None or n is None or (n.group(3) and n.group(3) != c.group(3)):
            return
        if any(a.star or (a.keyword is not None and a.keyword.value == "bias") for a in conv.args):
            return
        if len([a for a in conv.args if a.keyword is None]) > BIAS_POSITION:
            return
        if id(conv) in self._seen:
            return
        self._seen.add(id(conv))
        new = append_keyword(conv, "bias", cst.Name("False"))
        self.report(conv, fix=Fix("Pass `bias=False`", FixSafety.UNSAFE, (Replace(conv, new),)))


def _self_calls(calls: list[cst.CSTNode]) -> dict[str, int]:
    """How often each `self.<attr>(...)` is among `calls`."""
    counts: dict[str, int] = {}
    for node in calls:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and dotted_name(node.func.value) == "self":
            counts[node.func.attr.value] = counts.get(node.func.attr.value, 0) + 1
    return counts


def _self_attr_call(expr: cst.CSTNode) -> tuple[str, cst.Call] | None:
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and dotted_name(expr.func.value) == "self":
        return expr.func.attr.value, expr
    return None


def _chains(nodes: list[cst.CSTNode]) -> list[tuple[str, str]]:
    """(conv attr, norm attr) for `self.n(self.c(x))` and `x = self.c(x)` followed by `x = self.n(x)`, among the
    calls and blocks of `forward`."""
    pairs: list[tuple[str, str]] = []
    for node in nodes:
        outer = _self_attr_call(node)
        if outer is not None and outer[1].args:
            inner = _self_attr_call(outer[1].args[0].value)
            if inner is not None:
                pairs.append((inner[0], outer[0]))
        body = getattr(node, "body", None)
        if isinstance(body, (list, tuple)) and isinstance(node, (cst.IndentedBlock, cst.Module)):
            for first, second in zip(body, body[1:]):
                a, b = _assign_call(first), _assign_call(second)
                if a and b and a[0] == b[2]:
                    pairs.append((a[1], b[1]))
    return pairs


def _assign_call(stmt: cst.CSTNode) -> tuple[str, str, str] | None:
    """(target, attr, argument) for `target = self.attr(argument)`."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1 or not isinstance(stmt.body[0], cst.Assign):
        return None
    assign = stmt.body[0]
    call = _self_attr_call(assign.value)
    if call is None or len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
        return None
    if len(call[1].args) != 1 or not isinstance(call[1].args[0].value, cst.Name):
        return None
    return assign.targets[0].target.value, call[0], call[1].args[0].value.value  # type: ignore[union-attr]
