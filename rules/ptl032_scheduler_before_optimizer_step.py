"""PTL032 scheduler-before-optimizer-step."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.rule import Fix, FixSafety, InsertAfter, Replace, Rule

SCHEDULER_NAME = re.compile(r"sched|(^|_)lr_?s(cheduler)?$|warmup", re.I)
OPTIMIZER_NAME = re.compile(r"(^|_)(optim|optimizer|optimiser|opt)s?(_\w+)?$|^opt_|_opt$", re.I)


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
            receiver = _step_receiver(stmt)
            if receiver is None:
                continue
            if self._is_scheduler(receiver):
                # After some optimizer's step (several models: `opt_a; sched_a; opt_b; sched_b`) it is in order.
                if not stepped and not _step_args(stmt):
                    pending.append(stmt)
            elif self._is_optimizer(receiver):
                stepped = True
                for early in pending:
                    edits = (Replace(early, cst.RemovalSentinel.REMOVE), InsertAfter(stmt, (early,)))
                    call = early.body[0].value  # type: ignore[attr-defined]
                    self.report(call, fix=Fix("Step the scheduler after the optimizer", FixSafety.SAFE, edits))  # type: ignore[arg-type]
                pending = []

    def _is_scheduler(self, receiver: cst.BaseExpression) -> bool:
        name = (dotted_name(receiver) or "").rsplit(".", 1)[-1]
        if SCHEDULER_NAME.search(name):
            return True
        if isinstance(receiver, cst.Name):
            binding = self.ctx.scope_facts().bindings_of(receiver.value)
            return any(
                isinstance(b.value, cst.Call) and "lr_scheduler" in (self.ctx.qualname(b.value.func) or "") for b in binding
            )
        return False

    def _is_optimizer(self, receiver: cst.BaseExpression) -> bool:
        name = (dotted_name(receiver) or "").rsplit(".", 1)[-1]
        return bool(OPTIMIZER_NAME.search(name)) or "scaler" in name.lower()


def _step_call(stmt: cst.BaseStatement) -> cst.Call | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "step":
            return call
    return None


def _step_receiver(stmt: cst.BaseStatement) -> cst.BaseExpression | None:
    call = _step_call(stmt)
    return call.func.value if call is not None else None  # type: ignore[union-attr]


def _step_args(stmt: cst.BaseStatement) -> bool:
    call = _step_call(stmt)
    return bool(call is not None and call.args)
