"""Keeping fixed lines within the project's line length.

A fix that appends arguments (`num_workers=4, pin_memory=..., persistent_workers=True`) can push a
call past the line length that the project's formatter keeps (`line-length` of `[tool.ruff]` or
`[tool.black]`, else 88). Lines that a fix made too long are wrapped the way black wraps a call:
first all arguments on one indented line of their own, and when that is still too long, one argument
per line with a trailing comma. Lines that were already too long before the fix are left alone, and
so are calls that span lines, sit in f-strings, or would not fit either way.
"""

from __future__ import annotations

import io
import tokenize

import libcst as cst
from ptlint.positions import positions_of
from ptlint.source import split_lines


def grown_lines(before: str, after: str, limit: int) -> set[int]:
    """Line numbers (1-based) of `after` whose code (a trailing comment aside) is longer than `limit`,
    that are new with the fix and not a line that `before` already had."""
    old, new = split_lines(before), split_lines(after)
    known = set(old)
    # A line whose text `before` never had is new with the fix (no diff needed: a diff of a long file
    # of equal lines is quadratic).
    candidates = [j + 1 for j, line in enumerate(new) if len(line) > limit and line not in known]
    if not candidates:
        return set()
    comments = _comment_columns(after)
    return {n for n in candidates if len(new[n - 1][: comments.get(n)].rstrip()) > limit}


def _comment_columns(text: str) -> dict[int, int]:
    """Line -> the column where its trailing comment starts."""
    out: dict[int, int] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.start[1]
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def wrap_long_lines(before: str, after: str, limit: int) -> str:
    """`after` (the text of `before` with fixes applied) with the calls on lines the fixes made longer
    than `limit` split over lines; `after` itself when nothing needs or allows it."""
    if limit <= 0:
        return after
    long = grown_lines(before, after, limit)
    if not long:
        return after
    try:
        module = cst.parse_module(after)
    except cst.ParserSyntaxError:
        return after
    positions = positions_of(module)
    lines = split_lines(after)
    finder = _Outermost(long, positions)
    module.visit(finder)
    if not finder.calls:
        return after
    unit = module.default_indent
    changes: dict[int, cst.Call] = {}
    for line, call in finder.calls.items():
        text = lines[line - 1]
        indent = len(text) - len(text.lstrip(" \t"))
        new = _wrapped(module, call, text[:indent], unit, limit)
        if new is not None:
            changes[id(call)] = new
    if not changes:
        return after
    result = module.visit(_Replace(changes)).code
    try:
        cst.parse_module(result)
    except cst.ParserSyntaxError:
        return after
    return result


# Where a call may sit to be wrapped: the value of a statement, or a link of a method chain on it.
_STATEMENTS = (cst.SimpleStatementLine, cst.With, cst.If, cst.While, cst.For)
_CARRIERS = (cst.Expr, cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return, cst.Await, cst.WithItem)


class _Outermost(cst.CSTVisitor):
    """Per long line, the outermost call on it when it is the statement's value (or a method chain on
    it), starts and ends on that line and lies outside f-strings."""

    def __init__(self, lines: set[int], positions: object) -> None:
        super().__init__()
        self.lines = lines
        self.positions = positions
        self.calls: dict[int, cst.Call] = {}
        self.seen: set[int] = set()  # lines whose outermost call was looked at
        self.stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Call):
            self._consider(node)
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()

    def _consider(self, node: cst.Call) -> None:
        rng = self.positions[node]  # type: ignore[index]
        line = rng.start.line
        if line not in self.lines or line in self.seen:
            return
        self.seen.add(line)
        if line == rng.end.line and node.args and self._statement_value(node, line):
            self.calls[line] = node

    def _statement_value(self, node: cst.Call, line: int) -> bool:
        child: cst.CSTNode = node
        for parent in reversed(self.stack):
            if isinstance(parent, _STATEMENTS):
                return True
            if isinstance(parent, cst.Attribute) and parent.value is child:
                pass
            elif isinstance(parent, cst.Call) and parent.func is child:
                pass
            elif isinstance(parent, cst.Arg) and parent.value is child:
                return self._own_line(parent, line)
            elif not isinstance(parent, _CARRIERS):
                return False
            child = parent
        return True

    def _own_line(self, arg: cst.Arg, line: int) -> bool:
        """An argument of a call laid out over lines, on a line of its own."""
        index = self.stack.index(arg)
        outer = self.stack[index - 1] if index > 0 else None
        return isinstance(outer, cst.Call) and self.positions[outer].start.line != line  # type: ignore[index]


def _args_text(module: cst.Module, call: cst.Call) -> str:
    """The arguments as `a, b=1, *c` (no trailing comma)."""
    parts = [module.code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=cst.SimpleWhitespace(""))) for a in call.args]
    return ", ".join(p.strip() for p in parts)


def _wrapped(module: cst.Module, call: cst.Call, indent: str, unit: str, limit: int) -> cst.Call | None:
    """`call` with its arguments on an indented line of their own, or one a line; None if neither fits."""
    inner = indent + unit
    args = [a.with_changes(whitespace_after_arg=cst.SimpleWhitespace("")) for a in call.args]
    if any("\n" in module.code_for_node(a) for a in args):
        return None

    def newline(depth: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(indent=True, last_line=cst.SimpleWhitespace(depth))

    if len(inner) + len(_args_text(module, call)) <= limit:
        compact = [
            a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            for a in args[:-1]
        ]
        last = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=newline(""))
        return call.with_changes(whitespace_before_args=newline(unit), args=[*compact, last])
    longest = max(len(module.code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip()) for a in args)
    if len(inner) + longest + 1 > limit:
        return None
    exploded = [
        a.with_changes(comma=cst.Comma(whitespace_after=newline(unit if k < len(args) - 1 else "")))
        for k, a in enumerate(args)
    ]
    return call.with_changes(whitespace_before_args=newline(unit), args=exploded)


class _Replace(cst.CSTTransformer):
    def __init__(self, changes: dict[int, cst.Call]) -> None:
        super().__init__()
        self.changes = changes

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.changes.get(id(original_node), updated_node)
