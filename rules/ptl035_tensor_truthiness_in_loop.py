"""PTL035 tensor-truthiness-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.rule import FixSafety, Rule

TENSOR_PREDICATES = {"isnan", "isinf", "isfinite", "any", "all", "equal", "allclose", "isclose", "is_nonzero"}
SYNC_METHODS = {"any", "all", "nonzero", "is_nonzero"}


class TensorTruthinessInLoop(Rule):
    """Python control flow that depends on a tensor's value inside a training loop.

    ## What it does
    Flags `if`, `while` and `assert` conditions in a training loop that evaluate a tensor on the
    host: `if torch.isnan(loss):`, `if loss < best:` where `loss` is the tensor the loop calls
    `backward()` on, `while (x != 0).any():`, `assert grads.all()`, and `.nonzero()` calls.
    Conditions under a step guard (`if step % 100 == 0:`) and conditions on Python numbers
    (`loss.item() < best`) are not reported; the latter is a host read that PTL008 covers.

    ## Why is this bad?
    Python needs a `bool`, so the tensor is copied to the host and the host waits for the device
    to finish every queued kernel first. In a training loop that stalls every step. This is info:
    the check may be worth its cost, but it should be a choice.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        if torch.isnan(loss):
            raise RuntimeError("NaN loss")
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for step, (x, y) in enumerate(loader):
        loss = criterion(model(x), y)
        if step % 100 == 0 and torch.isnan(loss):
            raise RuntimeError("NaN loss")
        loss.backward()
        optimizer.step()
    ```
    Or keep the check on the device with `torch.where`, or `torch._assert_async`.

    ## Fix safety
    No fix: how often to check is the author's call.

    ## References
    - [Performance tuning guide: avoid unnecessary CPU-GPU synchronization](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [CUDA semantics: asynchronous execution](https://pytorch.org/docs/stable/notes/cuda.html#asynchronous-execution)
    """

    code = "PTL035"
    name = "tensor-truthiness-in-loop"
    message = "A tensor decides Python control flow on every training step, which waits for the device"
    fix_safety = FixSafety.NONE
    severity = "info"
    triggers = ("backward",)
    contract = ""

    def visit_If(self, node: cst.If) -> None:
        self._check(node.test)

    def visit_While(self, node: cst.While) -> None:
        if self.ctx.train_loop(skip=node) is not None:
            self._check(node.test, outside=node)

    def visit_Assert(self, node: cst.Assert) -> None:
        self._check(node.test)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        nonzero = (isinstance(func, cst.Attribute) and func.attr.value == "nonzero") or self.ctx.qualname(func) == "torch.nonzero"
        if nonzero and self.ctx.train_loop() is not None and not self.ctx.in_step_guard():
            self.report(node, "`nonzero()` has a data-dependent size, so it waits for the device on every training step")

    def _check(self, test: cst.BaseExpression, outside: cst.CSTNode | None = None) -> None:
        loop = self.ctx.train_loop(skip=outside)
        if loop is None or self.ctx.in_step_guard() or not self._tensor_valued(test, loop):
            return
        self.report(test)

    def _tensor_valued(self, test: cst.BaseExpression, loop: cst.CSTNode) -> bool:
        tree = self.ctx.model.tree
        losses = {
            name for c in tree.below(loop, cst.Call, scopes=False)
            if isinstance(c.func, cst.Attribute) and c.func.attr.value == "backward" and (name := dotted_name(c.func.value))  # type: ignore[attr-defined]
        }
        for node in (test, *tree.below(test, (cst.Call, cst.Comparison, cst.UnaryOperation), scopes=False)):
            if isinstance(node, cst.Call):
                qualified = self.ctx.qualname(node.func) or ""
                if qualified.startswith("torch.") and qualified.rsplit(".", 1)[-1] in TENSOR_PREDICATES:
                    return True
                if isinstance(node.func, cst.Attribute) and node.func.attr.value in SYNC_METHODS and not node.args:
                    return True
            if isinstance(node, cst.Comparison) and any(
                self._is_loss(side, losses) for side in (node.left, *(c.comparator for c in node.comparisons))
            ):
                return True
            if isinstance(node, cst.UnaryOperation) and self._is_loss(node.expression, losses):
                return True
        return self._is_loss(test, losses)

    def _is_loss(self, expr: cst.CSTNode, losses: set[str]) -> bool:
        """A name the loop calls `backward()` on, unless it was rebound to a Python number."""
        if not isinstance(expr, cst.Name) or expr.value not in losses:
            return False
        binding = self.ctx.reaching(expr)
        value = binding.value if binding is not None else None
        if isinstance(value, cst.Call):
            func = value.func
            if isinstance(func, cst.Attribute) and func.attr.value in {"item", "tolist"}:
                return False
            if dotted_name(func) in {"float", "int", "bool"}:
                return False
        return True
