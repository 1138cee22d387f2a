"""PTL002 item-before-backward."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, cast

import libcst as cst

from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.walk import SCOPE_TYPES, children, iter_nodes
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

# Methods whose result has no autograd history: a Python number/list, an ndarray or a detached tensor.
DETACH_METHODS = ("item", "tolist", "detach", "numpy")
LEAF = "torch.tensor()"
ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)
AUG_ARITHMETIC = (
    cst.AddAssign, cst.SubtractAssign, cst.MultiplyAssign, cst.DivideAssign,
    cst.FloorDivideAssign, cst.ModuloAssign, cst.PowerAssign,
)
# Compound statements whose branches do not flow into one another.
BRANCHES = (cst.If, cst.Try, cst.TryStar, cst.Match)
TERMINATORS = (cst.Return, cst.Raise, cst.Continue, cst.Break)
# Receivers whose `.backward(loss)` runs backward on its argument.
BACKWARD_RUNNERS = ("accelerator", "fabric")
NEEDS_PARENS = (
    cst.BinaryOperation, cst.BooleanOperation, cst.UnaryOperation, cst.Comparison,
    cst.IfExp, cst.Lambda, cst.NamedExpr, cst.Await,
)
MAX_DEPTH = 8
PACKED_RE = re.compile(r"pack(ed)?_?(padded_)?sequence", re.IGNORECASE)


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

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._parents: dict[int, dict[int, cst.CSTNode]] = {}
        self._names: set[str] | None = None

    def visit_Call(self, node: cst.Call) -> None:
        for target in self._backward_targets(node):
            how = self._taint(target)
            if how is not None:
                fix = self._fix(target, node)
                self.report(target, self._message(target, how), fix)
                return

    # --- where backward runs ---

    def _backward_targets(self, call: cst.Call) -> list[cst.BaseExpression]:
        """The expressions that `call` runs backward on."""
        func = call.func
        first = [a.value for a in call.args[:1] if a.keyword is None and not a.star]
        if isinstance(func, cst.Attribute) and func.attr.value == "manual_backward":
            return first
        if self.ctx.qualname(func) == "torch.autograd.backward":
            return first + [a.value for a in call.args if _is_keyword(a, "tensors")]
        if not isinstance(func, cst.Attribute) or func.attr.value != "backward":
            return []
        receiver = func.value
        if (self.ctx.dotted(receiver) or "").split(".")[-1] in BACKWARD_RUNNERS:
            return first
        if isinstance(receiver, cst.Call) and _receiver(receiver, "scale") is not None and len(receiver.args) == 1:
            arg = receiver.args[0]
            return [arg.value] if arg.keyword is None and not arg.star else []
        return [receiver]

    def _backward_name_ids(self) -> set[int]:
        """The Name nodes of the current scope that backward runs on."""
        ids: set[int] = set()
        for node in iter_nodes(self._facts().scope):
            if isinstance(node, cst.Call):
                ids.update(id(t) for t in self._backward_targets(node) if isinstance(t, cst.Name))
        return ids

    # --- taint: does an expression carry no autograd history? ---

    def _taint(self, expr: cst.CSTNode, depth: int = 0) -> str | None:
        """How `expr` lost its graph (e.g. "`.item()`"), or None when it may still have one."""
        if depth > MAX_DEPTH:
            return None
        step = self._peel_one(expr, depth)
        if step is not None:
            return step[1]
        if isinstance(expr, cst.Name):
            return self._name_taint(expr, depth + 1)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._taint(expr.expression, depth + 1)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, ARITHMETIC):
            return self._arith_taint((expr.left, expr.right), depth + 1)
        if isinstance(expr, cst.Call) and self._is_builtin(expr, "sum") and expr.args:
            args = expr.args
            if all(self._is_number(a.value) for a in args[1:]) and self._seq_taint(args[0].value, depth + 1):
                return "`sum()` of detached values"
        return None

    def _detached(self, expr: cst.CSTNode, depth: int) -> str | None:
        """`_taint` without fresh leaves: arithmetic on a leaf is differentiable with respect to it."""
        how = self._taint(expr, depth)
        return None if how == LEAF else how

    def _arith_taint(self, operands: Sequence[cst.CSTNode], depth: int) -> str | None:
        """Tainted when every operand is detached or a number, and at least one is detached."""
        found = None
        for operand in operands:
            how = self._detached(operand, depth)
            if how is None and not self._is_number(operand):
                return None
            found = found or how
        return found

    def _seq_taint(self, expr: cst.CSTNode, depth: int) -> str | None:
        """How the elements of a list/iterable lost their graph."""
        if depth > MAX_DEPTH:
            return None
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            return self._detached(expr.elt, depth + 1)
        if isinstance(expr, (cst.List, cst.Tuple)) and expr.elements:
            return self._arith_taint([e.value for e in expr.elements], depth + 1)
        if _receiver(expr, "tolist") is not None:
            return "`.tolist()`"
        if isinstance(expr, cst.Name):
            b = self._reaching_binding(expr)
            if b is not None and b.kind == "assign" and b.value is not None:
                return self._seq_taint(b.value, depth + 1)
        return None

    def _name_taint(self, name: cst.Name, depth: int) -> str | None:
        b = self._reaching_binding(name)
        if b is None or b.value is None:
            return None
        if b.kind == "assign":
            return self._taint(b.value, depth)
        if b.kind == "for":
            return self._seq_taint(b.value, depth)
        if b.kind == "augassign" and isinstance(b.value, cst.AugAssign):
            aug = b.value
            if not isinstance(aug.operator, AUG_ARITHMETIC) or not isinstance(aug.target, cst.Name):
                return None
            return self._arith_taint((aug.target, aug.value), depth)
        return None

    def _reaching_binding(self, name: cst.Name) -> Binding | None:
        """The binding of `name` that surely flows to it, unless the name later gets requires_grad."""
        facts = self._facts()
        b = facts.reaching(name.value, name)
        if b is None or b.kind not in ("assign", "for", "augassign") or not self._flows(b.stmt, name):
            return None
        for use in facts.uses.get(name.value, ()):
            if use.order > b.order and facts.parent_attr(use.node) in ("requires_grad_", "requires_grad"):
                return None
        return b

    def _peel_one(self, expr: cst.CSTNode, depth: int = 0) -> tuple[cst.BaseExpression, str] | None:
        """The expression under one detaching layer of `expr`, and that layer."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            attr = expr.func.attr.value
            inner = expr.func.value
            if attr not in DETACH_METHODS or expr.args:
                return self._peel_leaf(expr, depth)
            under_cpu = _receiver(inner, "cpu")
            if attr == "numpy" and under_cpu is not None and isinstance(inner, cst.Call) and not inner.args:
                return under_cpu, "`.cpu().numpy()`"
            return inner, f"`.{attr}()`"
        if isinstance(expr, cst.Attribute) and expr.attr.value == "data" and not self._may_be_packed(expr.value):
            return expr.value, "`.data`"
        if isinstance(expr, cst.Call) and self._is_builtin(expr, "float") and len(expr.args) == 1:
            arg = expr.args[0]
            if arg.keyword is None and not arg.star and not _is_literal(arg.value):
                return arg.value, "`float()`"
        return self._peel_leaf(expr, depth)

    def _peel_leaf(self, expr: cst.CSTNode, depth: int) -> tuple[cst.BaseExpression, str] | None:
        """`torch.tensor(<detached>, requires_grad=True)`: a new leaf with no link to the model."""
        if not isinstance(expr, cst.Call) or self.ctx.qualname(expr.func) != "torch.tensor" or not expr.args:
            return None
        if not any(_is_keyword(a, "requires_grad") and _is_true(a.value) for a in expr.args):
            return None
        data = expr.args[0]
        if data.keyword is not None or data.star:
            return None
        if self._detached(data.value, depth + 1) or self._seq_taint(data.value, depth + 1):
            return data.value, LEAF
        return None

    def _may_be_packed(self, expr: cst.BaseExpression) -> bool:
        """Whether `expr` may be a PackedSequence, whose `.data` keeps its graph."""
        target = expr.func if isinstance(expr, cst.Call) else expr
        return "pack" in (self.ctx.dotted(target) or "").lower() or PACKED_RE.search(self.ctx.source) is not None

    def _is_number(self, expr: cst.CSTNode) -> bool:
        if isinstance(expr, (cst.Integer, cst.Float)):
            return True
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._is_number(expr.expression)
        if not isinstance(expr, cst.Name):
            return False
        facts = self._facts()
        b = facts.reaching(expr.value, expr)
        if b is not None and b.kind == "param" and isinstance(facts.scope, cst.FunctionDef):
            return _param_default_is_number(facts.scope.params, expr.value)
        return b is not None and b.kind == "assign" and isinstance(b.value, (cst.Integer, cst.Float))

    def _is_builtin(self, call: cst.Call, name: str) -> bool:
        """A call of the builtin `name`, not shadowed by an import or a binding."""
        if not isinstance(call.func, cst.Name) or call.func.value != name or self.ctx.qualname(call.func):
            return False
        return not self._facts().bindings_of(name) and not self.ctx.module_facts().bindings_of(name)

    # --- control flow ---

    def _facts(self) -> ScopeFacts:
        return self.ctx.scope_facts()

    def _parent_map(self) -> dict[int, cst.CSTNode]:
        scope = self._facts().scope
        parents = self._parents.get(id(scope))
        if parents is None:
            parents = self._parents[id(scope)] = {}
            todo = [scope]
            while todo:
                node = todo.pop()
                for child in children(node):
                    parents[id(child)] = node
                    if not isinstance(child, SCOPE_TYPES):
                        todo.append(child)
        return parents

    def _path(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The ancestors of `node` from the scope down, `node` last."""
        parents = self._parent_map()
        path = [node]
        while id(path[-1]) in parents:
            path.append(parents[id(path[-1])])
        return path[::-1]

    def _flows(self, stmt: cst.CSTNode, use: cst.CSTNode) -> bool:
        """Whether a binding made in `stmt` surely flows to `use`, which follows it in source order."""
        if not isinstance(stmt, (cst.SimpleStatementLine, cst.For)):
            return False
        pb, pu = self._path(stmt), self._path(use)
        i = 0
        while i < min(len(pb), len(pu)) and pb[i] is pu[i]:
            i += 1
        if i == 0:
            return False
        if i == len(pb):
            return True
        if isinstance(pb[i - 1], BRANCHES):
            return False
        for parent, child in zip(pb[i:], pb[i + 1:]):
            if isinstance(parent, (cst.IndentedBlock, cst.Module)) and _terminates(parent.body, child):
                return False
        return True

    # --- the fix ---

    def _fix(self, target: cst.BaseExpression, call: cst.Call) -> Fix | None:
        if not isinstance(target, cst.Name):
            strips = self._strips(target, top=False)
            if strips is None:
                return None
            return _fix_of(tuple(Replace(s.node, s.core) for s in strips))
        b = self._reaching_binding(target)
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
            if self._taint(peeled.core) is not None:
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
        peeled = self._peel(expr)
        if peeled is not None:
            if self._taint(peeled.core) is not None:
                return None
            return [_Strip(expr, _wrap(peeled.core, expr, top), peeled.layers)]
        if self._is_number(expr):
            return []
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._strips(expr.expression, top=False)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, ARITHMETIC):
            left, right = self._strips(expr.left, top=False), self._strips(expr.right, top=False)
            return None if left is None or right is None else left + right
        return None

    def _peel(self, expr: cst.BaseExpression) -> _Strip | None:
        """Every detaching layer of `expr` peeled off, outermost first."""
        core, layers = expr, []
        step = self._peel_one(core)
        while step is not None:
            core, layer = step
            layers.append(layer)
            step = self._peel_one(core)
        return _Strip(expr, core, tuple(layers)) if layers else None

    def _renamable(self, b: Binding, name: str) -> bool:
        """No `+=` on the value, no closure reading the name, no read of it earlier in its loop."""
        facts = self._facts()
        for other in facts.bindings_of(name):
            if other.kind == "augassign" and other.value is not None and facts.reaching(name, other.value) is b:
                return False
        for node in iter_nodes(facts.scope, enter_scopes=True):
            if isinstance(node, SCOPE_TYPES) and any(
                isinstance(n, cst.Name) and n.value == name for n in iter_nodes(node, enter_scopes=True)
            ):
                return False
        if b.loops:
            loop = b.loops[-1]
            for use in facts.uses.get(name, ()):
                if facts.contains(loop, use.node) and use.order < b.order:
                    return False
        return True

    def _reads(self, b: Binding, name: str) -> list[cst.Name] | None:
        """The reads of `name` that `b` reaches other than backward, or None if one is not sure."""
        facts = self._facts()
        skip = self._backward_name_ids()
        reads = []
        for use in facts.uses.get(name, ()):
            if facts.reaching(name, use.node) is not b or id(use.node) in skip:
                continue
            if facts.order_of(use.node) <= facts.end_of(b.stmt) or not self._flows(b.stmt, use.node):
                return None
            reads.append(use.node)
        return reads

    def _anchor(self, stmt: cst.CSTNode, call: cst.Call, reads: list[cst.Name]) -> cst.BaseStatement:
        """After the statement holding the backward, or after `stmt` when a read comes earlier."""
        facts = self._facts()
        path = self._path(call)
        block = self._parent_map().get(id(stmt))
        anchor = stmt
        if block in path:
            after = path[path.index(block) + 1]
            if all(facts.order_of(r) > facts.end_of(after) for r in reads):
                anchor = after
        return cast(cst.BaseStatement, anchor)

    def _fresh(self, base: str) -> str:
        if self._names is None:
            self._names = {n.value for n in iter_nodes(self.ctx.module, enter_scopes=True) if isinstance(n, cst.Name)}
        name, i = base, 1
        while name in self._names:
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


def _receiver(expr: cst.CSTNode, attr: str) -> cst.BaseExpression | None:
    """`x` when `expr` is the call `x.attr(...)`."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == attr:
        return expr.func.value
    return None


def _is_keyword(arg: cst.Arg, name: str) -> bool:
    return arg.keyword is not None and arg.keyword.value == name


def _is_true(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def _is_literal(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, (cst.Integer, cst.Float, cst.BaseString))


def _same_name(expr: cst.BaseExpression, name: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == name


def _param_default_is_number(params: cst.Parameters, name: str) -> bool:
    """A hyperparameter such as `beta=4.0`."""
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        if p.name.value == name:
            return isinstance(p.default, (cst.Integer, cst.Float))
    return False


def _terminates(body: Sequence[cst.BaseStatement], child: cst.CSTNode) -> bool:
    """Whether `child`, or a statement after it in `body`, leaves the block."""
    idx = next((i for i, s in enumerate(body) if s is child), None)
    if idx is None:
        return False
    return any(
        isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, TERMINATORS) for s in stmt.body)
        for stmt in body[idx:]
    )


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
