"""PTL027 eval-without-no-grad."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.paths import is_test_path
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule
from ptlint.semantic.modes import Mode

EVAL_NAME = re.compile(r"^_*(val|valid|validate|validation|eval|evaluate|evaluation|predict|prediction|inference|infer|test)(_|$)", re.I)
# Where a model call runs once per batch.
LOOPS = (cst.For, cst.While, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp)


class EvalWithoutNoGrad(Rule):
    """Evaluation that records the autograd graph.

    ## What it does
    Flags evaluation code that calls a model while gradients are on: a function named like
    `validate`, `evaluate`, `predict`, `test` or `inference`, or one that calls `model.eval()` (or
    `model.train(False)`), and module-level loops that run after it, when no `torch.no_grad()` or
    `torch.inference_mode()` covers the model call.

    A function recognised by its name alone is reported only when it calls the model once per
    batch, in a loop or comprehension; a single forward pass in a smoke test is not reported.

    It stays silent when the code needs gradients (`backward()`, `torch.autograd.grad`,
    `requires_grad_()`, `requires_grad=True`, hooks: saliency maps, adversarial examples), in
    LightningModule methods (Lightning disables gradients in its loops), in `forward` methods
    (the module's caller chooses the grad mode), in pytest tests, after `torch.no_grad()` is entered
    on an `ExitStack`, when the function is decorated with `@torch.no_grad()`,
    `@torch.inference_mode()` or a project wrapper whose name says so (`@smart_inference_mode()`), and
    when every call of the function in its file runs with gradients off.

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
        if is_test_path(self.ctx.path):
            return
        model = self.ctx.model
        name = node.name.value
        evaluates = bool(EVAL_NAME.match(name)) and not name.startswith("test_")
        calls_eval = any(mode is Mode.EVAL for _, _, mode in model.modes.mode_calls(node))
        if not (evaluates or calls_eval):
            return
        info = model.class_info(node)
        if info is not None and (info.is_lightning or name == "forward"):
            return  # a module's caller owns the grad mode of its forward pass
        if model.torch.needs_grad(node):
            return
        call = self._unguarded_model_call(node.body)
        if call is None or (not calls_eval and not self._in_loop(node, call)):
            return
        decorator = cst.Decorator(decorator=cst.parse_expression(f"{self._no_grad()}()"))
        edits: list[Edit] = [Replace(node, node.with_changes(decorators=[decorator, *node.decorators]))]
        edits.extend(self._import())
        self.report(call, fix=Fix("Decorate with `@torch.no_grad()`", FixSafety.UNSAFE, tuple(edits)))

    def leave_Module(self, node: cst.Module) -> None:
        if is_test_path(self.ctx.path) or not any(type(stmt) in (cst.For, cst.While) for stmt in node.body):
            return  # only a module-level loop can be reported here
        model = self.ctx.model
        calls = model.modes.mode_calls(node)
        switches = [(model.tree.order(call), mode) for call, _, mode in calls if mode is not Mode.PARTIAL]
        for stmt in node.body:
            before = [mode for order, mode in switches if order <= model.tree.end(stmt)]
            evaluating = bool(before) and before[-1] is Mode.EVAL
            if evaluating and isinstance(stmt, (cst.For, cst.While)) and not model.torch.needs_grad(stmt):
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

    def _in_loop(self, func: cst.FunctionDef, call: cst.Call) -> bool:
        """The call runs once per batch: inside a loop or a comprehension of `func`."""
        loop = self.ctx.model.tree.enclosing(call, LOOPS)
        return loop is not None and self.ctx.model.tree.contains(func.body, loop)

    def _no_grad(self) -> str:
        return self.ctx.torch_name("torch.no_grad")

    def _import(self) -> tuple[Edit, ...]:
        if self._no_grad().split(".")[0] in self.ctx.imports.aliases:
            return ()
        return add_import(self.ctx, "import torch")

    def _unguarded_model_call(self, body: cst.CSTNode) -> cst.Call | None:
        """The first call of a model in `body` that runs with gradients on."""
        model = self.ctx.model
        for call in model.tree.below(body, cst.Call, scopes=False):
            if self._runs_model(call) and not model.grad_disabled(call):
                return call
        return None

    def _runs_model(self, call: cst.Call) -> bool:
        """A call of a module, other than of a submodule in a method of its parent module (whose caller
        chooses the grad mode, as for `forward`)."""
        model, func = self.ctx.model, call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            info = model.class_info(call)
            if info is not None and info.is_module:
                return False
        return model.is_module(func)
