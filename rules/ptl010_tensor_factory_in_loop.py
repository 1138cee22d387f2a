"""PTL010 tensor-factory-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import bound_in
from ptlint.fixes import move_statement
from ptlint.rule import Fix, FixSafety, Rule

FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "full", "arange", "eye", "linspace", "logspace"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "update", "clear", "setdefault", "add", "discard", "sort", "reverse"}
# Uses of the result that keep it beyond the step or change it.
STORING = {"append", "extend", "insert", "add", "put", "setdefault", "update", "register_buffer"}


class TensorFactoryInLoop(Rule):
    """The same constant tensor built again on every step.

    ## What it does
    Flags `torch.tensor`, `as_tensor`, `zeros`, `ones`, `full`, `arange`, `eye`, `linspace` and
    `logspace` calls inside a loop that trains, evaluates or iterates a DataLoader, when none of
    their arguments change inside the loop.

    Random factories are never reported: moving them out of the loop would change the random
    stream. It stays silent when the tensor is changed in place (`t.add_()`, `t[...] = ...`,
    `out=t`), stored beyond the step (`.append(t)`, `self.x = t`, `d[k] = t`), or when any
    argument is assigned or mutated inside the loop.

    ## Why is this bad?
    Each call allocates a new tensor and, for `torch.tensor(<list>, device="cuda")`, copies it from
    pageable host memory, which blocks the host. Repeated every step, the same constant costs an
    allocation and a transfer each time; built once before the loop it costs nothing.

    ## Example
    ```python
    for x, y in loader:
        weights = torch.tensor([0.2, 0.8], device=device)
        loss = F.cross_entropy(model(x), y, weight=weights)
    ```

    ## Use instead
    ```python
    weights = torch.tensor([0.2, 0.8], device=device)
    for x, y in loader:
        loss = F.cross_entropy(model(x), y, weight=weights)
    ```

    ## Fix safety
    Unsafe: a statement `name = torch.<factory>(...)` that sits directly in the loop body moves
    before the loop. Every step then shares one tensor, which is only equivalent while nothing
    changes it or keeps it; the check for that is static and cannot see through every call.
    Factories inside larger expressions are reported without a fix.

    ## References
    - [Performance tuning guide: create tensors directly on the target device](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [CUDA semantics: pinned memory](https://pytorch.org/docs/stable/notes/cuda.html#use-pinned-memory-buffers)
    """

    code = "PTL010"
    name = "tensor-factory-in-loop"
    message = "A constant tensor is built on every step; create it once before the loop"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("torch",)
    contract = "E0"

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.ctx.qualname(node.func) or ""
        module, _, name = qualified.rpartition(".")
        if module != "torch" or name not in FACTORIES:
            return
        loop = self.ctx.per_step_loop()
        if loop is None or any(a.star or (a.keyword and a.keyword.value == "out") for a in node.args):
            return
        line = self.ctx.statement()
        if self._variant(loop, node, line):
            return
        target = _assigned_name(line, node)
        if target is not None and (target in bound_in(loop, line) or self._kept_or_changed(loop, target, line)):
            return
        if target is None and not self._consumed(node):
            return
        self.report(node, fix=self._hoist(loop, line, target))

    def _variant(self, loop: cst.For | cst.While, call: cst.Call, line: cst.CSTNode | None) -> bool:
        tree = self.ctx.model.tree
        bound = bound_in(loop, line if _assigned_name(line, call) else None)
        parts = [n for a in call.args for n in (a.value, *tree.below(a.value, (cst.Name, cst.Attribute, cst.Call)))]
        names = {dotted_name(n) for n in parts}
        heads = {n.split(".")[0] for n in names if n}
        if any(n in bound for n in names if n) or heads & {b.split(".")[0] for b in bound if "." not in b}:
            return True
        # Calls in the arguments may return something new each step (`len(batch)`, `f()`).
        if any(isinstance(n, cst.Call) and self.ctx.qualname(n.func) != "torch.device" for n in parts):
            return True
        return any(
            dotted_name(n.func.value) in heads and _mutates(n.func.attr.value)  # type: ignore[attr-defined]
            for n in tree.below(loop, cst.Call) if isinstance(n.func, cst.Attribute)  # type: ignore[attr-defined]
        )

    def _kept_or_changed(self, loop: cst.CSTNode, name: str, line: cst.CSTNode | None) -> bool:
        kinds = (cst.Call, cst.Assign, cst.AugAssign, cst.Yield, cst.Return)
        for node in self.ctx.model.tree.below(loop, kinds):
            if isinstance(node, cst.Call):
                func = node.func
                if isinstance(func, cst.Attribute):
                    if dotted_name(func.value) == name and _mutates(func.attr.value):
                        return True
                    if func.attr.value in STORING and any(dotted_name(a.value) == name for a in node.args):
                        return True
                if any(a.keyword is not None and a.keyword.value == "out" and dotted_name(a.value) == name for a in node.args):
                    return True
            elif isinstance(node, (cst.Assign, cst.AugAssign)):
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, cst.Subscript) and dotted_name(target.value) == name:
                        return True
                    if isinstance(node, cst.AugAssign) and dotted_name(target) == name:
                        return True
                if isinstance(node, cst.Assign) and dotted_name(node.value) == name:
                    return True  # stored under another name, an attribute or a key
            elif isinstance(node, (cst.Yield, cst.Return)) and node.value is not None and dotted_name(node.value) == name:
                return True
        return False

    def _consumed(self, call: cst.Call) -> bool:
        """An inline factory whose value is an argument or operand, not stored anywhere."""
        parent = self.ctx.parent()
        return isinstance(parent, (cst.Arg, cst.BinaryOperation, cst.Comparison, cst.ComparisonTarget))

    def _hoist(self, loop: cst.For | cst.While, line: cst.CSTNode | None, target: str | None) -> Fix | None:
        if target is None or line is None:
            return None
        edits = move_statement(self.ctx, line, loop, parent=loop)
        return Fix("Create the tensor once before the loop", FixSafety.UNSAFE, edits) if edits else None


def _assigned_name(line: cst.CSTNode | None, call: cst.Call) -> str | None:
    """`name` when `line` is exactly `name = <call>`."""
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    small = line.body[0]
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        target = small.targets[0].target
        return target.value if isinstance(target, cst.Name) else None
    return None



def _mutates(method: str) -> bool:
    """A method that changes its receiver: a container mutator or an in-place tensor method."""
    return method in MUTATORS or method.endswith("_")
