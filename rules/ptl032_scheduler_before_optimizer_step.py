"""PTL032 scheduler-before-optimizer-step."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import is_optimizer_step
from ptlint.rule import Fix, FixSafety, InsertAfter, Replace, Rule
from ptlint.semantic import Kind

SCHEDULER_NAME = re.compile(r"sched|(^|_)lr_?s(cheduler)?$|warmup", re.I)


class SchedulerBeforeOptimizerStep(Rule):
    """`scheduler.step()` before `optimizer.step()`.

    ## What it does
    Flags a learning-rate scheduler's `step()` that comes before the optimizer's `step()` in the
    same block of statements, with no optimizer step before it in that block. Steps in different blocks (an epoch loop and a batch loop, or an
    optimizer step under an accumulation `if`) are not compared, and `scheduler.step(metric)`
    (ReduceLROnPlateau) is not reported.

    ## Why is this bad?
    Since PyTorch 1.1 the optimizer must step first. Stepping the scheduler first skips the first
    value of the schedule: warm-up starts one step late and every later learning rate is shifted,
    and PyTorch only says so with a warning on the first call.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        scheduler.step()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
    ```

    ## Fix safety
    Safe: the scheduler's statement moves to just after the optimizer's, which is the order the
    schedule is defined for. Statements in between keep their order.

    ## References
    - [How to adjust the learning rate](https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate)
    """

    code = "PTL032"
    name = "scheduler-before-optimizer-step"
    message = "The scheduler steps before the optimizer, which skips the first learning rate of the schedule"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = (".step(",)
    contract = "E2"

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._check(node.body)

    def visit_Module(self, node: cst.Module) -> None:
        self._check(node.body)

    def _check(self, body: tuple[cst.BaseStatement, ...] | list) -> None:
        pending: list[cst.SimpleStatementLine] = []
        stepped = False
        for stmt in body:
            call = _step_call(stmt)
            if call is None:
                continue
            if self._is_scheduler(call.func.value):  # type: ignore[attr-defined]
                # After some optimizer's step (several models: `opt_a; sched_a; opt_b; sched_b`) it is in order.
                if not stepped and not call.args:
                    pending.append(stmt)
            elif is_optimizer_step(call, self.ctx.model):
                stepped = True
                for early in pending:
                    edits = (Replace(early, cst.RemovalSentinel.REMOVE), InsertAfter(stmt, (early,)))
                    step = early.body[0].value  # type: ignore[attr-defined]
                    self.report(step, fix=Fix("Step the scheduler after the optimizer", FixSafety.SAFE, edits))  # type: ignore[arg-type]
                pending = []

    def _is_scheduler(self, receiver: cst.BaseExpression) -> bool:
        name = (dotted_name(receiver) or "").rsplit(".", 1)[-1]
        return bool(SCHEDULER_NAME.search(name)) or self.ctx.model.kind(receiver) is Kind.SCHEDULER


def _step_call(stmt: cst.BaseStatement) -> cst.Call | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "step":
            return call
    return None
