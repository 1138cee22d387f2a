"""PTL039 deprecated-variable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.facts.guards import compat_guard
from ptlint.fixes import add_import, remove_unused_import
from ptlint.rule import Edit, Fix, FixSafety, RawFinding, Replace, Rule
from ptlint.semantic.flow import is_false, is_true

if TYPE_CHECKING:
    from ptlint.context import Context

VARIABLE = {"torch.autograd.Variable", "torch.autograd.variable.Variable"}
# The legacy constructor's positional parameters.
PARAMS = ("data", "requires_grad", "volatile")
# Expressions that need no parentheses as the receiver of a method call.
ATOMS = (
    cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.List, cst.Tuple, cst.Dict, cst.Set,
    cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.BaseString, cst.Integer, cst.Float,
)
# Parents in which an expression that replaces a call must be an atom.
TIGHT_PARENTS = (
    cst.Attribute, cst.Subscript, cst.Call, cst.BinaryOperation, cst.UnaryOperation, cst.Comparison,
    cst.BooleanOperation, cst.Await,
)
# Words in the binding of a name that show it may carry gradient history.
GRAD_ATTRS = {"requires_grad", "requires_grad_", "grad_fn"}

Site = tuple[cst.CSTNode, cst.CSTNode | None, str, Fix | None, cst.CSTNode]


class DeprecatedVariable(Rule):
    """Deprecated `torch.autograd.Variable` wrapper.

    ## What it does
    Flags `torch.autograd.Variable(...)` calls and other uses of `Variable`
    (`isinstance(x, Variable)`, annotations, `type(x) == Variable`).

    ## Why is this bad?
    Since torch 0.4 tensors track gradients themselves and `Variable` is a deprecated shim:
    `Variable(x)` just returns `x.detach()` and `Variable(x, requires_grad=True)` a new leaf that
    requires grad. The wrapper adds noise and misleads readers. `type(x) == Variable` is always
    False for tensors, so code that branches on it silently takes the wrong path.

    ## Example
    ```python
    from torch.autograd import Variable

    x = Variable(batch)
    w = Variable(torch.randn(3, 4), requires_grad=True)
    if isinstance(h, Variable):
        ...
    ```

    ## Use instead
    ```python
    x = batch
    w = torch.randn(3, 4).requires_grad_()
    if isinstance(h, torch.Tensor):
        ...
    ```

    ## Fix safety
    `Variable(x)` becomes `x`. This is safe for the code `Variable` was written for: it only ever
    wrapped plain tensors, which have no gradient history. Where the file shows that `x` may carry
    history (a model output, a tensor with `requires_grad`), it becomes `x.detach()`, which is exactly
    what `Variable` does today. `Variable(x, requires_grad=True)` becomes `x.requires_grad_()` when `x`
    is a tensor that a torch factory just built (`torch.randn(...)`), and `x.detach().requires_grad_()`
    otherwise, so that the flag is set on a new leaf and not on the caller's tensor, exactly as
    `Variable` did. `isinstance(x, Variable)` and annotations become
    `torch.Tensor` (safe). The import of `Variable` is removed once nothing uses it. A call with
    `volatile=True` keeps its wrapper until PTL040 has dealt with the flag (it is ignored and hides a
    missing `torch.no_grad()`), and `type(x) == Variable` has no automatic fix.

    ## References
    - [PyTorch 0.4 migration guide](https://pytorch.org/blog/pytorch-0_4_0-migration-guide/)
    - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
    """

    code = "PTL039"
    name = "deprecated-variable"
    message = "`torch.autograd.Variable` is deprecated; tensors track gradients themselves"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ("Variable",)
    contract = "E0"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        # (reported node, replaced node or None, message, fix without import edits, statement)
        self._sites: list[Site] = []
        self._seen: set[int] = set()

    # --- visitors ---

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in VARIABLE or self.ctx.compat_guard() is not None:
            return
        self._seen.add(id(node.func))
        new, safety, why = self._call_fix(node)
        if new is None:
            message = f"`Variable(...)` is deprecated; use the tensor itself ({why})"
            self._add(node.func, None, message, None)
            return
        edit = self._self_assignment() or Replace(node, new)
        fix = Fix("Drop the `Variable` wrapper", safety, (edit,))
        self._add(node.func, node, "`Variable(...)` is deprecated; use the tensor itself", fix)

    def visit_Name(self, node: cst.Name) -> None:
        self._reference(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._reference(node)

    def leave_Module(self, node: cst.Module) -> None:
        for reported, _, message, fix, stmt in self._sites:
            self.reports.append(RawFinding(self, reported, message, fix, stmt))
        self._unused_import()

    def _unused_import(self) -> None:
        """Once every use is rewritten, the import of `Variable` goes too (a finding of its own)."""
        if self.ctx.path.replace("\\", "/").endswith("__init__.py"):
            return  # a package may re-export it
        for local, full in self.ctx.imports.aliases.items():
            origin = self.ctx.imports.origins.get(local)
            if full not in VARIABLE or origin is None or compat_guard(self.ctx.model.tree.path(origin[0])) is not None:
                continue
            removal = remove_unused_import(self.ctx, local, ())
            if removal:
                fix = Fix("Remove the unused import", FixSafety.SAFE, removal)
                message = "Unused import of the deprecated `Variable`"
                self.reports.append(RawFinding(self, origin[1], message, fix, None))

    # --- sites ---

    def _add(self, reported: cst.CSTNode, old: cst.CSTNode | None, message: str, fix: Fix | None) -> None:
        self._sites.append((reported, old, message, fix, self.ctx.statement()))

    def _reference(self, node: cst.Name | cst.Attribute) -> None:
        """`Variable` used other than as a call: isinstance tests, annotations, comparisons."""
        if id(node) in self._seen or self.ctx.qualname(node) not in VARIABLE:
            return
        parent = self.ctx.parent()
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return
        if isinstance(parent, cst.Call) and parent.func is node:
            return
        if any(isinstance(n, (cst.Import, cst.ImportFrom)) for n in self.ctx.stack):
            return
        if self.ctx.compat_guard() is not None:
            return
        self._seen.add(id(node))
        tensor, extra = self._tensor_class()
        if _in_annotation(self.ctx.stack) or _isinstance_class(self.ctx.stack):
            fix = Fix("Use `torch.Tensor`", FixSafety.SAFE, (Replace(node, tensor), *extra))
            self._add(node, node, "`Variable` is deprecated; every tensor is a `torch.Tensor`", fix)
        elif isinstance(parent, cst.ComparisonTarget) or isinstance(parent, cst.Comparison):
            message = "`type(x) == Variable` is always False since torch 0.4; use `isinstance(x, torch.Tensor)`"
            self._add(node, None, message, None)
        else:
            message = "`Variable` is deprecated; tensors track gradients themselves (no automatic fix)"
            self._add(node, None, message, None)

    # --- fixes ---

    def _call_fix(self, call: cst.Call) -> tuple[cst.CSTNode | None, FixSafety, str]:
        """The replacement of a `Variable(...)` call, its safety, or why there is none."""
        args: dict[str, cst.Arg] = {}
        for i, arg in enumerate(call.args):
            if arg.star:
                return None, FixSafety.NONE, "fix withheld: star arguments"
            key = arg.keyword.value if arg.keyword is not None else (PARAMS[i] if i < len(PARAMS) else "")
            if key not in PARAMS:
                return None, FixSafety.NONE, "fix withheld: unknown arguments"
            args[key] = arg
        if "data" not in args:
            return None, FixSafety.NONE, "fix withheld: no data; use `torch.empty(0)`"
        volatile = args.get("volatile")
        if volatile is not None and not is_false(volatile.value) and not self.ctx.in_no_grad():
            return None, FixSafety.NONE, "fix withheld: resolve the ignored `volatile` flag first (PTL040)"
        data = args["data"].value
        flag = args.get("requires_grad")
        if flag is None or is_false(flag.value):
            if self._may_carry_history(data):
                return _method(data, "detach", None), FixSafety.SAFE, ""
            return self._bare(data), FixSafety.SAFE, ""
        value = None if is_true(flag.value) else flag.value
        if not self._fresh(data):
            data = _method(data, "detach", None)
        return _method(data, "requires_grad_", value), FixSafety.SAFE, ""

    def _fresh(self, data: cst.BaseExpression) -> bool:
        """A tensor that a torch factory call just built (`torch.randn(...).type(t)`): nothing else holds it."""
        while isinstance(data, cst.Call) and isinstance(data.func, cst.Attribute):
            if (self.ctx.qualname(data.func) or "").startswith("torch."):
                return True
            data = data.func.value
        return isinstance(data, cst.Call) and (self.ctx.qualname(data.func) or "").startswith("torch.")

    def _self_assignment(self) -> Replace | None:
        """`x = Variable(x)` (or `x, y = Variable(x), Variable(y)`) is dropped as a whole line."""
        stack = self.ctx.stack
        line = next((n for n in reversed(stack) if isinstance(n, cst.SimpleStatementLine)), None)
        block = stack[stack.index(line) - 1] if line is not None and stack.index(line) > 0 else None
        if line is None or len(line.body) != 1 or not isinstance(line.body[0], cst.Assign):
            return None
        if line.trailing_whitespace.comment is not None or any(e.comment for e in line.leading_lines):
            return None
        assign = line.body[0]
        if len(assign.targets) != 1:
            return None
        target, value = assign.targets[0].target, assign.value
        pairs = [(target, value)]
        if isinstance(target, cst.Tuple) and isinstance(value, cst.Tuple):
            if len(target.elements) == len(value.elements):
                pairs = [(t.value, v.value) for t, v in zip(target.elements, value.elements)]
        for t, v in pairs:
            if not (isinstance(t, cst.Name) and isinstance(v, cst.Call) and self.ctx.qualname(v.func) in VARIABLE):
                return None
            if len(v.args) != 1 or v.args[0].keyword is not None or v.args[0].star:
                return None
            data = v.args[0].value
            if not (isinstance(data, cst.Name) and data.value == t.value) or self._may_carry_history(data):
                return None
        if isinstance(block, cst.IndentedBlock) and len(block.body) == 1:
            return Replace(line, line.with_changes(body=[cst.Pass()]))
        return Replace(line, cst.RemovalSentinel.REMOVE)  # type: ignore[arg-type]

    def _bare(self, data: cst.BaseExpression) -> cst.BaseExpression:
        """The data expression in place of the call, parenthesized where the context needs an atom."""
        parent = self.ctx.parent()
        data = data.with_changes(lpar=data.lpar, rpar=data.rpar)
        if isinstance(parent, TIGHT_PARENTS) and not _is_atom(data):
            return data.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return data

    def _may_carry_history(self, data: cst.BaseExpression) -> bool:
        """Evidence in the file that `data` may have gradient history: a model output or requires_grad."""
        if isinstance(data, cst.Call):
            return self.ctx.is_module_expr(data.func)
        if not isinstance(data, cst.Name):
            return False
        binding = self.ctx.reaching(data)
        value = binding.value if binding is not None and binding.kind == "assign" else None
        if not isinstance(value, cst.CSTNode):
            return False
        if isinstance(value, cst.Call) and self.ctx.is_module_expr(value.func):
            return True
        return any(n.value in GRAD_ATTRS for n in self.ctx.model.tree.below(value, cst.Name, scopes=False))  # type: ignore[attr-defined]

    def _tensor_class(self) -> tuple[cst.BaseExpression, tuple[Edit, ...]]:
        local = next((k for k, v in self.ctx.imports.aliases.items() if v == "torch"), None)
        if local is not None:
            return cst.Attribute(value=cst.Name(local), attr=cst.Name("Tensor")), ()
        return cst.parse_expression("torch.Tensor"), add_import(self.ctx, "import torch")

    def _imported_local(self) -> str | None:
        """The local name of a from-import of Variable (`from torch.autograd import Variable [as V]`)."""
        for local, full in self.ctx.imports.aliases.items():
            if full in VARIABLE:
                return local
        return None


def _is_atom(expr: cst.BaseExpression) -> bool:
    return bool(expr.lpar) or isinstance(expr, ATOMS)


def _method(data: cst.BaseExpression, name: str, arg: cst.BaseExpression | None) -> cst.Call:
    """`data.name()` / `data.name(arg)`, parenthesizing `data` when it is not an atom."""
    receiver = data if _is_atom(data) else data.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    args = [cst.Arg(value=arg)] if arg is not None else []
    return cst.Call(func=cst.Attribute(value=receiver, attr=cst.Name(name)), args=args)


def _in_annotation(stack: list[cst.CSTNode]) -> bool:
    return any(isinstance(n, cst.Annotation) for n in stack)


def _isinstance_class(stack: list[cst.CSTNode]) -> bool:
    """The class argument of `isinstance(x, Variable)` / `isinstance(x, (Variable, list))`."""
    for node, child in zip(stack, stack[1:]):
        if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Name):
            continue
        if node.func.value in ("isinstance", "issubclass"):
            return len(node.args) == 2 and child is node.args[1]
    return False

