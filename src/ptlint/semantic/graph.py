"""Which values carry an autograd graph: the one analysis behind PTL002, PTL003 and PTL004.

A value *carries* a graph when it is computed, through differentiable operations, from what a model
(an `nn.Module` call) returned. `carries(expr)` has three answers (`Carry`):

- YES: seen end to end: a model call, then torch functions, tensor methods, losses, arithmetic,
  attributes and subscripts of such values, and the names bound to them.
- MAYBE: a graph may be in it, but the way goes through something this analysis does not see into:
  a function that is neither torch's nor the model, given a graph value; a container of graph
  values; an element of an iterated or unpacked graph value; a tensor parameter of an `nn.Module`'s
  `forward` (its caller's activations).
- NO: no model output reaches it, or a stop cut the graph: `.detach()`, `.item()`, `.data`,
  `float()`, integer and boolean results (`argmax`, comparisons, the indices of `x.max(1)[1]`),
  metadata (`.shape`, `.device`), attributes of `self`, and names bound with gradients off
  (`model.grad_disabled`).

`detached(expr)` answers the converse question, for PTL002: how a value surely lost its graph.

The rules' private versions disagreed; the choices made here:
1. Sources: any model call (PTL003's), and calls of a submodule chain `self.a.b(...)`, of a method of
   the class that runs the model, and of a loss helper given the model, `compute_loss(self, batch)`
   (PTL004's). Loss modules are not sources, they pass their inputs' graph on. A model frozen in the
   file (`m.requires_grad_(False)`) is not a source but passes its inputs' graph on (PTL003 dropped
   its inputs; PTL004 did not know frozen models).
2. A tensor parameter of a module's `forward` is MAYBE (PTL004 counted it, PTL003 did not).
3. `for` and comprehension targets, containers and unknown calls are MAYBE (PTL004 followed them,
   PTL003 stopped there).
4. The stop lists are the union of both; `x.max(1)[1]` and `_, idx = x.max(1)` are indices (only PTL003
   knew them). No depth limit: every answer is computed once, and a cycle answers NO.
PTL003 reports YES only, PTL004 reports YES and MAYBE.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Callable, Iterator

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.semantic.flow import is_false, is_true
from ptlint.semantic.torch import TUPLE_RETURNING, Kind

if TYPE_CHECKING:
    from ptlint.facts.dataflow import Binding
    from ptlint.semantic import Model


class Carry(enum.IntEnum):
    NO = 0
    MAYBE = 1
    YES = 2


# Attributes and methods whose result carries no graph: metadata, integer or boolean tensors, Python values.
NON_GRAPH_ATTRS = {
    "data", "grad", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn", "ndim", "indices", "is_cuda",
    "layout", "names", "is_sparse", "itemsize", "nbytes",
}
NON_GRAPH_METHODS = {
    "item", "tolist", "numpy", "detach", "detach_", "size", "dim", "numel", "nelement", "element_size", "stride",
    "data_ptr", "is_contiguous", "is_floating_point", "get_device", "argmax", "argmin", "argsort", "long", "int",
    "bool", "short", "byte", "nonzero", "count_nonzero", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf",
    "isfinite", "any", "all", "equal", "allclose", "isclose", "backward", "register_hook",
}
NON_GRAPH_TORCH = {
    "argmax", "argmin", "argsort", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "equal",
    "allclose", "isclose", "numel", "nonzero", "count_nonzero", "tensor", "from_numpy", "detach", "bucketize",
    "searchsorted", "randint", "randperm", "is_tensor", "Parameter",
}
NON_GRAPH_BUILTINS = {
    "len", "int", "float", "bool", "str", "repr", "format", "isinstance", "type", "id", "hash", "range", "print",
    "hasattr", "callable",
}
# Methods of a module that do not run it.
MODULE_NON_GRAPH = {
    "parameters", "named_parameters", "modules", "named_modules", "children", "named_children", "buffers",
    "named_buffers", "state_dict", "eval", "train", "to", "cpu", "cuda", "half", "float", "zero_grad", "apply",
    "requires_grad_", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_buffer", "get_submodule", "get_parameter",
}
# A helper that runs the model it is given: `compute_loss(self, batch)`, `criterion(model, x)`.
MODEL_HELPER = re.compile(r"loss|criterion|objective|forward")
# Parameters of `forward` that hold flags, masks, indices or lengths rather than activations.
NON_TENSOR_PARAM = re.compile(
    r"(^|_)(mask|masks|ids|id|idx|index|indices|len|lens|lengths?|labels?|targets?|positions?|steps?|epoch|"
    r"timesteps?)(_|$)"
)
NON_TENSOR_ANNOTATIONS = {"int", "float", "bool", "str", "bytes", "Optional", "Union", "Literal", "None"}
# Calls that return a (values, indices) pair.
WITH_INDICES = {"max", "min", "median", "topk", "sort", "kthvalue", "mode"}
BACKWARD_METHODS = {"backward", "manual_backward"}
AUTOGRAD_CALLS = {"torch.autograd.grad", "torch.autograd.backward"}
# Receivers whose `.backward(loss)` runs backward on its argument.
BACKWARD_RUNNERS = ("accelerator", "fabric")
# Detaching layers that PTL002 names and its fix can peel off: method -> how it is reported.
DETACH_METHODS = ("item", "tolist", "detach", "numpy")
LEAF = "torch.tensor()"
ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)
AUG_ARITHMETIC = (
    cst.AddAssign, cst.SubtractAssign, cst.MultiplyAssign, cst.DivideAssign, cst.FloorDivideAssign,
    cst.ModuloAssign, cst.PowerAssign,
)
PACKED = re.compile(r"pack(ed)?_?(padded_)?sequence", re.IGNORECASE)
MAX_DEPTH = 8
SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
CONTAINERS = (
    cst.Tuple, cst.List, cst.Set, cst.Dict, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp,
    cst.StarredElement,
)


class Graph:
    """Graph facts of one file, each computed once."""

    def __init__(self, model: "Model") -> None:
        self.m = model
        self._carries: dict[int, Carry] = {}
        self._busy: set[int] = set()
        self._method_runs: dict[int, bool] = {}
        self._frozen: set[str] | None = None
        self._packed: bool | None = None

    # --- carries a graph ---

    def carries(self, expr: cst.CSTNode) -> Carry:
        """Whether the value of `expr` carries an autograd graph (see the module docstring)."""
        key = id(expr)
        found = self._carries.get(key)
        if found is not None:
            return found
        if key in self._busy:  # a value that refers to itself through its own binding
            return Carry.NO
        self._busy.add(key)
        try:
            found = self._carry(expr)
        finally:
            self._busy.discard(key)
        self._carries[key] = found
        return found

    def _carry(self, expr: cst.CSTNode) -> Carry:
        if isinstance(expr, cst.Name):
            return self._name(expr)
        if isinstance(expr, cst.Call):
            return self._call(expr)
        if isinstance(expr, cst.Attribute):
            if expr.attr.value in NON_GRAPH_ATTRS or _is_self(expr.value):
                return Carry.NO
            return self.carries(expr.value)
        if isinstance(expr, cst.Subscript):
            return Carry.NO if self.is_indices(expr) else self.carries(expr.value)
        if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation)):
            return max(self.carries(expr.left), self.carries(expr.right))
        if isinstance(expr, cst.UnaryOperation):
            return Carry.NO if isinstance(expr.operator, cst.Not) else self.carries(expr.expression)
        if isinstance(expr, cst.IfExp):
            return max(self.carries(expr.body), self.carries(expr.orelse))
        if isinstance(expr, (cst.NamedExpr, cst.Await)):
            return self.carries(expr.value)
        if isinstance(expr, CONTAINERS):
            return min(max((self.carries(p) for p in _parts(expr)), default=Carry.NO), Carry.MAYBE)
        return Carry.NO

    def _name(self, name: cst.Name) -> Carry:
        if name.value == "self":
            return Carry.NO
        b = self.m.binding(name)
        if b is None or self.m.grad_disabled(b.stmt):
            return Carry.NO
        if b.kind == "param":
            return Carry.MAYBE if self._forward_input(name.value, b.stmt) else Carry.NO
        if b.kind == "augassign" and isinstance(b.value, cst.AugAssign):
            return max(self.carries(b.value.value), self.carries(b.value.target))
        if b.kind == "assign":
            value = b.bound_value()
            if value is not None:
                return self.carries(value)
            return self._unpacked(b.source, b.index) if b.source is not None else Carry.NO
        if b.kind in ("for", "comp"):
            source = b.source if b.unpacked else b.value
            return min(self.carries(source), Carry.MAYBE) if source is not None else Carry.NO
        return Carry.NO

    def _unpacked(self, source: cst.CSTNode, index: int) -> Carry:
        """An element of `a, b = source`: the outputs of a model, a loss or a tensor method such as `x.max(1)`
        carry its graph, except the indices of `_, idx = x.max(1)`."""
        found = self.carries(source)
        if not isinstance(source, cst.Call):
            return min(found, Carry.MAYBE)
        name = _last_name(source.func)
        if name in WITH_INDICES:
            return Carry.NO if index == 1 else found
        if name in TUPLE_RETURNING or self.runs_model(source) or self.m.torch.is_loss_function(source.func):
            return found
        return min(found, Carry.MAYBE)

    def _call(self, call: cst.Call) -> Carry:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in NON_GRAPH_METHODS:
            return Carry.NO
        q = self.m.qualified_name(func) or ""
        if q.startswith("torch."):
            last = q.rsplit(".", 1)[-1]
            if last in NON_GRAPH_TORCH or last.endswith("_like"):
                return Carry.NO
            return self._args(call)
        if isinstance(func, cst.Name) and func.value in NON_GRAPH_BUILTINS | {"sum"} and self.m.names.is_builtin(func):
            return self._args(call) if func.value == "sum" else Carry.NO
        if self.runs_model(call):
            return Carry.YES
        if self.m.torch.is_loss_function(func) or self.frozen(func):
            return self._args(call)  # a loss, or a frozen model, passes its inputs' graph on
        through = min(self._args(call), Carry.MAYBE)
        if isinstance(func, cst.Attribute) and not q:
            return max(self.carries(func.value), through)
        return through

    def _args(self, call: cst.Call) -> Carry:
        """The strongest graph among the arguments (elements of a literal list or tuple count fully)."""
        best = Carry.NO
        for arg in call.args:
            value = arg.value
            if isinstance(value, (cst.List, cst.Tuple)):
                parts = [el.value for el in value.elements]
            elif isinstance(value, (cst.ListComp, cst.GeneratorExp)):
                parts = [value.elt]
            else:
                parts = [value]
            for part in parts:
                best = max(best, self.carries(part))
                if best is Carry.YES:
                    return best
        return best

    def _forward_input(self, name: str, func: cst.CSTNode) -> bool:
        """A parameter of an nn.Module's `forward` that may hold an activation (not a flag, mask or index)."""
        if not isinstance(func, cst.FunctionDef) or func.name.value != "forward" or NON_TENSOR_PARAM.search(name):
            return False
        cls = self.m.tree.method_of(func)
        info = self.m.class_info(cls) if cls is not None else None
        if info is None or not info.is_module:
            return False
        params = func.params
        every = (*params.posonly_params, *params.params, *params.kwonly_params)
        param = next((p for p in every if p.name.value == name), None)
        if param is None or (param.default is not None and _is_scalar_literal(param.default)):
            return False
        if param.annotation is None:
            return True
        annotation = param.annotation.annotation
        names = {n.value for n in (annotation, *self.m.tree.below(annotation, cst.Name))}  # type: ignore[attr-defined]
        return not (names and names <= NON_TENSOR_ANNOTATIONS)

    # --- sources ---

    def runs_model(self, call: cst.Call) -> bool:
        """Whether `call` runs a model: an nn.Module that is neither a loss function nor frozen, a submodule
        chain of `self`, a method of the class that does, or a loss helper given the model."""
        func = call.func
        if self.m.torch.is_loss_function(func):
            return False
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        if _is_self(func):
            info = self.m.class_info(call)
            return info is not None and info.is_module
        chain = _self_chain(func)
        if len(chain) > 1:
            return chain[1].attr.value not in MODULE_NON_GRAPH and self.m.is_module(chain[0])
        method = self._method(call, chain[0].attr.value) if chain else None
        if method is not None and self._method_runs_model(method):
            return True
        if method is None and self.m.is_module(func) and not self.frozen(func):
            return True
        name = _last_name(func)
        return name is not None and MODEL_HELPER.search(name) is not None and any(
            self._is_model(a.value) for a in call.args
        ) and not self._returns_values(func)

    def _method(self, node: cst.CSTNode, name: str) -> cst.FunctionDef | None:
        info = self.m.class_info(node)
        return info.methods.get(name) if info is not None else None

    def _method_runs_model(self, method: cst.FunctionDef) -> bool:
        """Whether a method of the class runs the model: `forward`, or a call in its body that does."""
        key = id(method)
        if key not in self._method_runs:
            self._method_runs[key] = False  # a recursive method answers False while it is being looked at
            self._method_runs[key] = method.name.value == "forward" or any(
                self.runs_model(c) for c in self.m.tree.below(method.body, cst.Call, scopes=False)  # type: ignore[arg-type]
            )
        return self._method_runs[key]

    def _is_model(self, expr: cst.CSTNode) -> bool:
        """`self` in an nn.Module, or a submodule `self.<attr>`."""
        if _is_self(expr):
            info = self.m.class_info(expr)
            return info is not None and info.is_module
        return isinstance(expr, cst.Attribute) and _is_self(expr.value) and self.m.is_module(expr)

    def _returns_values(self, func: cst.CSTNode) -> bool:
        definition = self.m.torch.definition(func)
        return isinstance(definition, cst.FunctionDef) and self.m.torch.returns_values(definition)

    def frozen(self, func: cst.CSTNode) -> bool:
        """A model frozen in this file: `m.requires_grad_(False)`, or `p.requires_grad = False` over `m.parameters()`."""
        if self._frozen is None:
            tree = self.m.tree
            found = set()
            for call in tree.of_type(cst.Call):
                if _is_freeze_call(call) and isinstance(call.func, cst.Attribute):  # type: ignore[attr-defined]
                    found.add(dotted_name(call.func.value))  # type: ignore[attr-defined]
            for loop in tree.of_type(cst.For):
                it = loop.iter  # type: ignore[attr-defined]
                if _iterates_parameters(it) and self._freezes(loop.body):  # type: ignore[attr-defined]
                    found.add(dotted_name(it.func.value))
            self._frozen = {n for n in found if n}
        name = dotted_name(func)
        return name is not None and name in self._frozen

    def _freezes(self, body: cst.CSTNode) -> bool:
        for node in self.m.tree.below(body, (cst.Call, cst.Assign)):
            if isinstance(node, cst.Call) and _is_freeze_call(node):
                return True
            if isinstance(node, cst.Assign) and is_false(node.value) and any(
                isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad" for t in node.targets
            ):
                return True
        return False

    def is_indices(self, expr: cst.Subscript) -> bool:
        """`out.max(1)[1]` or `torch.topk(out, 5)[1]`: the integer indices of a (values, indices) pair."""
        value = expr.value
        if not isinstance(value, cst.Call) or _last_name(value.func) not in WITH_INDICES:
            return False
        index = expr.slice[0].slice if len(expr.slice) == 1 else None
        return isinstance(index, cst.Index) and isinstance(index.value, cst.Integer) and index.value.value == "1"

    # --- backward ---

    def is_backward(self, call: cst.Call) -> bool:
        """`x.backward()`, `self.manual_backward(x)`, `torch.autograd.backward(...)` or `torch.autograd.grad(...)`."""
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in BACKWARD_METHODS:
            return True
        return (self.m.qualified_name(func) or "") in AUTOGRAD_CALLS

    def backward_targets(self, call: cst.Call) -> list[cst.BaseExpression]:
        """The expressions that `call` runs backward on: the receiver of `loss.backward()`, `x` of
        `scaler.scale(x).backward()`, `accelerator.backward(x)`, `fabric.backward(x)`, `self.manual_backward(x)`
        and `torch.autograd.backward(x, tensors=...)`."""
        func = call.func
        first = [a.value for a in call.args[:1] if a.keyword is None and not a.star]
        if isinstance(func, cst.Attribute) and func.attr.value == "manual_backward":
            return first
        if self.m.qualified_name(func) == "torch.autograd.backward":
            return first + [a.value for a in call.args if a.keyword is not None and a.keyword.value == "tensors"]
        if not isinstance(func, cst.Attribute) or func.attr.value != "backward":
            return []
        receiver = func.value
        if (dotted_name(receiver) or "").split(".")[-1] in BACKWARD_RUNNERS:
            return first
        if isinstance(receiver, cst.Call) and _receiver(receiver, "scale") is not None and len(receiver.args) == 1:
            arg = receiver.args[0]
            return [arg.value] if arg.keyword is None and not arg.star else []
        return [receiver]

    def backward_of(self, node: cst.CSTNode) -> cst.Call | None:
        """The backward call that runs on `node`, when `node` is one of its targets."""
        for anc in list(self.m.tree.ancestors(node))[:4]:
            if isinstance(anc, cst.Call) and any(t is node for t in self.backward_targets(anc)):
                return anc
        return None

    def flows_into_backward(self, node: cst.CSTNode, returns: Callable[[cst.Return], bool], depth: int = 0) -> bool:
        """Whether the value at `node` flows, not cut by a stop, into a backward call, or into a `return` that
        `returns` accepts; follows the local names it is assigned to, four statements deep."""
        tree = self.m.tree
        stmt = None
        for child, parent in _up_to_statement(tree.parent, node):
            if _stops(child, parent):
                return False
            if isinstance(parent, cst.Call) and self.is_backward(parent):
                return True
            stmt = parent
        if isinstance(stmt, cst.Return):
            return returns(stmt)
        if stmt is None or depth >= 4 or isinstance(tree.enclosing(stmt, SCOPES), (cst.Lambda, cst.ClassDef)):
            return False
        facts = self.m.facts_at(stmt)
        start = facts.end_of(stmt.target) if isinstance(stmt, cst.For) else facts.end_of(stmt)
        return any(
            self.flows_into_backward(use.node, returns, depth + 1)
            for name in _bound_names(stmt) for use in facts.uses.get(name, ()) if use.order > start
        )

    # --- detached: how a value surely lost its graph (PTL002) ---

    def detached(self, expr: cst.CSTNode, depth: int = 0) -> str | None:
        """How `expr` surely lost its graph ("`.item()`", "`float()`", "`sum()` of detached values"...), or None
        when it may still have one. LEAF for a new leaf `torch.tensor(<detached>, requires_grad=True)`."""
        if depth > MAX_DEPTH:
            return None
        step = self.detaching_layer(expr, depth)
        if step is not None:
            return step[1]
        if isinstance(expr, cst.Name):
            return self._name_detached(expr, depth + 1)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self.detached(expr.expression, depth + 1)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, ARITHMETIC):
            return self._arith_detached((expr.left, expr.right), depth + 1)
        if isinstance(expr, cst.Call) and self._builtin_call(expr, "sum") and expr.args:
            args = expr.args
            if all(self.is_constant(a.value) for a in args[1:]) and self._seq_detached(args[0].value, depth + 1):
                return "`sum()` of detached values"
        return None

    def is_constant(self, expr: cst.CSTNode) -> bool:
        """A Python number that did not come out of a tensor: `0.1`, `beta=4.0`, `len(batch)`."""
        return self.m.kind(expr) is Kind.NUMBER and self.detached(expr) is None

    def _operand(self, expr: cst.CSTNode, depth: int) -> str | None:
        """`detached` without fresh leaves: arithmetic on a leaf is differentiable with respect to it."""
        how = self.detached(expr, depth)
        return None if how == LEAF else how

    def _arith_detached(self, operands: tuple[cst.CSTNode, ...] | list[cst.CSTNode], depth: int) -> str | None:
        """Detached when every operand is detached or a number, and at least one is detached."""
        found = None
        for operand in operands:
            how = self._operand(operand, depth)
            if how is None and not self.is_constant(operand):
                return None
            found = found or how
        return found

    def _seq_detached(self, expr: cst.CSTNode, depth: int) -> str | None:
        """How the elements of a list or iterable lost their graph."""
        if depth > MAX_DEPTH:
            return None
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            return self._operand(expr.elt, depth + 1)
        if isinstance(expr, (cst.List, cst.Tuple)) and expr.elements:
            return self._arith_detached([e.value for e in expr.elements], depth + 1)
        if _receiver(expr, "tolist") is not None:
            return "`.tolist()`"
        if isinstance(expr, cst.Name):
            b = self.detached_binding(expr)
            if b is not None and b.kind == "assign" and b.value is not None:
                return self._seq_detached(b.value, depth + 1)
        return None

    def _name_detached(self, name: cst.Name, depth: int) -> str | None:
        b = self.detached_binding(name)
        if b is None or b.value is None:
            return None
        if b.kind == "assign":
            return self.detached(b.value, depth)
        if b.kind == "for":
            return self._seq_detached(b.value, depth)
        if b.kind == "augassign" and isinstance(b.value, cst.AugAssign):
            aug = b.value
            if not isinstance(aug.operator, AUG_ARITHMETIC) or not isinstance(aug.target, cst.Name):
                return None
            return self._arith_detached((aug.target, aug.value), depth)
        return None

    def detached_binding(self, name: cst.Name) -> Binding | None:
        """The binding of `name` that surely flows to it (`Flow.reaches`), unless the name later gets
        `requires_grad_()`: only such a binding can make the value at `name` detached."""
        b = self.m.binding(name)
        if b is None or b.kind not in ("assign", "for", "augassign"):
            return None
        if not isinstance(b.stmt, (cst.SimpleStatementLine, cst.For)) or not self.m.flow.reaches(b.stmt, name):
            return None
        facts = self.m.facts_at(name)
        for use in facts.uses.get(name.value, ()):
            if use.order > b.order and facts.parent_attr(use.node) in ("requires_grad_", "requires_grad"):
                return None
        return b

    def detaching_layer(self, expr: cst.CSTNode, depth: int = 0) -> tuple[cst.BaseExpression, str] | None:
        """The expression under one detaching layer of `expr` (`.item()`, `.detach()`, `.data`, `float()`...),
        and that layer."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            attr = expr.func.attr.value
            inner = expr.func.value
            if attr not in DETACH_METHODS or expr.args:
                return self._leaf(expr, depth)
            under_cpu = _receiver(inner, "cpu")
            if attr == "numpy" and under_cpu is not None and isinstance(inner, cst.Call) and not inner.args:
                return under_cpu, "`.cpu().numpy()`"
            return inner, f"`.{attr}()`"
        if isinstance(expr, cst.Attribute) and expr.attr.value == "data" and not self._may_be_packed(expr.value):
            return expr.value, "`.data`"
        if isinstance(expr, cst.Call) and self._builtin_call(expr, "float") and len(expr.args) == 1:
            arg = expr.args[0]
            if arg.keyword is None and not arg.star and not isinstance(arg.value, (cst.Integer, cst.Float, cst.BaseString)):
                return arg.value, "`float()`"
        return self._leaf(expr, depth)

    def _leaf(self, expr: cst.CSTNode, depth: int) -> tuple[cst.BaseExpression, str] | None:
        """`torch.tensor(<detached>, requires_grad=True)`: a new leaf with no link to the model."""
        if not isinstance(expr, cst.Call) or self.m.qualified_name(expr.func) != "torch.tensor" or not expr.args:
            return None
        if not any(a.keyword is not None and a.keyword.value == "requires_grad" and is_true(a.value) for a in expr.args):
            return None
        data = expr.args[0]
        if data.keyword is not None or data.star:
            return None
        if self._operand(data.value, depth + 1) or self._seq_detached(data.value, depth + 1):
            return data.value, LEAF
        return None

    def _may_be_packed(self, expr: cst.BaseExpression) -> bool:
        """Whether `expr` may be a PackedSequence, whose `.data` keeps its graph."""
        target = expr.func if isinstance(expr, cst.Call) else expr
        if "pack" in (dotted_name(target) or "").lower():
            return True
        if self._packed is None:
            self._packed = any(PACKED.search(i) for i in self.m.tree.identifiers())
        return self._packed

    def _builtin_call(self, call: cst.Call, name: str) -> bool:
        return isinstance(call.func, cst.Name) and call.func.value == name and self.m.names.is_builtin(call.func)


# --- syntax ---


def _is_self(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "self"


def _last_name(expr: cst.CSTNode) -> str | None:
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _receiver(expr: cst.CSTNode, attr: str) -> cst.BaseExpression | None:
    """`x` when `expr` is the call `x.attr(...)`."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == attr:
        return expr.func.value
    return None


def _self_chain(func: cst.CSTNode) -> list[cst.Attribute]:
    """For `self.a.b`: the Attribute nodes `self.a`, `self.a.b`; empty when not rooted at `self`."""
    chain: list[cst.Attribute] = []
    node = func
    while isinstance(node, cst.Attribute):
        chain.append(node)
        node = node.value
    return list(reversed(chain)) if _is_self(node) else []


def _parts(expr: cst.CSTNode) -> list[cst.CSTNode]:
    """The values inside a container expression."""
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
        return [el.value for el in expr.elements]
    if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
        return [expr.elt]
    if isinstance(expr, cst.DictComp):
        return [expr.value]
    if isinstance(expr, cst.StarredElement):
        return [expr.value]
    return []


def _is_scalar_literal(expr: cst.CSTNode) -> bool:
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    return isinstance(expr, (cst.Integer, cst.Float, cst.BaseString)) or (
        isinstance(expr, cst.Name) and expr.value in ("True", "False")
    )


def _is_freeze_call(call: cst.Call) -> bool:
    return (
        isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "requires_grad_"
        and bool(call.args)
        and is_false(call.args[0].value)
    )


def _iterates_parameters(expr: cst.CSTNode) -> bool:
    return _receiver(expr, "parameters") is not None or _receiver(expr, "named_parameters") is not None


def _up_to_statement(
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None], node: cst.CSTNode
) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
    """(child, parent) pairs from `node` up to its statement (the innermost small or compound one)."""
    parent = parent_of(node)
    while parent is not None:
        yield node, parent
        if isinstance(parent, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
            return
        node, parent = parent, parent_of(parent)


def _stops(child: cst.CSTNode, parent: cst.CSTNode) -> bool:
    """Whether `parent` turns its operand `child` into something without a graph."""
    if isinstance(parent, cst.Attribute) and parent.value is child:
        attr = parent.attr.value
        return attr in NON_GRAPH_ATTRS or (attr in NON_GRAPH_METHODS and attr not in BACKWARD_METHODS)
    if isinstance(parent, (cst.Comparison, cst.FormattedStringExpression)):
        return True
    func = parent.func if isinstance(parent, cst.Call) else None
    return isinstance(func, cst.Name) and func.value in NON_GRAPH_BUILTINS


MUTATORS = {"append", "extend", "insert", "add", "update", "appendleft", "clear"}


def _bound_names(stmt: cst.CSTNode) -> set[str]:
    """Local names that `stmt` binds or mutates: `x = ...`, `x += ...`, `x[k] = ...`, `x.append(...)`."""
    targets: list[cst.CSTNode] = []
    if isinstance(stmt, cst.Assign):
        targets = [t.target for t in stmt.targets]
    elif isinstance(stmt, (cst.AugAssign, cst.AnnAssign, cst.For)):
        targets = [stmt.target]
    elif isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call):
        func = stmt.value.func
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATORS:
            targets = [func.value]
    names: set[str] = set()
    while targets:
        target = targets.pop()
        if isinstance(target, (cst.Tuple, cst.List)):
            targets.extend(el.value for el in target.elements)
            continue
        while isinstance(target, (cst.Attribute, cst.Subscript)):
            target = target.value
        if isinstance(target, cst.Name) and target.value != "self":
            names.add(target.value)
    return names
