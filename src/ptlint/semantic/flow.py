"""Control flow, structurally: which blocks always leave, which nodes share a branch, which run first."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.semantic.tree import Tree

# Calls that never return: the program or the test stops there.
TERMINAL_CALLS = {"exit", "_exit", "quit", "abort", "skip", "fail", "skipTest", "xfail"}
LEAVING = (cst.Return, cst.Raise, cst.Continue, cst.Break)
# Where the code below a node runs only on some paths: (node type, fields that are conditional).
_CONDITIONAL = {
    cst.If: ("body", "orelse"),
    cst.Else: ("body",),
    cst.For: ("body", "orelse"),
    cst.While: ("body", "orelse"),
    cst.Try: ("handlers", "orelse", "finalbody"),
    cst.TryStar: ("handlers", "orelse", "finalbody"),
    cst.IfExp: ("body", "orelse"),
    cst.BooleanOperation: ("right",),
    cst.Match: ("cases",),
}


def is_true(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def is_false(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def exits(block: cst.BaseSuite | cst.CSTNode, terminal_calls: bool = True) -> bool:
    """Whether the last statement of `block` leaves it: `return`, `raise`, `continue`, `break`,
    and, when `terminal_calls`, a call that never returns (`sys.exit()`, `pytest.skip()`)."""
    body = getattr(block, "body", ())
    last = body[-1] if body else None
    if isinstance(last, cst.SimpleStatementLine):
        last = last.body[-1]
    if isinstance(last, LEAVING):
        return True
    if terminal_calls and isinstance(last, cst.Expr) and isinstance(last.value, cst.Call):
        name = dotted_name(last.value.func) or ""
        return name.split(".")[-1] in TERMINAL_CALLS
    return False


def leaves_after(body: tuple[cst.BaseStatement, ...] | list[cst.BaseStatement], child: cst.CSTNode) -> bool:
    """Whether `child`, or a simple statement after it in `body`, leaves the block."""
    idx = next((i for i, s in enumerate(body) if s is child), None)
    if idx is None:
        return False
    return any(
        isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, LEAVING) for s in stmt.body)
        for stmt in body[idx:]
    )


class Flow:
    """Questions about the order in which the nodes of one tree run."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._guards: dict[tuple[int, bool], tuple[cst.CSTNode, list[cst.If | cst.Assert]]] = {}

    def early_exits(self, node: cst.CSTNode, terminal_calls: bool = True) -> Iterator[cst.If | cst.Assert]:
        """The guards before `node` in each block around it, innermost block first: `if <test>:` whose
        body always leaves (see `exits`), and `assert <test>`. Code after one runs only where its test
        let it through. Each block is scanned once."""
        child = node
        for anc in self.tree.ancestors(node):
            if isinstance(anc, (cst.Module, cst.IndentedBlock)):
                for guard in self._block_guards(anc, terminal_calls):
                    if not self.tree.precedes(guard, child):
                        break
                    yield guard
            child = anc

    def _block_guards(self, block: cst.Module | cst.IndentedBlock, terminal_calls: bool) -> list[cst.If | cst.Assert]:
        key = (id(block), terminal_calls)
        hit = self._guards.get(key)
        if hit is None or hit[0] is not block:
            found: list[cst.If | cst.Assert] = []
            for stmt in block.body:
                if isinstance(stmt, cst.If) and exits(stmt.body, terminal_calls):
                    found.append(stmt)
                elif isinstance(stmt, cst.SimpleStatementLine):
                    found.extend(s for s in stmt.body if isinstance(s, cst.Assert))
            hit = self._guards[key] = (block, found)
        return hit[1]

    def reaches(self, stmt: cst.CSTNode, use: cst.CSTNode) -> bool:
        """Whether what `stmt` binds can flow to `use`, a later node of its function: they are not in two
        branches of one `if`/`try`/`match`, and no block holding `stmt` leaves after it (`leaves_after`)."""
        pb, pu = self.tree.path(stmt), self.tree.path(use)
        i = 0
        while i < min(len(pb), len(pu)) and pb[i] is pu[i]:
            i += 1
        if i == 0:
            return False
        if i == len(pb):
            return True
        if isinstance(pb[i - 1], (cst.If, cst.Try, cst.TryStar, cst.Match)):
            return False
        for parent, child in zip(pb[i:], pb[i + 1:]):
            if isinstance(parent, (cst.IndentedBlock, cst.Module)) and leaves_after(parent.body, child):
                return False
        return True

    def conditional_between(self, outer: cst.CSTNode, node: cst.CSTNode) -> bool:
        """Whether `node` runs only on some of the paths through `outer` (a branch, loop body, handler...)."""
        tree = self.tree
        child = node
        for anc in tree.ancestors(node):
            if anc is outer:
                return False
            fields = _CONDITIONAL.get(type(anc))
            if fields and any(_holds(getattr(anc, f, None), child) for f in fields):
                return True
            if isinstance(anc, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and anc is not outer:
                return True
            child = anc
        return False

    def dominates(self, a: cst.CSTNode, b: cst.CSTNode) -> bool:
        """Whether `a` runs before `b` on every path that reaches `b` (structurally, within one function)."""
        tree = self.tree
        if not tree.precedes(a, b) or tree.scope(a) is not tree.scope(b):
            return False
        common = self.common_ancestor(a, b)
        if common is None:
            return False
        fields = _CONDITIONAL.get(type(common))  # `a` in one branch of the `if` that holds `b` in the other
        if fields and any(_holds(getattr(common, f, None), tree.child_on_path(common, a)) for f in fields):
            return False
        return not self.conditional_between(common, a)

    def common_ancestor(self, a: cst.CSTNode, b: cst.CSTNode) -> cst.CSTNode | None:
        seen = {id(n) for n in (a, *self.tree.ancestors(a))}
        for n in (b, *self.tree.ancestors(b)):
            if id(n) in seen:
                return n
        return None

    def same_branch(self, a: cst.CSTNode, b: cst.CSTNode) -> bool:
        """Whether `a` and `b` can run in one pass: not in two exclusive branches of one `if`/`try`/`match`."""
        common = self.common_ancestor(a, b)
        if common is None:
            return False
        ca, cb = self.tree.child_on_path(common, a), self.tree.child_on_path(common, b)
        if ca is None or cb is None or ca is cb:
            return True
        if isinstance(common, (cst.If, cst.IfExp)):
            branches = [getattr(common, "body", None), getattr(common, "orelse", None)]
            return not (any(x is ca for x in branches) and any(x is cb for x in branches))
        if isinstance(common, (cst.Try, cst.TryStar)):
            exclusive = [*common.handlers, common.orelse]
            return not (any(x is ca for x in exclusive) and any(x is cb for x in exclusive))
        if isinstance(common, cst.Match):
            return False
        return True

    def exit_points(self, func: cst.FunctionDef) -> list[cst.CSTNode]:
        """The `return` and `yield` nodes of `func`'s body, in source order (nested scopes left out)."""
        return self.tree.below(func.body, (cst.Return, cst.Yield), scopes=False)

    def leaves_early(self, node: cst.CSTNode) -> bool:
        """Whether control can leave `node` before its end: a `return` or `yield` in it, or a `break` or
        `continue` of a loop that is not inside it (nested scopes left out; an exception is not counted)."""
        tree = self.tree
        for jump in tree.below(node, (cst.Return, cst.Yield, cst.Break, cst.Continue), scopes=False):
            if isinstance(jump, (cst.Return, cst.Yield)):
                return True
            loop = tree.enclosing(jump, (cst.For, cst.While))
            if loop is None or loop is node or not tree.contains(node, loop):
                return True
        return False


def _holds(value: object, child: cst.CSTNode) -> bool:
    if isinstance(value, (tuple, list)):
        return any(v is child for v in value)
    return value is child
