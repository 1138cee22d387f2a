"""Simple def-use of local names, in source order, for one function or module scope."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Callable

import libcst as cst

from ptlint.facts.walk import IsSubclass, children

LOOP_TYPES = (cst.For, cst.While)


@dataclass(frozen=True)
class Binding:
    """A name bound at `order`; `value` is the bound expression where it is known."""

    name: str
    order: int
    stmt: cst.CSTNode
    value: cst.CSTNode | None
    kind: str
    loops: tuple[cst.CSTNode, ...]
    # For a name bound by unpacking (`a, b = rhs`, `for a, b in rhs`): the whole `rhs`, the name's
    # position in the target and the target's length; `value` stays None for such names.
    source: cst.CSTNode | None = None
    index: int = -1
    arity: int = 0

    @property
    def unpacked(self) -> bool:
        return self.index >= 0

    def bound_value(self) -> cst.CSTNode | None:
        """`value`, or for `a, b = x, y` the element of the right-hand side that the name takes."""
        if self.value is not None or self.index < 0 or self.kind != "assign":
            return self.value
        rhs = self.source
        if isinstance(rhs, (cst.Tuple, cst.List)) and len(rhs.elements) == self.arity:
            element = rhs.elements[self.index]
            if not isinstance(element, cst.StarredElement):
                return element.value
        return None


@dataclass(frozen=True)
class Use:
    """A read of a name."""

    name: str
    order: int
    node: cst.Name
    loops: tuple[cst.CSTNode, ...]


class ScopeFacts:
    """Bindings and uses of the local names of one scope, numbered in source order."""

    def __init__(self, scope: cst.CSTNode) -> None:
        self.scope = scope
        self.bindings: dict[str, list[Binding]] = {}
        self.uses: dict[str, list[Use]] = {}
        self._order: dict[int, int] = {}
        self._end: dict[int, int] = {}
        self._loops: list[cst.CSTNode] = []
        self._loops_now: tuple[cst.CSTNode, ...] = ()
        self._attr_of: dict[int, str] = {}
        self._n = 0
        self._stmt: cst.CSTNode = scope
        if isinstance(scope, cst.FunctionDef):
            self._params(scope.params)
            self._visit(scope.body)
        else:
            for child in children(scope):
                self._visit(child)

    # --- queries ---

    def order_of(self, node: cst.CSTNode) -> int:
        return self._order.get(id(node), -1)

    def end_of(self, node: cst.CSTNode) -> int:
        """The order number just after `node` and everything below it."""
        return self._end.get(id(node), self.order_of(node))

    def reaching(self, name: str, node: cst.CSTNode) -> Binding | None:
        """The last binding of `name` before `node` in source order."""
        at = self.order_of(node)
        binds = self.bindings.get(name)
        if not binds:
            return None
        i = bisect_left(binds, at, key=_order)  # bindings are kept in source order
        return binds[i - 1] if i else None

    def uses_after(self, name: str, node: cst.CSTNode) -> list[Use]:
        end = self.end_of(node)
        return [u for u in self.uses.get(name, ()) if u.order > end]

    def parent_attr(self, name: cst.Name) -> str | None:
        """`attr` when the name is read as `name.attr`."""
        return self._attr_of.get(id(name))

    def attrs_used(self, name: str) -> set[str]:
        """Every `attr` read as `name.attr` in the scope."""
        return {a for u in self.uses.get(name, ()) if (a := self._attr_of.get(id(u.node)))}

    def bindings_of(self, name: str) -> list[Binding]:
        return self.bindings.get(name, [])

    def contains(self, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
        """Whether `inner` lies inside `outer` (both in this scope)."""
        o, i = self.order_of(outer), self.order_of(inner)
        return o != -1 and o <= i <= self.end_of(outer)

    # --- building ---

    def _tick(self) -> int:
        self._n += 1
        return self._n

    def _bind(self, name: str, value: cst.CSTNode | None, kind: str, unpacked: tuple[cst.CSTNode, int, int] | None = None) -> None:
        self._n += 1
        if unpacked is None:
            b = Binding(name, self._n, self._stmt, value, kind, self._loops_now)
        else:
            b = Binding(name, self._n, self._stmt, value, kind, self._loops_now, *unpacked)
        self.bindings.setdefault(name, []).append(b)

    def _params(self, params: cst.Parameters) -> None:
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            self._bind(p.name.value, None, "param")
        for p in (params.star_arg, params.star_kwarg):
            if isinstance(p, cst.Param):
                self._bind(p.name.value, None, "param")

    def _target(
        self, target: cst.CSTNode, value: cst.CSTNode | None, kind: str, unpacked: tuple[cst.CSTNode, int, int] | None = None
    ) -> None:
        if isinstance(target, cst.Name):
            self._bind(target.value, value, kind, unpacked)
        elif isinstance(target, (cst.Tuple, cst.List)):
            size = len(target.elements)
            for index, el in enumerate(target.elements):
                self._target(el.value, None, kind, (value, index, size) if value is not None and unpacked is None else None)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value, None, kind)
        else:
            self._visit(target)

    def _visit(self, node: cst.CSTNode) -> None:
        self._n += 1
        self._order[id(node)] = self._n
        kind = type(node)
        handler = _HANDLERS.get(kind) or _handler_for(kind)
        if _IS_STATEMENT[kind]:
            saved, self._stmt = self._stmt, node
            handler(self, node)
            self._stmt = saved
        else:
            handler(self, node)
        self._n += 1
        self._end[id(node)] = self._n

    def _dispatch(self, node: cst.CSTNode) -> None:
        (_HANDLERS.get(type(node)) or _handler_for(type(node)))(self, node)

    # One method per kind of node; `_handler_for` picks it by the node's type.

    def _on_name(self, node: cst.Name) -> None:
        self.uses.setdefault(node.value, []).append(Use(node.value, self._n, node, self._loops_now))

    def _on_attribute(self, node: cst.Attribute) -> None:
        if type(node.value) is cst.Name:
            self._attr_of[id(node.value)] = node.attr.value
        self._visit(node.value)

    def _on_arg(self, node: cst.Arg) -> None:
        self._visit(node.value)

    def _on_assign(self, node: cst.Assign) -> None:
        self._visit(node.value)
        for t in node.targets:
            self._target(t.target, node.value, "assign")

    def _on_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._visit(node.value)
            self._target(node.target, node.value, "assign")

    def _on_aug_assign(self, node: cst.AugAssign) -> None:
        self._visit(node.value)
        self._visit(node.target)
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value, node, "augassign")

    def _on_named_expr(self, node: cst.NamedExpr) -> None:
        self._visit(node.value)
        self._target(node.target, node.value, "assign")

    def _on_loop(self, node: cst.For | cst.While) -> None:
        is_for = isinstance(node, cst.For)
        if is_for:
            self._visit(node.iter)  # type: ignore[union-attr]
        else:
            self._visit(node.test)  # type: ignore[union-attr]
        self._loops.append(node)
        self._loops_now = tuple(self._loops)
        if is_for:
            self._target(node.target, node.iter, "for")  # type: ignore[union-attr]
        self._visit(node.body)
        self._loops.pop()
        self._loops_now = tuple(self._loops)
        if node.orelse is not None:
            self._visit(node.orelse)

    def _on_with_item(self, node: cst.WithItem) -> None:
        self._visit(node.item)
        if node.asname is not None:
            self._target(node.asname.name, node.item, "with")

    def _on_comp_for(self, node: cst.CompFor) -> None:
        self._visit(node.iter)
        self._target(node.target, node.iter, "comp")
        for cond in node.ifs:
            self._visit(cond)
        if node.inner_for_in is not None:
            self._visit(node.inner_for_in)

    def _on_comp(self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp) -> None:
        self._visit(node.for_in)
        self._visit(node.elt)

    def _on_dict_comp(self, node: cst.DictComp) -> None:
        self._visit(node.for_in)
        self._visit(node.key)
        self._visit(node.value)

    def _on_def(self, node: cst.FunctionDef | cst.ClassDef) -> None:
        for d in node.decorators:
            self._visit(d)
        self._bind(node.name.value, node, "def")

    def _on_nothing(self, node: cst.CSTNode) -> None:
        return None

    def _on_import(self, node: cst.Import | cst.ImportFrom) -> None:
        if not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._bind(alias.asname.name.value, node, "import")
                elif isinstance(alias.name, cst.Name):
                    self._bind(alias.name.value, node, "import")

    def _on_except(self, node: cst.ExceptHandler) -> None:
        if node.type is not None:
            self._visit(node.type)
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self._bind(node.name.name.value, None, "except")
        self._visit(node.body)

    def _on_other(self, node: cst.CSTNode) -> None:
        for child in children(node):
            self._visit(child)


def _order(b: Binding) -> int:
    return b.order


# Node classes, in the order they are tried, and the method that handles them.
_KINDS: tuple[tuple[tuple[type, ...], Callable[[ScopeFacts, Any], None]], ...] = (
    ((cst.Name,), ScopeFacts._on_name),
    ((cst.Attribute,), ScopeFacts._on_attribute),
    ((cst.Arg,), ScopeFacts._on_arg),
    ((cst.Assign,), ScopeFacts._on_assign),
    ((cst.AnnAssign,), ScopeFacts._on_ann_assign),
    ((cst.AugAssign,), ScopeFacts._on_aug_assign),
    ((cst.NamedExpr,), ScopeFacts._on_named_expr),
    ((cst.For, cst.While), ScopeFacts._on_loop),
    ((cst.WithItem,), ScopeFacts._on_with_item),
    ((cst.CompFor,), ScopeFacts._on_comp_for),
    ((cst.ListComp, cst.SetComp, cst.GeneratorExp), ScopeFacts._on_comp),
    ((cst.DictComp,), ScopeFacts._on_dict_comp),
    ((cst.FunctionDef, cst.ClassDef), ScopeFacts._on_def),
    ((cst.Lambda,), ScopeFacts._on_nothing),
    ((cst.Import, cst.ImportFrom), ScopeFacts._on_import),
    ((cst.ExceptHandler,), ScopeFacts._on_except),
    ((cst.Global, cst.Nonlocal, cst.Del), ScopeFacts._on_nothing),
)
_HANDLERS: dict[type, Callable[[ScopeFacts, Any], None]] = {}


def _handler_for(kind: type) -> Callable[[ScopeFacts, Any], None]:
    """The handler of the first entry of _KINDS that `kind` subclasses (cached: a dict lookup beats isinstance)."""
    handler = next((h for types, h in _KINDS if issubclass(kind, types)), ScopeFacts._on_other)
    _HANDLERS[kind] = handler
    return handler


_IS_STATEMENT = IsSubclass(cst.BaseStatement)
