"""PTL040 volatile-flag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule
from ptlint.semantic.flow import is_false, is_true
from ptlint.semantic.tree import Tree

if TYPE_CHECKING:
    from ptlint.context import Context

VARIABLE = {"torch.autograd.Variable", "torch.autograd.variable.Variable"}
VOLATILE_POSITION = 2  # Variable(data, requires_grad, volatile)
# Calls and attributes that show a block computes or steers gradients.
GRAD_WORDS = {
    "backward", "step", "grad", "requires_grad", "requires_grad_", "volatile", "enable_grad", "set_grad_enabled",
}
DEFINITIONS = (cst.FunctionDef, cst.ClassDef)


class VolatileFlag(Rule):
    """`Variable(..., volatile=True)`, a flag that torch ignores since 0.4.

    ## What it does
    Flags `torch.autograd.Variable(x, volatile=...)` outside `torch.no_grad()`.

    ## Why is this bad?
    `volatile=True` was how PyTorch 0.3 and earlier switched off gradient tracking for inference.
    Since torch 0.4 the flag is silently ignored (apart from a warning), so the computation that
    the author meant to run without autograd now records the graph: evaluation code keeps
    activations alive, uses more memory and runs slower, and outputs carry `grad_fn`.
    This is an error, not a style issue: the code no longer does what it says.

    ## Example
    ```python
    def evaluate(model, batch):
        x = Variable(batch, volatile=True)
        out = model(x)
        return out.max(1)[1]
    ```

    ## Use instead
    ```python
    def evaluate(model, batch):
        with torch.no_grad():
            x = Variable(batch)
            out = model(x)
            return out.max(1)[1]
    ```

    ## Fix safety
    Unsafe. The fix drops the flag and wraps the statement and the rest of its block in
    `with torch.no_grad():`, which turns off gradient tracking for code that ran with it. It is
    only offered for `volatile=True` assigned to a name that later statements of the block use,
    when those statements do not compute gradients (`backward`, `step`, `autograd.grad`,
    `requires_grad`), do not define functions or classes, and the code is not a compatibility branch.

    ## References
    - [PyTorch 0.4 migration guide: volatile](https://pytorch.org/blog/pytorch-0_4_0-migration-guide/)
    - [torch.no_grad](https://pytorch.org/docs/stable/generated/torch.no_grad.html)
    """

    code = "PTL040"
    name = "volatile-flag"
    message = "`volatile=True` is ignored since torch 0.4: gradients are tracked here; use `torch.no_grad()`"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    fix_first = True  # its `torch.no_grad()` decides whether other fixes (`.detach()`) are needed
    triggers = ("volatile", "Variable(")
    contract = "E2"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._wrapped: dict[int, Fix | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in VARIABLE:
            return
        arg = _volatile_arg(node)
        if arg is None or is_false(arg.value) or self.ctx.in_no_grad():
            return
        if self.ctx.compat_guard() is not None:
            return
        fix, why = None, ""
        if not is_true(arg.value):
            why = "the flag is not a literal True"
        else:
            fix, why = self._fix(node)
        message = self.message if fix is not None else f"{self.message} (fix withheld: {why})"
        self.report(arg, message, fix)

    # --- the fix ---

    def _fix(self, call: cst.Call) -> tuple[Fix | None, str]:
        stack = self.ctx.stack
        line = next((n for n in reversed(stack) if isinstance(n, cst.BaseStatement)), None)
        if not isinstance(line, cst.SimpleStatementLine):
            return None, "the call is part of a compound statement"
        block = stack[stack.index(line) - 1]
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return None, "the statement is not in a block"
        tree = self.ctx.model.tree
        names = _assigned_names(line, tree)
        if not names:
            return None, "the value is not assigned to a name"
        body = list(block.body)
        start = next(i for i, s in enumerate(body) if s is line)
        rest = body[start:]
        if not any(n.value in names for s in rest[1:] for n in tree.below(s, cst.Name, scopes=False)):  # type: ignore[attr-defined]
            return None, "no later statement of the block uses the value"
        if any(_computes_gradients(s, tree) for s in rest[1:]):
            return None, "the rest of the block computes gradients"
        if any(isinstance(s, DEFINITIONS) or tree.below(s, DEFINITIONS, scopes=False) for s in rest):
            return None, "the rest of the block defines functions or classes"
        if isinstance(block, cst.Module) and any(_is_import_line(s) for s in rest):
            return None, "the rest of the module imports"
        no_grad, extra = self._no_grad()
        cleaned = [_strip_volatile(s, self.ctx) for s in rest]
        first = cleaned[0]
        inner = [first.with_changes(leading_lines=[]), *cleaned[1:]]
        wrapper = cst.With(
            items=[cst.WithItem(item=no_grad)],
            body=cst.IndentedBlock(body=inner),
            leading_lines=first.leading_lines,
        )
        new_block = block.with_changes(body=[*body[:start], wrapper])
        edits: tuple[Edit, ...] = (Replace(block, new_block), *extra)
        return Fix("Wrap the rest of the block in `torch.no_grad()`", FixSafety.UNSAFE, edits), ""

    def _no_grad(self) -> tuple[cst.BaseExpression, tuple[Edit, ...]]:
        local = next((k for k, v in self.ctx.imports.aliases.items() if v == "torch"), None)
        if local is not None:
            return cst.parse_expression(f"{local}.no_grad()"), ()
        return cst.parse_expression("torch.no_grad()"), add_import(self.ctx, "import torch")


def _volatile_arg(call: cst.Call) -> cst.Arg | None:
    for i, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is not None and arg.keyword.value == "volatile":
            return arg
        if arg.keyword is None and i == VOLATILE_POSITION:
            return arg
    return None


def _assigned_names(line: cst.SimpleStatementLine, tree: Tree) -> set[str]:
    names: set[str] = set()
    for small in line.body:
        targets: list[cst.BaseExpression] = []
        if isinstance(small, cst.Assign):
            targets = [t.target for t in small.targets]
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            targets = [small.target]
        for target in targets:
            for node in (target, *tree.below(target, cst.Name, scopes=False)):
                if isinstance(node, cst.Name):
                    names.add(node.value)
    return names


def _computes_gradients(stmt: cst.CSTNode, tree: Tree) -> bool:
    for node in tree.below(stmt, (cst.Attribute, cst.Name)):
        if isinstance(node, cst.Attribute) and node.attr.value in GRAD_WORDS:
            return True
        if isinstance(node, cst.Name) and node.value in ("grad", "backward"):
            return True
    return False


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


class _DropVolatile(cst.CSTTransformer):
    """Removes the volatile argument of Variable calls."""

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if self.ctx.qualname(original.func) not in VARIABLE:
            return updated
        arg = _volatile_arg(updated)
        if arg is None or (arg.keyword is None and arg is not updated.args[-1]):
            return updated
        args = [a for a in updated.args if a is not arg]
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(args=args)


def _strip_volatile(stmt: cst.BaseStatement, ctx: Context) -> cst.BaseStatement:
    return stmt.visit(_DropVolatile(ctx))  # type: ignore[return-value]
