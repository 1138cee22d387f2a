"""PTL027 eval-without-no-grad."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.paths import is_test_path
from ptlint.facts.walk import children, iter_nodes
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule

EVAL_NAME = re.compile(r"^_*(val|valid|validate|validation|eval|evaluate|evaluation|predict|prediction|inference|infer|test)(_|$)", re.I)
# Anything that needs gradients: saliency maps, adversarial examples, training.
LOOP_TYPES = (cst.For, cst.While)
EVAL_WORD = re.compile(r"\beval\b")
NEEDS_GRAD = {"backward", "grad", "requires_grad_", "retain_grad", "step", "zero_grad", "manual_backward", "register_hook"}


class EvalWithoutNoGrad(Rule):
    """Evaluation that records the autograd graph.

    ## What it does
    Flags evaluation code that calls a model while gradients are on: a function named like
    `validate`, `evaluate`, `predict`, `test` or `inference`, or one that calls `model.eval()`, and
    module-level loops that run after `model.eval()`, when no `torch.no_grad()` or
    `torch.inference_mode()` covers the model call.

    A function recognised by its name alone is reported only when it calls the model once per
    batch, in a loop or comprehension; a single forward pass in a smoke test is not reported.

    It stays silent when the code needs gradients (`backward()`, `torch.autograd.grad`,
    `requires_grad_()`, `requires_grad=True`, hooks: saliency maps, adversarial examples), in
    LightningModule methods (Lightning disables gradients in its loops), in `forward` methods
    (the module's caller chooses the grad mode), in pytest tests, when the function enters
    `torch.no_grad()` on an `ExitStack`, and when it is decorated with `@torch.no_grad()`,
    `@torch.inference_mode()` or a project wrapper whose name says so (`@smart_inference_mode()`).

    ## Why is this bad?
    Every forward pass with gradients on records the graph and keeps each layer's activations
    alive until the outputs are freed. Evaluation never calls `backward()`, so that memory and the
    time spent recording are wasted, and results kept across batches hold their whole graph:
    peak memory grows and large batches run out of memory.

    ## Example
    ```python
    def validate(model, loader):
        model.eval()
        return [model(x).argmax(1) for x, _ in loader]
    ```

    ## Use instead
    ```python
    @torch.no_grad()
    def validate(model, loader):
        model.eval()
        return [model(x).argmax(1) for x, _ in loader]
    ```

    ## Fix safety
    Unsafe: the function gets `@torch.no_grad()` (a module-level loop is wrapped in
    `with torch.no_grad():`). Tensors it returns then have `requires_grad=False`, which breaks a
    caller that differentiates through them.

    ## References
    - [Performance tuning guide: disable gradient calculation for validation or inference](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
    """

    code = "PTL027"
    name = "eval-without-no-grad"
    message = "Evaluation runs the model with gradients on; wrap it in `torch.no_grad()`"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    fix_first = True  # its `@torch.no_grad()` decides whether other fixes (`.detach()`) are needed
    triggers = ("eval", "val", "predict", "test", "infer")
    contract = "E0"

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self._skip_path() or self.ctx.function() is not node:
            return
        name = node.name.value
        evaluates = bool(EVAL_NAME.match(name)) and not name.startswith("test_")
        calls_eval = self._calls_eval(node)
        if not (evaluates or calls_eval):
            return
        info = self.ctx.class_info()
        if info is not None and (info.is_lightning or name == "forward"):
            return  # a module's caller owns the grad mode of its forward pass
        if any(self._no_grad_decorator(d.decorator) for d in node.decorators) or _needs_grad(node):
            return
        if self._enters_no_grad(node):
            return
        call = self._unguarded_model_call(node.body)
        if call is None or (not calls_eval and not self._in_loop(node, call)):
            return
        decorator = cst.Decorator(decorator=cst.parse_expression(f"{self._no_grad()}()"))
        edits: list[Edit] = [Replace(node, node.with_changes(decorators=[decorator, *node.decorators]))]
        edits.extend(self._import())
        self.report(call, fix=Fix("Decorate with `@torch.no_grad()`", FixSafety.UNSAFE, tuple(edits)))

    def leave_Module(self, node: cst.Module) -> None:
        if self._skip_path() or not any(type(stmt) in LOOP_TYPES for stmt in node.body):
            return  # only a module-level loop can be reported here
        mode = None
        for stmt in node.body:
            for n in _calls(stmt):
                name = n.func.attr.value if isinstance(n.func, cst.Attribute) else None  # type: ignore[attr-defined]
                if name == "eval" and not n.args:  # type: ignore[attr-defined]
                    mode = "eval"
                elif name == "train":
                    mode = "train"
            if mode == "eval" and isinstance(stmt, (cst.For, cst.While)) and not _needs_grad(stmt):
                call = self._unguarded_model_call(stmt.body)
                if call is not None:
                    wrapped = cst.With(
                        items=[cst.WithItem(cst.parse_expression(f"{self._no_grad()}()"))],
                        body=cst.IndentedBlock(body=[stmt.with_changes(leading_lines=())]),
                        leading_lines=stmt.leading_lines,
                    )
                    edits: list[Edit] = [Replace(stmt, wrapped), *self._import()]
                    self.report(call, fix=Fix("Wrap the loop in `torch.no_grad()`", FixSafety.UNSAFE, tuple(edits)))

    # --- helpers ---

    def _no_grad_decorator(self, expr: cst.BaseExpression) -> bool:
        """`@torch.no_grad()`, and project wrappers such as `@smart_inference_mode()`."""
        if self.ctx.is_no_grad(expr):
            return True
        target = expr.func if isinstance(expr, cst.Call) else expr
        name = (dotted_name(target) or "").rsplit(".", 1)[-1].lower()
        return "no_grad" in name or "inference_mode" in name

    def _enters_no_grad(self, func: cst.FunctionDef) -> bool:
        """`stack.enter_context(torch.no_grad())` on an `ExitStack` in the body."""
        return any(
            isinstance(n.func, cst.Attribute) and n.func.attr.value == "enter_context" and len(n.args) == 1
            and self.ctx.is_no_grad(n.args[0].value)
            for n in _calls(func.body)
        )

    def _calls_eval(self, func: cst.FunctionDef) -> bool:
        """Whether the body of `func` (nested scopes left out) calls `<x>.eval()`."""
        evaluating = self.__dict__.get("_evaluating")
        if evaluating is None:
            found = EVAL_WORD.search(self.ctx.source) is not None  # an `.eval()` call spells the word
            evaluating = self._evaluating = _functions_calling_eval(self.ctx.module) if found else set()
        return id(func) in evaluating

    def _in_loop(self, func: cst.FunctionDef, call: cst.Call) -> bool:
        """The call runs once per batch: inside a loop or a comprehension of `func`."""
        stack: list[tuple[cst.CSTNode, bool]] = [(func.body, False)]
        while stack:
            node, looped = stack.pop()
            if node is call:
                return looped
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            looped = looped or isinstance(node, (cst.For, cst.While, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp))
            stack.extend((child, looped) for child in children(node))
        return False

    def _skip_path(self) -> bool:
        return is_test_path(self.ctx.path)

    def _no_grad(self) -> str:
        return self.ctx.torch_name("torch.no_grad")

    def _import(self) -> tuple[Edit, ...]:
        if self._no_grad().split(".")[0] in self.ctx.imports.aliases:
            return ()
        return add_import(self.ctx, "import torch")

    def _unguarded_model_call(self, body: cst.CSTNode) -> cst.Call | None:
        """The first call of a model in `body` that no `no_grad` block covers."""
        stack: list[tuple[cst.CSTNode, bool]] = [(body, False)]
        while stack:
            node, guarded = stack.pop()
            if isinstance(node, cst.With) and any(self.ctx.is_no_grad(i.item) for i in node.items):
                guarded = True
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            if not guarded and isinstance(node, cst.Call) and self._is_model_call(node):
                return node
            stack.extend((child, guarded) for child in reversed(_source_children(node)))
        return None

    def _is_model_call(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Name):
            return func.value in {"model", "net", "network", "classifier", "encoder", "decoder"} or (
                self.ctx.is_module_expr(func) and func.value not in self.ctx.classes
            )
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            return func.attr.value in {"model", "net", "network", "backbone", "encoder", "decoder", "classifier"}
        return False


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    return [n for n in (node, *iter_nodes(node)) if isinstance(n, cst.Call)]


def _is_eval_call(node: cst.CSTNode) -> bool:
    """`<x>.eval()` without arguments."""
    if type(node) is not cst.Call:
        return False
    func = node.func  # type: ignore[attr-defined]
    return type(func) is cst.Attribute and func.attr.value == "eval" and not node.args  # type: ignore[attr-defined]


def _functions_calling_eval(module: cst.Module) -> set[int]:
    """Ids of the functions whose body, nested scopes left out, calls `<x>.eval()` (one pass over the file)."""
    out: set[int] = set()
    # (node, id of the function whose body holds it, or None)
    stack: list[tuple[cst.CSTNode, int | None]] = [(module, None)]
    while stack:
        node, owner = stack.pop()
        if owner is not None and owner not in out and _is_eval_call(node):
            out.add(owner)
        kind = type(node)
        if kind is cst.FunctionDef:
            body = node.body  # type: ignore[attr-defined]
            stack.extend((child, id(node) if child is body else None) for child in children(node))
        elif kind is cst.ClassDef or kind is cst.Lambda:
            stack.extend((child, None) for child in children(node))
        else:
            stack.extend((child, owner) for child in children(node))
    return out


def _source_children(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The children of `node` in source order (facts.walk lists a few fields out of order)."""
    kids = children(node)
    kind = type(node).__name__
    if kind == "IfExp":
        return (node.body, node.test, node.orelse)  # type: ignore[attr-defined]
    if kind in ("ExceptHandler", "ExceptStarHandler", "MatchCase", "TypeAlias"):
        last = node.value if kind == "TypeAlias" else node.body  # type: ignore[attr-defined]
        return (*(k for k in kids if k is not last), last)
    return tuple(kids)


def _needs_grad(node: cst.CSTNode) -> bool:
    for n in iter_nodes(node, enter_scopes=True):
        if isinstance(n, cst.Attribute) and n.attr.value in NEEDS_GRAD:
            return True
        if isinstance(n, cst.Name) and n.value in {"requires_grad", "enable_grad", "set_grad_enabled"}:
            return True
        if isinstance(n, cst.Arg) and n.keyword is not None and n.keyword.value == "requires_grad":
            return True
        if isinstance(n, cst.Call) and dotted_name(n.func) in {"grad", "vjp", "jacobian", "hessian"}:
            return True
    return False
