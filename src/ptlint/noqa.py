"""`# noqa` and `# ptlint: noqa` suppression comments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ptlint.source import split_lines

# `# noqa`, `# noqa: PTL001, PTL003`, `#noqa:PTL001`
_LINE_RE = re.compile(r"#\s*noqa(?::[\s]*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# `# ptlint: noqa` or `# ptlint: noqa: PTL001` on a line of its own.
_FILE_RE = re.compile(
    r"^\s*#\s*ptlint\s*:\s*noqa(?::[\s]*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?\s*$", re.IGNORECASE
)
_CODE_RE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)

ALL = "ALL"


@dataclass
class Suppressions:
    """Codes suppressed per line (ALL for a bare noqa) and for the whole file."""

    lines: dict[int, set[str]] = field(default_factory=dict)
    file: set[str] = field(default_factory=set)
    # (line, code) pairs of line comments that suppressed a finding, for PTL100 unused-noqa.
    used: set[tuple[int, str]] = field(default_factory=set)

    def suppresses(self, code: str, first: int, last: int) -> bool:
        if ALL in self.file or code in self.file:
            return True
        hit = False
        for line in {first, last}:
            codes = self.lines.get(line)
            if codes is not None and (ALL in codes or code in codes):
                self.used.add((line, code))
                hit = True
        return hit


def line_directive(line: str) -> re.Match[str] | None:
    """The `# noqa[: CODES]` match that counts for `line` (the first one, as suppression reads it)."""
    return _LINE_RE.search(line)


def codes_in(text: str) -> list[re.Match[str]]:
    """The code matches in a directive's code list, in order."""
    return list(_CODE_RE.finditer(text))


def parse_suppressions(source: str) -> Suppressions:
    """Collect noqa comments; the fast path skips files without them."""
    sup = Suppressions()
    if "noqa" not in source and "NOQA" not in source.upper():
        return sup
    for number, line in enumerate(split_lines(source), start=1):
        if "noqa" not in line.lower():
            continue
        file_match = _FILE_RE.match(line)
        if file_match:
            codes = file_match.group("codes")
            sup.file |= {c.upper() for c in _CODE_RE.findall(codes)} if codes else {ALL}
            continue
        match = _LINE_RE.search(line)
        if match:
            codes = match.group("codes")
            sup.lines[number] = {c.upper() for c in _CODE_RE.findall(codes)} if codes else {ALL}
    return sup


def unknown_codes(source: str, known: "set[str] | frozenset[str]", prefix: str = "PTL") -> list[tuple[int, str]]:
    """(line, code) of each code with ptlint's prefix in a noqa comment that names no rule, such as
    `# noqa: PTL999`; other tools' codes (`F401`, `E501`) are left alone."""
    if "noqa" not in source.lower():
        return []
    out = []
    for number, line in enumerate(split_lines(source), start=1):
        if "noqa" not in line.lower():
            continue
        match = _FILE_RE.match(line) or _LINE_RE.search(line)
        codes = match.group("codes") if match else None
        for code in _CODE_RE.findall(codes or ""):
            code = code.upper()
            if code.startswith(prefix) and code not in known:
                out.append((number, code))
    return out

