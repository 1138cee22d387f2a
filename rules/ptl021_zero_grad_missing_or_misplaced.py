"""PTL021 zero-grad-missing-or-misplaced."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import LoopKind, bound_in, shallow_nodes, step_guarded, stepped_optimizer
from ptlint.rule import Fix, FixSafety, InsertAfter, InsertBefore, Replace, Rule
from ptlint.semantic import Model
from ptlint.semantic.tree import SCOPE_TYPES

# Nodes that may clear gradients (see `_zeroes`).
ZEROING = (cst.Attribute, cst.Name, cst.Assign, cst.AugAssign, cst.Call)


class ZeroGradMissingOrMisplaced(Rule):
    """A training loop that never clears gradients, or clears them between `backward()` and `step()`.

    ## What it does
    In a training loop (one that runs `backward()` and an optimizer `step()`), flags:
    - an optimizer `step()` when nothing clears gradients anywhere in the loop, its nested blocks
      or the local helpers it calls (`zero_grad()`, `p.grad = None`, `p.grad.zero_()`);
    - the same when gradients are cleared only once, before the loop;
    - `opt.zero_grad()` after `backward()` and before `opt.step()` in the same block.

    Loops that re-create the optimizer each iteration, LBFGS-style `step(closure)`,
    `accelerator.accumulate` and Lightning modules are left alone, and so is a file that clears
    gradients somewhere else (a hook or callback may do it).

    ## Why is this bad?
    `backward()` adds to `.grad`; it never overwrites it. Without clearing, every step uses the
    sum of all gradients so far, so updates grow and training drifts or diverges. Clearing between
    `backward()` and `step()` throws the gradients away, so the step does nothing. Neither fails.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Fix safety
    Unsafe: `<optimizer>.zero_grad()` is inserted as the first statement of the loop (right after
    the `step()` when the step runs only every k-th iteration, so accumulation keeps working), or
    a misplaced `zero_grad()` moves there. The training results change, which is the point, but a
    loop that summed gradients on purpose would change too.

    ## References
    - [Zeroing out gradients in PyTorch](https://pytorch.org/tutorials/recipes/recipes/zeroing_out_gradients.html)
    - Zhang, Cruz and van Deursen, "Code smells for machine learning applications" (CAIN 2022), smell 20
    """

    code = "PTL021"
    name = "zero-grad-missing-or-misplaced"
    message = "The training loop never clears gradients, so they accumulate across steps"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("backward",)
    contract = "E2"

    def visit_Module(self, node: cst.Module) -> None:
        self._pending: dict[int, tuple[str, Fix | None]] = {}
        self._file_zeroes: list[cst.CSTNode] | None = None

    def visit_Call(self, node: cst.Call) -> None:
        found = self._pending.pop(id(node), None)
        if found is not None:
            self.report(node, found[0], found[1])

    def _loop(self, loop: cst.For | cst.While) -> None:
        model = self.ctx.model
        if not model.loop_kind(loop) & LoopKind.TRAIN or not isinstance(loop.body, cst.IndentedBlock):
            return
        info = model.class_info(loop)
        if info is not None and info.is_lightning:
            return
        shallow = shallow_nodes(loop.body)
        steps = [(c, r) for c in shallow if isinstance(c, cst.Call) and (r := _step_receiver(c, model)) is not None]
        if not steps:
            steps = self._helper_steps(shallow)
        if not steps or any(self._step_has_closure(c) for c, _ in steps) or self._accumulates(loop):
            return
        bound = bound_in(loop, None)
        if any(r in bound or r.split(".")[0] in bound for _, r in steps):
            return  # the optimizer is re-created every iteration
        if self._zeroes_in(loop):
            self._misplaced(loop)
            return
        before = self._zeroed_before(loop)
        if before is None:
            return
        for call, receiver in steps:
            stmt = model.tree.enclosing(call, cst.SimpleStatementLine)
            fix = None
            if stmt is not None:
                new = cst.parse_statement(f"{receiver}.zero_grad()")
                edit = InsertAfter(stmt, (new,)) if step_guarded(model.tree, loop, call) else InsertBefore(loop.body.body[0], (new,))
                fix = Fix(f"Clear gradients with `{receiver}.zero_grad()` every step", FixSafety.UNSAFE, (edit,))
            if before:
                message = f"Gradients are cleared only before the loop, so each step of `{receiver}` uses gradients summed over all steps"
            else:
                message = f"Nothing clears gradients in this training loop, so each step of `{receiver}` uses gradients summed over all steps"
            self._pending[id(call)] = (message, fix)

    visit_For = _loop
    visit_While = _loop

    def _zeroes_in(self, loop: cst.For | cst.While) -> bool:
        """Something in the loop, or in a local helper that it calls, clears gradients."""
        model = self.ctx.model
        below = model.tree.below(loop.body, ZEROING, scopes=False)
        if any(_zeroes(n) for n in below):
            return True
        helpers = (model.program.function(n.func.value) for n in below if isinstance(n, cst.Call) and isinstance(n.func, cst.Name))
        return any(_zeroes(n) for f in helpers if f is not None for n in model.tree.below(f.body, ZEROING, scopes=False))

    def _helper_steps(self, shallow: list[cst.CSTNode]) -> list[tuple[cst.Call, str]]:
        """`train_step(model, optimizer, batch)`: the helper call and the caller's name of the optimizer it steps."""
        model = self.ctx.model
        out = []
        for call in shallow:
            func = model.program.callee(call) if isinstance(call, cst.Call) and isinstance(call.func, cst.Name) else None
            if func is None:
                continue
            for node in shallow_nodes(func.body):
                receiver = _step_receiver(node, model) if isinstance(node, cst.Call) else None
                if receiver is None or self._step_has_closure(node):  # type: ignore[arg-type]
                    continue
                arg = model.program.argument(call, func, receiver)  # type: ignore[arg-type]
                name = dotted_name(arg) if arg is not None else None
                if name is not None:
                    out.append((call, name))  # type: ignore[arg-type]
        return out

    def _misplaced(self, loop: cst.For | cst.While) -> None:
        """`opt.zero_grad()` between `backward()` and `opt.step()` in one block of the loop."""
        tree = self.ctx.model.tree
        blocks = [loop.body] + [n for n in shallow_nodes(loop.body) if isinstance(n, cst.IndentedBlock)]
        for block in blocks:
            body = list(block.body)  # type: ignore[attr-defined]
            backward_seen = False
            for index, stmt in enumerate(body):
                if self._has_backward(stmt):
                    backward_seen = True
                    continue
                receiver = _zero_grad_receiver(stmt)
                if receiver is None or not backward_seen:
                    continue
                for later in body[index + 1 :]:
                    if self._has_backward(later):
                        break
                    calls = tree.below(later, cst.Call, scopes=False)
                    if not any(_step_receiver(c, self.ctx.model) == receiver for c in calls):  # type: ignore[arg-type]
                        continue
                    moved = stmt.with_changes(leading_lines=())
                    if block is loop.body or not step_guarded(tree, loop, block):
                        edits = (Replace(stmt, cst.RemovalSentinel.REMOVE), InsertBefore(loop.body.body[0], (moved,)))
                    else:
                        edits = (Replace(stmt, cst.RemovalSentinel.REMOVE), InsertAfter(later, (moved,)))
                    call = stmt.body[0].value  # type: ignore[attr-defined]
                    self._pending[id(call)] = (
                        f"`{receiver}.zero_grad()` runs after `backward()` and before `{receiver}.step()`, so the step has no gradients",
                        Fix("Clear gradients before the forward pass", FixSafety.UNSAFE, edits),
                    )
                    break

    def _accumulates(self, loop: cst.For | cst.While) -> bool:
        tree = self.ctx.model.tree
        for with_ in [*tree.withs(loop), *tree.below(loop.body, cst.With, scopes=False)]:
            for item in with_.items:  # type: ignore[attr-defined]
                call = item.item
                if isinstance(call, cst.Call) and (dotted_name(call.func) or "").rsplit(".", 1)[-1] == "accumulate":
                    return True
        return False

    def _zeroed_before(self, loop: cst.For | cst.While) -> bool | None:
        """True when the enclosing function clears gradients before the loop only, False when nothing
        in the file clears them, None when something else in the file does."""
        tree = self.ctx.model.tree
        if self._file_zeroes is None:
            self._file_zeroes = [n for n in tree.of_type(ZEROING) if _zeroes(n)]
        if not self._file_zeroes:
            return False
        func = tree.function(loop)
        for zero in self._file_zeroes:
            if tree.enclosing(zero, SCOPE_TYPES) is not func or tree.contains(loop, zero) or tree.order(zero) > tree.order(loop):
                return None
        return True

    def _step_has_closure(self, call: cst.Call) -> bool:
        """LBFGS-style `opt.step(closure)` (not `scaler.step(opt)`)."""
        if _step_receiver(call, self.ctx.model) is None:
            return False
        owner = (dotted_name(call.func.value) if isinstance(call.func, cst.Attribute) else None) or ""
        return bool(call.args) and "scaler" not in owner.lower()

    def _has_backward(self, stmt: cst.CSTNode) -> bool:
        return any(
            isinstance(n.func, cst.Attribute) and n.func.attr.value in {"backward", "manual_backward"}  # type: ignore[attr-defined]
            for n in self.ctx.model.tree.below(stmt, cst.Call, scopes=False)
        )


def _step_receiver(call: cst.Call, model: Model) -> str | None:
    """The optimizer of `opt.step()` / `scaler.step(opt)`, as written."""
    optimizer = stepped_optimizer(call, model)
    return dotted_name(optimizer) if optimizer is not None else None


def _zeroes(node: cst.CSTNode) -> bool:
    """Anything that clears or sets gradients: `zero_grad`, `.grad = ...`, `.grad.zero_()`, `set_to_none`."""
    if isinstance(node, cst.Attribute) and node.attr.value in {"zero_grad", "zero_grads", "clear_grad"}:
        return True
    if isinstance(node, cst.Name) and "zero_grad" in node.value:
        return True
    if isinstance(node, (cst.Assign, cst.AugAssign)):
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        return any(isinstance(t, cst.Attribute) and t.attr.value == "grad" for t in targets)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in {"zero_", "detach_", "fill_"}:
        return "grad" in (cst.Module([]).code_for_node(node.func.value))
    return False


def _zero_grad_receiver(stmt: cst.BaseStatement) -> str | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "zero_grad":
            return dotted_name(call.func.value)
    return None
