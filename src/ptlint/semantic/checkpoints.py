"""What `torch.save` calls store: the nn.Modules that they pickle whole, inside checkpoint dicts too."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.kinds import SELF_RETURNING

if TYPE_CHECKING:
    from ptlint.semantic import Model

SAVE_NAMES = {"torch.save", "torch.serialization.save"}
LOAD_NAMES = {"torch.load", "torch.serialization.load"}
# Producers of ScriptModules and exported programs: not pickled modules.
NOT_PICKLED = {
    "torch.jit.script", "torch.jit.trace", "torch.jit.trace_module", "torch.jit.load", "torch.jit.freeze",
    "torch.jit.optimize_for_inference", "torch.export.export", "torch.export.load", "torch.export.export_for_training",
}
# Calls whose last name says they return weights, not a module.
WEIGHTS_CALL_RE = re.compile(r"state_dict|weight|builder")
CONTAINER_CALLS = {"dict", "OrderedDict", "collections.OrderedDict"}
LITERALS = (
    cst.BaseString, cst.Integer, cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Tuple, cst.Set,
    cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp,
)
# (where to report, the module expressions to replace by their `state_dict()`)
ModuleHit = tuple[cst.CSTNode, list[cst.BaseExpression]]
# (the key of a checkpoint dict, or None for the saved object itself; the stored value)
Entry = tuple["str | None", cst.CSTNode]


def saved_value(call: cst.Call) -> cst.BaseExpression | None:
    """The `obj` argument of a `torch.save` call: the first positional one or `obj=`."""
    if call.args and not call.args[0].star and call.args[0].keyword is None:
        return call.args[0].value
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "obj"), None)


class Checkpoints:
    """The modules that the `torch.save` calls of one file pickle."""

    def __init__(self, model: "Model") -> None:
        self.m = model

    def saved_modules(self, call: cst.Call) -> list[ModuleHit]:
        """The nn.Modules that `call` pickles whole, when it is a `torch.save` call: the saved object, the
        values of a checkpoint dict or list, and `name[key] = value` items of a dict built first."""
        if self.m.qualified_name(call.func) not in SAVE_NAMES:
            return []
        saved = saved_value(call)
        if saved is None:
            return []
        return [hit for value in self._checkpoint_values(saved) for hit in self._hits(value)]

    def is_pickled_module(self, expr: cst.CSTNode) -> bool:
        """An nn.Module (`Model.is_module`) that `torch.save` pickles: not a ScriptModule, an exported
        program, a literal or the result of a call that returns weights."""
        if self._not_pickled(expr):
            return False
        value = self.m.value(expr) if isinstance(expr, cst.Name) else None
        if value is not None and self._not_pickled(value):
            return False
        if isinstance(expr, cst.Name) and expr.value == "self":
            info = self.m.class_info(expr)  # `torch.save(self, path)` in a method of a module class
            return info is not None and info.is_module and self.m.tree.function(expr) is not None
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            if any(self._not_pickled(v) for v in self.m.self_values(expr)):
                return False
        return self.m.is_module(expr)

    def entries(self, call: cst.Call) -> list[Entry]:
        """What a `torch.save` call stores, as (key, value) pairs: the items of a checkpoint dict (a literal,
        `dict(...)`, or a name assigned one and then `name[key] = value`), else one pair (None, saved)."""
        if self.m.qualified_name(call.func) not in SAVE_NAMES:
            return []
        saved = saved_value(call)
        if saved is None:
            return []
        out: list[Entry] = []
        for value in self._checkpoint_values(saved):
            if isinstance(value, cst.Dict):
                out.extend((_key(e.key), e.value) for e in value.elements if isinstance(e, cst.DictElement))
            elif isinstance(value, cst.Call) and _is_container(value) and not isinstance(value.func, cst.Attribute):
                out.extend((a.keyword.value, a.value) for a in value.args if a.keyword is not None)
            elif value is saved:
                out.append((None, value))
            else:  # `name[key] = value` after the dict was built
                target = self.m.tree.parent(value)
                assign = target if isinstance(target, cst.Assign) else None
                sub = assign.targets[0].target if assign is not None else None
                key = sub.slice[0].slice if isinstance(sub, cst.Subscript) and len(sub.slice) == 1 else None
                out.append((_key(key.value) if isinstance(key, cst.Index) else None, value))
        return out

    def restores(self, load: cst.Call) -> list[tuple[cst.Call, str | None]]:
        """The `x.load_state_dict(...)` calls that take what the `torch.load` call `load` returns: the call
        itself, a name assigned it, or `name[key]` (the key is returned)."""
        m = self.m
        if m.qualified_name(load.func) not in LOAD_NAMES:
            return []
        tree = m.tree
        parent = tree.parent(load)
        out: list[tuple[cst.Call, str | None]] = []
        if isinstance(parent, cst.Arg) and _is_restore(tree.parent(parent)):
            return [(tree.parent(parent), None)]  # type: ignore[list-item]
        assign = parent if isinstance(parent, cst.Assign) and parent.value is load else None
        if assign is None or len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
            return out
        name = assign.targets[0].target.value
        for use in m.facts_at(load).uses.get(name, ()):
            b = m.binding(use.node)
            if b is None or b.value is not load:
                continue
            node: cst.CSTNode = use.node
            key = None
            up = tree.parent(node)
            if isinstance(up, cst.Subscript) and up.value is node and len(up.slice) == 1 and isinstance(up.slice[0].slice, cst.Index):
                key, node = _key(up.slice[0].slice.value), up
            arg = tree.parent(node)
            if isinstance(arg, cst.Arg) and arg.value is node and _is_restore(tree.parent(arg)):
                out.append((tree.parent(arg), key))  # type: ignore[arg-type]
        return out

    def _checkpoint_values(self, saved: cst.BaseExpression) -> list[cst.CSTNode]:
        """The saved expression, or for a name assigned a dict/list: its literal and `name[k] = v` values."""
        binding = self.m.binding(saved) if isinstance(saved, cst.Name) else None
        if binding is None or binding.kind != "assign" or binding.value is None or not _is_container(binding.value):
            return [saved]
        values = [binding.value]
        tree, facts = self.m.tree, self.m.facts_at(saved)
        for use in facts.uses.get(binding.name, ()):
            target = tree.parent(use.node)
            assign = tree.parent(tree.parent(target)) if isinstance(target, cst.Subscript) else None
            if isinstance(assign, cst.Assign) and len(assign.targets) == 1 and assign.targets[0].target is target:
                if binding.order < use.order and tree.precedes(assign, saved):
                    values.append(assign.value)
        return values

    def _hits(self, value: cst.CSTNode) -> Iterator[ModuleHit]:
        if isinstance(value, cst.Dict):
            for el in value.elements:
                if isinstance(el, cst.DictElement):
                    yield from self._hits(el.value)
        elif isinstance(value, (cst.List, cst.Tuple)):
            for el in value.elements:
                if isinstance(el, cst.Element):
                    yield from self._hits(el.value)
        elif isinstance(value, cst.Call) and _is_container(value):
            for arg in value.args:
                if arg.keyword is not None:
                    yield from self._hits(arg.value)
        elif isinstance(value, cst.IfExp):
            yield from self._ifexp_hits(value)
        elif isinstance(value, cst.BaseExpression) and self.is_pickled_module(value):
            yield value, [value]

    def _ifexp_hits(self, node: cst.IfExp) -> Iterator[ModuleHit]:
        """One hit for `a.module if ddp else a`, else the hits of each branch."""
        branches = (node.body, node.orelse)
        found = [list(self._hits(b)) for b in branches]
        if all(len(f) == 1 and f[0][0] is b for f, b in zip(found, branches)):
            yield node, [leaf for f in found for leaf in f[0][1]]
        else:
            for f in found:
                yield from f

    def _not_pickled(self, value: cst.CSTNode) -> bool:
        """A literal, a ScriptModule or exported program, or a call that returns weights."""
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            if value.func.attr.value not in SELF_RETURNING:
                break
            value = value.func.value  # `x.to(device).eval()` is `x`
        if isinstance(value, LITERALS) or (isinstance(value, cst.Name) and value.value in ("None", "True", "False")):
            return True
        if not isinstance(value, cst.Call):
            return False
        q = self.m.qualified_name(value.func) or dotted_name(value.func) or ""
        return q in NOT_PICKLED or bool(WEIGHTS_CALL_RE.search(q.rsplit(".", 1)[-1]))


def _is_container(value: cst.CSTNode) -> bool:
    """A dict/list/tuple literal, or a `dict(...)`/`OrderedDict(...)` call."""
    if isinstance(value, (cst.Dict, cst.List, cst.Tuple)):
        return True
    return isinstance(value, cst.Call) and (dotted_name(value.func) or "") in CONTAINER_CALLS


def _key(expr: cst.CSTNode | None) -> str | None:
    """The text of a string key (`"optimizer"`), or the source of another key expression."""
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return dotted_name(expr) if expr is not None else None


def _is_restore(call: cst.CSTNode | None) -> bool:
    """`x.load_state_dict(...)`."""
    return isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "load_state_dict"
