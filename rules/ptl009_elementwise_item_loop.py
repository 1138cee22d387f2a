"""PTL009 elementwise-item-loop."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.rule import Edit, Fix, FixSafety, InsertBefore, Replace, Rule

# torch functions that return a tuple or list of tensors, not one tensor.
TUPLE_FUNCTIONS = {"split", "chunk", "unbind", "tensor_split", "hsplit", "vsplit", "dsplit", "meshgrid", "sort", "topk",
                   "max", "min", "median", "mode", "kthvalue", "unique", "nonzero", "where", "broadcast_tensors",
                   "load", "jit", "save", "cuda", "device", "Size", "Generator"}
# Tensor methods that return one tensor (or a NumPy array, which has `tolist()` too).
TENSOR_METHODS = {
    "argmax", "argmin", "detach", "cpu", "cuda", "squeeze", "unsqueeze", "flatten", "view", "reshape", "softmax",
    "log_softmax", "sigmoid", "float", "long", "int", "double", "half", "bool", "sum", "mean", "abs", "clone",
    "contiguous", "numpy", "exp", "log", "round", "ravel", "t", "T", "to", "norm", "std", "var", "prod", "cumsum",
    "eq", "ne", "gt", "lt", "ge", "le", "logical_not", "masked_select", "diag", "diagonal", "transpose", "permute",
}
# Attributes that are tensors.
TENSOR_ATTRS = {"data", "grad", "weight", "bias"}
SIZE_METHODS = {"size", "numel", "nelement", "dim"}


class ElementwiseItemLoop(Rule):
    """Reading a tensor element by element with `.item()`.

    ## What it does
    Flags list comprehensions such as `[t[i].item() for i in range(len(t))]` and `[x.item() for x in t]`,
    and loops that read `t[i].item()` in `for i in range(len(t)):` or `x.item()` in `for x in t:`, when
    `t` is known to be a tensor (made by a torch function, a model or a tensor method, also through
    the names it is bound to, or sized with `t.size(0)`/`t.shape[0]`/`t.numel()`).

    A Python list of tensors (`[loss.item() for loss in losses]`) is not reported: it has no
    `tolist()`. Loops that change `t` are not reported either.

    ## Why is this bad?
    Each `.item()` is a separate device-to-host copy, and on a GPU each one waits for the device
    to finish all queued work. A 10,000-element tensor means 10,000 synchronisations where one
    `tolist()` makes a single transfer: on the CPU alone it is about a hundred times slower.

    ## Example
    ```python
    scores = [probs[i].item() for i in range(probs.size(0))]
    for i in range(len(labels)):
        counts[labels[i].item()] += 1
    ```

    ## Use instead
    ```python
    scores = probs.tolist()
    labels_list = labels.tolist()
    for i in range(len(labels)):
        counts[labels_list[i]] += 1
    ```

    ## Fix safety
    Safe for comprehensions: `.item()` only works on one-element tensors, so the comprehension only
    runs on a 1-D tensor, whose `tolist()` is exactly the same list. Unsafe for loops: the list is
    made once before the loop, so the fix assumes that nothing else changes `t` while it runs. A
    `for x in t:` loop gets a fix only when the body reads `x` through `.item()` alone.

    ## References
    - [Performance tuning guide: avoid unnecessary CPU-GPU synchronization](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [torch.Tensor.tolist](https://pytorch.org/docs/stable/generated/torch.Tensor.tolist.html)
    """

    code = "PTL009"
    name = "elementwise-item-loop"
    message = "`.item()` on each element syncs once per element; convert once with `.tolist()`"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = (".item(",)
    contract = "E0"

    def visit_ListComp(self, node: cst.ListComp) -> None:
        comp = node.for_in
        if comp.inner_for_in is not None or comp.ifs or comp.asynchronous is not None:
            return
        source = self._elementwise(node.elt, comp.target, comp.iter)
        if source is not None:
            fix = Fix("Use `.tolist()`", FixSafety.SAFE, (Replace(node, _tolist(source)),))
            self.report(node, fix=fix)

    def visit_For(self, node: cst.For) -> None:
        if not isinstance(node.target, cst.Name) or node.orelse is not None:
            return
        tensor = _ranged(node.iter)
        if tensor is None:
            self._element_loop(node)
            return
        if not self._is_tensor(tensor, node.iter):
            return
        index = node.target.value
        tree = self.ctx.model.tree
        reads = [n for n in tree.below(node.body, cst.Call, scopes=False) if _item_of(n, tensor, index)]
        if not reads or self._changed_in(node.body, tensor):
            return
        self.report(reads[0], fix=self._loop_fix(node, tensor, reads))

    def _element_loop(self, node: cst.For) -> None:
        """`for x in t: ... x.item()`: the fix iterates over `t.tolist()` and reads `x`."""
        name = node.target.value  # type: ignore[attr-defined]
        if not self._is_tensor(node.iter, node.iter) or self._changed_in(node.body, node.iter):
            return
        tree = self.ctx.model.tree
        reads = [n for n in tree.below(node.body, cst.Call, scopes=False) if _is_item(n) and _same(n.func.value, node.target)]  # type: ignore[attr-defined]
        if not reads:
            return
        uses = [n for n in tree.names(name) if tree.contains(node.body, n)]
        facts = self.ctx.scope_facts()
        rebound = any(facts.contains(node.body, b.stmt) for b in facts.bindings_of(name))
        fix = None
        if len(uses) == len(reads) and not rebound:
            edits = (Replace(node.iter, _tolist(node.iter)), *(Replace(r, cst.Name(name)) for r in reads))
            fix = Fix("Iterate over the list from `.tolist()`", FixSafety.UNSAFE, edits)
        self.report(reads[0], fix=fix)

    def _changed_in(self, body: cst.CSTNode, tensor: cst.BaseExpression) -> bool:
        """The loop's `body` changes `tensor` (nested functions included)."""
        return _changes(self.ctx.model.tree.below(body, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Call)), tensor)

    def _elementwise(self, elt: cst.BaseExpression, target: cst.BaseAssignTargetExpression, it: cst.BaseExpression) -> cst.BaseExpression | None:
        """The tensor read element by element, or None."""
        if not isinstance(target, cst.Name) or not _is_item(elt):
            return None
        inner = elt.func.value  # type: ignore[attr-defined]
        if isinstance(inner, cst.Name) and inner.value == target.value:
            return it if self._is_tensor(it, it) else None  # [x.item() for x in t]
        tensor = _ranged(it)
        if tensor is not None and _is_index(inner, tensor, target.value) and self._is_tensor(tensor, it):
            return tensor  # [t[i].item() for i in range(len(t))]
        return None

    def _is_tensor(self, expr: cst.BaseExpression, it: cst.BaseExpression) -> bool:
        """Evidence that `expr` is a tensor or array, not a list."""
        if _sized_by_method(it, expr):
            return True
        if isinstance(expr, cst.Name) and self.ctx.model.is_tensor(expr) and self.ctx.model.torch.one_tensor(expr):
            return True  # through the data flow: `pred = model(x).max(1)[1]`
        if isinstance(expr, cst.Attribute) and expr.attr.value in TENSOR_ATTRS:
            return True
        if isinstance(expr, cst.Call):
            return self._tensor_call(expr)
        if isinstance(expr, cst.Name):
            binding = self.ctx.reaching(expr)
            return binding is not None and binding.kind == "assign" and isinstance(binding.value, cst.Call) and self._tensor_call(binding.value)
        return False

    def _tensor_call(self, call: cst.Call) -> bool:
        qualified = self.ctx.qualname(call.func) or ""
        if qualified.startswith("torch."):
            last = qualified.rsplit(".", 1)[-1]
            parts = qualified.split(".")[1:]
            return last not in TUPLE_FUNCTIONS and not any(p[:1].isupper() for p in parts) and len(parts) <= 2
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in TENSOR_METHODS:
            if call.func.attr.value in {"max", "min"}:
                return False
            return not (isinstance(call.func.value, cst.Name) and call.func.value.value in {"np", "numpy", "math", "self"})
        return False

    def _loop_fix(self, loop: cst.For, tensor: cst.BaseExpression, reads: list[cst.Call]) -> Fix | None:
        if not isinstance(tensor, cst.Name) or self.ctx.statement() is not loop:
            return None
        name = f"{tensor.value}_list"
        if self.ctx.scope_facts().bindings_of(name):
            return None
        index = loop.target.value  # type: ignore[attr-defined]
        edits: list[Edit] = [InsertBefore(loop, (cst.parse_statement(f"{name} = {tensor.value}.tolist()"),))]
        for read in reads:
            edits.append(Replace(read, cst.parse_expression(f"{name}[{index}]")))
        return Fix("Convert the tensor once with `.tolist()`", FixSafety.UNSAFE, tuple(edits))


def _tolist(source: cst.BaseExpression) -> cst.Call:
    value = source
    if not isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=value, attr=cst.Name("tolist")))


def _is_item(expr: cst.CSTNode) -> bool:
    return (
        isinstance(expr, cst.Call)
        and not expr.args
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value == "item"
    )


def _same(a: cst.CSTNode, b: cst.CSTNode) -> bool:
    return dotted_name(a) is not None and dotted_name(a) == dotted_name(b)


def _is_index(expr: cst.CSTNode, tensor: cst.BaseExpression, index: str) -> bool:
    """`t[i]` for the tensor `t` and the index name `i`."""
    if not isinstance(expr, cst.Subscript) or not _same(expr.value, tensor) or len(expr.slice) != 1:
        return False
    sub = expr.slice[0].slice
    return isinstance(sub, cst.Index) and isinstance(sub.value, cst.Name) and sub.value.value == index


def _item_of(node: cst.CSTNode, tensor: cst.BaseExpression, index: str) -> bool:
    return _is_item(node) and _is_index(node.func.value, tensor, index)  # type: ignore[attr-defined]


def _ranged(it: cst.BaseExpression) -> cst.BaseExpression | None:
    """`t` of `range(len(t))`, `range(t.size(0))`, `range(t.shape[0])`, `range(t.numel())`."""
    if not (isinstance(it, cst.Call) and dotted_name(it.func) == "range" and len(it.args) == 1):
        return None
    size = it.args[0].value
    if isinstance(size, cst.Call) and dotted_name(size.func) == "len" and len(size.args) == 1:
        return size.args[0].value
    if isinstance(size, cst.Call) and isinstance(size.func, cst.Attribute) and size.func.attr.value in SIZE_METHODS:
        return size.func.value
    if isinstance(size, cst.Subscript) and isinstance(size.value, cst.Attribute) and size.value.attr.value == "shape":
        return size.value.value
    return None


def _sized_by_method(it: cst.BaseExpression, tensor: cst.BaseExpression) -> bool:
    """The range is sized with `.size()`, `.shape[...]` or `.numel()`, which lists do not have."""
    if not (isinstance(it, cst.Call) and dotted_name(it.func) == "range" and len(it.args) == 1):
        return False
    size = it.args[0].value
    if isinstance(size, cst.Call) and isinstance(size.func, cst.Attribute) and size.func.attr.value in SIZE_METHODS:
        return _same(size.func.value, tensor)
    return isinstance(size, cst.Subscript) and isinstance(size.value, cst.Attribute) and _same(size.value.value, tensor)


def _changes(nodes: list[cst.CSTNode], tensor: cst.BaseExpression) -> bool:
    """`t = ...`, `t[...] = ...`, `t += ...` or an in-place `t.xxx_()` among `nodes`."""
    for node in nodes:
        targets: list[cst.CSTNode] = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            targets = [node.target]
        while targets:
            target = targets.pop()
            if isinstance(target, (cst.Tuple, cst.List)):
                targets.extend(e.value for e in target.elements)
                continue
            base = target.value if isinstance(target, cst.Subscript) else target
            if _same(base, tensor):
                return True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value.endswith("_"):
            if _same(node.func.value, tensor):
                return True
    return False
