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
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            if any(self._not_pickled(v) for v in self.m.self_values(expr)):
                return False
        return self.m.is_module(expr)

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
