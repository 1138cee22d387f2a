"""PTL038 ddp-accumulation-without-no-sync."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.loops import is_backward, is_optimizer_step, is_step_guard, shallow_nodes
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule
from ptlint.semantic import Model

DDP = {"torch.nn.parallel.DistributedDataParallel", "torch.nn.parallel.distributed.DistributedDataParallel"}
# Frameworks and engines that skip the gradient all-reduce on accumulation steps themselves.
FRAMEWORKS = ("accelerate", "lightning", "pytorch_lightning", "deepspeed", "transformers", "composer", "fairscale")
# Code that already controls DDP's gradient sync.
SYNC_CONTROL = {"no_sync", "require_backward_grad_sync", "join"}


class DdpAccumulationWithoutNoSync(Rule):
    """Gradient accumulation with DDP that all-reduces on every micro-step.

    ## What it does
    In a file that wraps a model in `DistributedDataParallel`, flags the `backward()` of a loop
    that accumulates gradients: `backward()` runs on every iteration, while the optimizer's
    `step()` runs only under a step guard such as `if (i + 1) % accum_steps == 0:`. Files that
    already control gradient sync (`no_sync`, `require_backward_grad_sync`) or use Accelerate,
    Lightning, DeepSpeed, HF Transformers, Composer or FairScale are not reported.

    ## Why is this bad?
    DDP all-reduces the gradients in every `backward()`. On the micro-steps that only accumulate,
    that communication is wasted: with `k` accumulation steps the job sends `k` times the
    gradient traffic it needs, which can dominate step time on slow interconnects. The result
    is the same; only speed is lost.

    ## Example
    ```python
    model = DistributedDataParallel(net)
    for i, (x, y) in enumerate(loader):
        loss = criterion(model(x), y) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    ```

    ## Use instead
    ```python
    model = DistributedDataParallel(net)
    for i, (x, y) in enumerate(loader):
        with model.no_sync() if not ((i + 1) % accum_steps == 0) else contextlib.nullcontext():
            loss = criterion(model(x), y) / accum_steps
            loss.backward()
        if (i + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    ```

    ## Fix safety
    Unsafe: the statements from the model's forward call to `backward()` move into
    `with model.no_sync() if not (<guard>) else contextlib.nullcontext():`, so DDP syncs only on
    the steps that step the optimizer. The forward call has to be inside `no_sync()` too. Gradients
    are the same up to floating-point summation order. There is no fix when the DDP model is not
    a name or a `self.<attr>` (assigned in `__init__`) called in the loop, when the guard reads
    names the micro-step assigns, or when the forward and `backward()` are not in the loop's own
    block.

    ## References
    - [DistributedDataParallel.no_sync](https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html#torch.nn.parallel.DistributedDataParallel.no_sync)
    - [Performance Tuning Guide: skip unnecessary all-reduce](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    """

    code = "PTL038"
    name = "ddp-accumulation-without-no-sync"
    message = "DDP all-reduces gradients on every accumulation micro-step; wrap them in `model.no_sync()`"
    fix_safety = FixSafety.UNSAFE
    severity = "info"
    triggers = ("DistributedDataParallel",)
    contract = "E2"

    def visit_Module(self, node: cst.Module) -> None:
        model = self.ctx.model
        aliases = self.ctx.imports.aliases.values()
        framework = any(v == f or v.startswith(f + ".") for v in aliases for f in FRAMEWORKS)
        self._ddp = not framework and not any(model.tree.names(word) for word in SYNC_CONTROL) and any(
            model.qualified_name(n.func) in DDP for n in model.tree.of_type(cst.Call)  # type: ignore[attr-defined]
        )

    def visit_For(self, node: cst.For) -> None:
        self._check(node)

    def visit_While(self, node: cst.While) -> None:
        self._check(node)

    def _check(self, loop: cst.For | cst.While) -> None:
        if not self._ddp or not isinstance(loop.body, cst.IndentedBlock):
            return
        body = list(loop.body.body)
        guard_index = next((i for i, s in enumerate(body) if _is_step_guard_with_step(s, self.ctx.model)), None)
        if guard_index is None:
            return
        others = [s for i, s in enumerate(body) if i != guard_index]
        if any(isinstance(n, cst.Call) and is_optimizer_step(n, self.ctx.model) for s in others for n in _shallow(s)):
            return  # another optimizer steps every iteration (GANs): not accumulation
        for index, stmt in enumerate(body[:guard_index]):
            backward = next((n for n in _shallow(stmt) if isinstance(n, cst.Call) and is_backward(n)), None)
            if backward is not None:
                fix = self._fix(body, index, guard_index) if self.ctx.compat_guard() is None else None
                self.report(backward, fix=fix)
                return

    def _fix(self, body: list[cst.BaseStatement], back: int, guard: int) -> Fix | None:
        model = self._model(body[: back + 1])
        if model is None:
            return None
        first = next(
            i for i, s in enumerate(body[: back + 1])
            if any(isinstance(n, cst.Call) and _callee(n) == model for n in _shallow(s))
        )
        tree = self.ctx.model.tree
        test = body[guard].test  # type: ignore[attr-defined]
        read = {n.value for n in (test, *tree.below(test, cst.Name, scopes=False)) if isinstance(n, cst.Name)}
        assigned = set()
        for stmt in body[first:guard]:
            for n in tree.below(stmt, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.NamedExpr), scopes=False):
                targets = [t.target for t in n.targets] if isinstance(n, cst.Assign) else [n.target]  # type: ignore[attr-defined]
                for t in targets:
                    assigned.update(x.value for x in (t, *tree.below(t, cst.Name, scopes=False)) if isinstance(x, cst.Name))
        if read & assigned:
            return None
        edits: list[Edit] = []
        local = self.ctx.torch_name("contextlib.nullcontext")
        if local == "contextlib.nullcontext" and self.ctx.imports.aliases.get("contextlib") != "contextlib":
            edits.extend(add_import(self.ctx, "import contextlib"))
        cond = cst.Module([]).code_for_node(test.with_changes(lpar=[], rpar=[]))
        header = cst.parse_statement(f"with {model}.no_sync() if not ({cond}) else {local}():\n    pass\n")
        moved = list(body[first: back + 1])
        leading = moved[0].leading_lines
        moved[0] = moved[0].with_changes(leading_lines=[])
        with_node = header.with_changes(body=cst.IndentedBlock(body=moved), leading_lines=leading)  # type: ignore[call-arg]
        edits.append(Replace(body[first], with_node))
        edits.extend(Replace(s, cst.RemovalSentinel.REMOVE) for s in body[first + 1: back + 1])
        return Fix("Skip the all-reduce on accumulation steps with `no_sync()`", FixSafety.UNSAFE, tuple(edits))

    def _model(self, stmts: list[cst.BaseStatement]) -> str | None:
        """The DDP model's name: called in `stmts` and bound to DDP(...) here, or a module parameter of a helper."""
        called: list[str] = []
        for stmt in stmts:
            for n in _shallow(stmt):
                name = _callee(n) if isinstance(n, cst.Call) else None
                if name is not None and name not in called:
                    called.append(name)
        info = self.ctx.class_info()
        init = info.methods.get("__init__") if info is not None else None
        on_self = [
            name for name in called
            if name.startswith("self.") and init is not None and any(
                isinstance(v, cst.Call) and self.ctx.qualname(v.func) in DDP for v in self.ctx.self_assignments(init, name[5:])
            )
        ]
        if len(on_self) == 1:
            return on_self[0]
        called = [name for name in called if "." not in name]
        facts = self.ctx.scope_facts()
        wrapped = [
            name for name in called
            if any(isinstance(b.value, cst.Call) and self.ctx.qualname(b.value.func) in DDP for b in facts.bindings_of(name))
        ]
        if len(wrapped) == 1:
            return wrapped[0]
        if wrapped:
            return None
        params = [
            name for name in called
            if [b.kind for b in facts.bindings_of(name)] == ["param"] and self.ctx.is_module_expr(cst.Name(name))
        ]
        return params[0] if len(params) == 1 else None


def _callee(call: cst.Call) -> str | None:
    """`model` for `model(x)`, `self.model` for `self.model(x)`."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
        return "self." + func.attr.value
    return None


def _shallow(stmt: cst.BaseStatement) -> list[cst.CSTNode]:
    return [stmt, *shallow_nodes(stmt)]


def _is_step_guard_with_step(stmt: cst.BaseStatement, model: Model) -> bool:
    if not isinstance(stmt, cst.If) or not is_step_guard(stmt.test):
        return False
    return any(isinstance(n, cst.Call) and is_optimizer_step(n, model) for n in shallow_nodes(stmt.body))
