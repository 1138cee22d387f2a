"""PTL007 module-to-device-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import bound_in
from ptlint.fixes import move_statement
from ptlint.rule import Fix, FixSafety, Rule

MOVES = {"to", "cuda", "cpu", "half", "float", "double", "bfloat16"}


class ModuleToDeviceInLoop(Rule):
    """Moving or casting a whole model on every step of a loop.

    ## What it does
    Flags `model.to(device)`, `model.cuda()`, `model.cpu()`, `model.half()` and `model.float()` inside
    a loop that trains, evaluates or iterates a DataLoader, when the receiver is an `nn.Module`.
    Moving the batch on every step is required and is never reported.

    It stays silent when the loop also moves the same model the other way (CPU offloading), when
    the loop iterates over models or rebinds the model, when the arguments change from one step to
    the next, and when the move sits under an `if` inside the loop.

    ## Why is this bad?
    `Module.to()` visits every parameter and buffer of the model on every call. Once the model is
    on the device the call moves nothing, but it still walks the whole module tree each step, and a
    cast such as `.half()` reallocates every parameter. The move belongs before the loop, once.

    ## Example
    ```python
    for x, y in loader:
        model.to(device)
        loss = criterion(model(x.to(device)), y.to(device))
    ```

    ## Use instead
    ```python
    model.to(device)
    for x, y in loader:
        loss = criterion(model(x.to(device)), y.to(device))
    ```

    ## Fix safety
    Safe: the statement moves before the loop only when the model is not rebound in the loop and
    the arguments do not change inside it, so the model ends up on the same device with the same
    parameters. Expressions other than a plain `model.to(...)` or `model = model.to(...)` statement
    are reported without a fix.

    ## References
    - [Performance tuning guide](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [torch.nn.Module.to](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.to)
    """

    code = "PTL007"
    name = "module-to-device-in-loop"
    message = "The model is moved or cast on every step; do it once before the loop"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = (".to(", ".cuda(", ".cpu(", ".half(", ".float(", ".double(", ".bfloat16(")
    contract = "E0"

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in MOVES:
            return
        receiver = dotted_name(func.value)
        if receiver is None or not self.ctx.is_module_expr(func.value):
            return
        loop = self.ctx.per_step_loop()
        if loop is None or self._guarded(loop) or self._variant(loop, node, receiver) or self._offloads(loop, node, receiver):
            return
        self.report(node, fix=self._hoist(loop, node, receiver))

    def _below(self, loop: cst.CSTNode) -> list[cst.CSTNode]:
        return self.ctx.stack[next(i for i, n in enumerate(self.ctx.stack) if n is loop) + 1:]

    def _guarded(self, loop: cst.CSTNode) -> bool:
        return any(isinstance(n, (cst.If, cst.IfExp, cst.ExceptHandler, cst.Lambda)) for n in self._below(loop))

    def _variant(self, loop: cst.For | cst.While, call: cst.Call, receiver: str) -> bool:
        """The receiver or a name in the arguments is bound inside the loop."""
        bound = bound_in(loop, self.ctx.statement())
        head = receiver.split(".")[0]
        if receiver in bound or (head in bound and head != "self"):
            return True
        tree = self.ctx.model.tree
        used = {n.value for a in call.args for n in (a.value, *tree.below(a.value, cst.Name)) if isinstance(n, cst.Name)}
        return bool(used & bound)

    def _offloads(self, loop: cst.CSTNode, call: cst.Call, receiver: str) -> bool:
        """Another, different move of the same receiver in the loop (offloading, swapping)."""
        code = cst.Module([]).code_for_node
        mine = code(call)
        for node in self.ctx.model.tree.below(loop, cst.Call, scopes=False):
            if (
                isinstance(node.func, cst.Attribute)  # type: ignore[attr-defined]
                and node.func.attr.value in MOVES
                and dotted_name(node.func.value) == receiver
                and code(node) != mine
            ):
                return True
        return False

    def _hoist(self, loop: cst.For | cst.While, call: cst.Call, receiver: str) -> Fix | None:
        line = self.ctx.statement()
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        small = line.body[0]
        plain = isinstance(small, cst.Expr) and small.value is call
        rebind = (
            isinstance(small, cst.Assign)
            and small.value is call
            and len(small.targets) == 1
            and dotted_name(small.targets[0].target) == receiver
        )
        # Only statements directly in the loop body move, with their comments.
        edits = move_statement(self.ctx, line, loop, parent=loop) if plain or rebind else None
        return Fix("Move the model before the loop", FixSafety.SAFE, edits) if edits else None
