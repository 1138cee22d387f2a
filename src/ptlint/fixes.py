"""Edits that many fixes share: adding an import once, removing an import that became unused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import libcst as cst

from ptlint.facts.imports import ImportMap
from ptlint.rule import Edit, InsertAfter, InsertBefore, Replace

if TYPE_CHECKING:
    from ptlint.context import Context


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _is_docstring_or_future(stmt: cst.CSTNode) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    return isinstance(small, cst.ImportFrom) and isinstance(small.module, cst.Name) and small.module.value == "__future__"


def add_import(ctx: "Context", code: str) -> tuple[Edit, ...]:
    """Edits that add the import statement `code` (e.g. `import os`) unless the file already has it.

    The import goes after the last top-level import statement, or else after the module
    docstring and `__future__` imports. Identical inserts from several fixes are merged by the
    fixer, so every fix that needs the import may ask for it.
    """
    stmt = cst.parse_statement(code)
    wanted = ImportMap()
    for small in getattr(stmt, "body", ()):
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            wanted.add(small)
    if wanted.aliases and all(ctx.imports.aliases.get(k) == v for k, v in wanted.aliases.items()):
        return ()
    body = list(ctx.module.body)
    imports = [s for s in body if _is_import_line(s)]
    if imports:
        return (InsertAfter(imports[-1], (stmt,)),)
    for s in body:
        if not _is_docstring_or_future(s):
            return (InsertBefore(s, (stmt,)),)
    if body:
        return (InsertAfter(body[-1], (stmt,)),)
    return ()


def _mentioned_in_strings(ctx: "Context", local: str) -> bool:
    """String annotations and `__all__` entries also use a name."""
    return any(local in n.value for n in ctx.model.tree.of_type(cst.SimpleString))  # type: ignore[attr-defined]


def _has_comment(stmt: cst.SimpleStatementLine) -> bool:
    return stmt.trailing_whitespace.comment is not None or any(line.comment for line in stmt.leading_lines)


def remove_unused_import(ctx: "Context", local: str, rewritten: Iterable[cst.CSTNode]) -> tuple[Edit, ...]:
    """Edits that drop the import binding `local` when every use of it lies inside `rewritten`.

    `rewritten` are the nodes that the rule's fixes replace anywhere in the file. A fix that
    rewrites the last remaining use therefore also removes the import. Nothing is removed when
    the name is used elsewhere, appears in a string, or the import line carries a comment.
    """
    origin = ctx.imports.origins.get(local)
    if origin is None:
        return ()
    node, alias = origin
    tree = ctx.model.tree
    roots = list(rewritten)
    uses = ctx.model.names.references(local)
    if any(not any(tree.contains(r, use) for r in roots) for use in uses) or _mentioned_in_strings(ctx, local):
        return ()
    line = tree.parent(node)
    if not isinstance(line, cst.SimpleStatementLine) or _has_comment(line):
        return ()
    names = node.names
    if isinstance(names, cst.ImportStar):
        return ()
    if len(names) > 1:
        kept = [a for a in names if a is not alias]
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return (Replace(node, node.with_changes(names=kept)),)
    if len(line.body) > 1:
        rest = [s for s in line.body if s is not node]
        rest[-1] = rest[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        return (Replace(line, line.with_changes(body=rest)),)
    block = tree.parent(line)
    if isinstance(block, cst.IndentedBlock) and len(block.body) == 1:
        return (Replace(line, line.with_changes(body=[cst.Pass()])),)
    return (Replace(line, cst.RemovalSentinel.REMOVE),)  # type: ignore[arg-type]


def move_statement(
    ctx: "Context", line: cst.CSTNode, anchor: cst.BaseStatement, after: bool = False, parent: cst.CSTNode | None = None
) -> tuple[Edit, ...] | None:
    """Edits that move the statement `line` (on `ctx.stack`) before or after `anchor`, comments included.

    None when removing `line` would empty its block, or when `parent` is given and `line` is not
    directly in `parent`'s body.
    """
    index = next((i for i, n in enumerate(ctx.stack) if n is line), None)
    if index is None or index < 2 or not isinstance(line, cst.BaseStatement):
        return None
    block = ctx.stack[index - 1]
    if not isinstance(block, cst.IndentedBlock) or len(block.body) < 2:
        return None
    if parent is not None and ctx.stack[index - 2] is not parent:
        return None
    insert = InsertAfter(anchor, (line,)) if after else InsertBefore(anchor, (line,))
    return (Replace(line, cst.RemovalSentinel.REMOVE), insert)  # type: ignore[arg-type]
