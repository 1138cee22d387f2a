"""Text positions in the client's units, text changes, and minimal edits between two texts.

Internally a position is (line, column) with both 0-based and the column counted in code points
(Python string indices). The client counts columns in UTF-16 code units unless it negotiated UTF-8
or UTF-32 (`general.positionEncodings`). Lines end at \\n, \\r\\n or \\r, as in LSP and libcst (not at
the other characters that `str.splitlines` also splits on, such as a form feed).
"""

from __future__ import annotations

import difflib
from typing import Iterable

from ptlint.server.lint import lines_of

Pos = tuple[int, int]  # 0-based line, 0-based column in code points
Edit = tuple[Pos, Pos, str]  # replace [start, end) with the text


def content(line: str) -> str:
    """A line without its ending."""
    return line.rstrip("\r\n")


def units(text: str, encoding: str) -> int:
    """How many code units of the client's encoding `text` takes."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_client(lines: list[str], pos: Pos, encoding: str) -> Pos:
    """A position in code points as the client counts it."""
    line, col = pos
    if line >= len(lines):
        if lines and not lines[-1].endswith(("\n", "\r")):  # the end of a last line without an ending
            return len(lines) - 1, units(lines[-1], encoding)
        return len(lines), 0
    return line, units(content(lines[line])[:col], encoding)


def from_client(lines: list[str], line: int, character: int, encoding: str) -> Pos:
    """A client position in code points, clamped to the line's content."""
    if line < 0:
        return 0, 0
    if line >= len(lines):
        return len(lines), 0
    text = content(lines[line])
    if encoding == "utf-32" or text.isascii():
        return line, max(0, min(character, len(text)))
    seen = 0
    for index, char in enumerate(text):
        if seen >= character:
            return line, index
        seen += units(char, encoding)
    return line, len(text)


def offset(lines: list[str], pos: Pos) -> int:
    """The string index of a position (past the end for a line beyond the last)."""
    line, col = pos
    if line >= len(lines):
        return sum(len(item) for item in lines)
    return sum(len(item) for item in lines[:line]) + min(col, len(content(lines[line])))


def apply_change(text: str, start: Pos, end: Pos, new: str) -> str:
    """`text` with the range [start, end) (code points) replaced by `new`."""
    lines = lines_of(text)
    a, b = offset(lines, start), offset(lines, end)
    if b < a:
        a, b = b, a
    return text[:a] + new + text[b:]


def position_at(text: str, index: int, first_line: int = 0) -> Pos:
    """The position of string index `index` of `text`, a run of whole lines that starts at `first_line`."""
    breaks = lines_of(text[:index])
    if not breaks:
        return first_line, 0
    last = breaks[-1]
    if last.endswith(("\n", "\r")):
        return first_line + len(breaks), 0
    return first_line + len(breaks) - 1, len(last)


def diff(old: str, new: str) -> list[Edit]:
    """Small edits that turn `old` into `new`: line blocks from difflib, trimmed to the changed characters."""
    if old == new:
        return []
    a, b = lines_of(old), lines_of(new)
    out: list[Edit] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before, after = "".join(a[i1:i2]), "".join(b[j1:j2])
        prefix = _common_prefix(before, after)
        suffix = _common_suffix(before[prefix:], after[prefix:])
        removed = before[prefix:len(before) - suffix]
        added = after[prefix:len(after) - suffix]
        # Never split a \r\n pair: widen the edit by one character where it would.
        start_index, end_index = prefix, len(before) - suffix
        if start_index > 0 and before[start_index - 1] == "\r" and before[start_index:start_index + 1] == "\n":
            start_index -= 1
            removed, added = "\r" + removed, "\r" + added
        if 0 < end_index < len(before) and before[end_index - 1] == "\r" and before[end_index] == "\n":
            end_index += 1
            removed, added = removed + "\n", added + "\n"
        start = position_at(before, start_index, i1)
        end = position_at(before, end_index, i1)
        out.append((start, end, added))
    return out


def _common_prefix(x: str, y: str) -> int:
    n = min(len(x), len(y))
    i = 0
    while i < n and x[i] == y[i]:
        i += 1
    return i


def _common_suffix(x: str, y: str) -> int:
    n = min(len(x), len(y))
    i = 0
    while i < n and x[-1 - i] == y[-1 - i]:
        i += 1
    return i


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """`text` with non-overlapping edits applied (last first), as a client applies a TextEdit[]."""
    lines = lines_of(text)
    spans = sorted(((offset(lines, s), offset(lines, e), t) for s, e, t in edits), reverse=True)
    for a, b, t in spans:
        text = text[:a] + t + text[b:]
    return text
