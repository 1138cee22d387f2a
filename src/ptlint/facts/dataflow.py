"""Simple def-use of local names, in source order, for one function or module scope."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ptlint.facts.walk import children

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
        best = None
        for b in self.bindings.get(name, ()):
            if b.order < at:
                best = b
        return best

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

    def _bind(self, name: str, value: cst.CSTNode | None, kind: str) -> None:
        b = Binding(name, self._tick(), self._stmt, value, kind, tuple(self._loops))
        self.bindings.setdefault(name, []).append(b)

    def _params(self, params: cst.Parameters) -> None:
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            self._bind(p.name.value, None, "param")
        for p in (params.star_arg, params.star_kwarg):
            if isinstance(p, cst.Param):
                self._bind(p.name.value, None, "param")

    def _target(self, target: cst.CSTNode, value: cst.CSTNode | None, kind: str) -> None:
        if isinstance(target, cst.Name):
            self._bind(target.value, value, kind)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._target(el.value, None, kind)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value, None, kind)
        else:
            self._visit(target)

    def _visit(self, node: cst.CSTNode) -> None:
        self._order[id(node)] = self._tick()
        is_stmt = isinstance(node, cst.BaseStatement)
        if is_stmt:
            saved, self._stmt = self._stmt, node
        self._dispatch(node)
        if is_stmt:
            self._stmt = saved
        self._end[id(node)] = self._tick()

    def _dispatch(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Name):
            self.uses.setdefault(node.value, []).append(Use(node.value, self._n, node, tuple(self._loops)))
        elif isinstance(node, cst.Attribute):
            if isinstance(node.value, cst.Name):
                self._attr_of[id(node.value)] = node.attr.value
            self._visit(node.value)
        elif isinstance(node, cst.Arg):
            self._visit(node.value)
        elif isinstance(node, cst.Assign):
            self._visit(node.value)
            for t in node.targets:
                self._target(t.target, node.value, "assign")
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self._visit(node.value)
                self._target(node.target, node.value, "assign")
        elif isinstance(node, cst.AugAssign):
            self._visit(node.value)
            self._visit(node.target)
            if isinstance(node.target, cst.Name):
                self._bind(node.target.value, node, "augassign")
        elif isinstance(node, cst.NamedExpr):
            self._visit(node.value)
            self._target(node.target, node.value, "assign")
        elif isinstance(node, (cst.For, cst.While)):
            if isinstance(node, cst.For):
                self._visit(node.iter)
            else:
                self._visit(node.test)
            self._loops.append(node)
            if isinstance(node, cst.For):
                self._target(node.target, node.iter, "for")
            self._visit(node.body)
            self._loops.pop()
            if node.orelse is not None:
                self._visit(node.orelse)
        elif isinstance(node, cst.WithItem):
            self._visit(node.item)
            if node.asname is not None:
                self._target(node.asname.name, node.item, "with")
        elif isinstance(node, cst.CompFor):
            self._visit(node.iter)
            self._target(node.target, node.iter, "comp")
            for cond in node.ifs:
                self._visit(cond)
            if node.inner_for_in is not None:
                self._visit(node.inner_for_in)
        elif isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            self._visit(node.for_in)
            self._visit(node.elt)
        elif isinstance(node, cst.DictComp):
            self._visit(node.for_in)
            self._visit(node.key)
            self._visit(node.value)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            for d in node.decorators:
                self._visit(d)
            self._bind(node.name.value, node, "def")
        elif isinstance(node, cst.Lambda):
            return
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            if not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        self._bind(alias.asname.name.value, node, "import")
                    elif isinstance(alias.name, cst.Name):
                        self._bind(alias.name.value, node, "import")
        elif isinstance(node, cst.ExceptHandler):
            if node.type is not None:
                self._visit(node.type)
            if node.name is not None and isinstance(node.name.name, cst.Name):
                self._bind(node.name.name.value, None, "except")
            self._visit(node.body)
        elif isinstance(node, (cst.Global, cst.Nonlocal, cst.Del)):
            return
        else:
            for child in children(node):
                self._visit(child)
