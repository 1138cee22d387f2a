"""Functions and calls of one file: definitions by name, the callee of a call, call sites, arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import libcst as cst

from ptlint.facts.walk import iter_nodes
from ptlint.semantic.tree import Tree

if TYPE_CHECKING:
    from ptlint.semantic.names import Names


def param_names(func: cst.FunctionDef) -> list[str]:
    """Positional parameter names, in order (`self` included)."""
    return [p.name.value for p in (*func.params.posonly_params, *func.params.params)]


def argument_for(call: cst.Call, func: cst.FunctionDef, name: str, bound: bool = False) -> cst.BaseExpression | None:
    """The expression `call` passes for parameter `name` of `func` (None for a default, `*args` or `**kwargs`).

    `bound`: the call goes through an instance (`self.helper(x)`), so the first parameter is taken.
    """
    params = param_names(func)
    if bound and params:
        params = params[1:]
    for i, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg.value
        elif i < len(params) and params[i] == name:
            return arg.value
    return None


class Program:
    """Definitions and calls of one module, indexed once when first asked."""

    def __init__(self, tree: Tree, names: Callable[[], Names] | None = None) -> None:
        self.tree = tree
        self._names = names  # the file's names, for what a called name means where it is called
        self._functions: dict[str, cst.FunctionDef] | None = None
        self._calls: dict[str, list[cst.Call]] | None = None

    def functions(self) -> dict[str, cst.FunctionDef]:
        """Module-level functions by name (the first definition of a name wins)."""
        if self._functions is None:
            self._functions = {}
            for stmt in self.tree.module.body:
                if isinstance(stmt, cst.FunctionDef):
                    self._functions.setdefault(stmt.name.value, stmt)
        return self._functions

    def function(self, name: str) -> cst.FunctionDef | None:
        return self.functions().get(name)

    def method(self, cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
        """The method `name` of `cls`: its last definition, the one the class keeps."""
        body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
        found = None
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                found = stmt
        return found

    def callee(self, call: cst.Call) -> cst.FunctionDef | None:
        """The function of this file that `call` runs: `helper(...)` (the function its name is bound to there:
        a local or enclosing `def`, else the module's last), or `self.helper(...)` in a method."""
        func = call.func
        if isinstance(func, cst.Name) and func.value == "self":  # `self(x)` runs the class's `__call__`
            outer = self.tree.function(call)
            cls = self.tree.method_of(outer) if outer is not None else None
            return self.method(cls, "__call__") if cls is not None else None
        if isinstance(func, cst.Name):
            return self._defined(func)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            outer = self.tree.function(call)
            cls = self.tree.method_of(outer) if outer is not None else None
            return self.method(cls, func.attr.value) if cls is not None else None
        return None

    def _defined(self, name: cst.Name) -> cst.FunctionDef | None:
        if self._names is None:
            return self.function(name.value)
        binding = self._names().lookup(name)
        if binding is None:
            return self.function(name.value) if self.tree.scope(name) is self.tree.module else None
        value = binding.value if binding.kind == "def" else None
        return value if isinstance(value, cst.FunctionDef) else None

    def call_sites(self, func: cst.FunctionDef) -> list[cst.Call]:
        """Calls in this file that run `func` (by its name, or `self.name` for a method)."""
        if self._calls is None:
            self._calls = {}
            for node in iter_nodes(self.tree.module, enter_scopes=True):
                if isinstance(node, cst.Call):
                    f = node.func
                    key = f.value if isinstance(f, cst.Name) else f.attr.value if isinstance(f, cst.Attribute) else None
                    if key is not None:
                        self._calls.setdefault("__call__" if key == "self" else key, []).append(node)
        return [c for c in self._calls.get(func.name.value, ()) if self.callee(c) is func]

    def argument(self, call: cst.Call, func: cst.FunctionDef, name: str) -> cst.BaseExpression | None:
        """The expression that `call` passes for parameter `name` of `func`."""
        bound = isinstance(call.func, cst.Attribute) and self.tree.method_of(func) is not None
        return argument_for(call, func, name, bound)
