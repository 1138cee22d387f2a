"""The fixture layout of a rule: positives with expected findings and fixed output, and traps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_EXPECT_RE = re.compile(r"^(\d+):(\d+)\s+([A-Z]+[0-9]+)\s*$")


@dataclass(frozen=True)
class Positive:
    path: Path
    expected: list[tuple[int, int, str]] | None  # None when the .expected file is missing
    fixed: Path | None


def positives(folder: Path) -> list[Positive]:
    """`positive_*.py` with `positive_*.expected` (LINE:COL CODE per line) and `positive_*.fixed.py`."""
    out = []
    for path in sorted(folder.glob("positive_*.py")):
        if path.name.endswith(".fixed.py"):
            continue
        expected_file = path.with_suffix(".expected")
        if not expected_file.is_file():
            out.append(Positive(path, None, None))
            continue
        expected = []
        for line in expected_file.read_text().splitlines():
            if line.strip():
                m = _EXPECT_RE.match(line.strip())
                if m is None:
                    raise ValueError(f"{expected_file}: bad line {line!r}")
                expected.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        fixed = path.with_name(path.stem + ".fixed.py")
        out.append(Positive(path, expected, fixed if fixed.exists() else None))
    return out


def traps(folder: Path) -> list[Path]:
    return sorted(folder.glob("trap_*.py"))
