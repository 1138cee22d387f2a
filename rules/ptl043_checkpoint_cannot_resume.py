"""PTL043 checkpoint-cannot-resume."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import LoopKind
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, InsertBefore, Replace, Rule
from ptlint.semantic import Kind
from ptlint.semantic.checkpoints import LOAD_NAMES

OPTIMIZER_KEY = re.compile(r"optim|opt_|_opt$|^opt$|solver", re.I)
EPOCH_KEY = re.compile(r"epoch|step|iter", re.I)
SCALERS = {"torch.cuda.amp.GradScaler", "torch.amp.GradScaler", "torch.GradScaler", "torch.cuda.amp.grad_scaler.GradScaler"}
NO_STATE_OPTIMIZERS = {"torch.optim.SGD"}  # without momentum: no state between steps


class CheckpointCannotResume(Rule):
    """A training script resumes from a checkpoint that holds only the model's weights.

    ## What it does
    Flags a `torch.save` of a model's `state_dict()` (alone, or in a checkpoint dict without any
    optimizer state) when the same file also resumes from that checkpoint and trains after it: a
    `torch.load` of the same path (or one under a `resume` flag) whose result goes into the model's
    `load_state_dict`, followed in its function, or after the call of that function, by a training
    loop. It reports only when something is lost: an optimizer with state (anything but plain SGD
    without momentum), a learning-rate scheduler, or a `GradScaler`.

    It stays silent for weights saved for inference or export (nothing in the file loads them back
    to train), for fine-tuning from other weights (a different path, no `resume`), and for
    checkpoints that store an optimizer's `state_dict()`.

    The seed's "good" checkpoint helpers store the optimizer too and are silent; its "bad"
    one-liner `torch.save(model.state_dict(), "model.pt")` is reported only in a script that
    resumes from it, since saving weights for inference is the right thing to do.

    ## Why is this bad?
    Resuming from weights alone silently restarts everything else the run had built up: Adam's
    moments and step counts (its bias correction acts as if training had just begun), the momentum
    buffers, the learning-rate schedule (a cosine schedule jumps back to its peak), the mixed
    precision loss scale and the epoch count. The resumed run diverges from the one that was
    interrupted, often with a loss spike, and no error says so.

    ## Example
    ```python
    if os.path.exists(CKPT):
        model.load_state_dict(torch.load(CKPT))
    for epoch in range(epochs):
        train_one_epoch(model, optimizer)
        scheduler.step()
        torch.save(model.state_dict(), CKPT)
    ```

    ## Use instead
    ```python
    start_epoch = 0
    if os.path.exists(CKPT):
        checkpoint = torch.load(CKPT)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start_epoch = checkpoint["epoch"] + 1
    for epoch in range(start_epoch, epochs):
        train_one_epoch(model, optimizer)
        scheduler.step()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch}, CKPT)
    ```

    ## Fix safety
    Unsafe: checkpoint files written before the fix hold bare weights, and the fixed loader no longer
    reads them (`KeyError`). The fix saves a dict of the model's, optimizer's, scheduler's and
    scaler's `state_dict()` and the epoch, keyed by their variable names, and loads each back where
    the model was loaded; the epoch loop then starts after the saved epoch. It is offered when the
    save sits in a `for epoch in range(...)` loop after the training of that epoch, the load is a
    `model.load_state_dict(torch.load(...))` statement, all of them are in one function (or at
    module level), and the optimizer, schedulers and scaler are built before the load. Otherwise
    the finding has no fix.

    ## References
    - [Saving and loading a general checkpoint](https://pytorch.org/tutorials/recipes/recipes/saving_and_loading_a_general_checkpoint.html)
    - [torch.optim: optimizer state_dict](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.state_dict.html)
    """

    code = "PTL043"
    name = "checkpoint-cannot-resume"
    message = "The checkpoint holds only the model's weights, but this script resumes training from it"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("load_state_dict",)
    contract = "E2"

    def __init__(self, ctx, options=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx, options)
        self._optimizer_saved: bool | None = None

    def visit_Call(self, node: cst.Call) -> None:
        model = self.ctx.model
        entries = model.checkpoints.entries(node)
        saved = [_receiver(value) for _, value in entries]
        names = {_root(m) for m in saved if m is not None and model.is_module(m)}
        if not names or self._saves_optimizer():
            return
        restores = [
            (load, call) for load in self._loads(node) for call, _ in model.checkpoints.restores(load)
            if _root(call.func.value) in names and self._trains_after(call)  # type: ignore[attr-defined]
        ]
        lost = [what for what, found in self._states().items() if found]
        if not restores or not lost:
            return
        if not any(key is not None and EPOCH_KEY.search(key) for key, _ in entries) and not self._numbered(node):
            lost.append("epoch count")
        message = (f"This script resumes training from this checkpoint, which lacks {_listing(lost)}; "
                   f"resuming starts {'them' if len(lost) > 1 else 'it'} over")
        fix = self._fix(node, entries, restores) if len(restores) == 1 else None
        self.report(node, message=message, fix=fix)

    # --- what is saved, loaded and trained ---

    def _saves_optimizer(self) -> bool:
        """Some `torch.save` of the file stores an optimizer's state (this checkpoint or another file)."""
        model = self.ctx.model
        if self._optimizer_saved is None:
            self._optimizer_saved = any(
                self._optimizer_entry(key, value)
                for call in model.tree.of_type(cst.Call) for key, value in model.checkpoints.entries(call)  # type: ignore[arg-type]
            )
        return self._optimizer_saved

    def _optimizer_entry(self, key: str | None, value: cst.CSTNode) -> bool:
        receiver = _receiver(value)
        if receiver is not None and self.ctx.model.torch.is_optimizer(receiver):
            return True
        return key is not None and bool(OPTIMIZER_KEY.search(key))

    def _numbered(self, save: cst.Call) -> bool:
        """The file name is formatted (`f"{step}.pt"`, `"{}-G.ckpt".format(i)`): it records the count itself."""
        model = self.ctx.model
        path = _path(save, "f", 1)
        if isinstance(path, cst.Name):
            path = model.value(path) or path  # type: ignore[assignment]
        if path is None:
            return False
        nodes = (path, *model.tree.nodes(path))
        return any(
            isinstance(n, cst.FormattedStringExpression)
            or (isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == "format")
            or (isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.Modulo))
            for n in nodes
        )

    def _loads(self, save: cst.Call) -> list[cst.Call]:
        """`torch.load` calls of the file that read this checkpoint: the same path, or under a resume flag."""
        model = self.ctx.model
        path = _path(save, "f", 1)
        out = []
        for call in model.tree.of_type(cst.Call):
            if model.qualified_name(call.func) not in LOAD_NAMES:  # type: ignore[attr-defined]
                continue
            loaded = _path(call, "f", 0)  # type: ignore[arg-type]
            same = path is not None and loaded is not None and _text(path) == _text(loaded)
            if same or self._resume_flag(call, loaded):  # type: ignore[arg-type]
                out.append(call)
        return out

    def _resume_flag(self, call: cst.Call, path: cst.BaseExpression | None) -> bool:
        tree = self.ctx.model.tree
        texts = [_text(path)] if path is not None else []
        texts += [_text(a.test) for a in tree.ancestors(call) if isinstance(a, cst.If)]
        func = tree.function(call)
        if func is not None:
            texts.append(func.name.value)
        return any("resume" in t.lower() for t in texts)

    def _trains_after(self, restore: cst.Call) -> bool:
        """A training loop runs after `restore` in its function, or after a call of that function."""
        model = self.ctx.model
        func = model.tree.function(restore)
        if self._train_loop_after(restore):
            return True
        return func is not None and any(self._train_loop_after(site) for site in model.program.call_sites(func))

    def _train_loop_after(self, node: cst.CSTNode) -> bool:
        model = self.ctx.model
        scope = model.tree.scope(node)
        return any(
            model.tree.scope(loop) is scope and model.tree.precedes(node, loop)
            and model.loop_kind(loop) & (LoopKind.TRAIN | LoopKind.EPOCH)  # type: ignore[arg-type]
            for loop in model.tree.of_type((cst.For, cst.While))
        )

    def _states(self) -> dict[str, list[cst.Call]]:
        """The optimizers with state, schedulers and scalers that the file builds."""
        model = self.ctx.model
        found: dict[str, list[cst.Call]] = {"optimizer state": [], "learning-rate schedule": [], "GradScaler scale": []}
        for call in model.tree.of_type(cst.Call):
            q = model.qualified_name(call.func)  # type: ignore[attr-defined]
            if not q:
                continue
            kind = model.kind(call)
            if kind is Kind.OPTIMIZER and not _stateless(call, q):  # type: ignore[arg-type]
                found["optimizer state"].append(call)  # type: ignore[arg-type]
            elif kind is Kind.SCHEDULER:
                found["learning-rate schedule"].append(call)  # type: ignore[arg-type]
            elif q in SCALERS:
                found["GradScaler scale"].append(call)  # type: ignore[arg-type]
        return found

    # --- the fix ---

    def _fix(self, save: cst.Call, entries: list, restores: list[tuple[cst.Call, cst.Call]]) -> Fix | None:
        model = self.ctx.model
        tree = model.tree
        load, restore = restores[0]
        line = tree.parent(tree.parent(restore))
        save_line = tree.parent(tree.parent(save))
        if len(entries) != 1 or entries[0][0] is not None or tree.parent(tree.parent(restore)) is None:
            return None  # a dict checkpoint: the fix would have to merge keys
        if not (_single_expr(line, restore) and _single_expr(save_line, save)) or tree.parent(load) is not restore.args[0]:
            return None
        scope = tree.scope(save)
        if tree.scope(restore) is not scope or not tree.precedes(line, save):
            return None
        loop = self._epoch_loop(save)
        states = self._state_names(line, scope)
        facts = model.facts(scope)
        if loop is None or states is None or facts.bindings_of("checkpoint") or not tree.precedes(line, loop):
            return None
        module = _root(restore.func.value)  # type: ignore[attr-defined]
        epoch = loop.target.value  # type: ignore[attr-defined]
        start = self._start(loop, line, facts)
        if start is None or module in ("self", None):
            return None
        start_name, start_edits = start
        keys = [module, *states, epoch]
        values = [model.module.code_for_node(save.args[0].value), *(f"{s}.state_dict()" for s in states), epoch]
        saved = self._dict(save_line, [f'"{k}": {v}' for k, v in zip(keys, values)])
        edits: list[Edit] = [
            Replace(save.args[0].value, saved),
            InsertBefore(line, (cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name("checkpoint"))], load.deep_clone())]),)),
            Replace(load, cst.parse_expression(f'checkpoint["{module}"]')),
            InsertAfter(line, tuple(
                [cst.parse_statement(f'{s}.load_state_dict(checkpoint["{s}"])') for s in states]
                + [cst.parse_statement(f'{start_name} = checkpoint["{epoch}"] + 1')]
            )),
            *start_edits,
        ]
        return Fix("Save and restore the optimizer, schedulers, scaler and epoch", FixSafety.UNSAFE, tuple(edits))

    def _dict(self, line: cst.CSTNode, items: list[str]) -> cst.BaseExpression:
        """`{items}` on one line, or one item per line when the statement would pass 88 columns."""
        module = self.ctx.model.module
        blocks = [b for b in self.ctx.model.tree.ancestors(line) if isinstance(b, cst.IndentedBlock)]
        indent = "".join(module.default_indent if b.indent is None else b.indent for b in blocks)
        flat = "{" + ", ".join(items) + "}"
        if len(indent) + len(module.code_for_node(line).strip()) + len(flat) <= 88:
            return cst.parse_expression(flat)
        # Continuation lines are relative: the fixer indents them with the statement.
        return cst.parse_expression("{\n" + "".join(f"{module.default_indent}{item},\n" for item in items) + "}")

    def _epoch_loop(self, save: cst.Call) -> cst.For | None:
        """The `for epoch in range(...)` loop around the save, which trains before it and not around it."""
        model = self.ctx.model
        loops = model.tree.loops(save)
        loop = loops[0] if len(loops) == 1 else None
        if not isinstance(loop, cst.For) or not isinstance(loop.target, cst.Name):
            return None
        if not model.loop_kind(loop) & (LoopKind.EPOCH | LoopKind.TRAIN) or model.loop_kind(loop) & LoopKind.DATA:
            return None
        if any(model.tree.precedes(save, inner) and model.loop_kind(inner) & LoopKind.TRAIN  # type: ignore[arg-type]
               for inner in model.tree.below(loop.body, (cst.For, cst.While), scopes=False)):
            return None  # the save runs before the epoch's training
        it = loop.iter
        if not (isinstance(it, cst.Call) and dotted_name(it.func) == "range" and 1 <= len(it.args) <= 2):
            return None
        return loop

    def _state_names(self, line: cst.CSTNode, scope: cst.CSTNode) -> list[str] | None:
        """The names of the optimizers, schedulers and scalers, each bound once in `scope` before `line`."""
        model = self.ctx.model
        out = []
        for calls in self._states().values():
            for call in calls:
                assign = model.tree.parent(call)
                if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name)):
                    return None
                name = assign.targets[0].target.value
                if model.tree.scope(call) is not scope or len(model.facts(scope).bindings_of(name)) != 1:
                    return None
                if not model.tree.precedes(assign, line):
                    return None
                out.append(name)
        return out

    def _start(self, loop: cst.For, line: cst.CSTNode, facts) -> tuple[str, list[Edit]] | None:  # type: ignore[no-untyped-def]
        """The name the epoch loop starts from, and the edits that make one: `range(n)` becomes
        `range(start_epoch, n)` with `start_epoch = 0` before the statement that holds the load."""
        tree = self.ctx.model.tree
        args = loop.iter.args  # type: ignore[attr-defined]
        first = args[0].value if len(args) == 2 else cst.Integer("0")
        if isinstance(first, cst.Name):
            binds = facts.bindings_of(first.value)
            ok = len(binds) == 1 and binds[0].kind == "assign" and tree.precedes(binds[0].stmt, line)
            return (first.value, []) if ok else None
        if not isinstance(first, cst.Integer) or facts.bindings_of("start_epoch"):
            return None
        holder = next((a for a in (line, *tree.ancestors(line)) if tree.parent(a) is tree.parent(loop)), None)
        if holder is None:
            return None
        start = cst.Arg(cst.Name("start_epoch"), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        new_iter = loop.iter.with_changes(args=[start, args[-1]])  # type: ignore[attr-defined]
        initial = cst.parse_statement(f"start_epoch = {first.value}")
        return "start_epoch", [Replace(loop.iter, new_iter), InsertBefore(holder, (initial,))]


def _listing(items: list[str]) -> str:
    """`the a, the b and the c`."""
    words = [f"the {item}" for item in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _receiver(value: cst.CSTNode) -> cst.BaseExpression | None:
    """`m` of `m.state_dict()`."""
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "state_dict":
        return value.func.value
    return None


def _root(expr: cst.CSTNode | None) -> str | None:
    """`model` of `model`, `model.module`, `model.module.encoder`."""
    name = dotted_name(expr) if expr is not None else None
    return name.split(".")[0] if name else None


def _path(call: cst.Call, keyword: str, index: int) -> cst.BaseExpression | None:
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if len(positional) > index:
        return positional[index]
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == keyword), None)


def _text(expr: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(expr).replace(" ", "")


def _stateless(call: cst.Call, q: str) -> bool:
    """Plain SGD without momentum keeps no state between steps."""
    if q not in NO_STATE_OPTIMIZERS:
        return False
    positional = [a for a in call.args if a.keyword is None]
    momentum = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "momentum"), None)
    if len(positional) > 2:
        momentum = positional[2].value
    return momentum is None or (isinstance(momentum, (cst.Integer, cst.Float)) and float(momentum.value) == 0.0)


def _single_expr(line: cst.CSTNode | None, call: cst.Call) -> bool:
    """`line` is a statement line holding only `call` as an expression."""
    return (
        isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1
        and isinstance(line.body[0], cst.Expr) and line.body[0].value is call
    )
