"""Compatibility branches: code that exists to run on old or new library versions.

Deprecation and safety fixes must never touch such code: rewriting the fallback of a
`try: new_api except ImportError: old_api` block, or a version-guarded branch, breaks the
very environments it was written for.
"""

from __future__ import annotations

from typing import Sequence

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.walk import iter_nodes

# Exceptions whose handlers mark version-compatibility code.
COMPAT_EXCEPTIONS = {"ImportError", "ModuleNotFoundError", "AttributeError", "TypeError"}
VERSION_WORDS = ("version", "VERSION", "Version")


def _caught(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> set[str]:
    """The exception class names a handler catches (last dotted part)."""
    kind = handler.type
    if kind is None:
        return set()
    items = [e.value for e in kind.elements] if isinstance(kind, cst.Tuple) else [kind]
    names = set()
    for item in items:
        dotted = dotted_name(item)
        if dotted:
            names.add(dotted.rsplit(".", 1)[-1])
    return names


def is_version_test(test: cst.CSTNode) -> bool:
    """A condition that checks a library or Python version, or probes for an attribute."""
    for node in (test, *iter_nodes(test)):
        if isinstance(node, cst.Name) and any(w in node.value for w in VERSION_WORDS):
            return True
        if isinstance(node, cst.Attribute) and any(w in node.attr.value for w in VERSION_WORDS):
            return True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "hasattr":
            return True
    return False


def compat_guard(stack: Sequence[cst.CSTNode]) -> str | None:
    """Why the last node of `stack` (its ancestors, outermost first) is compatibility code, or None."""
    for i in range(len(stack) - 1):
        outer, inner = stack[i], stack[i + 1]
        if isinstance(outer, (cst.Try, cst.TryStar)):
            caught: set[str] = set()
            for handler in outer.handlers:
                caught |= _caught(handler)
            hit = sorted(caught & COMPAT_EXCEPTIONS)
            if hit and inner is not outer.finalbody:
                return f"inside a `try`/`except {hit[0]}` compatibility block"
        elif isinstance(outer, (cst.If, cst.IfExp)) and inner is not outer.test and is_version_test(outer.test):
            return "inside a version-guarded branch"
    return None
