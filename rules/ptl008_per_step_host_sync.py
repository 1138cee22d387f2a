"""PTL008 per-step-host-sync."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import LoopKind, step_guarded
from ptlint.rule import Fix, FixSafety, Replace, Rule

SCALAR_METHODS = {"item", "tolist"}
SCALAR_BUILTINS = {"float", "int"}
LOG_CALLS = re.compile(r"((^|\.)print$|(^|\.)(logger|logging|log|LOGGER|_logger)\.(info|debug|warning)$|\.set_postfix$|\.set_description$|\.add_scalar$|^wandb\.log$)")
EVAL_MESSAGE = "Host sync on every batch of an evaluation loop; accumulate on the device and read once after the loop"
# Words in a file that show it runs on an accelerator.
DEVICE_WORDS = ("cuda", "device", ".to(", "accelerator", "mps", "xla")


class PerStepHostSync(Rule):
    """Copying a value to the host on every training step, or printing one on every evaluation batch.

    ## What it does
    Flags `.item()`, `.tolist()`, `float(loss)`/`int(loss)`, and `print(loss)` or f-strings of a loss
    tensor that run on every step of a training loop (a loop that calls `backward()` and an
    optimizer's `step()`, directly or through a local helper).

    In a loop that runs a model without training (evaluation or inference: under `no_grad`, after
    `.eval()`, or over a data loader, with no `backward()`), it flags only reads that are printed or
    logged on every batch: `print(f"Loss: {loss.item()}")`, `print(i, loss)`, a logger call,
    `set_postfix(...)`, or a name assigned from `.item()` that such a call prints. Per-batch metric
    sums there (`correct += (pred == y).sum().item()`, `meter.update(loss.item())`) are not
    reported: nearly every evaluation loop has them, the pass is a small part of a run, and few
    would change them.

    It stays silent under a step guard (`if step % 100 == 0:`), when the value drives control flow
    (an `if`, `while` or `assert` that tests it, such as a NaN check or early stopping), at epoch
    level, outside training, evaluation and inference loops, and in files that never mention a
    device (`cuda`, `device`, `.to(`), where every tensor lives on the CPU; set `cpu-only = true`
    to report those too.

    ptlint deliberately disagrees with `usage-examples-best-practices.md`, which offers per-step
    `losses.append(loss.item())` as the fix for a loss list that keeps its graph: that no longer
    keeps the graph, but it is still a host sync on every training step, so it is reported here.

    ## Why is this bad?
    CUDA runs asynchronously: the host queues kernels and moves on. Reading a value on the host
    makes it wait until the device has finished every queued kernel, so the next step cannot be
    queued while this one runs, and the GPU idles between steps. One `.item()` per step for a
    running loss is enough to lose that overlap.

    ## Example
    ```python
    running_loss = 0.0
    for i, (x, y) in enumerate(loader):
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    print(running_loss / len(loader))
    ```

    ## Use instead
    ```python
    running_loss = 0.0
    for i, (x, y) in enumerate(loader):
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.detach()
    print(float(running_loss) / len(loader))
    ```

    ## Fix safety
    Unsafe. Two fixes exist:
    - An accumulator `total += loss.item()` that starts from a number literal before the loop
      becomes `total += loss.detach()`, and its reads outside the loop or under a step guard become
      `float(total)`, or `int(total)` for a count (an integer start and an integral value such as
      `(pred == y).sum()`); an integer start whose value's dtype is not known gets no fix, since
      `int()` would truncate a float sum. The sum is then taken on the device in the tensor's
      precision instead of in Python floats, so logged values can differ in the last digits.
    - A per-step `print(...)` or logger call in an `enumerate` loop is wrapped in
      `if i % log-every == 0:` (option `log-every`, default 50), so it logs fewer lines.
    Other reads are reported without a fix. In an evaluation loop the remedy is the same: add the
    values up on the device (`total += loss.detach()`) and read the total once after the loop.

    ## References
    - [Performance tuning guide: avoid unnecessary CPU-GPU synchronization](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [CUDA semantics: asynchronous execution](https://pytorch.org/docs/stable/notes/cuda.html#asynchronous-execution)
    """

    code = "PTL008"
    name = "per-step-host-sync"
    message = "Host sync on every training step; accumulate on the device or read the value every k steps"
    fix_safety = FixSafety.UNSAFE
    severity = "info"
    triggers = (".item(", ".tolist(", "float(", "int(", "print(", "f\"", "f'")
    options = {"log-every": 50, "cpu-only": False}
    contract = "E1"

    def __init__(self, ctx, options=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx, options)
        self._on_device = self.opts["cpu-only"] or any(w in ctx.source for w in DEVICE_WORDS)
        self._runs_model: dict[int, bool] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if not self._on_device:
            return
        kind = self._sync_kind(node)
        if kind is None:
            return
        loop = self._loop()
        if loop is None or self.ctx.in_step_guard() or self._drives_control_flow(node):
            return
        if kind == "log" and any(self._sync_kind(n) for n in self.ctx.model.tree.below(node, cst.Call, scopes=False)):  # type: ignore[arg-type]
            return  # the read inside the log call is reported itself
        if loop is not self.ctx.train_loop() and not self._logged(node, loop):
            return  # evaluation: only reads made to log each batch
        self.report(node, message=None if loop is self.ctx.train_loop() else EVAL_MESSAGE, fix=self._fix(node, loop, kind))

    def visit_FormattedStringExpression(self, node: cst.FormattedStringExpression) -> None:
        if not self._on_device or not isinstance(node.expression, cst.Name) or not self._is_loss(node.expression):
            return
        loop = self._loop()
        if loop is None or self.ctx.in_step_guard() or self._drives_control_flow(node):
            return
        if loop is not self.ctx.train_loop() and not self._logged(node, loop):
            return
        self.report(node, message=None if loop is self.ctx.train_loop() else EVAL_MESSAGE)

    def _loop(self) -> cst.For | cst.While | None:
        """The training loop around the node; else the innermost loop, when it evaluates or iterates a data
        loader (not an epoch loop) and runs a model in its body."""
        loop = self.ctx.train_loop()
        if loop is not None:
            return loop
        loops = self.ctx.loops()
        inner = loops[-1] if loops else None
        if inner is None:
            return None
        kind = self.ctx.loop_kind(inner)  # type: ignore[arg-type]
        if kind & (LoopKind.TRAIN | LoopKind.EPOCH) or not kind & (LoopKind.EVAL | LoopKind.DATA):
            return None
        known = self._runs_model.get(id(inner))
        if known is None:  # runs a model and no backward pass (a loop that updates weights by hand trains)
            graph = self.ctx.model.graph
            calls = self.ctx.model.tree.below(inner.body, cst.Call)  # closures too: `optimizer.step(closure)`
            known = any(graph.runs_model(c) for c in calls) and not any(graph.is_backward(c) for c in calls)  # type: ignore[arg-type]
            self._runs_model[id(inner)] = known
        return inner if known else None  # type: ignore[return-value]

    def _logged(self, node: cst.CSTNode, loop: cst.For | cst.While) -> bool:
        """In an evaluation loop, the read is printed or logged on every batch: inside a log call, or
        assigned to a name that a log call of the loop reads on every batch."""
        if self._in_log_call(node):
            return True
        target = _assigned_name(self.ctx.statement())
        if target is None:
            return False
        tree = self.ctx.model.tree
        return any(
            tree.contains(loop.body, use.node) and self._in_log_call(use.node) and not step_guarded(tree, loop, use.node)
            for use in self.ctx.model.facts_at(node).uses.get(target, ())
        )

    def _in_log_call(self, node: cst.CSTNode) -> bool:
        """`node` is (in the arguments of) `print(...)`, a logger call, `set_postfix`, `add_scalar`, `wandb.log`."""
        for anc in (node, *self.ctx.model.tree.ancestors(node)):
            if isinstance(anc, cst.Call) and LOG_CALLS.search(dotted_name(anc.func) or ""):
                return True
            if isinstance(anc, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                return False
        return False

    # --- what is a sync ---

    def _sync_kind(self, call: cst.Call) -> str | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in SCALAR_METHODS and not call.args:
            return "read"
        name = dotted_name(func)
        if name in SCALAR_BUILTINS and len(call.args) == 1 and isinstance(call.args[0].value, cst.Name):
            return "read" if self._is_loss(call.args[0].value) else None
        if name == "print" and any(isinstance(a.value, cst.Name) and self._is_loss(a.value) for a in call.args):
            return "log"
        return None

    def _is_loss(self, name: cst.Name) -> bool:
        """A tensor that the loop calls `backward()` on; in an evaluation loop, a tensor by the model's evidence."""
        loop = self.ctx.train_loop()
        if loop is None:
            return self._loop() is not None and self.ctx.model.is_tensor(name)
        return any(
            isinstance(call.func, cst.Attribute) and call.func.attr.value == "backward" and dotted_name(call.func.value) == name.value
            for call in self.ctx.model.tree.below(loop, cst.Call, scopes=False)  # type: ignore[attr-defined]
        )

    # --- where ---

    def _drives_control_flow(self, node: cst.CSTNode) -> bool:
        stack = self.ctx.stack
        for i in range(len(stack) - 2, -1, -1):
            parent, child = stack[i], stack[i + 1]
            if isinstance(parent, (cst.If, cst.While)) and child is parent.test:
                return True
            if isinstance(parent, (cst.Assert, cst.Raise, cst.IfExp)):
                return True
            if isinstance(parent, (cst.For, cst.While, cst.FunctionDef)):
                break
        line = self.ctx.statement()
        target = _assigned_name(line)
        if target is None:
            return False
        loop = self._loop()
        if loop is None:
            return False
        tree = self.ctx.model.tree
        tests = [n.test for n in tree.below(loop, (cst.If, cst.While, cst.Assert), scopes=False)]  # type: ignore[attr-defined]
        return any(isinstance(n, cst.Name) and n.value == target for t in tests for n in (t, *tree.below(t, cst.Name, scopes=False)))

    # --- fixes ---

    def _fix(self, call: cst.Call, loop: cst.For | cst.While, kind: str) -> Fix | None:
        line = self.ctx.statement()
        if kind == "read":
            return self._accumulator_fix(call, loop, line)
        return self._guard_fix(loop, line)

    def _accumulator_fix(self, call: cst.Call, loop: cst.For | cst.While, line: cst.CSTNode | None) -> Fix | None:
        """`total += loss.item()` -> `total += loss.detach()`, reads -> `float(total)`."""
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        aug = line.body[0]
        func = call.func
        if not (
            isinstance(aug, cst.AugAssign)
            and isinstance(aug.operator, cst.AddAssign)
            and aug.value is call
            and isinstance(aug.target, cst.Name)
            and isinstance(func, cst.Attribute)
            and func.attr.value == "item"
        ):
            return None
        total = aug.target.value
        facts = self.ctx.scope_facts()
        start = [b for b in facts.bindings_of(total) if b.kind == "assign" and not facts.contains(loop, b.stmt)]
        if len(start) != 1 or not isinstance(start[0].value, (cst.Integer, cst.Float)):
            return None
        convert = self._conversion(func.value, start[0].value)
        if convert is None:
            return None
        edits: list = [Replace(call, cst.Call(func=cst.Attribute(value=func.value, attr=cst.Name("detach"))))]
        tree = self.ctx.model.tree
        for use in facts.uses.get(total, ()):
            node = use.node
            update = tree.parent(node)
            if isinstance(update, cst.AugAssign) and update.target is node and tree.contains(loop, update):
                continue
            if facts.contains(loop, node) and not step_guarded(tree, loop, node):
                return None  # read on every step: the sync would only move
            edits.append(Replace(node, cst.Call(func=cst.Name(convert), args=[cst.Arg(cst.Name(total))])))
        return Fix("Accumulate on the device", FixSafety.UNSAFE, tuple(edits))

    def _conversion(self, value: cst.BaseExpression, start: cst.BaseExpression) -> str | None:
        """How reads of the total get their number back: `int` for a count (an integer start and an integral
        value such as `(pred == y).sum()`), `float` for a float start or a floating value such as a loss;
        None for an integer start whose value is not known (`int()` would truncate a float sum)."""
        model = self.ctx.model
        dtype = model.dtype(value)
        if dtype is not None:
            return "float" if dtype.floating or isinstance(start, cst.Float) else "int"
        producer = model.value(value) if isinstance(value, cst.Name) else value
        if isinstance(producer, cst.Call) and model.torch.is_loss_function(producer.func):
            return "float"
        return "float" if isinstance(start, cst.Float) else None

    def _guard_fix(self, loop: cst.For | cst.While, line: cst.CSTNode | None) -> Fix | None:
        """Wrap a per-step log statement in `if i % log_every == 0:`."""
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1 or not isinstance(line.body[0], cst.Expr):
            return None
        if not isinstance(loop, cst.For) or not _is_enumerate(loop.iter):
            return None
        target = loop.target
        index = target.elements[0].value if isinstance(target, cst.Tuple) and target.elements else None
        if not isinstance(index, cst.Name) or self.ctx.statement() is not line:
            return None
        guard = cst.If(
            test=cst.parse_expression(f"{index.value} % {int(self.opts['log-every'])} == 0"),
            body=cst.IndentedBlock(body=[line.with_changes(leading_lines=())]),
            leading_lines=line.leading_lines,
        )
        return Fix("Log every k steps", FixSafety.UNSAFE, (Replace(line, guard),))


def _assigned_name(line: cst.CSTNode | None) -> str | None:
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        small = line.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            return small.targets[0].target.value
    return None


def _is_enumerate(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and dotted_name(expr.func) == "enumerate"
