"""PTL010 tensor-factory-in-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import bound_in
from ptlint.fixes import move_statement
from ptlint.rule import Fix, FixSafety, InsertBefore, Replace, Rule

FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "full", "arange", "eye", "linspace", "logspace"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "update", "clear", "setdefault", "add", "discard", "sort", "reverse"}
# Uses of the result that keep it beyond the step or change it.
STORING = {"append", "extend", "insert", "add", "put", "setdefault", "update", "register_buffer"}
# Factories whose values (not their shape) can come from the loop index: `tensor([i])`, `full((2,), i)`.
INDEX_FACTORIES = {"tensor", "as_tensor", "full"}
INDEX_MESSAGE = ("A tensor is built from the loop index on every iteration and collected; build them all at once "
                 "before the loop (`torch.arange(n)`, or one `torch.tensor` of the whole list)")
ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)


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

    It also flags, in any `for` loop, `torch.tensor`, `as_tensor` and `full` calls whose only varying
    input is the loop's index (`for i in range(n)`, `for i, x in enumerate(xs)`) or arithmetic of it
    (`t = i * dt`), when the results are collected across iterations (`out.append(x)`,
    `out[i] = x`, `out += [x]`): `for i in range(n): out.append(torch.tensor([i], device=device))`
    builds n tiny tensors (on a GPU, n host-to-device copies) where one `torch.arange(n)` or one
    `torch.tensor` of the whole list would do. An index that changes the shape (`torch.zeros(i)`),
    values that depend on other data (`torch.tensor(dataset[i])`) and tensors used only within
    their own iteration (a diffusion sampler's `torch.full((b,), i)`) are not reported.

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

    For a tensor built from the index of `for i in range(n)` (or `range(k, n)`), as a statement
    `x = torch.tensor(<of i>, ...)` or in `out.append(torch.tensor(<of i>, ...))` directly in the
    loop body, the fix builds every value at once before the loop,
    `x_all = torch.tensor([<of i> for i in range(n)], ...)`, and takes `x_all[i]` in the loop: the
    same values, dtype and device, but views of one tensor instead of separate tensors (so one of
    them kept alive keeps the whole). Derived values, `full`, `enumerate` loops and
    `requires_grad=True` get no fix.

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
        if module != "torch" or name not in FACTORIES or self._per_index(node, name):
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

    # --- built from the loop index ---

    def _per_index(self, call: cst.Call, factory: str) -> bool:
        """Report a factory whose only varying input is the index of the loop around it (or arithmetic of
        it), when the results are collected across iterations; True when reported."""
        model = self.ctx.model
        loops = model.tree.loops(call)
        loop = loops[-1] if loops else None
        index = _loop_index(loop)
        if loop is None or index is None or factory not in INDEX_FACTORIES or any(a.star for a in call.args):
            return False
        data = _value_arg(call, factory)
        bound = bound_in(loop, None)
        rest = [n for a in call.args if a.value is not data for n in (a.value, *model.tree.below(a.value, (cst.Name, cst.Attribute)))]
        if data is None or any((dotted_name(n) or "").split(".")[0] in bound for n in rest):
            return False  # the shape, dtype or device changes too
        uses = self._index_uses(data, index, bound, loop, 0)
        if uses is None or not uses:
            return False
        line = self.ctx.statement()
        target = _assigned_name(line, call)
        if not self._collected(loop, call, target):
            return False
        fix = self._stack(loop, call, line, target, index) if uses == {"index"} and factory != "full" else None
        self.report(call, message=INDEX_MESSAGE, fix=fix)
        return True

    def _index_uses(self, expr: cst.CSTNode, index: str, bound: set[str], loop: cst.For, depth: int) -> set[str] | None:
        """How `expr` depends on the loop: {"index"} and/or {"derived"} (a name the loop computes from the
        index), empty when it does not; None when it is not arithmetic of numbers, the index and names the
        loop does not change."""
        if isinstance(expr, (cst.Integer, cst.Float)):
            return set()
        if isinstance(expr, (cst.Name, cst.Attribute)):
            name = dotted_name(expr) or ""
            if name == index:
                return {"index"}
            if name.split(".")[0] not in bound:
                return set()
            if not isinstance(expr, cst.Name) or depth > 2:
                return None
            facts = self.ctx.model.facts_at(expr)
            binds = [b for b in facts.bindings_of(name) if self.ctx.model.tree.contains(loop.body, b.stmt)]
            values = [b.bound_value() if b.kind == "assign" else None for b in binds]
            if not binds or any(v is None for v in values):
                return None
            found = [self._index_uses(v, index, bound, loop, depth + 1) for v in values]  # type: ignore[arg-type]
            return None if any(f is None for f in found) else {"derived"} if any(found) else set()
        parts: list[cst.CSTNode] | None = None
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, ARITHMETIC):
            parts = [expr.left, expr.right]
        elif isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            parts = [expr.expression]
        elif isinstance(expr, (cst.List, cst.Tuple)) and all(isinstance(e, cst.Element) for e in expr.elements):
            parts = [e.value for e in expr.elements]
        elif isinstance(expr, cst.Call) and dotted_name(expr.func) in ("float", "int") and len(expr.args) == 1:
            parts = [expr.args[0].value] if self.ctx.model.names.is_builtin(expr.func) else None  # type: ignore[arg-type]
        if parts is None:
            return None
        out: set[str] = set()
        for part in parts:
            found = self._index_uses(part, index, bound, loop, depth)
            if found is None:
                return None
            out |= found
        return out

    def _collected(self, loop: cst.For, call: cst.Call, target: str | None) -> bool:
        """The tensor is kept across iterations: `xs.append(t)`, `xs.insert(k, t)`, `xs[k] = t` or `xs += [t]`,
        with `xs` bound outside the loop."""
        tree = self.ctx.model.tree
        facts = self.ctx.model.facts_at(call)

        def kept(store: cst.CSTNode | None, aug: cst.CSTNode | None = None) -> bool:  # not rebound in the loop
            head = (dotted_name(store) or "").split(".")[0] if store is not None else ""
            return bool(head) and not any(tree.contains(loop, b.stmt) and b.value is not aug for b in facts.bindings_of(head))

        values: list[cst.CSTNode] = [call]
        if target is not None:
            values += [n for n in tree.names(target) if tree.contains(loop.body, n) and tree.precedes(call, n)]
        for value in values:
            parent = tree.parent(value)
            if isinstance(parent, cst.Element):
                parent = tree.parent(parent)
                aug = tree.parent(parent)
                if isinstance(parent, cst.List) and isinstance(aug, cst.AugAssign) and aug.value is parent and kept(aug.target, aug):
                    return True
                continue
            store = None
            if isinstance(parent, cst.Arg):
                owner = tree.parent(parent)
                func = owner.func if isinstance(owner, cst.Call) else None
                if isinstance(func, cst.Attribute) and func.attr.value in ("append", "insert"):
                    store = func.value
            elif isinstance(parent, cst.Assign) and parent.value is value:
                store = next((t.target.value for t in parent.targets if isinstance(t.target, cst.Subscript)), None)
            if kept(store):
                return True
        return False

    def _stack(self, loop: cst.For, call: cst.Call, line: cst.CSTNode | None, target: str | None, index: str) -> Fix | None:
        """`x = torch.tensor(<of i>, ...)` in `for i in range(...)`: build every value once before the loop,
        `x_all = torch.tensor([<of i> for i in range(...)], ...)`, and take `x = x_all[i]` in the loop."""
        tree = self.ctx.model.tree
        if not (isinstance(loop.iter, cst.Call) and dotted_name(loop.iter.func) == "range" and isinstance(loop.target, cst.Name)):
            return None
        if line is None or tree.parent(line) is not loop.body or any(a.keyword and a.keyword.value == "requires_grad" for a in call.args):
            return None
        if target is None:
            owner = tree.parent(tree.parent(call))
            if not (isinstance(owner, cst.Call) and isinstance(owner.func, cst.Attribute) and owner.func.attr.value == "append"):
                return None
            target = dotted_name(owner.func.value)
        name = f"{target}_all"
        if target is None or "." in target or self.ctx.scope_facts().bindings_of(name) or not call.args or call.args[0].keyword:
            return None
        bounds = [a.value for a in loop.iter.args]
        if len(bounds) == 2 and isinstance(bounds[0], cst.Integer):
            position = index if bounds[0].evaluated_value == 0 else f"{index} - {bounds[0].value}"
        elif len(bounds) == 1:
            position = index
        else:
            return None  # where the index sits in the list needs a start and a step
        code = self.ctx.model.module.code_for_node
        values = cst.parse_expression(f"[{code(call.args[0].value)} for {index} in {code(loop.iter)}]")
        whole = call.with_changes(args=[call.args[0].with_changes(value=values), *call.args[1:]])
        build = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], whole)])
        edits = (InsertBefore(loop, (build,)), Replace(call, cst.parse_expression(f"{name}[{position}]")))
        return Fix("Build every value once before the loop and index it", FixSafety.UNSAFE, edits)

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



def _loop_index(loop: cst.CSTNode | None) -> str | None:
    """`i` of `for i in range(...)` and of `for i, x in enumerate(...)`."""
    if not isinstance(loop, cst.For) or not isinstance(loop.iter, cst.Call):
        return None
    func, target = dotted_name(loop.iter.func), loop.target
    if func == "range" and isinstance(target, cst.Name):
        return target.value
    if func == "enumerate" and isinstance(target, cst.Tuple) and target.elements and isinstance(target.elements[0].value, cst.Name):
        return target.elements[0].value.value
    return None


def _value_arg(call: cst.Call, factory: str) -> cst.BaseExpression | None:
    """The argument that gives the values: the data of `tensor`/`as_tensor`, the fill value of `full`."""
    keyword, position = ("fill_value", 1) if factory == "full" else ("data", 0)
    positional = [a.value for a in call.args if a.keyword is None]
    if len(positional) > position:
        return positional[position]
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == keyword), None)


def _mutates(method: str) -> bool:
    """A method that changes its receiver: a container mutator or an in-place tensor method."""
    return method in MUTATORS or method.endswith("_")
