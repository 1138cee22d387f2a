"""ptlint.positions gives exactly the ranges of libcst's PositionProvider."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from ptlint.positions import positions_of
from conftest import FIXTURES

SOURCES = sorted(p for p in FIXTURES.rglob("*.py") if "verify" not in p.parts)[::7]
TRICKY = [
    "x = 1",  # no trailing newline
    "",
    "\n\n# only a comment\n",
    "if a:\r\n    b = (1,\r\n         2)\r\n",
    "x = 1\rprint(x)\r",
    '@dec\n# between\n@other(1)\nasync def f(a, *, b=2) -> int:\n    """doc\n    more"""\n    return a[1:2, ...] + b\n',
    "class A(B, metaclass=M):\n\tdef f(self): return lambda x: (yield x)\n",
    "with (open(a) as f, open(b) as g):\n    pass\nmatch x:\n    case [1, *rest] if rest:\n        pass\n",
]


def _compare(text: str) -> int:
    module = cst.parse_module(text)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    got = positions_of(module)
    for node, rng in expected.items():
        assert node in got
        assert got[node] == rng, (type(node).__name__, got[node], rng)
    return len(expected)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_positions_match_libcst(path: Path) -> None:
    assert _compare(path.read_text(encoding="utf-8")) > 0


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_positions_match_libcst(text: str) -> None:
    _compare(text)
