"""Applying fixes: libcst edits, conflict-free per round, repeated to a fixed point."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

from ptlint.engine import Analysis
from ptlint.finding import allowed
from ptlint.rule import Fix, InsertBefore, Replace
from ptlint.wrap import wrap_long_lines

MAX_ROUNDS = 10


class _Applier(cst.CSTTransformer):
    """Applies Replace/Insert edits, matching the original nodes by identity."""

    def __init__(self, fixes: list[Fix]) -> None:
        super().__init__()
        self.inserted: set[int] = set()  # the statements the fixes insert, as placed
        self.replace: dict[int, cst.CSTNode] = {}
        self.before: dict[int, list[cst.BaseStatement]] = {}
        self.after: dict[int, list[cst.BaseStatement]] = {}
        for fix in fixes:
            for edit in fix.edits:
                if isinstance(edit, Replace):
                    self.replace[id(edit.old)] = edit.new
                else:
                    table = self.before if isinstance(edit, InsertBefore) else self.after
                    _extend_unique(table.setdefault(id(edit.anchor), []), edit.statements)

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> Any:
        key = id(original)
        node: Any = self.replace.get(key, updated)
        if key in self.before or key in self.after:
            before = list(self.before.get(key, ()))
            if before and isinstance(node, cst.BaseStatement):
                before[0], node = _take_blank_lines(before[0], node)
            kept = [node] if not isinstance(node, cst.RemovalSentinel) else []
            after = list(self.after.get(key, ()))
            self.inserted.update(id(s) for s in (*before, *after))
            statements = [*before, *kept, *after]
            return cst.FlattenSentinel(statements) if statements else cst.RemovalSentinel.REMOVE
        if isinstance(node, cst.Module):
            return _blank_after_imports(node, self.inserted)
        return node


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def _blank_after_imports(module: cst.Module, inserted: set[int]) -> cst.Module:
    """A statement inserted right after the top-level imports is set off from them by a blank line,
    as isort and black lay out a module (an inserted import joins the block instead)."""
    body = list(module.body)
    changed = False
    for i in range(1, len(body)):
        stmt = body[i]
        if id(stmt) in inserted and _is_import_line(body[i - 1]) and not _is_import_line(stmt):
            if not getattr(stmt, "leading_lines", True):
                body[i] = stmt.with_changes(leading_lines=[cst.EmptyLine()])
                changed = True
    return module.with_changes(body=body) if changed else module


def _take_blank_lines(first: cst.BaseStatement, anchor: Any) -> tuple[cst.BaseStatement, Any]:
    """Blank lines above `anchor` move above the statements inserted before it; its comments stay."""
    lines = list(getattr(anchor, "leading_lines", ()))
    count = 0
    while count < len(lines) and lines[count].comment is None:
        count += 1
    if count == 0 or getattr(first, "leading_lines", None):
        return first, anchor
    return first.with_changes(leading_lines=lines[:count]), anchor.with_changes(leading_lines=lines[count:])


def _extend_unique(target: list[cst.BaseStatement], statements: tuple[cst.BaseStatement, ...]) -> None:
    """Add statements, skipping ones already inserted at the same place by another fix."""
    seen = {_EMPTY.code_for_node(s) for s in target}
    for stmt in statements:
        code = _EMPTY.code_for_node(stmt)
        if code not in seen:
            seen.add(code)
            target.append(stmt)


_EMPTY = cst.Module(body=[])


def apply_fixes(module: cst.Module, fixes: list[Fix]) -> str:
    """The code of `module` with `fixes` applied (the caller makes sure they do not overlap)."""
    return module.visit(_Applier(fixes)).code


def _span(fix: Fix, positions: Any) -> list[tuple[tuple[int, int], tuple[int, int], bool]]:
    """(start, end, is_replace) per edit, from the position map."""
    out = []
    for edit in fix.edits:
        node = edit.old if isinstance(edit, Replace) else edit.anchor
        rng = positions[node]
        out.append(((rng.start.line, rng.start.column), (rng.end.line, rng.end.column), isinstance(edit, Replace)))
    return out


def _conflicts(a: list, b: list) -> bool:
    for sa, ea, ra in a:
        for sb, eb, rb in b:
            overlap = sa < eb and sb < ea
            same = (sa, ea) == (sb, eb)
            if (overlap or same) and (ra or rb):
                return True
    return False


def choose(fixes: list[Fix], positions: Any) -> list[Fix]:
    """A subset of fixes whose edits do not overlap; the rest wait for the next round."""
    chosen: list[Fix] = []
    spans: list[list] = []
    for fix in fixes:
        span = _span(fix, positions)
        if any(_conflicts(span, other) for other in spans):
            continue
        chosen.append(fix)
        spans.append(span)
    return chosen


@dataclass
class FixOutcome:
    text: str
    applied: int = 0
    rounds: int = 0
    codes: list[str] = field(default_factory=list)  # the rule code of each applied fix
    errors: list[str] = field(default_factory=list)


def fix_to_fixed_point(
    text: str,
    analyze: Callable[[str], Analysis],
    unsafe: bool,
    parses: Callable[[str], bool],
    line_length: int = 0,
) -> tuple[FixOutcome, Analysis]:
    """Apply allowed fixes round after round until nothing changes (at most MAX_ROUNDS). Lines that
    the fixes make longer than `line_length` (0: no limit) are wrapped (see ptlint.wrap).

    Fixes of rules marked `fix_first` (they change what other rules see, such as an added
    `torch.no_grad()`) get a round of their own before the others, so the others are decided on
    the code they will end up in (no `.detach()` under a `no_grad` that the same run adds)."""
    outcome = FixOutcome(text)
    result = analyze(text)
    first_done = False
    for _ in range(MAX_ROUNDS):
        if result.module is None:
            break
        fixes = [r.fix for r in result.raws if allowed(r.fix, unsafe)]
        code_of = {id(r.fix): r.rule.code for r in result.raws if r.fix is not None}
        if not fixes:
            break
        first = [] if first_done else [
            r.fix for r in result.raws if allowed(r.fix, unsafe) and getattr(r.rule, "fix_first", False)
        ]
        step = _round(result, first or fixes, outcome, parses, line_length)
        if step is None and first:
            first_done = True
            step = _round(result, fixes, outcome, parses, line_length)
        if step is None:
            break
        chosen, new_text = step
        outcome.text = new_text
        outcome.applied += len(chosen)
        outcome.codes += [code_of[id(fix)] for fix in chosen]
        outcome.rounds += 1
        result = analyze(new_text)
    else:
        outcome.errors.append(f"fixes did not converge after {MAX_ROUNDS} rounds")
    return outcome, result


def _round(
    result: Analysis, fixes: list[Fix], outcome: FixOutcome, parses: Callable[[str], bool], line_length: int
) -> tuple[list[Fix], str] | None:
    """The fixes applied in one round and the new text, or None when they change nothing."""
    chosen = choose(fixes, result.positions)  # type: ignore[arg-type]
    new_text = apply_fixes(result.module, chosen)  # type: ignore[arg-type]
    if not parses(new_text):
        # Fall back to one fix at a time and drop the ones that break the file.
        good: list[Fix] = []
        for fix in chosen:
            candidate = apply_fixes(result.module, good + [fix])  # type: ignore[arg-type]
            if parses(candidate):
                good.append(fix)
            else:
                message = f"dropped a fix that did not re-parse: {fix.title}"
                if message not in outcome.errors:
                    outcome.errors.append(message)
        if not good:
            return None
        chosen, new_text = good, apply_fixes(result.module, good)  # type: ignore[arg-type]
    if line_length:
        wrapped = wrap_long_lines(outcome.text, new_text, line_length)
        new_text = wrapped if wrapped == new_text or parses(wrapped) else new_text
    if new_text == outcome.text:
        return None
    return chosen, new_text


def edits_for(module: cst.Module, fix: Fix, original: str, line_length: int = 0) -> list[dict[str, Any]]:
    """ruff-style edits (1-based, end exclusive) by diffing the text before and after one fix."""
    fixed = apply_fixes(module, [fix])
    if line_length:
        fixed = wrap_long_lines(original, fixed, line_length)
    a = original.splitlines(keepends=True)
    b = fixed.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            {
                "content": "".join(b[j1:j2]),
                "location": {"row": i1 + 1, "column": 1},
                "end_location": {"row": i2 + 1, "column": 1},
            }
        )
    return edits

