"""Fast traversal of libcst trees that skips whitespace and punctuation fields."""

from __future__ import annotations

import dataclasses
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


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The child nodes of `node` that carry code, in source order."""
    for name in child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif type(value) is tuple or type(value) is list:
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


SCOPE_TYPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def iter_nodes(root: cst.CSTNode, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """Pre-order iteration below `root`; nested functions/classes are skipped unless asked."""
    stack = list(reversed(list(children(root))))
    while stack:
        node = stack.pop()
        yield node
        if not enter_scopes and isinstance(node, SCOPE_TYPES):
            continue
        stack.extend(reversed(list(children(node))))


def find_all(root: cst.CSTNode, pred: Callable[[cst.CSTNode], bool], enter_scopes: bool = False) -> list[cst.CSTNode]:
    return [n for n in iter_nodes(root, enter_scopes) if pred(n)]
