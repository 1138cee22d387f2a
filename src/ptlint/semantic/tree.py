"""Parent links and source order of every node of a module, computed once in one pass."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from heapq import merge
from typing import Any, Iterator

import libcst as cst

from ptlint.facts.walk import IsSubclass, children, iter_nodes

LOOP_TYPES = (cst.For, cst.While)
FUNCTION_TYPES = (cst.FunctionDef, cst.Lambda)
SCOPE_TYPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


class Tree:
    """Who is whose parent, and where each node starts and ends in source order.

    Every answer depends only on the node asked about, never on where the engine's walk is.
    """

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        # id(node) -> (node, parent, order, end, innermost function around it): the node itself is kept
        # so its id cannot be reused.
        self._info: dict[int, tuple[cst.CSTNode, cst.CSTNode | None, int, int, cst.FunctionDef | None]] = {}
        # (types asked for) -> {node type: whether it is one of them}: a dict lookup, not an ABC isinstance.
        self._is: dict[Any, IsSubclass] = {}
        # Built when first asked: node type -> (orders, nodes) in source order; identifier -> its Name nodes.
        self._by_type: dict[type, tuple[list[int], list[cst.CSTNode]]] | None = None
        self._by_name: dict[str, list[cst.Name]] | None = None
        self._build()

    def _build(self) -> None:
        """One pass in source order (preorder), then one backward pass for where each subtree ends."""
        pre: list[Any] = []
        parents: list[Any] = []
        funcs: list[Any] = []
        up: list[int] = []  # index of the parent in `pre`
        function_def = cst.FunctionDef
        stack: list[tuple[Any, Any, int, Any]] = [(self.module, None, -1, None)]
        while stack:
            node, parent, parent_index, func = stack.pop()
            index = len(pre)
            pre.append(node)
            parents.append(parent)
            funcs.append(func)
            up.append(parent_index)
            kids = children(node)
            if kids:
                inner = node if type(node) is function_def else func
                stack.extend([(child, node, index, inner) for child in reversed(kids)])
        ends = list(range(len(pre)))
        for index in range(len(pre) - 1, 0, -1):
            parent_index = up[index]
            if ends[index] > ends[parent_index]:
                ends[parent_index] = ends[index]
        self.preorder = pre  # every node in source order; order(node) == its index + 1
        self.ends = ends  # index of the last node of each node's subtree, by index
        info = self._info
        for index, node in enumerate(pre):
            info[id(node)] = (node, parents[index], index + 1, ends[index] + 1, funcs[index])

    # --- links ---

    def known(self, node: cst.CSTNode) -> bool:
        hit = self._info.get(id(node))
        return hit is not None and hit[0] is node

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        hit = self._info.get(id(node))
        return hit[1] if hit is not None and hit[0] is node else None

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """The ancestors of `node`, innermost first (the module last)."""
        current = self.parent(node)
        while current is not None:
            yield current
            current = self.parent(current)

    def path(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The module down to `node` (both included), like the engine's walk stack at `node`."""
        out = [node, *self.ancestors(node)]
        out.reverse()
        return out

    def order(self, node: cst.CSTNode) -> int:
        hit = self._info.get(id(node))
        return hit[2] if hit is not None and hit[0] is node else -1

    def end(self, node: cst.CSTNode) -> int:
        """The order of the last node below `node` (its own order for a leaf)."""
        hit = self._info.get(id(node))
        return hit[3] if hit is not None and hit[0] is node else -1

    def contains(self, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
        """Whether `inner` is `outer` or lies below it."""
        o, i = self.order(outer), self.order(inner)
        return o != -1 and i != -1 and o <= i <= self.end(outer)

    def precedes(self, a: cst.CSTNode, b: cst.CSTNode) -> bool:
        """Whether `a` ends before `b` starts in source order."""
        end, start = self.end(a), self.order(b)
        return end != -1 and start != -1 and end < start

    # --- nodes by type and by name (indexes built once) ---

    def _index(self) -> dict[type, tuple[list[int], list[cst.CSTNode]]]:
        if self._by_type is None:
            index: dict[type, tuple[list[int], list[cst.CSTNode]]] = {}
            for position, node in enumerate(self.preorder):
                entry = index.get(type(node))
                if entry is None:
                    entry = index[type(node)] = ([], [])
                entry[0].append(position + 1)
                entry[1].append(node)
            self._by_type = index
        return self._by_type

    def of_type(self, types: type | tuple[type, ...]) -> list[cst.CSTNode]:
        """Every node of the file that is an instance of `types`, in source order."""
        return self.below(self.module, types)

    def below(self, root: cst.CSTNode, types: type | tuple[type, ...], scopes: bool = True) -> list[cst.CSTNode]:
        """The nodes of `types` strictly below `root`, in source order; with `scopes=False`, not those
        inside functions, classes or lambdas below `root` (as `iter_nodes(root)` walks)."""
        start, end = self.order(root), self.end(root)
        if start == -1:
            return []
        parts = []
        for kind, (orders, found) in self._index().items():
            if issubclass(kind, types):
                parts.append(found[bisect_right(orders, start):bisect_left(orders, end + 1)])
        out = parts[0] if len(parts) == 1 else list(merge(*parts, key=self.order)) if parts else []
        if not scopes:
            out = [n for n in out if not self._in_scope_below(n, root)]
        return out

    def _in_scope_below(self, node: cst.CSTNode, root: cst.CSTNode) -> bool:
        for anc in self.ancestors(node):
            if anc is root:
                return False
            if isinstance(anc, SCOPE_TYPES):
                return True
        return False

    def names(self, identifier: str) -> list[cst.Name]:
        """Every `Name` node that spells `identifier` (loads, stores, attribute and keyword names), in source order."""
        if self._by_name is None:
            self._by_name = {}
            for name in self.of_type(cst.Name):
                self._by_name.setdefault(name.value, []).append(name)  # type: ignore[attr-defined]
        return self._by_name.get(identifier, [])

    def method_calls(self, method: str) -> list[cst.Call]:
        """Every call `<receiver>.<method>(...)` of the file, in source order."""
        out = []
        for name in self.names(method):
            attr = self.parent(name)
            call = self.parent(attr) if isinstance(attr, cst.Attribute) and attr.attr is name else None
            if isinstance(call, cst.Call) and call.func is attr:
                out.append(call)
        return out

    def identifiers(self) -> set[str]:
        """Every identifier spelled by a `Name` node of the file."""
        self.names("")
        return set(self._by_name or ())

    # --- enclosing constructs ---

    def enclosing(self, node: cst.CSTNode, types: type | tuple[type, ...]) -> cst.CSTNode | None:
        """The innermost strict ancestor of one of `types`."""
        table = self._is.get(types)
        if table is None:
            table = self._is[types] = IsSubclass(types)  # type: ignore[arg-type]
        info = self._info
        hit = info.get(id(node))
        while hit is not None:
            anc = hit[1]
            if anc is None:
                return None
            if table[type(anc)]:
                return anc
            hit = info.get(id(anc))
        return None

    def statement(self, node: cst.CSTNode) -> cst.BaseStatement | None:
        """The innermost statement holding `node` (`node` itself when it is one)."""
        if isinstance(node, cst.BaseStatement):
            return node
        return self.enclosing(node, cst.BaseStatement)  # type: ignore[return-value]

    def function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        """The innermost function definition around `node` (`node` itself excluded)."""
        hit = self._info.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[4]
        return None

    def class_def(self, node: cst.CSTNode) -> cst.ClassDef | None:
        return self.enclosing(node, cst.ClassDef)  # type: ignore[return-value]

    def scope(self, node: cst.CSTNode) -> cst.CSTNode:
        """The function whose local names `node` sees, or the module (class bodies and lambdas belong to it)."""
        return self.function(node) or self.module

    def body_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The function whose body runs `node`, or the module; None for a node in a class body, a lambda or
        a function's header (decorators, defaults, annotations)."""
        owner = self.enclosing(node, SCOPE_TYPES)
        if owner is None:
            return self.module
        return owner if isinstance(owner, cst.FunctionDef) and self.contains(owner.body, node) else None

    def method_of(self, func: cst.FunctionDef) -> cst.ClassDef | None:
        """The class of which `func` is a method (defined directly in its body), or None."""
        parent = self.parent(func)
        if isinstance(parent, cst.IndentedBlock):
            parent = self.parent(parent)
        return parent if isinstance(parent, cst.ClassDef) else None

    def loops(self, node: cst.CSTNode) -> list[cst.For | cst.While]:
        """The loops around `node` inside its own function, outermost first (`node` itself when it is one)."""
        out: list[cst.For | cst.While] = []
        for anc in (node, *self.ancestors(node)):
            if isinstance(anc, FUNCTION_TYPES):
                break
            if isinstance(anc, LOOP_TYPES):
                out.append(anc)
        out.reverse()
        return out

    def withs(self, node: cst.CSTNode) -> list[cst.With]:
        """The `with` statements around `node` inside its own function, outermost first."""
        out = []
        for anc in self.ancestors(node):
            if isinstance(anc, FUNCTION_TYPES):
                break
            if isinstance(anc, cst.With):
                out.append(anc)
        out.reverse()
        return out

    def nodes(self, root: cst.CSTNode, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
        """The nodes below `root` in source order; nested functions and classes only when asked."""
        return iter_nodes(root, enter_scopes)

    def child_on_path(self, outer: cst.CSTNode, node: cst.CSTNode) -> cst.CSTNode | None:
        """The child of `outer` that holds `node`, or None when `node` is not below `outer`."""
        current = node
        for anc in self.ancestors(node):
            if anc is outer:
                return current
            current = anc
        return None
