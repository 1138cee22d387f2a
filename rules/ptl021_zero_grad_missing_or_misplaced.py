"""PTL021 zero-grad-missing-or-misplaced."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import OPTIMIZER_WORDS, LoopKind, bound_in, is_step_guard, shallow_nodes
from ptlint.facts.walk import iter_nodes
from ptlint.rule import Fix, FixSafety, InsertAfter, InsertBefore, Replace, Rule

LOOPS = (cst.For, cst.While)


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
        self._functions = {s.name.value: s for s in node.body if isinstance(s, cst.FunctionDef)}
        self._file_zeroes: list[cst.CSTNode] | None = None

    def visit_Call(self, node: cst.Call) -> None:
        found = self._pending.pop(id(node), None)
        if found is not None:
            self.report(node, found[0], found[1])

    def _loop(self, loop: cst.For | cst.While) -> None:
        if not self.ctx.loop_kind(loop) & LoopKind.TRAIN or not isinstance(loop.body, cst.IndentedBlock):
            return
        info = self.ctx.class_info()
        if info is not None and info.is_lightning:
            return
        shallow = shallow_nodes(loop.body)
        steps = [(c, r) for c in shallow if isinstance(c, cst.Call) and (r := _step_receiver(c)) is not None]
        if not steps:
            steps = self._helper_steps(shallow)
        if not steps or any(_step_has_closure(c) for c, _ in steps) or self._accumulates(loop):
            return
        bound = bound_in(loop, None)
        if any(r in bound or r.split(".")[0] in bound for _, r in steps):
            return  # the optimizer is re-created every iteration
        deep = list(iter_nodes(loop.body, enter_scopes=False))
        for node in list(deep):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in self._functions:
                deep.extend(iter_nodes(self._functions[node.func.value].body, enter_scopes=False))
        if any(_zeroes(n) for n in deep):
            self._misplaced(loop)
            return
        before = self._zeroed_before(loop)
        if before is None:
            return
        for call, receiver in steps:
            stmt = self._statement_of(loop, call)
            guarded = self._under_step_guard(loop, call)
            fix = None
            if stmt is not None:
                new = cst.parse_statement(f"{receiver}.zero_grad()")
                edit = InsertAfter(stmt, (new,)) if guarded else InsertBefore(loop.body.body[0], (new,))
                fix = Fix(f"Clear gradients with `{receiver}.zero_grad()` every step", FixSafety.UNSAFE, (edit,))
            if before:
                message = f"Gradients are cleared only before the loop, so each step of `{receiver}` uses gradients summed over all steps"
            else:
                message = f"Nothing clears gradients in this training loop, so each step of `{receiver}` uses gradients summed over all steps"
            self._pending[id(call)] = (message, fix)

    visit_For = _loop
    visit_While = _loop

    def _helper_steps(self, shallow: list[cst.CSTNode]) -> list[tuple[cst.Call, str]]:
        """`train_step(model, optimizer, batch)`: the helper call and the caller's name of the optimizer it steps."""
        out = []
        for call in shallow:
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in self._functions):
                continue
            func = self._functions[call.func.value]
            params = [p.name.value for p in func.params.params]
            for node in shallow_nodes(func.body):
                receiver = _step_receiver(node) if isinstance(node, cst.Call) else None
                if receiver is None or receiver not in params or _step_has_closure(node):  # type: ignore[arg-type]
                    continue
                index = params.index(receiver)
                arg = next((a for a in call.args if a.keyword is not None and a.keyword.value == receiver), None)
                if arg is None and index < len(call.args) and call.args[index].keyword is None and not call.args[index].star:
                    arg = call.args[index]
                name = dotted_name(arg.value) if arg is not None else None
                if name is not None:
                    out.append((call, name))
        return out

    def _misplaced(self, loop: cst.For | cst.While) -> None:
        """`opt.zero_grad()` between `backward()` and `opt.step()` in one block of the loop."""
        blocks = [loop.body] + [
            n for n in shallow_nodes(loop.body) if isinstance(n, cst.IndentedBlock) and not self._inside_nested_loop(loop, n)
        ]
        for block in blocks:
            body = list(block.body)  # type: ignore[attr-defined]
            backward_seen = False
            for index, stmt in enumerate(body):
                if _has_backward(stmt):
                    backward_seen = True
                    continue
                receiver = _zero_grad_receiver(stmt)
                if receiver is None or not backward_seen:
                    continue
                for later in body[index + 1 :]:
                    if _has_backward(later):
                        break
                    step = next(
                        (c for c in iter_nodes(later, enter_scopes=False) if isinstance(c, cst.Call) and _step_receiver(c) == receiver),
                        None,
                    )
                    if step is None:
                        continue
                    if block is loop.body or not self._block_guarded(loop, block):
                        moved = stmt.with_changes(leading_lines=())
                        edits = (Replace(stmt, cst.RemovalSentinel.REMOVE), InsertBefore(loop.body.body[0], (moved,)))
                    else:
                        edits = (Replace(stmt, cst.RemovalSentinel.REMOVE), InsertAfter(later, (stmt.with_changes(leading_lines=()),)))
                    call = stmt.body[0].value  # type: ignore[attr-defined]
                    self._pending[id(call)] = (
                        f"`{receiver}.zero_grad()` runs after `backward()` and before `{receiver}.step()`, so the step has no gradients",
                        Fix("Clear gradients before the forward pass", FixSafety.UNSAFE, edits),
                    )
                    break

    def _accumulates(self, loop: cst.For | cst.While) -> bool:
        withs = [*self.ctx.withs(), *(n for n in iter_nodes(loop.body, enter_scopes=False) if isinstance(n, cst.With))]
        for with_ in withs:
            for item in with_.items:
                call = item.item
                if isinstance(call, cst.Call) and (dotted_name(call.func) or "").rsplit(".", 1)[-1] == "accumulate":
                    return True
        return False

    def _zeroed_before(self, loop: cst.For | cst.While) -> bool | None:
        """True when the enclosing function clears gradients before the loop only, False when nothing
        in the file clears them, None when something else in the file does."""
        if self._file_zeroes is None:
            self._file_zeroes = [n for n in iter_nodes(self.ctx.module, enter_scopes=True) if _zeroes(n)]
        if not self._file_zeroes:
            return False
        func = self.ctx.function()
        scope = func.body if func is not None else self.ctx.module
        inside = {id(n) for n in iter_nodes(scope, enter_scopes=False)}
        loop_nodes = {id(n) for n in iter_nodes(loop, enter_scopes=True)}
        order = {id(n): i for i, n in enumerate(iter_nodes(scope, enter_scopes=False))}
        start = order.get(id(loop), -1)
        for zero in self._file_zeroes:
            if id(zero) not in inside or id(zero) in loop_nodes or order.get(id(zero), start + 1) > start:
                return None
        return True

    def _statement_of(self, loop: cst.CSTNode, call: cst.CSTNode) -> cst.SimpleStatementLine | None:
        for node in iter_nodes(loop.body, enter_scopes=False):  # type: ignore[attr-defined]
            if isinstance(node, cst.SimpleStatementLine) and any(n is call for n in iter_nodes(node, enter_scopes=False)):
                return node
        return None

    def _under_step_guard(self, loop: cst.For | cst.While, target: cst.CSTNode) -> bool:
        for node in iter_nodes(loop.body, enter_scopes=False):
            if isinstance(node, cst.If) and is_step_guard(node.test):
                if any(n is target for n in iter_nodes(node.body, enter_scopes=False)):
                    return True
        return False

    def _block_guarded(self, loop: cst.For | cst.While, block: cst.CSTNode) -> bool:
        for node in iter_nodes(loop.body, enter_scopes=False):
            if isinstance(node, cst.If) and not is_step_guard(node.test):
                continue
            if isinstance(node, cst.If) and (node.body is block or any(n is block for n in iter_nodes(node.body, enter_scopes=False))):
                return True
        return False

    def _inside_nested_loop(self, loop: cst.For | cst.While, block: cst.CSTNode) -> bool:
        for node in iter_nodes(loop.body, enter_scopes=False):
            if isinstance(node, LOOPS) and any(n is block for n in iter_nodes(node, enter_scopes=False)):
                return True
        return False


def _step_receiver(call: cst.Call) -> str | None:
    """The optimizer of `opt.step()` / `scaler.step(opt)`, as written."""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value != "step":
        return None
    owner = dotted_name(func.value)
    if owner is None:
        return None
    last = owner.rsplit(".", 1)[-1]
    if "scaler" in last.lower():
        return dotted_name(call.args[0].value) if call.args else None
    if "sched" in last.lower() or last.lower() in {"lr", "env", "sim"}:
        return None
    return owner if OPTIMIZER_WORDS.search(last) else None


def _step_has_closure(call: cst.Call) -> bool:
    if _step_receiver(call) is None:
        return False
    owner = (dotted_name(call.func.value) if isinstance(call.func, cst.Attribute) else None) or ""
    return bool(call.args) and "scaler" not in owner.lower()


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


def _has_backward(stmt: cst.CSTNode) -> bool:
    return any(
        isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value in {"backward", "manual_backward"}
        for n in iter_nodes(stmt, enter_scopes=False)
    )


def _zero_grad_receiver(stmt: cst.BaseStatement) -> str | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "zero_grad":
            return dotted_name(call.func.value)
    return None
