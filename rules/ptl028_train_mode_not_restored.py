"""PTL028 train-mode-not-restored."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.loops import LoopKind
from ptlint.rule import Fix, FixSafety, InsertBefore, Rule
from ptlint.semantic.modes import Mode, Root

LOOPS = (cst.For, cst.While)


class TrainModeNotRestored(Rule):
    """An epoch loop that switches the model to eval mode and never back.

    ## What it does
    Flags an epoch loop (a loop that contains a training loop) in which the model is put in eval
    mode, by `model.eval()`, `model.train(False)` or a local helper such as `validate(model)` that
    does so, while nothing in the epoch loop calls `model.train()` again: not the loop itself, not
    the training helper it calls.

    ## Why is this bad?
    The mode is sticky. After the first validation the model stays in eval mode, so from the
    second epoch on, training runs with dropout off and batch norm using frozen running
    statistics. Nothing fails: the model just trains worse.

    ## Example
    ```python
    model.train()
    for epoch in range(epochs):
        for x, y in train_loader:
            train_step(model, x, y)
        model.eval()
        evaluate(model, val_loader)
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            train_step(model, x, y)
        model.eval()
        evaluate(model, val_loader)
    ```

    ## Fix safety
    Safe: `model.train()` becomes the first statement of the epoch loop, so every epoch trains
    in training mode, which is what the loop does in its first epoch already.

    ## References
    - [torch.nn.Module.train](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.train)
    - Zhang, Cruz and van Deursen, "Code smells for machine learning applications" (CAIN 2022), smell 18
    """

    code = "PTL028"
    name = "train-mode-not-restored"
    message = "The model is put in eval mode in the epoch loop and never back in train mode"
    fix_safety = FixSafety.SAFE
    severity = "error"
    triggers = ("eval", "train(False)")
    contract = "E2"

    def _loop(self, node: cst.For | cst.While) -> None:
        model = self.ctx.model
        if not model.loop_kind(node) & LoopKind.EPOCH:
            return
        evaluated, trained = self._switches(node)
        for receiver in evaluated:
            if receiver in trained or not self._used_in_training(node, receiver):
                continue
            fix = None
            if isinstance(node.body, cst.IndentedBlock):
                stmt = cst.parse_statement(f"{receiver.name}.train()")
                edit = InsertBefore(node.body.body[0], (stmt,))
                fix = Fix("Switch back to train mode each epoch", FixSafety.SAFE, (edit,))
            message = f"`{receiver.name}` is put in eval mode in the epoch loop and never back in train mode"
            self.report(node, message, fix)
            return

    visit_For = _loop
    visit_While = _loop

    def _switches(self, loop: cst.For | cst.While) -> tuple[list[Root], set[Root]]:
        """The modules the epoch loop puts in eval mode outside its inner loops (directly, or as the last mode
        a local helper leaves them in), and those it puts in train mode anywhere (`train(flag)` counts)."""
        modes, tree = self.ctx.model.modes, self.ctx.model.tree
        evaluated: list[Root] = []
        trained: set[Root] = set()
        for call in tree.below(loop.body, cst.Call, scopes=False):
            hit = modes.mode_call(call)
            root = modes.root(hit[0]) if hit is not None else None
            changes = [(root, hit[1])] if hit is not None and root is not None else []
            if isinstance(call.func, cst.Name):
                changes += modes.passed_changes(call)
            last: dict[Root, Mode] = {}
            for root, mode in changes:
                last[root] = mode
                if mode in (Mode.TRAIN, Mode.UNKNOWN):
                    trained.add(root)
            shallow = tree.loops(call)[-1] is loop
            evaluated += [r for r, mode in last.items() if mode is Mode.EVAL and shallow and r not in evaluated]
        return evaluated, trained

    def _used_in_training(self, loop: cst.CSTNode, receiver: Root) -> bool:
        """The module takes part in a training loop inside the epoch loop, or in a local helper that trains."""
        model = self.ctx.model
        tree, root = model.tree, model.modes.root
        for inner in tree.below(loop, LOOPS, scopes=False):
            names = tree.below(inner, (cst.Name, cst.Attribute), scopes=False)
            if model.loop_kind(inner) & LoopKind.TRAIN and any(root(n) == receiver for n in names):
                return True
        for call in tree.below(loop, cst.Call, scopes=False):
            helper = model.program.callee(call) if isinstance(call.func, cst.Name) else None
            if helper is not None and any(root(a.value) == receiver for a in call.args) and self._trains(helper):
                return True
        return False

    def _trains(self, func: cst.FunctionDef) -> bool:
        """Whether `func` runs a training loop."""
        model = self.ctx.model
        return any(model.loop_kind(loop) & LoopKind.TRAIN for loop in model.tree.below(func.body, LOOPS, scopes=False))
