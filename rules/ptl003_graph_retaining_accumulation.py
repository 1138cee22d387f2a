"""PTL003 graph-retaining-accumulation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.semantic import Binding, Carry, Kind

if TYPE_CHECKING:
    from ptlint.context import Context

MAX_FOLLOWED = 16
EVAL_NAME_RE = re.compile(
    r"(^|_)(val|valid|validate|validation|eval|evaluate|evaluation|test|testing|"
    r"predict|prediction|infer|inference)(_|$)"
)
FILL_METHODS = {"append", "appendleft", "extend", "insert"}
TRUNCATE_METHODS = {"pop", "popleft", "clear"}
NUMERIC_SINKS = {"print", "round", "float", "int", "str", "abs", "format", "repr", "min", "max"}
LOG_METHODS = {"format", "info", "debug", "warning", "log", "write", "set_postfix", "set_description", "add_scalar"}
ACCUMULATING_OPERATORS = frozenset((cst.AddAssign, cst.SubtractAssign))
ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
SILENT = {"backward", "bank", "loss"}
ESCAPES = {"return", "store"}
Follow = tuple[str, "cst.CSTNode | None"]


class GraphRetainingAccumulation(Rule):
    """A tensor that still carries its autograd graph is accumulated across loop iterations.

    ## What it does
    Flags a model or loss result that still carries its autograd graph when a loop accumulates it
    into something bound before the loop, such as `total += loss` or `losses.append(loss)`.

    The accumulations are `total += loss`, `total = total + loss`, `losses.append(loss)`,
    `outputs.append(model(x))`, `d[k] = loss` and `d[k] += loss`. Taint flows from module calls
    through loss functions, `torch.*` functions, tensor methods and arithmetic, and stops at
    `.item()`, `.detach()`, `.data`, `.tolist()`, `float()`, `int()`, integer results such as
    `argmax`, and values computed under `no_grad`.

    The rule stays silent when the accumulator later reaches `.backward()` or `torch.autograd.grad`
    (summed multi-task losses, TBPTT, gradient accumulation), when it is returned from a function
    that may build a loss (one with no backward call and no evaluation-like name), when gradients
    are off (`no_grad`, `inference_mode`, `set_grad_enabled(False)`, helpers named like them, a
    function only called under `no_grad`, Lightning evaluation hooks, frozen models), when the
    accumulated tensors are fed to a loss function, for memory banks that are detached or truncated
    inside the loop, for accumulators bound inside the loop, and for loops inside an `nn.Module`'s
    `forward` (over layers, pyramid levels or time steps), whose lists die with the forward pass.
    Accumulators on `self` are left to PTL004.

    ## Why is this bad?
    Each accumulated tensor references the graph that produced it, so the graph of every iteration
    stays alive for as long as the accumulator does. In evaluation code without `no_grad` that keeps
    all saved activations and memory grows until the process runs out of memory; in training loops
    it keeps a growing chain of autograd nodes and one device tensor per step.

    ## Example
    ```python
    total_loss = 0.0
    losses = []
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss
        losses.append(loss)
    print(total_loss / len(loader))
    ```

    ## Use instead
    ```python
    total_loss = 0.0
    losses = []
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        losses.append(loss.detach())
    print(total_loss / len(loader))
    ```

    ## Fix safety
    `total += loss` (and `total = total + loss`) becomes `total += loss.item()` when the value is a
    reduced loss (a `mean()`/`sum()` or a `torch.nn` loss with the default reduction), the
    accumulator starts as a number literal, and every read of it is numeric: printed, formatted,
    logged, compared or used in arithmetic that ends in one of those. A returned accumulator is not
    a numeric read. Everywhere else the value becomes `value.detach()`, which keeps the tensor type.
    Both are safe when the accumulator does not leave the function; the fix is unsafe when it is
    returned or stored on an object (a caller might backpropagate through it), or when the value
    may not be a single tensor (a module call can return a tuple or a model-output object).
    With the option `accumulate-on-device = true` the rule always uses `.detach()` (see PTL008).

    ## References
    - [PyTorch FAQ: accumulating history across the training loop](https://pytorch.org/docs/stable/notes/faq.html)
    - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
    """

    code = "PTL003"
    name = "graph-retaining-accumulation"
    message = (
        "A tensor that still holds its autograd graph is accumulated across iterations; "
        "accumulate `.item()` or `.detach()` instead"
    )
    fix_safety = FixSafety.SAFE
    severity = "error"
    triggers = ("torch",)
    options = {"accumulate-on-device": False}
    contract = "E0"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._backward_in: dict[int, bool] = {}

    # --- accumulation sites ---

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if type(node.operator) in ACCUMULATING_OPERATORS:
            self._check(_root_name(node.target), node.value, type(node.target) is cst.Name)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            return
        target = node.targets[0].target
        if isinstance(target, cst.Name):
            operand = _summand(node.value, target.value)
            if operand is not None:
                self._check(target.value, operand, True)
        elif isinstance(target, cst.Subscript) and self._varying_key(target):
            self._check(_root_name(target.value), node.value, False)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("append", "appendleft") and len(node.args) == 1:
            arg = node.args[0]
            if arg.keyword is None and not arg.star:
                self._check(_root_name(func.value), arg.value, False)

    def _check(self, root: str | None, value: cst.BaseExpression, sum_form: bool) -> None:
        """Report `value` when it carries a graph into `root` across iterations of the innermost loop."""
        loops = self.ctx.loops()
        if root is None or root == "self" or not loops:
            return
        loop = loops[-1]
        if self._in_module_forward() or not self._outlives(root, loop):
            return
        model = self.ctx.model
        if model.graph.carries(value) is not Carry.YES or model.grad_disabled(self.ctx.node):
            return
        flow = self._flow(root, loop)
        if flow & SILENT or (flow & ESCAPES and not self._logging_context()):
            return
        self.report(value, fix=self._fix(root, value, sum_form, flow))

    def _in_module_forward(self) -> bool:
        """A loop inside an nn.Module's `forward` (over layers, levels or time steps): its local
        accumulators are part of one forward pass and die with it."""
        info, func = self.ctx.class_info(), self.ctx.function()
        return info is not None and info.is_module and func is not None and func.name.value == "forward" and (
            self.ctx.functions()[0] is func
        )

    def _fix(self, root: str, value: cst.BaseExpression, sum_form: bool, flow: set[str]) -> Fix:
        torch = self.ctx.model.torch
        if (
            sum_form
            and not self.opts["accumulate-on-device"]
            and flow <= {"numeric", "self"}
            and torch.is_scalar(value)
            and self._starts_numeric(root)
        ):
            edit = Replace(value, _method(value, "item"))
            return Fix("Accumulate the Python number with `.item()`", FixSafety.SAFE, (edit,))
        safe = not flow & ESCAPES and torch.one_tensor(value) is True
        safety = FixSafety.SAFE if safe else FixSafety.UNSAFE
        return Fix("Accumulate a detached tensor with `.detach()`", safety, (Replace(value, _method(value, "detach")),))

    # --- where the accumulator lives ---

    def _outlives(self, root: str, loop: cst.CSTNode) -> bool:
        """Bound before `loop` and not reset unconditionally inside it before the current statement."""
        facts = self.ctx.scope_facts()
        start, here = facts.order_of(loop), facts.order_of(self.ctx.statement())
        binds = facts.bindings_of(root)
        if not any(b.order < start for b in binds):
            return False
        return not any(
            start < b.order < here and not self._accumulates(b) and self._unconditional(b.stmt, loop) for b in binds
        )

    def _unconditional(self, stmt: cst.CSTNode, loop: cst.CSTNode) -> bool:
        """`stmt` runs on every iteration of `loop`: only blocks and `with` statements lie between them."""
        if stmt is loop:
            return True
        for node in self.ctx.model.tree.ancestors(stmt):
            if node is loop:
                return True
            if not isinstance(node, (cst.IndentedBlock, cst.With)):
                return False
        return False

    def _varying_key(self, target: cst.Subscript) -> bool:
        """Whether the subscript uses a name bound inside the innermost loop."""
        loops = self.ctx.loops()
        if not loops:
            return False
        facts = self.ctx.scope_facts()
        names = {n.value for el in target.slice for n in self.ctx.model.tree.below(el, cst.Name)}  # type: ignore[attr-defined]
        return any(any(lp is loops[-1] for lp in b.loops) for n in names for b in facts.bindings_of(n))

    def _starts_numeric(self, root: str) -> bool:
        """Every binding of `root` is a number or an accumulation."""
        model = self.ctx.model
        for b in self.ctx.scope_facts().bindings_of(root):
            value = b.bound_value()
            if not self._accumulates(b) and (value is None or model.kind(value) is not Kind.NUMBER):
                return False
        return True

    def _accumulates(self, b: Binding) -> bool:
        """An augmented assignment, or an assignment whose value reads the name itself."""
        if b.kind == "augassign":
            return True
        value = b.value
        return b.kind == "assign" and value is not None and any(
            isinstance(n, cst.Name) and n.value == b.name for n in (value, *self.ctx.model.tree.below(value, cst.Name))
        )

    # --- what happens to the accumulator ---

    def _flow(self, root: str, loop: cst.CSTNode) -> set[str]:
        """How the accumulator (and names assigned from it) is read: backward, bank, return, store, numeric..."""
        facts = self.ctx.scope_facts()
        kinds: set[str] = set()
        seen: set[tuple[str, int]] = {(root, id(None))}
        pending: list[Follow] = [(root, None)]
        while pending:
            name, stmt = pending.pop()
            binding = next((b for b in facts.bindings_of(name) if b.stmt is stmt), None) if stmt is not None else None
            uses = self.ctx.model.names.uses_of(binding, facts.scope) if binding is not None else facts.uses.get(name, [])
            for use in uses:
                kind, follows = self._classify(use.node)
                if kind in ("detach", "truncate"):
                    kind = "bank" if name == root and facts.contains(loop, use.node) else "other"
                if kind is not None:
                    kinds.add(kind)
                for follow in follows:
                    key = (follow[0], id(follow[1]))
                    if key not in seen and len(seen) < MAX_FOLLOWED:
                        seen.add(key)
                        pending.append(follow)
        return kinds

    def _classify(self, node: cst.CSTNode) -> tuple[str | None, list[Follow]]:
        """Climb from a read of the accumulator to what consumes it."""
        parent_of = self.ctx.model.tree.parent
        pure = True
        while True:
            parent = parent_of(node)
            if parent is None:
                return "other", []
            if isinstance(parent, cst.Attribute):
                call = parent_of(parent)
                if isinstance(call, cst.Call) and call.func is parent:
                    kind = _method_kind(parent.attr.value)
                    if kind is not None:
                        return kind, []
                    parent = call
            elif isinstance(parent, cst.Arg):
                call = parent_of(parent)
                assert isinstance(call, cst.Call)
                verdict = self._call_use(call, pure)
                if verdict is not None:
                    return verdict
                parent = call
            elif isinstance(parent, (cst.Comparison, cst.FormattedStringExpression)):
                return ("numeric" if pure else "other"), []
            elif isinstance(parent, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
                return _assign_use(parent, node, parent_of(parent))
            elif isinstance(parent, (cst.Return, cst.Yield)):
                return "return", []
            elif isinstance(parent, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                return "other", []
            keeps = (cst.BinaryOperation, cst.UnaryOperation, cst.ComparisonTarget, cst.Dict, cst.DictElement)
            pure = pure and isinstance(parent, keeps)
            node = parent

    def _call_use(self, call: cst.Call, pure: bool) -> tuple[str | None, list[Follow]] | None:
        """The verdict for a read passed as an argument of `call`, or None to keep climbing."""
        func = call.func
        model = self.ctx.model
        if model.graph.is_backward(call):
            return "backward", []
        if model.torch.is_loss_function(func):
            return "loss", []
        if isinstance(func, cst.Attribute) and func.attr.value in FILL_METHODS:
            root = _root_name(func.value)
            return ("store", []) if root in (None, "self") else (None, [(root, None)])
        if pure and (
            (isinstance(func, cst.Name) and func.value in NUMERIC_SINKS)
            or (isinstance(func, cst.Attribute) and func.attr.value in LOG_METHODS)
        ):
            return "numeric", []
        return None

    def _logging_context(self) -> bool:
        """An evaluation-like function, or one that calls backward itself: a returned total is for logging."""
        if any(EVAL_NAME_RE.search(f.name.value.lower()) for f in self.ctx.functions()):
            return True
        scope = self.ctx.scope_facts().scope
        key = id(scope)
        if key not in self._backward_in:
            model = self.ctx.model
            calls = model.tree.below(scope, cst.Call, scopes=False)
            self._backward_in[key] = any(model.graph.is_backward(c) for c in calls)  # type: ignore[arg-type]
        return self._backward_in[key]


# --- helpers on syntax ---


def _root_name(expr: cst.CSTNode) -> str | None:
    """`d` for `d`, `d[k]`, `d.attr[k]`; None for anything else."""
    while isinstance(expr, (cst.Subscript, cst.Attribute)):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _summand(value: cst.BaseExpression, name: str) -> cst.BaseExpression | None:
    """`x` in `name + x`, `x + name` or `name - x`."""
    if not isinstance(value, cst.BinaryOperation) or value.lpar:
        return None
    left_is = isinstance(value.left, cst.Name) and value.left.value == name
    if isinstance(value.operator, (cst.Add, cst.Subtract)) and left_is:
        return value.right
    if isinstance(value.operator, cst.Add) and isinstance(value.right, cst.Name) and value.right.value == name:
        return value.left
    return None


def _method_kind(method: str) -> str | None:
    """The verdict for a read used as the receiver of `method`."""
    if method in ("backward", "manual_backward"):
        return "backward"
    if method in ("detach", "detach_"):
        return "detach"
    if method in TRUNCATE_METHODS:
        return "truncate"
    if method in FILL_METHODS:
        return "self"
    if method in ("item", "tolist", "numpy"):
        return "other"
    return None


def _assign_use(
    assign: cst.Assign | cst.AnnAssign | cst.AugAssign, node: cst.CSTNode, stmt: cst.CSTNode | None
) -> tuple[str | None, list[Follow]]:
    """A read on the right of an assignment: follow the names it flows into."""
    if node is not assign.value:
        target = assign.target if isinstance(assign, cst.AugAssign) else None
        return "self", [(target.value, stmt)] if isinstance(target, cst.Name) else []
    targets = [t.target for t in assign.targets] if isinstance(assign, cst.Assign) else [assign.target]
    follows: list[Follow] = []
    kind = None
    for target in targets:
        elements = [el.value for el in target.elements] if isinstance(target, (cst.Tuple, cst.List)) else [target]
        for el in elements:
            if isinstance(el, cst.Name):
                follows.append((el.value, stmt))
                continue
            root = _root_name(el)
            if root is None or root == "self":
                kind = "store"
            else:
                follows.append((root, None))
    return kind, follows


def _method(expr: cst.BaseExpression, name: str) -> cst.Call:
    """`expr.name()`, parenthesizing `expr` when it is not an atom."""
    base = expr
    if not isinstance(expr, ATOMS) and not expr.lpar:
        base = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=base, attr=cst.Name(name)))
