"""Reading and adding call arguments while keeping the call's layout and comments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import libcst as cst

from ptlint.facts.walk import iter_nodes

if TYPE_CHECKING:
    from ptlint.context import Context

Whitespace = cst.BaseParenthesizableWhitespace


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    """The `name=` argument of `call`, or None."""
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def has_star_kwargs(call: cst.Call) -> bool:
    """Whether `call` passes `**kwargs`, which may hold any keyword."""
    return any(a.star == "**" for a in call.args)


def has_star_args(call: cst.Call) -> bool:
    return any(a.star == "*" for a in call.args)


def positional(call: cst.Call) -> list[cst.Arg]:
    """The plain positional arguments, up to the first starred one."""
    out = []
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        out.append(arg)
    return out


def append_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """`call` with `name=value` added as its last argument, in the call's own layout.

    A multi-line call gets the new argument on a line of its own at the indentation of the others;
    a trailing comma stays trailing; comments stay on the line of the argument they follow.
    """
    equal = next((a.equal for a in call.args if a.keyword is not None), None)
    if not isinstance(equal, cst.AssignEqual):
        equal = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    new = cst.Arg(keyword=cst.Name(name), value=value, equal=equal)
    args = list(call.args)
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    sep = _separator(call)
    trailing = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    kept, moved = _split(trailing, sep)
    if isinstance(last.comma, cst.Comma):
        args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=kept))
        new = new.with_changes(comma=cst.Comma(whitespace_after=moved))
    else:
        comma = cst.Comma(whitespace_after=kept)
        args[-1] = last.with_changes(comma=comma, whitespace_after_arg=cst.SimpleWhitespace(""))
        new = new.with_changes(whitespace_after_arg=moved)
    return call.with_changes(args=[*args, new])


def _separator(call: cst.Call) -> Whitespace:
    """The whitespace that separates two arguments of `call`, without comments."""
    if len(call.args) >= 2 and isinstance(call.args[-2].comma, cst.Comma):
        return _without_comment(call.args[-2].comma.whitespace_after)
    if isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        return _without_comment(call.whitespace_before_args)
    return cst.SimpleWhitespace(" ")


def _without_comment(ws: Whitespace) -> Whitespace:
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return ws.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return ws


def _split(trailing: Whitespace, sep: Whitespace) -> tuple[Whitespace, Whitespace]:
    """(whitespace after the old last argument, whitespace after the new one)."""
    if not isinstance(trailing, cst.ParenthesizedWhitespace):
        if isinstance(sep, cst.ParenthesizedWhitespace):
            return sep, trailing
        return cst.SimpleWhitespace(" "), trailing
    if isinstance(sep, cst.ParenthesizedWhitespace):
        kept = sep.with_changes(first_line=trailing.first_line)
    else:
        kept = trailing.with_changes(empty_lines=[])
    moved = trailing.with_changes(first_line=cst.TrailingWhitespace())
    return kept, moved


def calls_with_keyword(ctx: Context, root: cst.CSTNode, names: Iterable[str], key: str) -> bool:
    """Whether `root` holds a call of one of the qualified `names` that passes `key=`."""
    wanted = set(names)
    for node in iter_nodes(root, enter_scopes=True):
        if isinstance(node, cst.Call) and keyword(node, key) is not None and ctx.qualname(node.func) in wanted:
            return True
    return False


def deliberate_fallback(ctx: Context, names: Iterable[str], key: str) -> bool:
    """Whether the current node sits in a compatibility `try`/`if` whose other code calls `names` with `key=`.

    `try: torch.load(p, weights_only=True) except TypeError: torch.load(p)` is a fallback for old
    versions that the author wrote on purpose.
    """
    names = tuple(names)
    for node in ctx.stack[:-1]:
        if isinstance(node, (cst.Try, cst.TryStar, cst.If)) and calls_with_keyword(ctx, node, names, key):
            return True
    return False
