"""Statically known dtypes of tensor expressions, and autocast regions.

Evidence: an explicit `dtype=` of a factory, a cast (`.double()`, `.half()`, `.to(torch.float64)`),
the default dtype of float factories (`torch.randn(3)` is float32 unless the file changes the
default), and ops that keep or promote their operands' dtype. A name counts only through a binding
in its own function that runs before it on every path. Anything else is unknown (None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import libcst as cst

from ptlint.callargs import keyword

if TYPE_CHECKING:
    from ptlint.semantic import Model

DTYPE_NAMES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32", "float16": "float16",
    "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}
FLOATS = ("float16", "bfloat16", "float32", "float64")
CAST_METHODS = {"double": "float64", "float": "float32", "half": "float16", "bfloat16": "bfloat16", "long": "int64",
                "int": "int32", "bool": "bool"}
# Factories whose result has the default float dtype unless `dtype=` says otherwise.
FLOAT_FACTORIES = {"randn", "rand", "zeros", "ones", "empty", "eye", "linspace", "logspace"}
LIKE_FACTORIES = {"zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "full_like", "clone"}
# Ops that return their (first) tensor operand's dtype.
KEEPING = {
    "clone", "detach", "contiguous", "t", "view", "reshape", "transpose", "permute", "squeeze", "unsqueeze", "flatten",
    "expand", "expand_as", "repeat", "flip", "roll", "exp", "log", "sin", "cos", "sigmoid", "tanh", "relu", "abs", "neg",
    "sqrt", "rsqrt", "softmax", "log_softmax", "mean", "cuda", "cpu", "requires_grad_", "narrow", "select",
    "chunk", "split", "clamp", "clip", "pow", "square", "normalize", "gelu", "silu", "dropout", "tril", "triu",
}
# Sums of booleans and integers are int64; of floats, the float dtype.
SUMMING = {"sum", "cumsum", "prod", "count_nonzero"}
COMPARING = {"eq", "ne", "gt", "lt", "ge", "le", "logical_not", "logical_and", "logical_or", "isnan", "isinf", "isfinite"}
INDEXING = {"argmax", "argmin", "nonzero", "argsort"}
ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)
AUTOCAST = {"torch.autocast", "torch.amp.autocast", "torch.cuda.amp.autocast", "torch.cpu.amp.autocast",
            "torch.amp.autocast_mode.autocast"}
DEFAULT_SETTERS = {"torch.set_default_dtype", "torch.set_default_tensor_type"}


class Dtype(NamedTuple):
    name: str  # "float32", "float64", "int64", ...
    explicit: bool  # said in the code (`dtype=`, a cast), not the default of a factory

    @property
    def floating(self) -> bool:
        return self.name in FLOATS


def precision(name: str) -> int:
    """Bits of a float dtype (float16 and bfloat16 both 16: neither is the wider)."""
    return {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}.get(name, 0)


class Dtypes:
    """The dtype of tensor expressions of one file, when the code says it."""

    def __init__(self, model: "Model") -> None:
        self.m = model
        self._known: dict[int, Dtype | None] = {}
        self._busy: set[int] = set()
        self._default: tuple[str | None] | None = None

    def dtype(self, expr: cst.CSTNode) -> Dtype | None:
        key = id(expr)
        if key in self._known:
            return self._known[key]
        if key in self._busy:
            return None
        self._busy.add(key)
        try:
            found = self._dtype(expr)
        finally:
            self._busy.discard(key)
        self._known[key] = found
        return found

    def default(self) -> str | None:
        """float32, or what the file's `torch.set_default_dtype(...)` calls agree on (None: unknown)."""
        if self._default is None:
            values = {
                self.literal(c.args[0].value) if c.args and not c.args[0].keyword else None  # type: ignore[attr-defined]
                for c in self.m.tree.of_type(cst.Call)
                if self.m.qualified_name(c.func) in DEFAULT_SETTERS  # type: ignore[attr-defined]
            }
            self._default = (values.pop() if len(values) == 1 else None,) if values else ("float32",)
        return self._default[0]

    def literal(self, expr: cst.CSTNode) -> str | None:
        """The dtype that `torch.float64`, `torch.half`, ... names."""
        q = self.m.qualified_name(expr) or ""
        return DTYPE_NAMES.get(q[len("torch."):]) if q.startswith("torch.") else None

    def in_autocast(self, node: cst.CSTNode) -> bool:
        """Inside a `with torch.autocast(...)` body (not `enabled=False`) or a function decorated with one."""
        tree = self.m.tree
        for anc in tree.ancestors(node):
            items = [i.item for i in anc.items] if isinstance(anc, cst.With) else []
            if isinstance(anc, cst.FunctionDef):
                items = [d.decorator for d in anc.decorators]
            for item in items:
                target = item.func if isinstance(item, cst.Call) else item
                if self.m.qualified_name(target) in AUTOCAST:
                    enabled = keyword(item, "enabled") if isinstance(item, cst.Call) else None
                    if enabled is None or not (isinstance(enabled.value, cst.Name) and enabled.value.value == "False"):
                        return True
        return False

    # --- evidence ---

    def _dtype(self, expr: cst.CSTNode) -> Dtype | None:
        if isinstance(expr, cst.Name):
            return self._name(expr)
        if isinstance(expr, cst.Call):
            return self._call(expr)
        if isinstance(expr, cst.Subscript):
            return self.dtype(expr.value)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            return self.dtype(expr.expression)
        if isinstance(expr, cst.Attribute) and expr.attr.value in ("T", "mT", "data"):
            return self.dtype(expr.value)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (*ARITHMETIC, cst.MatrixMultiply)):
            return self._promote(expr.left, expr.right)
        if isinstance(expr, cst.Comparison):
            return Dtype("bool", True)
        return None

    def _summed(self, operand: cst.CSTNode) -> Dtype | None:
        found = self.dtype(operand)
        return found if found is None or found.floating else Dtype("int64", found.explicit)

    def _name(self, name: cst.Name) -> Dtype | None:
        m = self.m
        b = m.binding(name)
        if b is None or b.kind not in ("assign", "augassign") or not m.flow.dominates(b.stmt, name):
            return None
        if len(m.names.may_reach(name)) > 1:
            return None  # rebound later in a loop around it
        if b.kind == "augassign":
            target = b.value.target if isinstance(b.value, cst.AugAssign) else None
            return self.dtype(target) if isinstance(target, cst.Name) else None
        value = b.bound_value()
        return self.dtype(value) if value is not None else None

    def _call(self, call: cst.Call) -> Dtype | None:
        m = self.m
        func = call.func
        q = m.qualified_name(func) or ""
        explicit = keyword(call, "dtype")
        if q.startswith("torch.") and q.count(".") == 1:
            name = q[len("torch."):]
            if explicit is not None:
                found = self.literal(explicit.value)
                return Dtype(found, True) if found else None
            if name in FLOAT_FACTORIES and call.args:
                default = self.default()
                return Dtype(default, False) if default else None
            if name in ("tensor", "as_tensor") and call.args and _float_data(call.args[0].value):
                default = self.default()
                return Dtype(default, False) if default else None
            first = call.args[0].value if call.args and not call.args[0].keyword else None
            if first is not None and name in SUMMING:
                return self._summed(first)
            if first is not None and (name in COMPARING or name in INDEXING):
                return Dtype("bool" if name in COMPARING else "int64", True)
            if name in LIKE_FACTORIES or name in KEEPING:
                return self.dtype(first) if first is not None else None
            return None
        if q.startswith("torch.nn.functional.") and q.rsplit(".", 1)[-1] in KEEPING:
            return self.dtype(call.args[0].value) if call.args and not call.args[0].keyword else None
        if q or not isinstance(func, cst.Attribute):
            return None
        method = func.attr.value
        if method in CAST_METHODS and not call.args:
            return Dtype(CAST_METHODS[method], True)
        if method in ("to", "type"):
            for arg in call.args:
                if arg.keyword is None or arg.keyword.value == "dtype":
                    found = self.literal(arg.value)
                    if found:
                        return Dtype(found, True)
            if any(a.keyword is None and _may_be_dtype(a.value) for a in call.args) or keyword(call, "dtype"):
                return None  # `.to(other)` takes other's dtype; `.to(dt)` a variable dtype
            return self.dtype(func.value)
        if method in KEEPING:
            return self.dtype(func.value)
        if method in SUMMING:
            return self._summed(func.value)
        if method in COMPARING or method in INDEXING:
            return Dtype("bool" if method in COMPARING else "int64", True)
        if method in ("add", "sub", "mul", "div") and len(call.args) == 1:
            return self._promote(func.value, call.args[0].value)
        return None

    def _promote(self, left: cst.CSTNode, right: cst.CSTNode) -> Dtype | None:
        """PyTorch's promotion of two operands: a Python number keeps the tensor's dtype, two floats give
        the wider one (float16 with bfloat16 gives float32), a float with an integer tensor the float."""
        a, b = self._operand(left), self._operand(right)
        if a is None or b is None:
            return None
        if a == "number":
            return b if isinstance(b, Dtype) and b.floating else None
        if b == "number":
            return a if isinstance(a, Dtype) and a.floating else None
        assert isinstance(a, Dtype) and isinstance(b, Dtype)
        if a.name == b.name:
            return Dtype(a.name, a.explicit or b.explicit)
        if a.floating and b.floating:
            if precision(a.name) == precision(b.name):
                return Dtype("float32", False)
            wide = a if precision(a.name) > precision(b.name) else b
            return wide
        if a.floating != b.floating:
            return a if a.floating else b
        return None

    def _operand(self, expr: cst.CSTNode) -> Dtype | str | None:
        if isinstance(expr, (cst.Integer, cst.Float)) or (
            isinstance(expr, cst.UnaryOperation) and isinstance(expr.expression, (cst.Integer, cst.Float))
        ):
            return "number"
        return self.dtype(expr)


def _float_data(expr: cst.CSTNode) -> bool:
    """A float literal, or a list/tuple literal whose numbers include a float (and holds nothing else)."""
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    if isinstance(expr, cst.Float):
        return True
    if not isinstance(expr, (cst.List, cst.Tuple)):
        return False
    leaves: list[cst.CSTNode] = []
    stack = [e.value for e in expr.elements if isinstance(e, cst.Element)]
    while stack:
        item = stack.pop()
        if isinstance(item, (cst.List, cst.Tuple)):
            stack.extend(e.value for e in item.elements if isinstance(e, cst.Element))
        elif isinstance(item, cst.UnaryOperation):
            stack.append(item.expression)
        else:
            leaves.append(item)
    return all(isinstance(x, (cst.Integer, cst.Float)) for x in leaves) and any(isinstance(x, cst.Float) for x in leaves)


def _may_be_dtype(expr: cst.CSTNode) -> bool:
    """A positional argument of `.to(...)` that may set the dtype: not a device string or device name."""
    if isinstance(expr, cst.SimpleString):
        return False
    text = expr.value if isinstance(expr, cst.Name) else expr.attr.value if isinstance(expr, cst.Attribute) else ""
    return "device" not in text.lower()
