"""PTL011 empty-cache-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.fixes import move_statement
from ptlint.rule import Fix, FixSafety, Rule

EMPTY_CACHE = {"torch.cuda.empty_cache", "torch.mps.empty_cache", "torch.xpu.empty_cache", "torch.cuda.memory.empty_cache"}
# Conditions that make the call a reaction to memory pressure, not a per-step habit.
MEMORY_WORDS = ("mem", "oom", "cache", "alloc", "reserved", "free")


class EmptyCacheInLoop(Rule):
    """`torch.cuda.empty_cache()` on every step of a training, evaluation or data loop.

    ## What it does
    Flags `torch.cuda.empty_cache()` (also `torch.mps`/`torch.xpu`) that runs unconditionally on
    every iteration of a loop that trains, evaluates or iterates a DataLoader.

    It stays silent in epoch loops and other loops (over models, configurations or files), under a
    step guard such as `if step % 100 == 0:`, in `except` handlers (out-of-memory recovery), and
    under conditions that test memory (`if torch.cuda.memory_reserved() > limit:`), and right
    after `del model`, which releases one model before the loop builds the next.

    ## Why is this bad?
    `empty_cache()` does not give PyTorch more memory: the caching allocator would have reused
    those blocks. Releasing them forces `cudaFree` now and `cudaMalloc` again on the next step, and
    both synchronise the device, so every step pays for allocations that caching exists to avoid.
    For fragmentation, set `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` instead.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        torch.cuda.empty_cache()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    torch.cuda.empty_cache()
    ```

    ## Fix safety
    Unsafe: the call moves after the loop, so the cache is released once when the loop ends. A job
    that shares its GPU with other processes may have relied on returning memory every step.

    ## References
    - [CUDA memory management](https://pytorch.org/docs/stable/notes/cuda.html#memory-management)
    - [torch.cuda.empty_cache](https://pytorch.org/docs/stable/generated/torch.cuda.empty_cache.html)
    """

    code = "PTL011"
    name = "empty-cache-in-loop"
    message = "`empty_cache()` on every step frees the allocator's cache only to allocate it again; call it after the loop"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("empty_cache",)
    contract = "E0"

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in EMPTY_CACHE:
            return
        loop = self.ctx.per_step_loop()
        if loop is None or self.ctx.in_step_guard() or self._conditional(loop):
            return
        line = self.ctx.statement()
        if self._after_model_del(line):
            return
        fix = None
        if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and isinstance(line.body[0], cst.Expr):
            edits = move_statement(self.ctx, line, self._anchor(loop), after=True) if line.body[0].value is node else None
            if edits:
                fix = Fix("Move `empty_cache()` after the loop", FixSafety.UNSAFE, edits)
        self.report(node, fix=fix)

    def _after_model_del(self, line: cst.CSTNode | None) -> bool:
        """Just after `del model`: the loop releases one model before it builds the next."""
        stack = self.ctx.stack
        index = next((i for i, n in enumerate(stack) if n is line), 0)
        body = list(getattr(stack[index - 1], "body", ())) if index > 0 else []
        index = next((i for i, stmt in enumerate(body) if stmt is line), 0)
        previous = body[index - 1] if index > 0 else None
        if not isinstance(previous, cst.SimpleStatementLine):
            return False
        return any(
            isinstance(small, cst.Del) and any(self.ctx.is_module_expr(t) for t in _del_targets(small.target))
            for small in previous.body
        )

    def _anchor(self, loop: cst.CSTNode) -> cst.BaseStatement:
        """Where the moved call goes: after the loop, or after calls already moved there."""
        index = next(i for i, n in enumerate(self.ctx.stack) if n is loop)
        body = list(getattr(self.ctx.stack[index - 1], "body", ()))
        anchor = loop
        for stmt in body[body.index(loop) + 1:]:
            if not self._is_empty_cache_line(stmt):
                break
            anchor = stmt
        return anchor  # type: ignore[return-value]

    def _is_empty_cache_line(self, stmt: cst.CSTNode) -> bool:
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return False
        expr = stmt.body[0]
        return isinstance(expr, cst.Expr) and isinstance(expr.value, cst.Call) and self.ctx.qualname(expr.value.func) in EMPTY_CACHE

    def _conditional(self, loop: cst.CSTNode) -> bool:
        """Inside an `except` handler or an `if` about memory, below `loop`."""
        below = self.ctx.stack[next(i for i, n in enumerate(self.ctx.stack) if n is loop):]
        for node in below:
            if isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler)):
                return True
            if isinstance(node, (cst.If, cst.While)) and node is not loop and self._mentions_memory(node.test):
                return True
        return False

    def _mentions_memory(self, test: cst.CSTNode) -> bool:
        for node in (test, *self.ctx.model.tree.below(test, (cst.Name, cst.Attribute))):
            name = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
            if name and any(w in name.lower() for w in MEMORY_WORDS):
                return True
        return False


def _del_targets(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return [el.value for el in target.elements]
    return [target]


