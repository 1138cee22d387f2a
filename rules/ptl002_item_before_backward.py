"""PTL002 item-before-backward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import libcst as cst

from ptlint.semantic import Binding
from ptlint.facts.walk import SCOPE_TYPES
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, Replace, Rule
from ptlint.semantic.graph import ARITHMETIC, LEAF

NEEDS_PARENS = (
    cst.BinaryOperation, cst.BooleanOperation, cst.UnaryOperation, cst.Comparison,
    cst.IfExp, cst.Lambda, cst.NamedExpr, cst.Await,
)


@dataclass(frozen=True)
class _Strip:
    """One detaching expression of the tree, the expression under it and its detaching layers."""

    node: cst.BaseExpression
    core: cst.BaseExpression
    layers: tuple[str, ...]


class ItemBeforeBackward(Rule):
    """`.backward()` on a loss that was already turned into a number or detached.

    ## What it does
    Flags `.backward()` on a value that has no autograd history: a name whose reaching
    definition is `loss.item()`, `float(loss)`, `loss.tolist()`, `loss.detach()`,
    `loss.data` or `loss.cpu().numpy()`, or simple arithmetic of such values and number
    literals (`loss = l1.item() + 0.1 * l2.item()`). Also `torch.tensor(<detached>,
    requires_grad=True)` and names bound to it. Besides `loss.backward()` it checks
    `scaler.scale(loss).backward()`, `torch.autograd.backward(loss)`,
    `accelerator.backward(loss)`, `fabric.backward(loss)` and `self.manual_backward(loss)`.

    Only the definition that reaches the call in source order counts, so
    `loss = loss.item()` after the backward, or a new `loss = criterion(...)` before it,
    is fine. A definition in a branch that ends in `return`/`raise`/`continue`/`break`,
    or in another branch of the same `if`/`try`, does not count, nor does a name that is
    later given `requires_grad_()`. Arithmetic on a fresh `torch.tensor(...,
    requires_grad=True)` leaf is not flagged, and `.data` is ignored in files that use
    packed sequences (a `PackedSequence`'s `.data` keeps its graph). The finding is
    reported at the loss expression that backward runs on.

    ## Why is this bad?
    `.item()`, `float()` and `.tolist()` return Python numbers, which have no `.backward()`
    (AttributeError). `.detach()` and `.data` return tensors cut off from the graph, so
    backward raises "element 0 of tensors does not require grad". Worse,
    `torch.tensor(loss.item(), requires_grad=True)` builds a new leaf: backward runs
    without an error but no parameter receives a gradient, so nothing trains.

    ## Example
    ```python
    loss = criterion(model(x), y).item()
    loss.backward()
    total += loss
    ```

    ## Use instead
    ```python
    loss = criterion(model(x), y)
    loss.backward()
    loss_value = loss.item()
    total += loss_value
    ```

    ## Fix safety
    Unsafe. The fix drops the detaching call from the definition (`loss = crit(o, y)`).
    When the name is read elsewhere, it keeps the old value in a new `<name>_value`
    (`loss.item()`, `float(loss)`, `loss.detach().cpu().numpy()`...; `loss.detach()` for
    a `torch.tensor` leaf), inserted after the statement holding the backward, or right
    after the definition when the name is read before the backward, and renames those
    reads to it. For `loss = loss.item()` it renames that definition instead. Code that
    relied on the old value in a later loop iteration or another function may change.
    There is no fix when the value comes through another name, `+=`, a loop or `sum()`,
    when it mixes different detaching calls, or when `+=`, a nested function or a read
    in another branch uses the name.

    ## References
    - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
    - [torch.Tensor.item](https://pytorch.org/docs/stable/generated/torch.Tensor.item.html)
    - [torch.Tensor.detach](https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html)
    """

    code = "PTL002"
    name = "item-before-backward"
    message = "`.backward()` on a value cut off from the autograd graph"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("backward",)
    contract = "E2"

    def visit_Call(self, node: cst.Call) -> None:
        graph = self.ctx.model.graph
        for target in graph.backward_targets(node):
            how = graph.detached(target)  # how the value lost its graph (see semantic/graph.py)
            if how is not None:
                fix = self._fix(target, node)
                self.report(target, self._message(target, how), fix)
                return

    # --- the fix ---

    def _fix(self, target: cst.BaseExpression, call: cst.Call) -> Fix | None:
        graph = self.ctx.model.graph
        if not isinstance(target, cst.Name):
            strips = self._strips(target, top=False)
            if strips is None:
                return None
            return _fix_of(tuple(Replace(s.node, s.core) for s in strips))
        b = graph.detached_binding(target)
        assign = _assign_of(b, target.value)
        if b is None or assign is None or not self._renamable(b, target.value):
            return None
        reads = self._reads(b, target.value)
        if reads is None:
            return None
        fresh = self._fresh(f"{target.value}_value")
        renames = tuple(Replace(r, cst.Name(fresh)) for r in reads)
        peeled = self._peel(assign.value)
        if peeled is not None and _same_name(peeled.core, target.value):
            if graph.detached(peeled.core) is not None:
                return None
            return _fix_of((Replace(assign.targets[0].target, cst.Name(fresh)),) + renames)
        strips = self._strips(assign.value, top=True)
        if strips is None or len({s.layers for s in strips}) != 1:
            return None
        edits: tuple[Edit, ...] = tuple(Replace(s.node, s.core) for s in strips)
        if reads:
            stmt = cst.parse_statement(f"{fresh} = {_reapply(target.value, strips[0].layers)}")
            edits += (InsertAfter(self._anchor(b.stmt, call, reads), (stmt,)),)
        return _fix_of(edits + renames)

    def _strips(self, expr: cst.BaseExpression, top: bool) -> list[_Strip] | None:
        """The detaching expressions of `expr` (itself, or operands of arithmetic with numbers)."""
        graph = self.ctx.model.graph
        peeled = self._peel(expr)
        if peeled is not None:
            if graph.detached(peeled.core) is not None:
                return None
            return [_Strip(expr, _wrap(peeled.core, expr, top), peeled.layers)]
        if graph.is_constant(expr):
            return []
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._strips(expr.expression, top=False)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, ARITHMETIC):
            left, right = self._strips(expr.left, top=False), self._strips(expr.right, top=False)
            return None if left is None or right is None else left + right
        return None

    def _peel(self, expr: cst.BaseExpression) -> _Strip | None:
        """Every detaching layer of `expr` peeled off, outermost first."""
        graph = self.ctx.model.graph
        core, layers = expr, []
        step = graph.detaching_layer(core)
        while step is not None:
            core, layer = step
            layers.append(layer)
            step = graph.detaching_layer(core)
        return _Strip(expr, core, tuple(layers)) if layers else None

    def _renamable(self, b: Binding, name: str) -> bool:
        """No `+=` on the value, no closure reading the name, no read of it earlier in its loop."""
        facts = self.ctx.model.facts_at(b.stmt)
        tree = self.ctx.model.tree
        for other in facts.bindings_of(name):
            if other.kind == "augassign" and other.value is not None and facts.reaching(name, other.value) is b:
                return False
        for node in tree.names(name):
            inner = tree.enclosing(node, SCOPE_TYPES)
            if inner is not None and inner is not facts.scope and tree.contains(facts.scope, inner):
                return False
        if b.loops:
            loop = b.loops[-1]
            for use in facts.uses.get(name, ()):
                if facts.contains(loop, use.node) and use.order < b.order:
                    return False
        return True

    def _reads(self, b: Binding, name: str) -> list[cst.Name] | None:
        """The reads of `name` that `b` reaches other than backward, or None if one is not sure."""
        model = self.ctx.model
        facts = model.facts_at(b.stmt)
        reads = []
        for use in facts.uses.get(name, ()):
            if facts.reaching(name, use.node) is not b or model.graph.backward_of(use.node) is not None:
                continue
            if facts.order_of(use.node) <= facts.end_of(b.stmt) or not model.flow.reaches(b.stmt, use.node):
                return None
            reads.append(use.node)
        return reads

    def _anchor(self, stmt: cst.CSTNode, call: cst.Call, reads: list[cst.Name]) -> cst.BaseStatement:
        """After the statement holding the backward, or after `stmt` when a read comes earlier."""
        model = self.ctx.model
        facts = model.facts_at(stmt)
        path = model.tree.path(call)
        block = model.tree.parent(stmt)
        anchor = stmt
        at = next((i for i, node in enumerate(path) if node is block), None)
        if at is not None and at + 1 < len(path):
            after = path[at + 1]
            if all(facts.order_of(r) > facts.end_of(after) for r in reads):
                anchor = after
        return cast(cst.BaseStatement, anchor)

    def _fresh(self, base: str) -> str:
        taken = self.ctx.model.tree.identifiers()
        name, i = base, 1
        while name in taken:
            i += 1
            name = f"{base}{i}"
        return name

    def _message(self, target: cst.BaseExpression, how: str) -> str:
        label = f"`{target.value}`" if isinstance(target, cst.Name) else "This value"
        if how == LEAF:
            return (
                f"{label} is a new leaf from `torch.tensor(<detached>, requires_grad=True)`; "
                "backward never reaches the model's parameters"
            )
        return f"{label} comes from {how}, so it has no autograd graph; call backward on the tensor, detach only to log"


def _same_name(expr: cst.BaseExpression, name: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == name


def _assign_of(b: Binding | None, name: str) -> cst.Assign | None:
    """The plain `name = value` statement of `b`, alone on its own line in a block."""
    if b is None or b.kind != "assign" or not isinstance(b.stmt, cst.SimpleStatementLine):
        return None
    for small in b.stmt.body:
        if isinstance(small, cst.Assign) and small.value is b.value and len(small.targets) == 1:
            return small if _same_name(small.targets[0].target, name) else None
    return None


def _wrap(core: cst.BaseExpression, old: cst.BaseExpression, top: bool) -> cst.BaseExpression:
    """`core` with the parentheses `old` had, or new ones where precedence needs them."""
    if core.lpar:
        return core
    if old.lpar:
        return core.with_changes(lpar=old.lpar, rpar=old.rpar)
    if not top and isinstance(core, NEEDS_PARENS):
        return core.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return core


def _reapply(name: str, layers: tuple[str, ...]) -> str:
    """Code applying the detaching `layers` (outermost first) to `name`, as a logging value."""
    if LEAF in layers:
        return f"{name}.detach()"
    code = name
    detached = any(layer in ("`.detach()`", "`.data`") for layer in layers)
    for layer in reversed(layers):
        if layer == "`float()`":
            code = f"float({code})"
            continue
        if "numpy" in layer and not detached:
            code += ".detach()"
        code += layer.strip("`")
    return code


def _fix_of(edits: tuple[Edit, ...]) -> Fix:
    return Fix("Call backward on the tensor and keep the detached value for logging", FixSafety.UNSAFE, edits)
