"""Every fix of every rule, checked on the rule's fixtures (rules added later are picked up by discovery).

For each positive fixture that has a `.fixed.py`, every fix the fixer would apply, in every round, is also
applied on its own to the text of that round. Each single fix must:
- give output that parses (libcst) and compiles;
- change nothing outside its edits: the bytes before, between and after the spans of the nodes it replaces
  (whitespace-inclusive) and the points where it inserts statements are identical, comments and line
  endings included. A fix that touches any other byte fails;
- keep every comment, including those inside the nodes it replaces (except the one the finding points at);
- remove its finding: the rule no longer reports that code at that place.
The whole fix must parse and compile, and a second fix must change nothing; with CRLF line endings the
fixed output is the `.fixed.py` with CRLF line endings.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from typing import Any

import pytest
from conftest import FIXTURES
from libcst.metadata import MetadataWrapper, WhitespaceInclusivePositionProvider

from ptlint.api import line_length, lint_text, parses
from ptlint.engine import Analysis, analyze
from ptlint.fixer import allowed, apply_fixes, fix_to_fixed_point
from ptlint.fixtures import positives
from ptlint.registry import all_rules
from ptlint.rule import InsertAfter, InsertBefore, Replace

RULES = [r for r in all_rules() if r.code != "PTL000"]
CASES = [(r, p) for r in RULES for p in positives(FIXTURES / r.code) if p.fixed is not None]
_LINE_END = re.compile(r"\r\n|\r|\n")


def _id(item) -> str:
    rule, pos = item
    return f"{rule.code}/{pos.path.name}"


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line (1-based line n is at index n - 1), as libcst counts lines."""
    return [0] + [m.end() for m in _LINE_END.finditer(text)]


def edit_spans(fix, positions: Any, text: str) -> list[tuple[int, int]]:
    """[start, end) offsets in `text` that a fix may rewrite; inserts are empty spans at their anchor."""
    starts = line_starts(text)

    def offset(pos) -> int:  # type: ignore[no-untyped-def]
        return starts[pos.line - 1] + pos.column if pos.line - 1 < len(starts) else len(text)

    spans = []
    for edit in fix.edits:
        if isinstance(edit, Replace):
            rng = positions[edit.old]
            spans.append((offset(rng.start), offset(rng.end)))
        elif isinstance(edit, InsertBefore):
            at = offset(positions[edit.anchor].start)
            spans.append((at, at))
        elif isinstance(edit, InsertAfter):
            at = offset(positions[edit.anchor].end)
            spans.append((at, at))
        else:
            raise AssertionError(f"unknown edit {edit!r}")
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def match_outside(before: str, after: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Where each span's new text lies in `after`, if `after` is `before` with only the spans rewritten."""
    if not spans:
        return [] if after == before else None
    kept = []
    cursor = 0
    for start, end in spans:
        kept.append(before[cursor:start])
        cursor = end
    tail = before[cursor:]
    if len(after) < sum(map(len, kept)) + len(tail) or not after.startswith(kept[0]) or not after.endswith(tail):
        return None
    regions = []
    pos = len(kept[0])
    limit = len(after) - len(tail)
    for chunk in kept[1:]:
        found = after.find(chunk, pos, limit)
        if found < 0:
            return None
        regions.append((pos, found))
        pos = found + len(chunk)
    regions.append((pos, limit))
    return regions


def comments(text: str, skip: tuple[int, int] = (0, 0)) -> Counter[str]:
    """The comments of `text`, except one that contains position `skip` (line, 0-based column)."""
    out: Counter[str] = Counter()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and not (tok.start[0] == skip[0] and tok.start[1] <= skip[1] < tok.end[1]):
            out[tok.string.rstrip()] += 1
    return out


def inclusive_positions(module) -> Any:  # type: ignore[no-untyped-def]
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(WhitespaceInclusivePositionProvider)


def check_single_fix(rule, path: str, text: str, result: Analysis, index: int) -> None:  # type: ignore[no-untyped-def]
    raw, finding = result.raws[index], result.findings[index]
    where = f"{path}:{finding.start.line}:{finding.start.column} {finding.code} ({raw.fix.title})"
    fixed = apply_fixes(result.module, [raw.fix])
    assert parses(fixed), f"{where}: the output of this fix alone does not parse or compile"
    spans = edit_spans(raw.fix, inclusive_positions(result.module), text)
    regions = match_outside(text, fixed, spans)
    assert regions is not None, f"{where}: the fix changed bytes outside its edits"
    # A finding about a comment (an unused noqa) may rewrite that comment.
    lost = comments(text, (finding.start.line, finding.start.column - 1)) - comments(fixed)
    assert not lost, f"{where}: the fix dropped comments {sorted(lost)}"

    starts = line_starts(text)
    point = starts[finding.start.line - 1] + finding.start.column - 1
    after = analyze(fixed, path, [rule])
    new_starts = line_starts(fixed)
    same_code = [
        new_starts[f.start.line - 1] + f.start.column - 1 for f in after.findings if f.code == finding.code
    ]
    old_code = [starts[f.start.line - 1] + f.start.column - 1 for f in result.findings if f.code == finding.code]
    for (s, e), (ns, ne) in zip(spans, regions):
        if s <= point < e or (s == e == point):
            before_n = sum(s <= p < e or p == s == e for p in old_code)
            after_n = sum(ns <= p < ne or p == ns == ne for p in same_code)
            assert after_n < before_n, f"{where}: still reported inside the edited text"
            return
    shift = 0
    for (s, e), (ns, ne) in zip(spans, regions):
        if e <= point:
            shift += (ne - ns) - (e - s)
    assert point + shift not in same_code, f"{where}: still reported at the same place after its fix"


@pytest.mark.parametrize("item", CASES, ids=map(_id, CASES))
def test_every_single_fix_is_local_and_removes_its_finding(item):
    rule, pos = item
    path = str(pos.path)
    checked = 0

    def checking_analyze(text: str) -> Analysis:
        nonlocal checked
        result = analyze(text, path, [rule])
        for index, raw in enumerate(result.raws):
            if allowed(raw.fix, unsafe=True):
                check_single_fix(rule, path, text, result, index)
                checked += 1
        return result

    outcome, _ = fix_to_fixed_point(pos.path.read_text(), checking_analyze, True, parses, line_length(path))
    assert not outcome.errors
    assert checked >= 1, "a positive with a .fixed.py must have at least one fix"
    assert outcome.text == pos.fixed.read_text()


@pytest.mark.parametrize("item", CASES, ids=map(_id, CASES))
def test_whole_fix_compiles_and_is_idempotent(item):
    rule, pos = item
    source = pos.path.read_text()
    result = lint_text(source, str(pos.path), [rule], fix=True, unsafe=True)
    compile(result.text, str(pos.path), "exec", dont_inherit=True)
    assert parses(result.text)
    assert not [f for f in result.findings if f.code == rule.code and allowed(f.fix, unsafe=True)]
    again = lint_text(result.text, str(pos.path), [rule], fix=True, unsafe=True)
    assert again.text == result.text and again.fixed == 0


@pytest.mark.parametrize("item", CASES, ids=map(_id, CASES))
def test_fix_keeps_crlf_line_endings(item):
    rule, pos = item
    source = pos.path.read_text().replace("\n", "\r\n")
    result = lint_text(source, str(pos.path), [rule], fix=True, unsafe=True)
    assert result.text == pos.fixed.read_text().replace("\n", "\r\n")


def test_span_check_catches_a_change_elsewhere():
    text = "a = 1  # one\nb = f(x)\nc = 3\n"
    spans = [(text.index("x"), text.index("x") + 1)]
    assert match_outside(text, text.replace("x", "x.item()"), spans) is not None
    assert match_outside(text, text.replace("x", "x.item()").replace("# one", "# 1"), spans) is None
    assert match_outside(text, text.replace("x", "x.item()").replace("c = 3\n", "c = 3\r\n"), spans) is None
    insert = [(text.index("b"), text.index("b"))]
    assert match_outside(text, text.replace("b = ", "y = 0\nb = "), insert) is not None
    assert match_outside(text, text.replace("b = ", "y = 0\nb = ").replace("a = 1 ", "a = 1"), insert) is None


def test_a_fix_that_touches_another_line_fails(monkeypatch):
    import test_fix_safety as me

    rule = next(r for r in RULES if r.code == "PTL006")
    pos = next(p for p in positives(FIXTURES / "PTL006") if p.fixed is not None)
    text = pos.path.read_text()
    result = analyze(text, str(pos.path), [rule])
    check_single_fix(rule, str(pos.path), text, result, 0)
    real = me.apply_fixes
    monkeypatch.setattr(
        me, "apply_fixes", lambda module, fixes: real(module, fixes).replace("import torch", "import  torch", 1)
    )
    with pytest.raises(AssertionError, match="outside its edits"):
        check_single_fix(rule, str(pos.path), text, result, 0)
