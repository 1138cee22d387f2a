"""PTL037 legacy-tensor-constructor."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.fixes import add_import, remove_unused_import
from ptlint.rule import Edit, Fix, FixSafety, RawFinding, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

# Legacy constructor -> the dtype it creates (None: the default dtype).
DTYPES: dict[str, str | None] = {
    "Tensor": None, "FloatTensor": "float", "DoubleTensor": "double", "HalfTensor": "half",
    "BFloat16Tensor": "bfloat16", "LongTensor": "long", "IntTensor": "int", "ShortTensor": "short",
    "CharTensor": "int8", "ByteTensor": "uint8", "BoolTensor": "bool",
}
CONSTRUCTORS = {f"torch.{name}": name for name in DTYPES}
# Calls whose result is a size, not data.
SIZE_CALLS = {"len", "int"}
SIZE_METHODS = {"size", "numel", "dim"}
# Names that by convention hold a single integer size.
SIZE_NAME_RE = re.compile(
    r"^(?:(?:n|num|nb)_[a-z0-9_]+|[a-z0-9_]*_(?:size|dim|features|channels|len|length)|size|dim|nhid|ninp|ntoken)$",
    re.IGNORECASE,
)
# Methods that return array data (numpy's `astype`, a tensor's `numpy()` / `tolist()`).
DATA_METHODS = {"numpy", "astype", "tolist"}
DEFAULT_DTYPE_SETTERS = ("set_default_dtype", "set_default_tensor_type")


class LegacyTensorConstructor(Rule):
    """Legacy tensor constructors such as `torch.Tensor(n)` and `torch.LongTensor(data)`.

    ## What it does
    Flags calls of `torch.Tensor(...)` and the typed legacy constructors `torch.FloatTensor`,
    `torch.LongTensor`, `torch.ByteTensor` and friends. CUDA types (`torch.cuda.FloatTensor`)
    are PTL005's.

    ## Why is this bad?
    The legacy constructors do two different things depending on their arguments: with data
    (`torch.Tensor([1, 2])`) they copy it, with integers (`torch.Tensor(3, 4)`) they allocate
    **uninitialised** memory of that size. `torch.Tensor(n)` where `n` was meant as a value silently
    yields garbage, and `torch.LongTensor(x)` with a float list truncates. `torch.tensor(data, dtype=...)`
    and `torch.empty/zeros(sizes, dtype=...)` say which one is meant.

    ## Example
    ```python
    weights = torch.Tensor([1, 2, 3])
    labels = torch.LongTensor(label_list)
    self.bias = nn.Parameter(torch.Tensor(out_features))
    ```

    ## Use instead
    ```python
    weights = torch.tensor([1.0, 2.0, 3.0])
    labels = torch.tensor(label_list, dtype=torch.long)
    self.bias = nn.Parameter(torch.empty(out_features))
    ```

    ## Fix safety
    Safe and exact when the arguments show which form is meant: a list or tuple literal, a
    comprehension, a numpy array or a name bound to a list is data (`torch.tensor` with the
    constructor's dtype; integer literals in `torch.Tensor([...])` become floats so the default
    dtype still applies); an integer literal, `len(...)`, `x.size()`/`x.shape`, several arguments, or
    a name bound to an integer is a size (`torch.empty`, which is uninitialised exactly as before;
    initialise it or use `torch.zeros` where that was not intended). `torch.Tensor(name)` with
    non-literal data assumes the default dtype float32, so it has no fix in a file that changes the
    default dtype. Anything else, such as a parameter of unknown type, is reported without a fix.
    A from-import of the constructor is removed once nothing uses it.

    ## References
    - [torch.tensor](https://pytorch.org/docs/stable/generated/torch.tensor.html)
    - [Tensor creation ops](https://pytorch.org/docs/stable/torch.html#creation-ops)
    - Trail of Bits semgrep rule `pytorch-tensor`
    """

    code = "PTL037"
    name = "legacy-tensor-constructor"
    message = "Legacy tensor constructor; use `torch.tensor(data, dtype=...)` or `torch.empty(sizes, dtype=...)`"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ("Tensor(",)
    contract = "E0"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._sets_default = any(s in ctx.source for s in DEFAULT_DTYPE_SETTERS)
        self._found = False

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func)
        if qual not in CONSTRUCTORS:
            return
        self._found = True
        name = CONSTRUCTORS[qual]
        if self.ctx.compat_guard() is not None:
            self.report(node.func, f"`{qual}` is a legacy constructor (no fix in compatibility code)")
            return
        form, why = self._form(node)
        if form == "data":
            self._report_data(node, name, qual)
        elif form == "size":
            self._report_size(node, name, qual)
        else:
            self.report(node.func, f"`{qual}(...)` is a legacy constructor; {why}")

    def leave_Module(self, node: cst.Module) -> None:
        if self.ctx.path.replace("\\", "/").endswith("__init__.py"):
            return
        for local, full in self.ctx.imports.aliases.items():
            origin = self.ctx.imports.origins.get(local)
            if full not in CONSTRUCTORS or full == "torch.Tensor" or origin is None:
                continue
            removal = remove_unused_import(self.ctx, local, ())
            if removal:
                fix = Fix("Remove the unused import", FixSafety.SAFE, removal)
                message = f"Unused import of the legacy constructor `{full}`"
                self.reports.append(RawFinding(self, origin[1], message, fix, None))

    # --- which form ---

    def _form(self, call: cst.Call) -> tuple[str, str]:
        """'data', 'size' or '' (with the reason) for the arguments of a legacy constructor call."""
        positional = []
        for arg in call.args:
            if arg.star:
                return "", "no automatic fix for star arguments"
            if arg.keyword is None:
                positional.append(arg.value)
            elif arg.keyword.value != "device":
                return "", f"no automatic fix for the `{arg.keyword.value}` argument"
        if not positional:
            return "size", ""
        if len(positional) > 1:
            if any(_is_data_literal(v) for v in positional):
                return "", "no automatic fix for these arguments"
            return "size", ""
        return self._single_form(positional[0])

    def _single_form(self, value: cst.BaseExpression, depth: int = 0) -> tuple[str, str]:
        unknown = "no automatic fix: the argument may be data (use `torch.tensor`) or a size (use `torch.empty`)"
        if _is_data_literal(value) or self._is_numpy(value):
            return "data", ""
        if _is_size(value):
            return "size", ""
        if _size_name(value):
            return "size", ""
        if isinstance(value, cst.Name) and depth == 0:
            binding = self.ctx.reaching(value)
            if binding is not None and binding.kind == "param" and _int_param(binding.stmt, value.value):
                return "size", ""
            bound = binding.value if binding is not None and binding.kind == "assign" else None
            if isinstance(bound, cst.BaseExpression):
                form, _ = self._single_form(bound, depth + 1)
                if form:
                    return form, ""
        return "", unknown

    def _is_numpy(self, value: cst.BaseExpression) -> bool:
        if not isinstance(value, cst.Call):
            return False
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in DATA_METHODS:
            return True
        return (self.ctx.qualname(value.func) or "").startswith("numpy.")

    # --- fixes ---

    def _report_data(self, call: cst.Call, name: str, qual: str) -> None:
        data = call.args[0].value
        dtype = DTYPES[name]
        literal = dtype is None and _numeric_literal(data)
        if dtype is None and not literal and self._sets_default:
            message = f"`{qual}(data)` is a legacy constructor (no fix: the file changes the default dtype)"
            self.report(call.func, message)
            return
        torch, extra = self._torch(call.func)
        args = list(call.args)
        args[0] = args[0].with_changes(value=_floats(data) if literal else data)
        if not literal:
            device_at = next((i for i, a in enumerate(args) if a.keyword is not None), len(args))
            args = _insert(args, device_at, _keyword("dtype", _dtype(torch, dtype or "float")), call)
        new = call.with_changes(func=cst.Attribute(value=torch, attr=cst.Name("tensor")), args=args)
        fix = Fix("Use `torch.tensor`", FixSafety.SAFE, (Replace(call, new), *extra))
        self.report(call.func, f"`{qual}(data)` is a legacy constructor; use `torch.tensor(data, dtype=...)`", fix)

    def _report_size(self, call: cst.Call, name: str, qual: str) -> None:
        torch, extra = self._torch(call.func)
        args = list(call.args)
        if not any(a.keyword is None for a in args):
            args = _insert(args, 0, cst.Arg(value=cst.Integer("0")), call)
        dtype = DTYPES[name]
        if dtype is not None:
            device_at = next((i for i, a in enumerate(args) if a.keyword is not None), len(args))
            args = _insert(args, device_at, _keyword("dtype", _dtype(torch, dtype)), call)
        new = call.with_changes(func=cst.Attribute(value=torch, attr=cst.Name("empty")), args=args)
        fix = Fix("Use `torch.empty`", FixSafety.SAFE, (Replace(call, new), *extra))
        self.report(
            call.func,
            f"`{qual}(sizes)` is a legacy constructor that returns uninitialised memory; "
            "use `torch.empty` (or `torch.zeros`)",
            fix,
        )

    def _torch(self, func: cst.BaseExpression) -> tuple[cst.BaseExpression, tuple[Edit, ...]]:
        if isinstance(func, cst.Attribute) and self.ctx.qualname(func.value) == "torch":
            return func.value, ()
        local = next((k for k, v in self.ctx.imports.aliases.items() if v == "torch"), None)
        if local is not None:
            return cst.Name(local), ()
        return cst.Name("torch"), add_import(self.ctx, "import torch")


# --- helpers ---


def _is_data_literal(value: cst.BaseExpression) -> bool:
    return isinstance(value, (cst.List, cst.Tuple, cst.ListComp))


def _is_size(value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.Integer):
        return True
    if isinstance(value, cst.Attribute) and value.attr.value == "shape":
        return True
    if isinstance(value, cst.Call):
        func = value.func
        if isinstance(func, cst.Name) and func.value in SIZE_CALLS:
            return True
        if isinstance(func, cst.Attribute) and func.attr.value in SIZE_METHODS:
            return True
        return (dotted_name(func) or "").endswith("Size")
    return False


def _size_name(value: cst.BaseExpression) -> bool:
    """A name (or `obj.name`) that by convention holds one integer: `n_out`, `hidden_size`, `num_classes`."""
    if isinstance(value, cst.Attribute):
        value = value.attr
    return isinstance(value, cst.Name) and SIZE_NAME_RE.match(value.value) is not None


def _int_param(func: cst.CSTNode, name: str) -> bool:
    """A parameter annotated `int`."""
    if not isinstance(func, cst.FunctionDef):
        return False
    params = func.params
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        if p.name.value == name and p.annotation is not None:
            ann = p.annotation.annotation
            return isinstance(ann, cst.Name) and ann.value == "int"
    return False


def _numeric_literal(value: cst.BaseExpression) -> bool:
    """A list/tuple literal whose leaves are all int or float literals (possibly negated)."""
    if isinstance(value, (cst.List, cst.Tuple)):
        return all(isinstance(e, cst.Element) and _numeric_literal(e.value) for e in value.elements)
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, (cst.Minus, cst.Plus)):
        return isinstance(value.expression, (cst.Integer, cst.Float))
    return isinstance(value, (cst.Integer, cst.Float))


class _Floats(cst.CSTTransformer):
    def leave_Integer(self, original: cst.Integer, updated: cst.Integer) -> cst.BaseExpression:
        text = updated.value
        if text.isdigit():
            return cst.Float(text + ".0", lpar=updated.lpar, rpar=updated.rpar)
        return updated


def _floats(value: cst.BaseExpression) -> cst.BaseExpression:
    """`[1, 2]` -> `[1.0, 2.0]` (decimal integer literals only)."""
    return value.visit(_Floats())  # type: ignore[return-value]


def _dtype(torch: cst.BaseExpression, name: str) -> cst.Attribute:
    return cst.Attribute(value=torch, attr=cst.Name(name))


def _keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
    equal = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    return cst.Arg(value=value, keyword=cst.Name(name), equal=equal)


def _insert(args: list[cst.Arg], index: int, new: cst.Arg, call: cst.Call) -> list[cst.Arg]:
    """`args` with `new` inserted at `index`, keeping commas, a trailing comma and one-argument-per-line layouts."""
    args = list(args)
    if not args:
        return [new.with_changes(comma=cst.MaybeSentinel.DEFAULT)]
    if index < len(args):
        return [*args[:index], new.with_changes(comma=_comma()), *args[index:]]
    last = args[-1]
    comma = last.comma
    space = comma.whitespace_after if isinstance(comma, cst.Comma) else None
    indent = call.whitespace_before_args
    if isinstance(space, cst.ParenthesizedWhitespace) and isinstance(indent, cst.ParenthesizedWhitespace):
        closing = cst.ParenthesizedWhitespace(indent=space.indent, last_line=space.last_line)
        args[-1] = last.with_changes(comma=comma.with_changes(
            whitespace_after=space.with_changes(indent=indent.indent, last_line=indent.last_line)))
        return [*args, new.with_changes(comma=cst.Comma(whitespace_after=closing))]
    after = last.whitespace_after_arg
    if not isinstance(comma, cst.Comma) and isinstance(after, cst.ParenthesizedWhitespace):
        space = indent if isinstance(indent, cst.ParenthesizedWhitespace) else cst.SimpleWhitespace(" ")
        args[-1] = last.with_changes(
            comma=cst.Comma(whitespace_after=space), whitespace_after_arg=cst.SimpleWhitespace("")
        )
        return [*args, new.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=after)]
    trailing = comma if isinstance(comma, cst.Comma) else cst.MaybeSentinel.DEFAULT
    args[-1] = last.with_changes(comma=_comma())
    return [*args, new.with_changes(comma=trailing)]


def _comma() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
