"""Train and eval mode of modules: the calls that switch a module's mode, the object an expression
stands for (through aliases and wrappers), and the mode changes in the body of a function.

A mode change is addressed by the object it changes (a `Root`), so `model.module.eval()`,
`m = model; m.eval()` and `evaluate(model)` with an in-file `evaluate` that calls `.eval()` on its
parameter all change the same `model`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from ptlint.facts.classes import ClassInfo, mode_layer
from ptlint.facts.dataflow import Binding
from ptlint.facts.imports import dotted_name
from ptlint.semantic.flow import is_false, is_true

if TYPE_CHECKING:
    from ptlint.semantic import Model

# Helpers that switch a module, or its norm layers, to eval mode: `set_eval_mode(m)`, `m.apply(set_bn_eval)`.
EVAL_HELPER_NAME = re.compile(r"eval_?mode|_eval$|(?:^|_)(?:set|to|switch_to|enter)_eval(?:_|$)")
# Factories whose result is in a mode the code does not show (a copy, or a scripted module saved in some mode).
MODE_METHODS = ("eval", "train", "apply")
UNKNOWN_FACTORIES = {"copy.deepcopy", "torch.jit.load", "torch.jit.script", "torch.jit.trace", "torch.jit.freeze"}


class Mode(enum.Enum):
    EVAL = "eval"
    TRAIN = "train"
    UNKNOWN = "unknown"  # chosen at run time (`m.train(flag)`) or not shown (a copy, a scripted module)
    PARTIAL = "partial"  # some layers switched to eval: `m.apply(set_bn_eval)`, a helper named `set_eval_mode(m)`


@dataclass(frozen=True)
class Root:
    """The object behind an expression: a local binding, `self.<attr>`, `self`, or a name free in its function."""

    name: str  # `model`, `self.net`, `self`
    binding: Binding | None = field(default=None, repr=False)  # for a name bound in its own function (or module)

    @property
    def on_self(self) -> bool:
        return self.name == "self" or self.name.startswith("self.")

    @property
    def attr(self) -> str | None:
        """`net` for `self.net`."""
        return self.name[len("self."):] if self.name.startswith("self.") else None

    @property
    def free(self) -> bool:
        return self.binding is None and not self.on_self


@dataclass(frozen=True)
class ModeChange:
    """`node` (a call or an assignment) leaves the object `root` in `mode`; `order` is where that happens."""

    node: cst.CSTNode = field(repr=False)
    root: Root
    mode: Mode
    order: int


class Modes:
    """Mode facts of one file, each computed once."""

    def __init__(self, model: "Model") -> None:
        self.m = model
        self._changes: dict[tuple[int, bool], list[ModeChange]] = {}
        self._calls: dict[int, list[tuple[cst.Call, cst.CSTNode, Mode]]] = {}

    # --- one call ---

    def mode_call(self, call: cst.Call) -> tuple[cst.CSTNode, Mode] | None:
        """The module that `call` switches (unwrapped: `model` for `model.module.eval()`) and its new mode:
        `m.eval()`, `m.train(False)` and `m.train(mode=False)` EVAL, `m.train()` TRAIN, `m.train(flag)` UNKNOWN,
        `m.apply(set_bn_eval)` PARTIAL."""
        func = call.func
        attr = func.attr.value if isinstance(func, cst.Attribute) else None
        if attr not in MODE_METHODS:
            return None
        receiver = self.m.torch.unwrap(func.value)  # type: ignore[union-attr]
        if attr == "eval":
            return (receiver, Mode.EVAL) if not call.args else None
        if attr == "apply":
            names = ((dotted_name(a.value) or "").lower() for a in call.args)
            return (receiver, Mode.PARTIAL) if any(EVAL_HELPER_NAME.search(n) for n in names) else None
        if attr != "train":
            return None
        if not call.args:
            return receiver, Mode.TRAIN
        arg = call.args[0]
        if arg.keyword is not None and arg.keyword.value != "mode":
            return None
        if is_true(arg.value) or is_false(arg.value):
            return receiver, Mode.TRAIN if is_true(arg.value) else Mode.EVAL
        return receiver, Mode.UNKNOWN

    def value_mode(self, value: cst.CSTNode) -> Mode | None:
        """The mode of the module `value` evaluates to, where the code shows it: the outermost mode call of a
        chain (`Net().eval().to(d)`), `from_pretrained` (eval), copies, scripted modules and in-file
        factories that call `.eval()` (unknown)."""
        base: cst.CSTNode | None = value
        while base is not None:
            found = self.mode_call(base) if isinstance(base, cst.Call) else None
            if found is not None:
                return found[1]
            value, base = base, self.m.torch.unwrap_once(base)
        if not isinstance(value, cst.Call):
            return None
        q = self.m.qualified_name(value.func) or dotted_name(value.func) or ""
        if q.endswith("from_pretrained"):
            return Mode.EVAL
        factory = self.m.program.callee(value)
        sets_eval = factory is not None and any(mode is Mode.EVAL for _, _, mode in self.mode_calls(factory))
        return Mode.UNKNOWN if q in UNKNOWN_FACTORIES or sets_eval else None

    # --- the object behind an expression ---

    def root(self, expr: cst.CSTNode, depth: int = 0) -> Root | None:
        """The object `expr` stands for, through wrappers (see `TorchFacts.unwrap`), aliases (`m = model`) and
        calls that transform it in place (`model = fuse(model, ...)`); None for other expressions."""
        expr = self.m.torch.unwrap(expr)
        if _is_self_attr(expr):
            return Root(f"self.{expr.attr.value}")  # type: ignore[attr-defined]
        if not isinstance(expr, cst.Name):
            return None
        if expr.value == "self":
            return Root("self")
        binding = self.m.binding(expr)
        return Root(expr.value) if binding is None else self.binding_root(binding, depth)

    def binding_root(self, binding: Binding, depth: int = 0) -> Root:
        """The object a binding holds: what an alias refers to, else the binding itself."""
        if binding.kind == "assign" and binding.value is not None and depth < 6:
            inner = _same_object(self.m.torch.unwrap(binding.value), binding.name)
            if isinstance(inner, cst.Name) or _is_self_attr(inner):
                found = self.root(inner, depth + 1)
                if found is not None:
                    return found
        return Root(binding.name, binding)

    # --- a function's mode changes ---

    def mode_calls(self, scope: cst.CSTNode) -> list[tuple[cst.Call, cst.CSTNode, Mode]]:
        """Every mode call (see `mode_call`) in the body of a function or the module, nested scopes left out,
        in source order: (call, unwrapped receiver, mode)."""
        key = id(scope)
        if key not in self._calls:
            tree = self.m.tree
            found = []
            for call in sorted((c for m in MODE_METHODS for c in tree.method_calls(m)), key=tree.order):
                hit = self.mode_call(call) if tree.body_of(call) is scope else None
                if hit is not None:
                    found.append((call, *hit))
            self._calls[key] = found
        return self._calls[key]

    def changes(self, scope: cst.CSTNode, follow_calls: bool = True) -> list[ModeChange]:
        """The mode changes in the body of a function or the module, in source order, nested scopes left
        out: mode calls; with `follow_calls`, calls of in-file helpers that switch modes (one level, see
        `call_changes`) and of helpers named like `set_eval_mode(m)`; `model = Net().eval()`,
        `self.t = t.eval()`, `m = X.from_pretrained(...)`; and `self.m = model`, which gives `self.m` the last
        mode of `model`."""
        key = (id(scope), follow_calls)
        if key in self._changes:
            return self._changes[key]
        tree = self.m.tree
        out: list[ModeChange] = []
        self._changes[key] = out  # a recursive helper sees what is known so far
        body = scope.body if isinstance(scope, cst.FunctionDef) else scope
        for node in tree.below(body, (cst.Call, cst.Assign, cst.AnnAssign), scopes=False):
            if isinstance(node, cst.Call):
                hit = self.mode_call(node)
                root = self.root(hit[0]) if hit is not None else None
                if hit is not None and root is not None:
                    out.append(ModeChange(node, root, hit[1], tree.order(node)))
                if follow_calls:
                    out.extend(ModeChange(node, r, mode, tree.order(node)) for r, mode in self.call_changes(node))
            elif node.value is not None:  # type: ignore[attr-defined]
                found = self._assigned(node, out)  # type: ignore[arg-type]
                out.extend(ModeChange(node, r, mode, tree.end(node)) for r, mode in found)
        return out

    def call_changes(self, call: cst.Call) -> list[tuple[Root, Mode]]:
        """The modes `call` leaves the caller's objects in: for an in-file function or method, the last mode it
        sets on each of them (see `passed_changes`); for a helper known only by a name like `set_eval_mode(m)`,
        PARTIAL for its arguments and receiver."""
        if self.m.program.callee(call) is None:
            name = (dotted_name(call.func) or "").rsplit(".", 1)[-1].lower()
            if not EVAL_HELPER_NAME.search(name):
                return []
            targets = [a.value for a in call.args]
            if isinstance(call.func, cst.Attribute):
                targets.append(call.func.value)
            return [(r, Mode.PARTIAL) for t in targets if (r := self.root(t)) is not None]
        last: dict[Root, Mode] = {}
        for root, mode in self.passed_changes(call):
            last[root] = mode
        return list(last.items())

    def passed_changes(self, call: cst.Call) -> list[tuple[Root, Mode]]:
        """Every mode change, in order, that the in-file function or method `call` runs makes on the caller's
        objects: on its parameters (mapped to the arguments of `call`), and for a method on `self` and its
        attributes (one level: the callee's own calls are not followed)."""
        callee = self.m.program.callee(call)
        if callee is None:
            return []
        out = []
        for change in self.changes(callee, follow_calls=False):
            binding = change.root.binding
            if change.root.on_self and isinstance(call.func, cst.Attribute):  # `self.helper(...)`: the same `self`
                out.append((change.root, change.mode))
            elif binding is not None and binding.kind == "param":
                arg = self.m.program.argument(call, callee, binding.name)
                root = self.root(arg) if arg is not None else None
                if root is not None:
                    out.append((root, change.mode))
        return out

    def _assigned(self, node: cst.Assign | cst.AnnAssign, so_far: list[ModeChange]) -> list[tuple[Root, Mode]]:
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        if len(targets) != 1 or node.value is None:
            return []
        target, mode = targets[0], self.value_mode(node.value)
        if mode is not None:
            if _is_self_attr(target):
                return [(Root(f"self.{target.attr.value}"), mode)]  # type: ignore[attr-defined]
            if isinstance(target, cst.Name):
                binds = self.m.facts_at(target).bindings_of(target.value)
                binding = next((b for b in binds if b.value is node.value), None)
                return [(self.binding_root(binding), mode)] if binding is not None else []
            return []
        if _is_self_attr(target) and isinstance(node.value, cst.Name):
            source = self.root(node.value)
            before = [c.mode for c in so_far if c.root == source]
            if source is not None and before:
                return [(Root(f"self.{target.attr.value}"), before[-1])]  # type: ignore[attr-defined]
        return []

    # --- layers without a mode ---

    def mode_free(self, ctor: cst.CSTNode) -> bool:
        """Whether the module that `ctor` builds (a constructor call, or an in-file class) behaves the same in
        train and eval mode: torch.nn layers and in-file modules without dropout or normalization."""
        if isinstance(ctor, cst.Name):
            return _class_mode_free(self.m.classes.get(ctor.value))
        if not isinstance(ctor, cst.Call):
            return False
        info = self.m.classes.get(dotted_name(ctor.func) or "")
        if info is not None:
            return _class_mode_free(info)
        q = self.m.qualified_name(ctor.func) or ""
        if not q.startswith("torch.nn.") or not q.rsplit(".", 1)[-1][:1].isupper() or mode_layer(q, ctor):
            return False
        if any(a.star for a in ctor.args):
            return False
        return all(self.mode_free(a.value) for a in ctor.args if isinstance(a.value, cst.Call))


def _class_mode_free(info: ClassInfo | None) -> bool:
    return info is not None and info.is_module and not info.mode_dependent


def _is_self_attr(expr: cst.CSTNode | None) -> bool:
    return isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self"


def _same_object(value: cst.CSTNode, name: str) -> cst.CSTNode:
    """`model` for `model = fuse(model, ...)`: a call given the object itself returns it, transformed."""
    if isinstance(value, cst.Call):
        for arg in value.args:
            if arg.keyword is None and isinstance(arg.value, cst.Name) and arg.value.value == name:
                return arg.value
    return value
