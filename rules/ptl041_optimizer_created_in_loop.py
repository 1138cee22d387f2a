"""PTL041 optimizer-created-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import LoopKind, bound_in
from ptlint.facts.walk import iter_nodes
from ptlint.fixes import move_statement
from ptlint.rule import Fix, FixSafety, Rule
from ptlint.semantic import Kind


class OptimizerCreatedInLoop(Rule):
    """An optimizer constructed inside a training loop.

    ## What it does
    Flags `torch.optim.Adam(...)` (any optimizer, known by its constructor) built inside a loop that
    trains, or inside an epoch loop around one, where the optimizer that the loop steps is thrown
    away and rebuilt on every pass.

    It stays silent when the same loop also builds the model (k-fold or hyper-parameter sweeps build a
    fresh model and optimizer per run), when the construction sits under an `if` in the loop (switching
    optimizers at a phase boundary), and for optimizers stepped with a closure (LBFGS-style
    `step(closure)`, which does its iterations inside one call).

    ## Why is this bad?
    An optimizer keeps state between steps: Adam's first and second moments, SGD's momentum buffers,
    the step count that drives bias correction. A new optimizer starts from zero, so every step is the
    first step: momentum never builds up and Adam's bias correction rescales each update as if it were
    the first. Training is slower or diverges, with no error.

    ## Example
    ```python
    for x, y in loader:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ```

    ## Fix safety
    Unsafe: it moves the construction before the loop, so the optimizer's state now carries over
    from one step to the next. That is the point, but it changes the numbers training produces. The
    fix is offered only for a plain `name = Optimizer(...)` statement directly in the loop's body whose
    arguments are not rebound in the loop; otherwise the finding has no fix (to change the learning
    rate per step, set `param_group["lr"]` or use a scheduler).

    ## References
    - [torch.optim](https://pytorch.org/docs/stable/optim.html)
    - [Adam: A Method for Stochastic Optimization](https://arxiv.org/abs/1412.6980)
    """

    code = "PTL041"
    name = "optimizer-created-in-loop"
    message = "The optimizer is rebuilt on every pass of the training loop, which discards its state; build it once before the loop"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("optim",)
    contract = "E2"

    def visit_Call(self, node: cst.Call) -> None:
        model = self.ctx.model
        if not model.qualified_name(node.func) or model.kind(node) is not Kind.OPTIMIZER:
            return  # an optimizer by its constructor: an imported name
        loops = model.tree.loops(node)
        if not loops:
            return
        loop = loops[-1]
        if not model.loop_kind(loop) & (LoopKind.TRAIN | LoopKind.EPOCH):
            return
        if model.flow.conditional_between(loop.body, node) or self._sweep(loop, node) or self._closure_steps(loop):
            return
        self.report(node, fix=self._hoist(loop, node))

    def _sweep(self, loop: cst.For | cst.While, call: cst.Call) -> bool:
        """A run per pass: the loop builds a model (or a copy), or rebinds what the optimizer optimizes."""
        model = self.ctx.model
        if any(isinstance(n, cst.Call) and model.is_module_constructor(n) for n in model.tree.nodes(loop.body)):
            return True
        params = call.args[0].value if call.args and call.args[0].keyword is None else None
        params = params or next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "params"), None)
        if params is None:
            return True  # what it optimizes is not known
        return _changes(params, bound_in(loop, None))

    def _closure_steps(self, loop: cst.For | cst.While) -> bool:
        """`optimizer.step(closure)`: LBFGS-style, the iterations happen inside the call."""
        return any(
            isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == "step" and bool(n.args)
            and not (self.ctx.qualname(n.func.value) or "").startswith("torch.cuda")
            for n in self.ctx.model.tree.nodes(loop.body)
        )

    def _hoist(self, loop: cst.For | cst.While, call: cst.Call) -> Fix | None:
        line = self.ctx.statement()
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        assign = line.body[0]
        if not isinstance(assign, cst.Assign) or assign.value is not call or len(assign.targets) != 1:
            return None
        if not isinstance(assign.targets[0].target, (cst.Name, cst.Attribute)):
            return None
        if _changes(call, bound_in(loop, line)):
            return None  # an argument changes from one pass to the next
        edits = move_statement(self.ctx, line, loop, parent=loop)
        return Fix("Build the optimizer once, before the loop", FixSafety.UNSAFE, edits) if edits else None


def _changes(expr: cst.CSTNode, bound: set[str]) -> bool:
    """Whether a name or `a.b` chain read in `expr` is rebound (`bound`: dotted names) in the loop."""
    for node in (expr, *iter_nodes(expr, enter_scopes=True)):
        chain = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
        if chain and chain != "self" and any(chain == b or chain.startswith(b + ".") for b in bound if b != "self"):
            return True
    return False
