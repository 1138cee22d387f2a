"""The loop classifier: what a `for`/`while` loop does in a training program.

- TRAIN: its body (outside nested loops), or a local helper it calls, runs `backward()` and an
  optimizer `step()`.
- EPOCH: it contains a TRAIN loop, directly or through a local helper.
- EVAL: it runs model calls with gradients off (under `no_grad` or `inference_mode`), or after
  `.eval()` in the same function, and is not a TRAIN loop.
- DATA: it iterates a DataLoader (by construction or by name: `loader`, `train_dl`, ...).

Step guards (`if step % k == 0:`) mark periodic work such as logging, which runs on a fraction of
the steps and is never a per-step cost. One level of calls into functions of the same file is
followed, as the catalog asks.
"""

from __future__ import annotations

import enum
import re
import weakref
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.walk import children, iter_nodes

if TYPE_CHECKING:
    from ptlint.semantic import Model
    from ptlint.semantic.tree import Tree

LOOP_TYPES = (cst.For, cst.While)
BACKWARD_CALLS = {"backward", "manual_backward"}
LOADER_NAME = re.compile(r"(^|_)(loader|dataloader|dl)s?($|_)", re.I)
LOADER_CONSTRUCTORS = ("DataLoader",)
ITER_WRAPPERS = {"enumerate", "tqdm", "iter", "zip", "tqdm.tqdm", "tqdm.auto.tqdm", "progress_bar"}
STEP_NAMES = re.compile(r"(^|_)(i|j|it|iter|iteration|step|steps|idx|batch|batch_idx|batch_i|n|count|epoch)s?($|_)|step|iter|batch", re.I)


class LoopKind(enum.Flag):
    NONE = 0
    TRAIN = enum.auto()
    EVAL = enum.auto()
    EPOCH = enum.auto()
    DATA = enum.auto()


# Loops whose body runs once per step.
PER_STEP = LoopKind.TRAIN | LoopKind.EVAL | LoopKind.DATA


_SCOPES = frozenset({"FunctionDef", "ClassDef", "Lambda"})
_SCOPES_AND_LOOPS = _SCOPES | {"For", "While"}


def _body_nodes(node: cst.CSTNode, into_loops: bool) -> Iterator[cst.CSTNode]:
    """Nodes below `node` in the same function; nested loops are skipped unless asked."""
    stack = list(children(node))
    stop = _SCOPES if into_loops else _SCOPES_AND_LOOPS  # type names: no slow ABC isinstance
    while stack:
        current = stack.pop()
        yield current
        if type(current).__name__ not in stop:
            stack.extend(children(current))


def _loop_body(loop: cst.For | cst.While) -> list[cst.CSTNode]:
    parts: list[cst.CSTNode] = [loop.body]
    if isinstance(loop, cst.While):
        parts.append(loop.test)
    return parts


def _method(call: cst.Call) -> str | None:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def is_backward(call: cst.Call) -> bool:
    name = _method(call)
    if name in BACKWARD_CALLS:
        return True
    return dotted_name(call.func) in {"torch.autograd.backward", "autograd.backward"}


def is_optimizer_step(call: cst.Call, model: "Model") -> bool:
    """`optimizer.step()` or `scaler.step(optimizer)`, the receiver an optimizer by the model's evidence
    (constructor, annotation, `self.x` assigned in `__init__`, its name last)."""
    if _method(call) != "step" or not isinstance(call.func, cst.Attribute):
        return False
    last = (dotted_name(call.func.value) or "").rsplit(".", 1)[-1].lower()
    if "scaler" in last:  # scaler.step(optimizer)
        return True
    if "sched" in last or last in {"lr", "lr_scheduler", "scheduler", "env", "sim"}:
        return False
    return model.torch.is_optimizer(call.func.value)


def stepped_optimizer(call: cst.Call, model: "Model") -> cst.BaseExpression | None:
    """The optimizer that `call` steps: `opt` of `opt.step()` and of `scaler.step(opt)`, else None."""
    if not is_optimizer_step(call, model):
        return None
    receiver = call.func.value  # type: ignore[attr-defined]
    if "scaler" in (dotted_name(receiver) or "").rsplit(".", 1)[-1].lower():
        return call.args[0].value if call.args else None
    return receiver


def _local_calls(nodes: list[cst.CSTNode]) -> Iterator[str]:
    for node in nodes:
        if type(node) is cst.Call and type(node.func) is cst.Name:  # type: ignore[attr-defined]
            yield node.func.value  # type: ignore[attr-defined]


class LoopClassifier:
    """Classifies loops of one module; results are cached per loop node."""

    def __init__(self, model: "Model") -> None:
        # The model holds its classifier; a proxy keeps that from being a reference cycle.
        self.m = weakref.proxy(model)
        self._kinds: dict[int, LoopKind] = {}
        self._trains: dict[int, bool] = {}
        self._open_helpers = 0
        self._helper_kind: dict[str, LoopKind] = {}

    def kind(self, loop: cst.For | cst.While) -> LoopKind:
        """The kind of `loop`; its ancestors let EVAL see an enclosing no_grad."""
        cached = self._kinds.get(id(loop))
        if cached is not None:
            return cached
        kind = self._classify(loop, self.m.tree.path(loop)[:-1])
        self._kinds[id(loop)] = kind
        return kind

    def _classify(self, loop: cst.For | cst.While, stack: list[cst.CSTNode]) -> LoopKind:
        kind = LoopKind.NONE
        if self._is_train(loop):
            kind |= LoopKind.TRAIN
        nested = list(_body_nodes(loop.body, into_loops=True))
        inner_loops = [n for n in nested if type(n) is cst.For or type(n) is cst.While]
        if any(self._is_train(inner) for inner in inner_loops) or any(
            self._helper(name) & LoopKind.EPOCH for name in set(_local_calls(nested))
        ):
            kind |= LoopKind.EPOCH
        if not kind & LoopKind.TRAIN and self._evaluates(loop, stack, nested):
            kind |= LoopKind.EVAL
        if isinstance(loop, cst.For) and self.iterates_loader(loop.iter):
            kind |= LoopKind.DATA
        return kind

    def _is_train(self, loop: cst.For | cst.While) -> bool:
        known = self._trains.get(id(loop))
        if known is None:
            direct = [n for part in _loop_body(loop) for n in (part, *_body_nodes(part, into_loops=False))]
            known = _trains(direct, self.m) or any(self._helper(name) & LoopKind.TRAIN for name in set(_local_calls(direct)))
            if not self._open_helpers:  # inside a helper, its recursion guard may still stand in for its kind
                self._trains[id(loop)] = known
        return known

    def _helper(self, name: str) -> LoopKind:
        """What calling a local helper does: TRAIN if it trains outside its loops, EPOCH if it has a TRAIN loop."""
        if name in self._helper_kind:
            return self._helper_kind[name]
        self._helper_kind[name] = LoopKind.NONE  # recursion guard
        func = self.m.program.function(name)
        kind = LoopKind.NONE
        if func is not None:
            self._open_helpers += 1
            try:
                direct = list(_body_nodes(func.body, into_loops=False))
                if _trains(direct, self.m):
                    kind |= LoopKind.TRAIN
                loops = [n for n in _body_nodes(func.body, into_loops=True) if isinstance(n, LOOP_TYPES)]
                if any(self._is_train(lp) for lp in loops):
                    kind |= LoopKind.EPOCH
            finally:
                self._open_helpers -= 1
        self._helper_kind[name] = kind
        return kind

    def _evaluates(self, loop: cst.For | cst.While, stack: list[cst.CSTNode], nested: list[cst.CSTNode]) -> bool:
        ctx = self.m.torch
        for node in stack:
            if isinstance(node, cst.With) and any(ctx.is_no_grad(i.item) for i in node.items):
                return True
            if isinstance(node, cst.FunctionDef) and any(ctx.is_no_grad(d.decorator) for d in node.decorators):
                return True
        for node in nested:
            if isinstance(node, cst.With) and any(ctx.is_no_grad(i.item) for i in node.items):
                return True
        func = next((n for n in reversed(stack) if isinstance(n, cst.FunctionDef)), None)
        return func is not None and _eval_before(func, loop)

    def iterates_loader(self, expr: cst.CSTNode) -> bool:
        """`loader`, `enumerate(train_loader)`, `tqdm(DataLoader(...))`, `self.val_dl`."""
        while isinstance(expr, cst.Call):
            callee = dotted_name(expr.func) or ""
            if callee.rsplit(".", 1)[-1] in LOADER_CONSTRUCTORS:
                return True
            if callee not in ITER_WRAPPERS or not expr.args:
                return False
            expr = expr.args[0].value
        name = dotted_name(expr)
        if name is None:
            return False
        last = name.rsplit(".", 1)[-1]
        if LOADER_NAME.search(last):
            return True
        if isinstance(expr, cst.Name):
            for binding in self.m.facts_at(expr).bindings_of(expr.value):
                value = binding.value
                if isinstance(value, cst.Call) and (dotted_name(value.func) or "").endswith("DataLoader"):
                    return True
        return False


def _trains(nodes: list[cst.CSTNode], model: "Model") -> bool:
    calls = [n for n in nodes if type(n) is cst.Call]
    return any(is_backward(c) for c in calls) and any(is_optimizer_step(c, model) for c in calls)


def _eval_before(func: cst.FunctionDef, loop: cst.CSTNode) -> bool:
    """`.eval()` runs in `func` before `loop` (in source order) with no `.train()` after it."""
    mode: str | None = None
    for node in _source_order(func.body):
        if node is loop:
            return mode == "eval"
        if isinstance(node, cst.Call):
            name = _method(node)
            if name == "eval" and not node.args:
                mode = "eval"
            elif name == "train" and not _train_false(node):
                mode = "train"
    return False


def _train_false(call: cst.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == "False"


def _source_order(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not root:
            continue
        stack.extend(reversed(list(children(node))))


def is_step_guard(test: cst.CSTNode) -> bool:
    """`step % k == 0`, `(i + 1) % log_every == 0`, `not it % 10`, `batch_idx % args.log_interval == 0`."""
    for node in (test, *_all(test)):
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            names = [dotted_name(n) or "" for n in (node.left, *_all(node.left)) if isinstance(n, (cst.Name, cst.Attribute))]
            if any(STEP_NAMES.search(name.rsplit(".", 1)[-1]) for name in names):
                return True
    return False


def _all(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = list(children(node))
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def in_step_guard(stack: list[cst.CSTNode]) -> bool:
    """Whether the last node of `stack` runs under a step guard inside the innermost loop."""
    for i in range(len(stack) - 2, -1, -1):
        node = stack[i]
        if isinstance(node, LOOP_TYPES) or isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return False
        if isinstance(node, cst.If) and stack[i + 1] is not node.test and is_step_guard(node.test):
            # Only the `if` body is periodic; an `else:` branch runs on the other steps.
            return stack[i + 1] is node.body
    return False


def step_guarded(tree: "Tree", loop: cst.CSTNode, node: cst.CSTNode) -> bool:
    """Whether `node` runs in the body of a step guard (`if step % k == 0:`) that lies inside `loop`."""
    for anc in tree.ancestors(node):
        if anc is loop:
            return False
        if isinstance(anc, cst.If) and is_step_guard(anc.test) and tree.contains(anc.body, node):
            return True
    return False


def bound_in(loop: cst.For | cst.While, skip: cst.CSTNode | None) -> set[str]:
    """Names and dotted targets assigned in the loop (its targets included), except in `skip`."""
    bound: set[str] = set()
    targets: list[cst.CSTNode] = []
    if isinstance(loop, cst.For):
        targets.append(loop.target)
    skipped = {id(n) for n in iter_nodes(skip)} if skip is not None else set()
    for node in iter_nodes(loop.body, enter_scopes=False):
        if id(node) in skipped:
            continue
        if isinstance(node, cst.Assign):
            targets.extend(t.target for t in node.targets)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            targets.append(node.target)
        elif isinstance(node, (cst.For, cst.CompFor)):
            targets.append(node.target)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            targets.append(node.asname.name)
        elif isinstance(node, cst.NamedExpr):
            targets.append(node.target)
    for target in targets:
        for n in (target, *iter_nodes(target, enter_scopes=False)):
            name = dotted_name(n) if isinstance(n, (cst.Name, cst.Attribute)) else None
            if name:
                bound.add(name)
    return bound


def shallow_nodes(body: cst.CSTNode) -> list[cst.CSTNode]:
    """Nodes of `body` outside nested loops and functions; nested loops and their iterables are included."""
    out: list[cst.CSTNode] = []
    stack = list(children(body))
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            if isinstance(node, cst.For):
                out.append(node.iter)
                out.extend(iter_nodes(node.iter))
            continue
        stack.extend(children(node))
    return out
