"""Every rule's fixtures: exact findings, exact fixed output, idempotent fixes, silent traps."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from ptlint.api import lint_text, parses
from ptlint.fixtures import positives, traps
from ptlint.registry import all_rules

RULES = [r for r in all_rules() if r.code != "PTL000"]
POSITIVES = [(r, p) for r in RULES for p in positives(FIXTURES / r.code)]
TRAPS = [(r, t) for r in RULES for t in traps(FIXTURES / r.code)]


def _id(item) -> str:
    rule, p = item
    path = getattr(p, "path", p)
    return f"{rule.code}/{path.name}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_has_enough_fixtures(rule):
    folder = FIXTURES / rule.code
    assert len(positives(folder)) >= 6, f"{rule.code} needs at least 6 positives"
    assert len(traps(folder)) >= 6, f"{rule.code} needs at least 6 traps"


@pytest.mark.parametrize("item", POSITIVES, ids=map(_id, POSITIVES))
def test_positive_findings(item):
    rule, pos = item
    assert pos.expected is not None, f"{pos.path.name} has no .expected file"
    result = lint_text(pos.path.read_text(), str(pos.path), [rule])
    got = [(f.start.line, f.start.column, f.code) for f in result.findings]
    assert got == pos.expected
    assert not result.errors


@pytest.mark.parametrize("item", POSITIVES, ids=map(_id, POSITIVES))
def test_positive_fix(item):
    rule, pos = item
    source = pos.path.read_text()
    result = lint_text(source, str(pos.path), [rule], fix=True, unsafe=True)
    assert not result.errors
    if pos.fixed is None:
        assert result.text == source, "no .fixed.py exists, so the fix must change nothing"
        return
    assert result.text == pos.fixed.read_text()
    assert parses(result.text)
    assert not [f for f in result.findings if f.code == rule.code], "the fixed finding must be gone"
    again = lint_text(result.text, str(pos.path), [rule], fix=True, unsafe=True)
    assert again.text == result.text, "a second fix must change nothing"


@pytest.mark.parametrize("item", TRAPS, ids=map(_id, TRAPS))
def test_trap_is_silent(item):
    rule, trap = item
    result = lint_text(trap.read_text(), str(trap), [rule])
    assert [(f.start.line, f.start.column, f.code) for f in result.findings] == []
    assert not result.errors
