"""Names, addressed by node: the binding that reaches a Name at its own position, its uses, and
import resolution that respects shadowing."""

from __future__ import annotations


import libcst as cst

from ptlint.facts.dataflow import Binding, ScopeFacts, Use
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.semantic.tree import Tree


class Names:
    """Def-use facts per scope, and qualified names of imported Name/Attribute chains."""

    def __init__(self, tree: Tree, imports: ImportMap, all_imports: ImportMap) -> None:
        self.tree = tree
        self.imports = imports  # top-level imports (also inside top-level if/try), first binding wins
        self.all_imports = all_imports  # every import of the file, nested ones included
        self._scopes: dict[int, ScopeFacts] = {}
        self._rebound: dict[str, bool] = {}

    def facts(self, scope: cst.CSTNode) -> ScopeFacts:
        """Def-use facts of a function or the module, built once."""
        found = self._scopes.get(id(scope))
        if found is None or found.scope is not scope:
            found = self._scopes[id(scope)] = ScopeFacts(scope)
        return found

    def facts_at(self, node: cst.CSTNode) -> ScopeFacts:
        """Def-use facts of the scope whose names `node` sees."""
        return self.facts(self.tree.scope(node))

    # --- bindings ---

    def binding(self, name: cst.Name) -> Binding | None:
        """The binding of `name` that reaches it in its own scope (the previous one for `x = f(x)`)."""
        return self.facts_at(name).reaching(name.value, name)

    def reaching_at(self, name: str, node: cst.CSTNode, scope: cst.CSTNode | None = None) -> Binding | None:
        """The binding of `name` in `scope` (by default the one whose names `node` sees) that reaches `node`;
        for a node inside a nested function or class, the one that reaches its definition."""
        facts = self.facts(scope if scope is not None else self.tree.scope(node))
        for anc in (node, *self.tree.ancestors(node)):
            if facts.order_of(anc) != -1:
                return facts.reaching(name, anc)
        return None

    def free_binding(self, name: cst.Name) -> Binding | None:
        """For a name with no binding in its function: the module's only binding of it, else None."""
        scope = self.tree.scope(name)
        if scope is self.tree.module or self.facts(scope).bindings_of(name.value):
            return None
        module = self.facts(self.tree.module).bindings_of(name.value)
        return module[0] if len(module) == 1 else None

    def outer_binding(self, name: str, scope: cst.CSTNode) -> Binding | None:
        """What a name free in the function `scope` means when the function runs: the last binding of it in
        the nearest enclosing function that binds it (a closure), else the module's last binding."""
        if scope is self.tree.module:
            return None
        for outer in self.tree.ancestors(scope):
            if isinstance(outer, cst.FunctionDef):
                binds = self.facts(outer).bindings_of(name)
                if binds:
                    return binds[-1]
        binds = self.facts(self.tree.module).bindings_of(name)
        return binds[-1] if binds else None

    def lookup(self, name: cst.Name) -> Binding | None:
        """The binding `name` refers to: the one that reaches it in its own scope, else (a free name) the
        enclosing function's or the module's (see `outer_binding`)."""
        return self.binding(name) or self.outer_binding(name.value, self.tree.scope(name))

    def is_builtin(self, name: cst.Name) -> bool:
        """Whether `name` means the builtin it spells: neither its function, nor an enclosing one, nor the
        module binds or imports it."""
        scope = self.tree.scope(name)
        while not self.facts(scope).bindings_of(name.value):
            if scope is self.tree.module:
                return True
            scope = self.tree.scope(scope)
        return False

    def value(self, name: cst.Name) -> cst.CSTNode | None:
        """The value assigned to `name` (tuple unpacking included): its reaching binding, or a global's only one."""
        binding = self.binding(name) or self.free_binding(name)
        if binding is None or binding.kind != "assign":
            return None
        return binding.bound_value()

    def may_reach(self, name: cst.Name) -> list[Binding]:
        """The reaching binding plus those later in an enclosing loop (reaching `name` on the next iteration)."""
        facts = self.facts_at(name)
        first = facts.reaching(name.value, name)
        out = [first] if first is not None else []
        at = facts.order_of(name)
        loops = self.tree.loops(name)
        for b in facts.bindings_of(name.value):
            if b.order > at and any(facts.contains(loop, b.stmt) for loop in loops):
                out.append(b)
        return out

    def uses_of(self, binding: Binding, scope: cst.CSTNode) -> list[Use]:
        """The reads of `binding.name` in `scope` that `binding` may reach (loop back-edges included)."""
        facts = self.facts(scope)
        out = []
        for use in facts.uses.get(binding.name, ()):
            reach = facts.reaching(use.name, use.node)
            if reach is not None and reach.order == binding.order:
                out.append(use)
            elif use.order < binding.order and any(facts.contains(loop, binding.stmt) for loop in use.loops):
                out.append(use)
        return out

    def references(self, identifier: str) -> list[cst.Name]:
        """The `Name` nodes of the whole file that spell the variable `identifier` (loads and stores), not
        attribute names, keyword-argument names or names in import statements."""
        tree = self.tree
        out = []
        for name in tree.names(identifier):
            parent = tree.parent(name)
            if isinstance(parent, cst.Attribute) and parent.attr is name:
                continue
            if isinstance(parent, cst.Arg) and parent.keyword is name:
                continue
            if isinstance(tree.enclosing(name, (cst.BaseSmallStatement, cst.BaseCompoundStatement)), (cst.Import, cst.ImportFrom)):
                continue
            out.append(name)
        return out

    # --- imports ---

    def rebound(self, identifier: str) -> bool:
        """Whether the file binds `identifier` anywhere other than by an import (cheap, from the name index)."""
        known = self._rebound.get(identifier)
        if known is None:
            known = self._rebound[identifier] = any(self._binds(n) for n in self.tree.names(identifier))
        return known

    def _binds(self, name: cst.Name) -> bool:
        node: cst.CSTNode = name
        parent = self.tree.parent(node)
        while isinstance(parent, (cst.Element, cst.StarredElement, cst.Tuple, cst.List)):
            node, parent = parent, self.tree.parent(parent)
        if isinstance(parent, cst.AsName):
            return not isinstance(self.tree.parent(parent), cst.ImportAlias)
        if isinstance(parent, (cst.Param, cst.FunctionDef, cst.ClassDef)):
            return parent.name is node
        if isinstance(parent, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr)):
            return parent.target is node
        return isinstance(parent, cst.NameItem)

    def shadowed(self, name: cst.Name) -> bool:
        """Whether a binding that is not an import reaches `name` (a parameter or variable named `torch`)."""
        if not self.rebound(name.value):
            return False
        scope = self.tree.scope(name)
        facts = self.facts(scope)
        b = facts.reaching(name.value, name)
        if b is None and scope is not self.tree.module and not facts.bindings_of(name.value):
            # A name read in a function may be a closure variable of an enclosing function.
            for outer in self.tree.ancestors(scope):
                if isinstance(outer, cst.FunctionDef):
                    binds = self.facts(outer).bindings_of(name.value)
                    if binds:
                        return all(x.kind != "import" for x in binds)
            return False
        if b is None and scope is not self.tree.module:
            # Bound later in the function only (or in a loop): any non-import binding shadows the global.
            return any(x.kind not in ("import",) for x in facts.bindings_of(name.value))
        return b is not None and b.kind != "import"

    def qualified_name(self, expr: cst.CSTNode) -> str | None:
        """`torch.nn.functional.relu` for `F.relu` after `import torch.nn.functional as F`, or None.

        A head name that a parameter or a local variable shadows has no qualified name.
        """
        head = expr
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name):
            return None
        dotted = dotted_name(expr)
        if dotted is None:
            return None
        first, _, rest = dotted.partition(".")
        full = self.imports.aliases.get(first)
        if full is None:
            # An import inside a function or a branch counts from where it stands in the source on.
            full = self.all_imports.aliases.get(first)
            if full is None or not self.tree.precedes(self.all_imports.origins[first][0], expr):
                return None
        if self.tree.known(head) and self.shadowed(head):
            return None
        return f"{full}.{rest}" if rest else full

    def local_names_for(self, qualified: str) -> list[str]:
        return self.imports.local_names_for(qualified) or self.all_imports.local_names_for(qualified)

