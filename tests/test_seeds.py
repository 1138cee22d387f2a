"""The seed documents' anti-patterns (`fixtures/seeds/`, our own realistic files): every "bad" example is
reported by the rule that covers it, every "good" version stays silent for that rule, and the places where
ptlint deliberately departs from a seed behave as the rules' docs say (issue 20)."""

from __future__ import annotations

import re

import pytest
from conftest import FIXTURES

from ptlint.api import lint_text
from ptlint.registry import all_rules

SEEDS = FIXTURES / "seeds"
RULES = {r.code: r for r in all_rules()}
# The six that issue 20 added coverage for; the other bad examples were reported before.
ISSUE_20 = {
    "bad_tensor_per_loop_index.py": "PTL010",
    "bad_item_print_per_batch.py": "PTL008",
    "bad_item_per_element_annotated.py": "PTL009",
    "bad_inplace_saved_output.py": "PTL012",
    "bad_mixed_dtypes.py": "PTL042",
    "bad_checkpoint_weights_only.py": "PTL043",
}
# Where ptlint disagrees with a seed on purpose: (file, code, reported?).
DISAGREEMENTS = {
    "disagree_inplace_after_conv.py": False,  # PTL012: safe right after a convolution or batch norm
    "disagree_item_append_per_step.py": True,  # PTL008: still a host sync on every training step
}


def _code(path) -> str:
    """The rule code that the first line of the file's docstring names."""
    found = re.search(r"PTL\d{3}", path.read_text().splitlines()[0])
    assert found, f"{path.name}: the docstring's first line names no rule"
    return found.group(0)


def _codes(path, code: str) -> list[str]:
    result = lint_text(path.read_text(), str(path), [RULES[code]])
    assert not result.errors
    return [f.code for f in result.findings]


def _files(prefix: str) -> list:
    return sorted(SEEDS.glob(f"{prefix}_*.py"))


def test_the_issue_examples_are_there() -> None:
    names = {p.name for p in _files("bad")}
    assert set(ISSUE_20) <= names
    assert all(_code(SEEDS / name) == code for name, code in ISSUE_20.items())
    assert {p.name for p in _files("disagree")} == set(DISAGREEMENTS)


@pytest.mark.parametrize("path", _files("bad"), ids=lambda p: p.stem)
def test_bad_example_is_reported(path) -> None:
    code = _code(path)
    assert code in _codes(path, code)


@pytest.mark.parametrize("path", _files("good"), ids=lambda p: p.stem)
def test_good_version_is_silent(path) -> None:
    assert _codes(path, _code(path)) == []


@pytest.mark.parametrize("path", _files("disagree"), ids=lambda p: p.stem)
def test_deliberate_disagreement(path) -> None:
    code = _code(path)
    assert bool(_codes(path, code)) is DISAGREEMENTS[path.name]
    docs = RULES[code].__doc__ or ""
    assert "deliberately disagrees" in docs, f"{code}'s docs must say where it departs from the seed"


def test_each_bad_example_has_a_good_version() -> None:
    """Every rule with a bad example also shows that the seed's fix is silent."""
    bad = {_code(p) for p in _files("bad")}
    good = {_code(p) for p in _files("good")}
    assert bad <= good
