"""Fast traversal of libcst trees that skips whitespace and punctuation fields."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Callable, Iterator

import libcst as cst

_SKIP_PREFIXES = (
    "whitespace", "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after",
    "header", "footer", "newline", "equal", "colon", "dot", "lbracket", "rbracket",
    "lbrace", "rbrace", "first_colon", "second_colon", "trailing_whitespace",
    "default_indent", "default_newline", "encoding", "has_trailing_newline", "indent",
    "star", "relative", "asynchronous", "operator", "comment", "posonly_ind",
)
# Fields that come first in the source although the dataclass lists them later.
_FIRST = ("decorators",)

_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(node_type: type) -> tuple[str, ...]:
    """Names of the fields of `node_type` that can hold child nodes, in source order."""
    names = _FIELDS.get(node_type)
    if names is None:
        all_names = [f.name for f in dataclasses.fields(node_type)]
        kept = [n for n in all_names if not n.startswith(_SKIP_PREFIXES) or n in ("star_arg", "star_kwarg")]
        first = [n for n in kept if n in _FIRST]
        names = tuple(first + [n for n in kept if n not in _FIRST])
        _FIELDS[node_type] = names
    return names


class IsSubclass(dict):
    """type -> whether it subclasses `base`: a plain dict lookup instead of the slow ABC isinstance."""

    def __init__(self, base: type) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, node_type: type) -> bool:
        answer = self[node_type] = issubclass(node_type, self.base)
        return answer


_IS_NODE = IsSubclass(cst.CSTNode)


# While the engine analyses a file, the children of each node are computed once: rules and facts
# walk the same subtrees several times. Entries hold the node itself, so its id cannot be reused.
_memo: dict[int, tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] | None = None


@contextmanager
def memoized() -> Iterator[None]:
    """Remember `children` of every node asked for until the block ends."""
    global _memo
    saved, _memo = _memo, {}
    try:
        yield
    finally:
        _memo = saved


def children(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The child nodes of `node` that carry code, in source order."""
    memo = _memo
    if memo is not None:
        hit = memo.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        kids = _children(node)
        memo[id(node)] = (node, kids)
        return kids
    return _children(node)


def _children(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    out: list[cst.CSTNode] = []
    is_node = _IS_NODE
    for name in _FIELDS.get(type(node)) or child_fields(type(node)):
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            for item in value:
                if is_node[type(item)]:
                    out.append(item)
        elif is_node[kind]:
            out.append(value)
    return tuple(out)


SCOPE_TYPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_SCOPE_NAMES = frozenset(t.__name__ for t in SCOPE_TYPES)


def iter_nodes(root: cst.CSTNode, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """Pre-order iteration below `root`; nested functions/classes are skipped unless asked."""
    stack = list(reversed(children(root)))
    scopes = _SCOPE_NAMES
    while stack:
        node = stack.pop()
        yield node
        if not enter_scopes and type(node).__name__ in scopes:
            continue
        stack.extend(reversed(children(node)))


def in_blocks(root: cst.CSTNode, type_name: str, blocks: frozenset[str]) -> list[cst.CSTNode]:
    """The nodes called `type_name` below `root` (and `root` itself), in source order, entering only
    nodes whose type name is in `blocks` (statement containers: expressions and scopes are skipped)."""
    out: list[cst.CSTNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        name = type(node).__name__
        if name == type_name:
            out.append(node)
        if name in blocks:
            stack.extend(reversed(children(node)))
    return out


def find_all(root: cst.CSTNode, pred: Callable[[cst.CSTNode], bool], enter_scopes: bool = False) -> list[cst.CSTNode]:
    return [n for n in iter_nodes(root, enter_scopes) if pred(n)]


# Node types whose children may include statements; a class definition is always a statement.
_STATEMENT_HOLDERS = frozenset({
    "Module", "IndentedBlock", "If", "Else", "For", "While", "Try", "TryStar", "ExceptHandler",
    "ExceptStarHandler", "Finally", "With", "FunctionDef", "ClassDef", "Match", "MatchCase",
})


def iter_class_defs(root: cst.CSTNode) -> Iterator[cst.ClassDef]:
    """Every class definition below `root` (nested ones too), in source order; expressions are not entered."""
    stack = [c for c in children(root) if type(c).__name__ in _STATEMENT_HOLDERS]
    stack.reverse()
    while stack:
        node = stack.pop()
        if type(node).__name__ == "ClassDef":
            yield node  # type: ignore[misc]
        kids = [c for c in children(node) if type(c).__name__ in _STATEMENT_HOLDERS]
        kids.reverse()
        stack.extend(kids)
