"""Fuzzing `check --fix --unsafe-fixes` with every rule: no exception, the output parses, fixing is idempotent.

Two sources of programs: hypothesmith (valid Python from the grammar) and mutations of the project's own
fixtures (statements inserted, removed or duplicated, names renamed). The CI run is small and
deterministic; a long run (see docs/reliability.md):

    PTLINT_FUZZ_EXAMPLES=2000 python3 -m pytest -q tests/test_fuzz.py --hypothesis-show-statistics
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ptlint.api import parses
from ptlint.config import Settings
from ptlint.runner import Mode, check_text

LONG = int(os.environ.get("PTLINT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=LONG or 25,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SETTINGS = Settings(root=Path("/"), unsafe_fixes=True)
FIX = Mode(fix=True)
NAMES = ("model", "loss", "x", "optimizer", "device", "self", "net", "out", "torch", "total", "y", "_tmp")


@lru_cache(maxsize=None)
def fixtures() -> tuple[tuple[str, str], ...]:
    """(name, text) of every fixture of every rule (positives, fixed outputs, traps, verify scenarios)."""
    out = []
    for path in sorted(FIXTURES.glob("PTL*/**/*.py")):
        text = path.read_text(encoding="utf-8")
        if _compiles(text):
            out.append((str(path.relative_to(FIXTURES)), text))
    return tuple(out)


def corpus() -> tuple[str, ...]:
    return tuple(text for _, text in fixtures())


def _compiles(text: str) -> bool:
    try:
        compile(text, "<fuzz>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def assert_fix_is_sound(text: str, path: str = "train.py") -> None:
    report = check_text(text, path, SETTINGS, FIX)
    assert not report.internal_errors, report.internal_errors
    assert not report.warnings, report.warnings  # dropped fixes, fixes that did not converge
    fixed = report.fixed_text if report.fixed_text is not None else text
    if report.fixed_text is not None:
        assert parses(fixed), "the fixed output does not parse"
    again = check_text(fixed, path, SETTINGS, FIX)
    assert not again.internal_errors, again.internal_errors
    assert again.fixed_text is None, "a second fix changed the output"


# -- mutations of the fixtures ---------------------------------------------------------------------------


def _blocks(module: cst.Module) -> list[cst.CSTNode]:
    """The module and every indented block, in a stable order (the mutation targets)."""
    found: list[cst.CSTNode] = [module]

    class Collect(cst.CSTVisitor):
        def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
            found.append(node)

    module.visit(Collect())
    return found


class _Mutate(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, edit) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.target, self.edit = target, edit

    def on_leave(self, original, updated):  # type: ignore[no-untyped-def]
        if original is self.target:
            return updated.with_changes(body=self.edit(list(updated.body)))
        return updated


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str, every: bool) -> None:
        super().__init__()
        self.old, self.new, self.every, self.done = old, new, every, False

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if updated.value == self.old and (self.every or not self.done):
            self.done = True
            return updated.with_changes(value=self.new)
        return updated


def _statements(text: str) -> list[cst.BaseStatement]:
    try:
        return list(cst.parse_module(text).body)
    except Exception:
        return []


@st.composite
def mutated_fixture(draw: st.DrawFn) -> str:
    texts = corpus()
    module = cst.parse_module(draw(st.sampled_from(texts)))
    for _ in range(draw(st.integers(1, 4))):
        blocks = _blocks(module)
        block = blocks[draw(st.integers(0, len(blocks) - 1))]
        size = len(block.body)  # type: ignore[attr-defined]
        op = draw(st.sampled_from(("insert", "remove", "duplicate", "rename", "rename_one")))
        if op in ("rename", "rename_one"):
            names = sorted({n.value for n in _names(module)}) or ["x"]
            old = draw(st.sampled_from(names))
            new = draw(st.sampled_from(NAMES))
            module = module.visit(_Rename(old, new, op == "rename"))
            continue
        if size == 0:
            continue
        at = draw(st.integers(0, size - 1))
        if op == "remove" and size > 1:
            edit = lambda body: body[:at] + body[at + 1:]  # noqa: E731
        elif op == "duplicate":
            edit = lambda body: body[:at + 1] + body[at:]  # noqa: E731
        else:
            donor = _statements(draw(st.sampled_from(texts)))
            if not donor:
                continue
            new_stmt = donor[draw(st.integers(0, len(donor) - 1))]
            edit = lambda body: body[:at] + [new_stmt] + body[at:]  # noqa: E731
        module = module.visit(_Mutate(block, edit))
    code = module.code
    assume(_compiles(code))
    return code


def _names(module: cst.Module) -> list[cst.Name]:
    found: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.append(node)

    module.visit(Collect())
    return found


# -- the tests -------------------------------------------------------------------------------------------


def test_corpus_is_found():
    assert len(corpus()) >= 50


@FUZZ
@given(hypothesmith.from_grammar())
def test_generated_programs(code):
    assume(_compiles(code))
    assert_fix_is_sound(code)


@FUZZ
@given(hypothesmith.from_grammar(), st.sampled_from(("import torch\n", "import torch\nimport torch.nn as nn\n")))
def test_generated_programs_after_torch_import(code, header):
    # The import makes the torch-aware rules look at the generated code instead of skipping it.
    code = header + code
    assume(_compiles(code))
    assert_fix_is_sound(code)


@FUZZ
@given(mutated_fixture())
def test_mutated_fixtures(code):
    assert_fix_is_sound(code)


@FUZZ
@given(mutated_fixture(), st.sampled_from(("\r\n", "\t")))
def test_mutated_fixtures_with_crlf_or_tabs(code, style):
    if style == "\r\n":
        code = code.replace("\n", "\r\n")
    else:
        code = "".join(_tabify(line) for line in code.splitlines(keepends=True))
    assume(_compiles(code))
    assert_fix_is_sound(code)


def _tabify(line: str) -> str:
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    return "\t" * (indent // 4) + " " * (indent % 4) + stripped


@pytest.mark.skipif(not LONG, reason="long run only: all rules on every fixture")
@pytest.mark.parametrize("item", fixtures() if LONG else [], ids=lambda item: item[0])
def test_every_fixture_is_sound(item):
    assert_fix_is_sound(item[1])
