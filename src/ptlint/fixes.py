"""Edits that many fixes share: adding an import once, removing an import that became unused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import libcst as cst

from ptlint.facts.imports import ImportMap
from ptlint.facts.walk import iter_nodes
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


def name_uses(module: cst.Module, local: str) -> list[cst.Name]:
    """Every load of the bare name `local` outside import statements (over-counting is safe)."""
    found: list[cst.Name] = []
    skip: set[int] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            skip.update(id(n) for n in iter_nodes(node, enter_scopes=True))
        elif isinstance(node, cst.Attribute):
            skip.add(id(node.attr))
        elif isinstance(node, cst.Arg) and node.keyword is not None:
            skip.add(id(node.keyword))
        elif isinstance(node, cst.Name) and node.value == local and id(node) not in skip:
            found.append(node)
    return found


def _mentioned_in_strings(module: cst.Module, local: str) -> bool:
    """String annotations and `__all__` entries also use a name."""
    return any(isinstance(n, cst.SimpleString) and local in n.value for n in iter_nodes(module, enter_scopes=True))


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
    inside: set[int] = set()
    for root in rewritten:
        inside.add(id(root))
        inside.update(id(n) for n in iter_nodes(root, enter_scopes=True))
    if any(id(use) not in inside for use in name_uses(ctx.module, local)) or _mentioned_in_strings(ctx.module, local):
        return ()
    line = _statement_of(ctx.module, node)
    if line is None or _has_comment(line):
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
    block = _block_of(ctx.module, line)
    if block is not None and len(block) == 1:
        return (Replace(line, line.with_changes(body=[cst.Pass()])),)
    return (Replace(line, cst.RemovalSentinel.REMOVE),)  # type: ignore[arg-type]


def _statement_of(module: cst.Module, small: cst.CSTNode) -> cst.SimpleStatementLine | None:
    for node in iter_nodes(module, enter_scopes=True):
        if isinstance(node, cst.SimpleStatementLine) and any(s is small for s in node.body):
            return node
    return None


def _block_of(module: cst.Module, line: cst.SimpleStatementLine) -> tuple[cst.CSTNode, ...] | None:
    """The statements of the indented block that holds `line`, or None at module level."""
    for node in iter_nodes(module, enter_scopes=True):
        if isinstance(node, cst.IndentedBlock) and any(s is line for s in node.body):
            return tuple(node.body)
    return None


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
