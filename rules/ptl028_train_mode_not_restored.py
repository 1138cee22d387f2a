"""PTL028 train-mode-not-restored."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import LoopKind, shallow_nodes
from ptlint.facts.walk import iter_nodes
from ptlint.rule import Fix, FixSafety, InsertBefore, Rule

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
        if not self.ctx.loop_kind(node) & LoopKind.EPOCH:
            return
        outside = shallow_nodes(node.body)
        evaluated = self._mode_receivers(outside, "eval")
        if not evaluated:
            return
        trained = self._mode_receivers(list(iter_nodes(node.body, enter_scopes=False)), "train")
        for receiver in evaluated:
            if receiver in trained or not self._used_in_training(node, receiver):
                continue
            fix = None
            if isinstance(node.body, cst.IndentedBlock):
                stmt = cst.parse_statement(f"{receiver}.train()")
                fix = Fix("Switch back to train mode each epoch", FixSafety.SAFE, (InsertBefore(node.body.body[0], (stmt,)),))
            self.report(node, f"`{receiver}` is put in eval mode in the epoch loop and never back in train mode", fix)
            return

    visit_For = _loop
    visit_While = _loop

    def _mode_receivers(self, nodes: list[cst.CSTNode], mode: str) -> set[str]:
        """Receivers switched to `mode` by the nodes, directly or through a local helper (one level)."""
        found: set[str] = set()
        for node in nodes:
            if not isinstance(node, cst.Call):
                continue
            direct = _mode_call(node)
            if direct is not None and direct[1] == mode:
                found.add(direct[0])
            if isinstance(node.func, cst.Name):
                func = self.ctx.local_function(node.func.value)
                if func is not None:
                    found |= self._helper_modes(func, node, mode)
        return found

    def _helper_modes(self, func: cst.FunctionDef, call: cst.Call, mode: str) -> set[str]:
        """Map a helper's `param.eval()`/`param.train()` to the caller's argument; ignore helpers that restore."""
        params = [p.name.value for p in func.params.params]
        modes: dict[str, list[str]] = {}
        for node in iter_nodes(func.body, enter_scopes=False):
            if isinstance(node, cst.Call):
                hit = _mode_call(node)
                if hit is not None:
                    modes.setdefault(hit[0], []).append(hit[1])
        found = set()
        for index, arg in enumerate(call.args):
            if arg.keyword is not None or index >= len(params):
                continue
            seq = modes.get(params[index], [])
            name = dotted_name(arg.value)
            if name and seq and seq[-1] == mode:
                found.add(name)
            if name and mode == "train" and "train" in seq:
                found.add(name)
        return found

    def _used_in_training(self, loop: cst.CSTNode, receiver: str) -> bool:
        for inner in iter_nodes(loop, enter_scopes=False):
            if isinstance(inner, LOOPS) and inner is not loop and self._trains(inner):
                if any(dotted_name(n) == receiver for n in iter_nodes(inner, enter_scopes=False) if isinstance(n, (cst.Name, cst.Attribute))):
                    return True
        for node in iter_nodes(loop, enter_scopes=False):
            if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Name):
                continue
            func = self.ctx.local_function(node.func.value)
            if func is not None and any(dotted_name(a.value) == receiver for a in node.args):
                if any(isinstance(n, LOOPS) for n in iter_nodes(func.body)) and _has_backward(func):
                    return True
        return False

    def _trains(self, loop: cst.CSTNode) -> bool:
        return _has_backward(loop) or any(
            isinstance(n, cst.Call) and isinstance(n.func, cst.Name) and (f := self.ctx.local_function(n.func.value)) is not None and _has_backward(f)
            for n in iter_nodes(loop, enter_scopes=False)
        )


def _mode_call(call: cst.Call) -> tuple[str, str] | None:
    """(receiver, "eval"|"train") for `r.eval()`, `r.train()`, `r.train(False)`, `r.train(mode)`."""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in {"eval", "train"}:
        return None
    receiver = dotted_name(func.value)
    if receiver is None:
        return None
    if func.attr.value == "eval":
        return (receiver, "eval") if not call.args else None
    if call.args:
        value = call.args[0].value
        if isinstance(value, cst.Name) and value.value == "False":
            return receiver, "eval"
        if not (isinstance(value, cst.Name) and value.value == "True"):
            return receiver, "train"  # `train(mode)`: assume it restores
    return receiver, "train"


def _has_backward(node: cst.CSTNode) -> bool:
    return any(
        isinstance(n, cst.Attribute) and n.attr.value in {"backward", "manual_backward"} for n in iter_nodes(node, enter_scopes=False)
    )
