"""PTL003 graph-retaining-accumulation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import libcst as cst

from ptlint.facts.dataflow import Binding, ScopeFacts, Use
from ptlint.facts.walk import children, in_blocks, iter_nodes
from ptlint.rule import Fix, FixSafety, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

MAX_DEPTH = 8
MAX_FOLLOWED = 16
LOSS_NAME_RE = re.compile(
    r"^(criterion\w*|\w*_criterion|crit|loss|loss_?fn|loss_?func|loss_?fct|loss_function|\w+_loss(_fn|_func)?|\w*Loss)$"
)
EVAL_NAME_RE = re.compile(
    r"(^|_)(val|valid|validate|validation|eval|evaluate|evaluation|test|testing|"
    r"predict|prediction|infer|inference)(_|$)"
)
F_LOSS_NAMES = {"cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"}
# Attributes and methods whose result carries no graph (metadata, integer or boolean tensors, Python values).
NON_GRAPH_ATTRS = {
    "data", "grad", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn", "ndim", "indices", "is_cuda",
}
NON_GRAPH_METHODS = {
    "item", "tolist", "numpy", "detach", "detach_", "size", "dim", "numel", "nelement", "argmax", "argmin",
    "argsort", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "nonzero", "count_nonzero",
    "long", "int", "bool", "byte", "any", "all", "equal", "allclose", "isclose", "backward", "stride", "get_device",
}
NON_GRAPH_TORCH = {
    "argmax", "argmin", "argsort", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "equal",
    "allclose", "isclose", "numel", "nonzero", "count_nonzero", "tensor", "from_numpy", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "randint_like", "detach", "bucketize", "searchsorted",
}
# Calls that return a tuple (values, indices) or several tensors rather than one tensor.
TUPLE_RETURNING = {"max", "min", "topk", "sort", "kthvalue", "mode", "median", "split", "chunk", "unbind", "aminmax"}
BACKWARD_METHODS = {"backward", "manual_backward"}
AUTOGRAD_CALLS = {"torch.autograd.grad", "torch.autograd.backward"}
FILL_METHODS = {"append", "appendleft", "extend", "insert"}
TRUNCATE_METHODS = {"pop", "popleft", "clear"}
NUMERIC_SINKS = {"print", "round", "float", "int", "str", "abs", "format", "repr", "min", "max"}
LOG_METHODS = {"format", "info", "debug", "warning", "log", "write", "set_postfix", "set_description", "add_scalar"}
CONFIG_ROOTS = {"args", "cfg", "config", "opt", "opts", "hparams"}
LIGHTNING_NO_GRAD = {"validation_step", "test_step", "predict_step"}
SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
SCOPE_TYPES = frozenset(SCOPES)
# Nodes whose children may hold statements; nested functions and classes are not entered.
BLOCKS = frozenset({
    "Module", "IndentedBlock", "If", "Else", "For", "While", "Try", "TryStar", "ExceptHandler", "ExceptStarHandler",
    "Finally", "With", "Match", "MatchCase",
})
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
        self._parent_maps: dict[int, dict[int, cst.CSTNode]] = {}
        self._with_lists: dict[int, list[cst.With]] = {}
        self._flags: dict[tuple[str, int], bool] = {}
        self._sites: dict[str, list[bool]] | None = None
        self._frozen_names: set[str] | None = None

    # --- accumulation sites ---

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if type(node.operator) in ACCUMULATING_OPERATORS:
            self._check(_root_name(node.target), node.value, type(node.target) is cst.Name)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            return
        target = node.targets[0].target
        kind = type(target)
        if kind is cst.Name:
            operand = _summand(node.value, target.value)  # type: ignore[attr-defined]
            if operand is not None:
                self._check(target.value, operand, True)  # type: ignore[attr-defined]
        elif kind is cst.Subscript and self._varying_key(target):  # type: ignore[arg-type]
            self._check(_root_name(target.value), node.value, False)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if type(func) is cst.Attribute and func.attr.value in ("append", "appendleft") and len(node.args) == 1:  # type: ignore[attr-defined]
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
        if not self._graph(value) or self._grad_off():
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
        if (
            sum_form
            and not self.opts["accumulate-on-device"]
            and flow <= {"numeric", "self"}
            and self._is_scalar(value)
            and self._starts_numeric(root)
        ):
            edit = Replace(value, _method(value, "item"))
            return Fix("Accumulate the Python number with `.item()`", FixSafety.SAFE, (edit,))
        safe = not flow & ESCAPES and self._is_tensor(value)
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
            start < b.order < here and not _accumulates(b) and self._unconditional(b.stmt, loop) for b in binds
        )

    def _unconditional(self, stmt: cst.CSTNode, loop: cst.CSTNode) -> bool:
        if stmt is loop:
            return True
        parents = self._parents()
        node = parents.get(id(stmt))
        while node is not None and node is not loop:
            if not isinstance(node, (cst.IndentedBlock, cst.With)):
                return False
            node = parents.get(id(node))
        return node is loop

    def _varying_key(self, target: cst.Subscript) -> bool:
        """Whether the subscript uses a name bound inside the innermost loop."""
        loops = self.ctx.loops()
        if not loops:
            return False
        facts = self.ctx.scope_facts()
        names = {n.value for el in target.slice for n in _walk(el) if isinstance(n, cst.Name)}
        return any(any(lp is loops[-1] for lp in b.loops) for n in names for b in facts.bindings_of(n))

    def _starts_numeric(self, root: str) -> bool:
        """Every binding of `root` is a number literal or an accumulation."""
        binds = self.ctx.scope_facts().bindings_of(root)
        return all(_accumulates(b) or _is_literal_number(_bound_value(b)) for b in binds)

    # --- gradients off ---

    def _grad_off(self) -> bool:
        ctx = self.ctx
        if ctx.in_no_grad() or self._named_no_grad() or self._lightning_eval() or self._disables_grad(ctx.module):
            return True
        func = ctx.function()
        return func is not None and (self._disables_grad(func) or self._called_under_no_grad(func))

    def _named_no_grad(self) -> bool:
        """Project helpers named like no_grad: `@smart_inference_mode()`, `with utils.no_grad():`."""
        for node in self.ctx.stack:
            if isinstance(node, cst.FunctionDef):
                exprs = [d.decorator for d in node.decorators]
            elif isinstance(node, cst.With):
                exprs = [i.item for i in node.items]
            else:
                continue
            for expr in exprs:
                name = _last_name(expr.func if isinstance(expr, cst.Call) else expr) or ""
                if "no_grad" in name or "inference_mode" in name:
                    return True
        return False

    def _lightning_eval(self) -> bool:
        info = self.ctx.class_info()
        return info is not None and info.is_lightning and any(
            f.name.value in LIGHTNING_NO_GRAD for f in self.ctx.functions()
        )

    def _disables_grad(self, root: cst.CSTNode) -> bool:
        """A `torch.set_grad_enabled(False)` statement in `root` (not entering nested functions)."""
        key = ("grad", id(root))
        if key not in self._flags:
            self._flags[key] = any(
                isinstance(n, cst.Expr)
                and isinstance(n.value, cst.Call)
                and (self.ctx.qualname(n.value.func) or "").endswith("set_grad_enabled")
                and self.ctx.is_no_grad(n.value)
                for n in iter_nodes(root)
            )
        return self._flags[key]

    def _called_under_no_grad(self, func: cst.FunctionDef) -> bool:
        if self._sites is None:
            self._sites = {}
            self._collect_sites(self.ctx.module, False)
        sites = self._sites.get(func.name.value, [])
        return bool(sites) and all(sites)

    def _collect_sites(self, node: cst.CSTNode, off: bool) -> None:
        """Record, for each called name, whether every call runs under no_grad."""
        assert self._sites is not None
        kind = type(node)
        if kind is cst.With and any(self.ctx.is_no_grad(i.item) for i in node.items):  # type: ignore[attr-defined]
            off = True
        elif kind is cst.FunctionDef:
            off = any(self.ctx.is_no_grad(d.decorator) for d in node.decorators)  # type: ignore[attr-defined]
        elif kind is cst.Call:
            name = _last_name(node.func)  # type: ignore[attr-defined]
            name = "__call__" if name == "self" else name  # `self(batch)` runs the class's `__call__`
            if name is not None:
                self._sites.setdefault(name, []).append(off)
        for child in children(node):
            self._collect_sites(child, off)

    def _under_no_grad(self, stmt: cst.CSTNode) -> bool:
        """Whether a no-grad `with` of the current scope holds `stmt` (a statement of that scope)."""
        facts = self.ctx.scope_facts()
        return any(
            w is not stmt and facts.contains(w, stmt) and any(self.ctx.is_no_grad(i.item) for i in w.items)
            for w in self._withs(facts.scope)
        )

    def _withs(self, scope: cst.CSTNode) -> list[cst.With]:
        """The `with` statements of `scope`, nested functions and classes left out."""
        found = self._with_lists.get(id(scope))
        if found is None:
            root = scope.body if type(scope) is cst.FunctionDef else scope  # type: ignore[attr-defined]
            found = self._with_lists[id(scope)] = in_blocks(root, "With", BLOCKS)  # type: ignore[assignment]
        return found

    def _frozen(self) -> set[str]:
        """Dotted names of modules frozen with `requires_grad_(False)` or `p.requires_grad = False` loops."""
        if self._frozen_names is None:
            self._frozen_names = set()
            for node in iter_nodes(self.ctx.module, enter_scopes=True):
                kind = type(node)
                if kind is cst.Call and _is_freeze_call(node) and isinstance(node.func, cst.Attribute):  # type: ignore[arg-type, attr-defined]
                    self._frozen_names.add(self.ctx.dotted(node.func.value) or "")  # type: ignore[attr-defined]
                elif kind is cst.For and _iterates_parameters(node.iter) and _freezes(node.body):
                    assert isinstance(node.iter, cst.Call) and isinstance(node.iter.func, cst.Attribute)
                    self._frozen_names.add(self.ctx.dotted(node.iter.func.value) or "")
        return self._frozen_names

    # --- graph taint ---

    def _graph(self, expr: cst.CSTNode, depth: int = 0) -> bool:
        """Whether `expr` is a tensor that carries an autograd graph from a module call."""
        if depth > MAX_DEPTH:
            return False
        if isinstance(expr, cst.Name):
            return self._name_graph(expr, depth)
        if isinstance(expr, cst.Call):
            return self._call_graph(expr, depth)
        if isinstance(expr, cst.Attribute):
            return expr.attr.value not in NON_GRAPH_ATTRS and self._graph(expr.value, depth + 1)
        if isinstance(expr, cst.Subscript):
            return not _is_indices(expr) and self._graph(expr.value, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            return self._graph(expr.left, depth + 1) or self._graph(expr.right, depth + 1)
        if isinstance(expr, cst.UnaryOperation):
            return not isinstance(expr.operator, cst.Not) and self._graph(expr.expression, depth + 1)
        if isinstance(expr, cst.IfExp):
            return self._graph(expr.body, depth + 1) or self._graph(expr.orelse, depth + 1)
        return False

    def _name_graph(self, name: cst.Name, depth: int) -> bool:
        b = self.ctx.reaching(name)
        if b is None or self._under_no_grad(b.stmt):
            return False
        if b.kind == "augassign" and isinstance(b.value, cst.AugAssign):
            return self._graph(b.value.value, depth + 1) or self._graph(b.value.target, depth + 1)
        if b.kind != "assign":
            return False
        if b.value is None:
            value = _unpacked_from(b)
            return isinstance(value, cst.Call) and (self._is_module_call(value) or self._loss_call_graph(value, depth))
        return self._graph(b.value, depth + 1)

    def _call_graph(self, call: cst.Call, depth: int) -> bool:
        if self._is_module_call(call):
            return True
        func = call.func
        q = self.ctx.qualname(func) or ""
        if q.startswith("torch."):
            return q.rsplit(".", 1)[-1] not in NON_GRAPH_TORCH and self._args_graph(call, depth)
        if self._loss_call_graph(call, depth):
            return True
        if isinstance(func, cst.Name) and func.value == "sum":
            return self._args_graph(call, depth)
        if isinstance(func, cst.Attribute):
            return func.attr.value not in NON_GRAPH_METHODS and self._graph(func.value, depth + 1)
        return False

    def _loss_call_graph(self, call: cst.Call, depth: int) -> bool:
        """A loss function or criterion applied to a graph tensor."""
        return self._is_loss_callee(call.func) and self._args_graph(call, depth)

    def _args_graph(self, call: cst.Call, depth: int) -> bool:
        for arg in call.args:
            value = arg.value
            if isinstance(value, (cst.List, cst.Tuple)):
                if any(self._graph(el.value, depth + 1) for el in value.elements):
                    return True
            elif isinstance(value, (cst.ListComp, cst.GeneratorExp)):
                if self._graph(value.elt, depth + 1):
                    return True
            elif self._graph(value, depth + 1):
                return True
        return False

    def _is_module_call(self, call: cst.Call) -> bool:
        """A call of an nn.Module that is not a loss module (those only pass taint on)."""
        func = call.func
        if self._is_loss_callee(func):
            return False
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        if isinstance(func, cst.Name) and func.value == "self":
            info = self.ctx.class_info()
            is_module = info is not None and info.is_module
        else:
            is_module = self.ctx.is_module_expr(func)
        return is_module and (self.ctx.dotted(func) or "") not in self._frozen()

    def _is_loss_callee(self, func: cst.BaseExpression) -> bool:
        if isinstance(func, cst.Call):
            return _is_loss_ctor(func)
        name = _last_name(func)
        if name is None:
            return False
        definition = self._definition(func)
        if isinstance(definition, cst.Call) and _is_loss_ctor(definition):
            return True
        if isinstance(definition, cst.FunctionDef) and self._returns_detached(definition):
            return False
        return LOSS_NAME_RE.match(name) is not None

    def _definition(self, func: cst.BaseExpression) -> cst.CSTNode | None:
        """The value bound to a callee name, or the in-file function or method it names."""
        if isinstance(func, cst.Name):
            b = self.ctx.reaching(func)
            if b is None:  # the enclosing functions, innermost first, then the module
                outer = [*(self.ctx.scope_facts(f) for f in self.ctx.functions()[-2::-1]), None]
                for facts in outer:
                    binds = (facts or self.ctx.module_facts()).bindings_of(func.value)
                    if binds:
                        b = binds[-1]
                        break
            return b.value if b is not None else None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            info = self.ctx.class_info()
            if info is None:
                return None
            init = info.methods.get("__init__")
            values = self.ctx.self_assignments(init, func.attr.value) if init is not None else []
            return values[-1] if values else info.methods.get(func.attr.value)
        return None

    def _returns_detached(self, func: cst.FunctionDef) -> bool:
        """Every return of `func` gives a Python value (`.item()`, `float()`, a literal)."""
        key = ("returns", id(func))
        if key not in self._flags:
            returns = [n for n in iter_nodes(func.body) if isinstance(n, cst.Return)]
            self._flags[key] = bool(returns) and all(_is_detached_value(r.value) for r in returns)
        return self._flags[key]

    # --- value kinds for the fix ---

    def _is_tensor(self, expr: cst.CSTNode, depth: int = 0) -> bool:
        """Whether `expr` is surely one tensor (not a tuple or a model-output object)."""
        if depth > MAX_DEPTH:
            return False
        if isinstance(expr, (cst.BinaryOperation, cst.UnaryOperation)):
            return True
        if isinstance(expr, cst.Name):
            b = self.ctx.reaching(expr)
            return b is not None and (b.kind == "augassign" or (b.kind == "assign" and b.value is not None
                                                                 and self._is_tensor(b.value, depth + 1)))
        if not isinstance(expr, cst.Call) or self._is_module_call(expr):
            return False
        if self._is_loss_callee(expr.func) or (isinstance(expr.func, cst.Name) and expr.func.value == "sum"):
            return True
        return isinstance(expr.func, cst.Attribute) and expr.func.attr.value not in TUPLE_RETURNING

    def _is_scalar(self, expr: cst.CSTNode, depth: int = 0) -> bool:
        """Whether `expr` is surely a 0-dim tensor: a reduction or a default-reduction loss."""
        if depth > MAX_DEPTH:
            return False
        if isinstance(expr, cst.Name):
            b = self.ctx.reaching(expr)
            return b is not None and b.kind == "assign" and b.value is not None and self._is_scalar(b.value, depth + 1)
        if isinstance(expr, cst.UnaryOperation):
            return self._is_scalar(expr.expression, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            left, right = expr.left, expr.right
            if self._is_scalar(left, depth + 1):
                return self._is_number(right) or self._is_scalar(right, depth + 1)
            return self._is_number(left) and self._is_scalar(right, depth + 1)
        return isinstance(expr, cst.Call) and self._scalar_call(expr)

    def _scalar_call(self, call: cst.Call) -> bool:
        func = call.func
        q = self.ctx.qualname(func) or ""
        if q in ("torch.mean", "torch.sum"):
            return len(call.args) == 1
        if _is_f_loss(q):
            return _default_reduction(call)
        if isinstance(func, cst.Attribute) and func.attr.value in ("mean", "sum") and not q:
            return not call.args
        ctor = func if isinstance(func, cst.Call) else self._definition(func)
        if isinstance(ctor, cst.Call):
            cq = self.ctx.qualname(ctor.func) or ""
            return cq.startswith("torch.nn.") and _is_loss_ctor(ctor) and _default_reduction(ctor)
        return False

    def _is_number(self, expr: cst.CSTNode) -> bool:
        """A Python number: a literal, `len()`, `x.size(i)`, `x.shape[i]`, a config attribute."""
        if _is_literal_number(expr):
            return True
        if isinstance(expr, cst.Call):
            func = expr.func
            if isinstance(func, cst.Name):
                return func.value in ("len", "float", "int")
            return isinstance(func, cst.Attribute) and func.attr.value in ("size", "numel") and (
                bool(expr.args) or func.attr.value == "numel"
            )
        if isinstance(expr, cst.Subscript):
            return isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "shape"
        if isinstance(expr, cst.Attribute):
            dotted = self.ctx.dotted(expr) or ""
            head = dotted.split(".")[1] if dotted.startswith("self.") else dotted.split(".")[0]
            return head in CONFIG_ROOTS
        if isinstance(expr, cst.Name):
            b = self.ctx.reaching(expr)
            return b is not None and b.kind == "assign" and b.value is not None and self._is_number(b.value)
        return False

    # --- what happens to the accumulator ---

    def _flow(self, root: str, loop: cst.CSTNode) -> set[str]:
        """How the accumulator (and names assigned from it) is read: backward, bank, return, store, numeric..."""
        facts = self.ctx.scope_facts()
        kinds: set[str] = set()
        seen: set[tuple[str, int]] = {(root, id(None))}
        pending: list[Follow] = [(root, None)]
        while pending:
            name, stmt = pending.pop()
            for use in self._uses(facts, name, stmt):
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

    def _uses(self, facts: ScopeFacts, name: str, stmt: cst.CSTNode | None) -> Iterable[Use]:
        """Every use of `name`, or only those reached by its binding at `stmt` (back edges included)."""
        uses = facts.uses.get(name, [])
        binding = next((b for b in facts.bindings_of(name) if b.stmt is stmt), None)
        if binding is None:
            return uses
        inner = binding.loops[-1] if binding.loops else None
        return [u for u in uses if _reached_by(facts, u, binding) or (
            inner is not None and u.order < binding.order and facts.contains(inner, u.node))]

    def _classify(self, node: cst.CSTNode) -> tuple[str | None, list[Follow]]:
        """Climb from a read of the accumulator to what consumes it."""
        parents = self._parents()
        pure = True
        while True:
            parent = parents.get(id(node))
            if parent is None:
                return "other", []
            if isinstance(parent, cst.Attribute):
                call = parents.get(id(parent))
                if isinstance(call, cst.Call) and call.func is parent:
                    kind = _method_kind(parent.attr.value)
                    if kind is not None:
                        return kind, []
                    parent = call
            elif isinstance(parent, cst.Arg):
                call = parents.get(id(parent))
                assert isinstance(call, cst.Call)
                verdict = self._call_use(call, pure)
                if verdict is not None:
                    return verdict
                parent = call
            elif isinstance(parent, (cst.Comparison, cst.FormattedStringExpression)):
                return ("numeric" if pure else "other"), []
            elif isinstance(parent, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
                return _assign_use(parent, node, parents.get(id(parent)))
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
        if isinstance(func, cst.Attribute) and func.attr.value in BACKWARD_METHODS:
            return "backward", []
        if (self.ctx.qualname(func) or "") in AUTOGRAD_CALLS:
            return "backward", []
        if self._is_loss_callee(func) or _is_f_loss(self.ctx.qualname(func) or ""):
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
        key = ("backward", id(scope))
        if key not in self._flags:
            self._flags[key] = any(
                isinstance(n, cst.Call) and (
                    (isinstance(n.func, cst.Attribute) and n.func.attr.value in BACKWARD_METHODS)
                    or (self.ctx.qualname(n.func) or "") in AUTOGRAD_CALLS)
                for n in iter_nodes(scope)
            )
        return self._flags[key]

    def _parents(self) -> dict[int, cst.CSTNode]:
        """Child id -> parent for the current scope, not entering nested functions or classes."""
        scope = self.ctx.scope_facts().scope
        table = self._parent_maps.get(id(scope))
        if table is None:
            table = self._parent_maps[id(scope)] = {}
            stack = [scope]
            while stack:
                node = stack.pop()
                if node is not scope and type(node) in SCOPE_TYPES:
                    continue
                for child in children(node):
                    table[id(child)] = node
                    stack.append(child)
        return table


# --- helpers on syntax ---


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    yield node
    yield from iter_nodes(node)


def _root_name(expr: cst.CSTNode) -> str | None:
    """`d` for `d`, `d[k]`, `d.attr[k]`; None for anything else."""
    while type(expr) is cst.Subscript or type(expr) is cst.Attribute:
        expr = expr.value  # type: ignore[attr-defined]
    return expr.value if type(expr) is cst.Name else None  # type: ignore[attr-defined]


def _last_name(expr: cst.CSTNode) -> str | None:
    kind = type(expr)
    if kind is cst.Attribute:
        return expr.attr.value  # type: ignore[attr-defined]
    return expr.value if kind is cst.Name else None  # type: ignore[attr-defined]


def _summand(value: cst.BaseExpression, name: str) -> cst.BaseExpression | None:
    """`x` in `name + x`, `x + name` or `name - x`."""
    if type(value) is not cst.BinaryOperation or value.lpar:  # type: ignore[attr-defined]
        return None
    left_is = isinstance(value.left, cst.Name) and value.left.value == name
    if isinstance(value.operator, (cst.Add, cst.Subtract)) and left_is:
        return value.right
    if isinstance(value.operator, cst.Add) and isinstance(value.right, cst.Name) and value.right.value == name:
        return value.left
    return None


def _accumulates(b: Binding) -> bool:
    """An augmented assignment, or an assignment whose value reads the name itself."""
    if b.kind == "augassign":
        return True
    return b.kind == "assign" and b.value is not None and any(
        isinstance(n, cst.Name) and n.value == b.name for n in _walk(b.value)
    )


def _reached_by(facts: ScopeFacts, use: Use, binding: Binding) -> bool:
    r = facts.reaching(use.name, use.node)
    return r is not None and r.order == binding.order


def _unpacked_from(b: Binding) -> cst.BaseExpression | None:
    """The value of the tuple assignment that binds `b.name` by unpacking."""
    found = _unpacking(b)
    return found[0] if found is not None else None


def _bound_value(b: Binding) -> cst.CSTNode | None:
    """The value bound to `b.name`, also the matching element of `a, b = 0.0, 0`."""
    found = _unpacking(b)
    if found is None:
        return b.value
    value, index, size = found
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == size:
        return value.elements[index].value
    return None


def _unpacking(b: Binding) -> tuple[cst.BaseExpression, int, int] | None:
    """(value, position, arity) of the tuple assignment that binds `b.name`."""
    if b.value is not None or not isinstance(b.stmt, cst.SimpleStatementLine):
        return None
    for small in b.stmt.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                if isinstance(target.target, (cst.Tuple, cst.List)):
                    elements = target.target.elements
                    names = [el.value.value if isinstance(el.value, cst.Name) else None for el in elements]
                    if b.name in names:
                        return small.value, names.index(b.name), len(names)
    return None


def _is_indices(expr: cst.Subscript) -> bool:
    """`out.max(1)[1]` or `torch.topk(out, 5)[1]`: the integer indices of a (values, indices) pair."""
    value = expr.value
    if not isinstance(value, cst.Call) or _last_name(value.func) not in TUPLE_RETURNING:
        return False
    index = expr.slice[0].slice if len(expr.slice) == 1 else None
    return isinstance(index, cst.Index) and isinstance(index.value, cst.Integer) and index.value.value == "1"


def _is_f_loss(qualname: str) -> bool:
    """`torch.nn.functional.cross_entropy`, `...mse_loss` and the other functional losses."""
    last = qualname.rsplit(".", 1)[-1]
    return qualname.startswith("torch.nn.functional.") and ("loss" in last or last in F_LOSS_NAMES)


def _is_loss_ctor(call: cst.Call) -> bool:
    name = _last_name(call.func) or ""
    return name.endswith("Loss") and not name.endswith("WithLoss")


def _default_reduction(call: cst.Call) -> bool:
    """No `reduction`, or a reducing one, and none of the legacy `size_average`/`reduce` flags."""
    for arg in call.args:
        key = arg.keyword.value if arg.keyword is not None else None
        if key in ("size_average", "reduce"):
            return False
        if key == "reduction":
            return isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value in ("mean", "sum")
    return True


def _is_literal_number(expr: cst.CSTNode | None) -> bool:
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    return isinstance(expr, (cst.Integer, cst.Float))


def _is_detached_value(expr: cst.CSTNode | None) -> bool:
    if _is_literal_number(expr):
        return True
    if not isinstance(expr, cst.Call):
        return False
    name = _last_name(expr.func)
    if isinstance(expr.func, cst.Attribute):
        return name in ("item", "tolist", "detach")
    return name in ("float", "int")


def _is_false(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def _is_freeze_call(call: cst.Call) -> bool:
    return (
        isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "requires_grad_"
        and bool(call.args)
        and _is_false(call.args[0].value)
    )


def _iterates_parameters(expr: cst.CSTNode) -> bool:
    return (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in ("parameters", "named_parameters")
    )


def _freezes(body: cst.CSTNode) -> bool:
    """`p.requires_grad = False` or `p.requires_grad_(False)` somewhere in `body`."""
    for node in iter_nodes(body):
        if isinstance(node, cst.Call) and _is_freeze_call(node):
            return True
        if isinstance(node, cst.Assign) and _is_false(node.value) and any(
            isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad" for t in node.targets
        ):
            return True
    return False


def _method_kind(method: str) -> str | None:
    """The verdict for a read used as the receiver of `method`."""
    if method in BACKWARD_METHODS:
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
