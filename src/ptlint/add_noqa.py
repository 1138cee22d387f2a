"""`ptlint check --add-noqa`: suppress every current finding with a `# noqa: CODE` comment.

Meant for adopting ptlint on a legacy code base: new code is checked, old findings are marked.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ptlint.noqa import codes_in, line_directive
from ptlint.rule import Finding
from ptlint.source import DecodeError, atomic_write, decode

SKIPPED_CODES = {"PTL000", "PTL100"}  # syntax errors cannot be suppressed; stale noqa is removed, not kept
_LINE_END_RE = re.compile(r"(\r\n|\r|\n)")


@dataclass
class Outcome:
    added: int = 0
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why findings were left without a comment
    left: int = 0  # findings left without a comment


@dataclass(frozen=True)
class _Layout:
    """Per line: whether a comment may go at its end, and where its comment starts (0-based), if any."""

    open_end: set[int]
    comment_col: dict[int, int]


def _layout(text: str) -> _Layout:
    """Lines whose end lies inside a string or continues with a backslash, and comment columns."""
    open_end: set[int] = set()
    comment_col: dict[int, int] = {}
    fstrings: list[int] = []
    for tok in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
        kind = tokenize.tok_name.get(tok.type, "")
        if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            open_end.update(range(tok.start[0], tok.end[0]))
        elif kind == "FSTRING_START":
            fstrings.append(tok.start[0])
        elif kind == "FSTRING_END" and fstrings:
            open_end.update(range(fstrings.pop(), tok.end[0]))
        elif tok.type == tokenize.COMMENT:
            comment_col[tok.start[0]] = tok.start[1]
    return _Layout(open_end, comment_col)


def _target(f: Finding, lines: list[str], layout: _Layout) -> int | None:
    """The line that takes the comment: the statement's first or last line (where noqa matching looks),
    one with a `# noqa:` list first, else the first line; never a line that ends inside a string."""
    first = f.stmt_lines[0] or f.start.line
    last = f.stmt_lines[1] or first
    usable = []
    for line in dict.fromkeys((first, last)):
        if line in layout.open_end or lines[line - 1].endswith("\\"):
            continue
        directive = line_directive(lines[line - 1])
        if directive is not None and directive.start() < layout.comment_col.get(line, len(lines[line - 1])):
            continue  # a `# noqa` inside a string would shadow the comment
        usable.append((directive is None, line))
    return min(usable)[1] if usable else None


def _with_codes(line: str, codes: list[str], comment_col: int | None) -> tuple[str, int]:
    """`line` with `codes` merged into its `# noqa:` list, or a new `  # noqa: CODES` at its end;
    and how many codes it gained."""
    directive = line_directive(line)
    if directive is not None and comment_col is not None and directive.start() >= comment_col:
        if directive.group("codes") is None:
            return line, 0  # a bare noqa already suppresses everything
        listed = directive.group("codes")
        known = {m.group().upper() for m in codes_in(listed)}
        new = [c for c in codes if c not in known]
        if not new:
            return line, 0
        sep = ", " if "," in listed or " " not in listed.strip() else " "
        at = directive.end("codes")
        return line[:at] + sep + sep.join(new) + line[at:], len(new)
    return line.rstrip() + "  # noqa: " + ", ".join(codes), len(codes)


def add_to_text(text: str, findings: list[Finding]) -> tuple[str, int, int]:
    """The text with noqa comments for `findings`: (new text, codes added, findings left unsuppressed)."""
    parts = _LINE_END_RE.split(text)
    lines, ends = parts[0::2], parts[1::2] + [""]
    layout = _layout(text)
    wanted: dict[int, list[str]] = defaultdict(list)
    skipped = 0
    for f in findings:
        line = _target(f, lines, layout)
        if line is None:
            skipped += 1
        elif f.code not in wanted[line]:
            wanted[line].append(f.code)
    added = 0
    for line, codes in wanted.items():
        lines[line - 1], n = _with_codes(lines[line - 1], sorted(codes), layout.comment_col.get(line))
        added += n
    return "".join(line + end for line, end in zip(lines, ends)), added, skipped


def add_noqa(files: dict[str, Path], findings: list[Finding]) -> Outcome:
    """Write noqa comments for `findings` into `files` (display path -> path on disk).

    Notebooks get their comments in the cells' sources. A finding that cannot get a comment
    (a file that is not Python, a line without a safe place for one) counts in `left`, and
    `errors` says why.
    """
    outcome = Outcome()
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.code not in SKIPPED_CODES:
            by_path[f.path].append(f)
    for shown, items in sorted(by_path.items()):
        path = files.get(shown)
        if path is None:
            continue
        if path.suffix.lower() == ".ipynb":
            _add_to_notebook(shown, path, items, outcome)
        elif path.suffix not in (".py", ".pyi"):
            _left(outcome, len(items), f"{shown}: not a Python file or notebook; add its `# noqa` comments by hand")
        else:
            _add_to_python(shown, path, items, outcome)
    return outcome


def _left(outcome: Outcome, count: int, why: str) -> None:
    outcome.left += count
    outcome.errors.append(why)


def _add_to_python(shown: str, path: Path, items: list[Finding], outcome: Outcome) -> None:
    from ptlint.api import parses

    try:
        data = path.read_bytes()
        source = decode(data)
        text, added, skipped = add_to_text(source.text, items)
    except (OSError, DecodeError, tokenize.TokenError, SyntaxError) as exc:
        _left(outcome, len(items), f"{shown}: cannot add noqa comments: {exc}")
        return
    if skipped:
        _left(outcome, skipped, f"{shown}: {skipped} finding(s) left without a noqa comment (no safe line for it)")
    if not added:
        return
    if not parses(text):
        _left(outcome, len(items) - skipped, f"{shown}: adding noqa comments would break the file; not written")
        return
    try:
        atomic_write(str(path), source.encode(text))
    except OSError as exc:
        _left(outcome, len(items) - skipped, f"{shown}: cannot write: {exc.strerror or exc}")
        return
    outcome.added += added
    outcome.files += 1


def _add_to_notebook(shown: str, path: Path, items: list[Finding], outcome: Outcome) -> None:
    """Comments go into the code cells' sources; the rest of the notebook keeps its bytes."""
    from ptlint import notebook
    from ptlint.api import parses

    try:
        data = path.read_bytes()
        bom = data.startswith(notebook.BOM)
        nb = notebook.load(data[len(notebook.BOM) if bom else 0:].decode("utf-8"))
    except (OSError, UnicodeDecodeError, notebook.NotebookError) as exc:
        _left(outcome, len(items), f"{shown}: cannot add noqa comments: {exc}")
        return
    by_cell: dict[int, list[Finding]] = defaultdict(list)
    for f in items:
        by_cell[f.cell or 0].append(f)
    sources: dict[int, str] = {}
    added = 0
    for number, cell_items in sorted(by_cell.items()):
        cell = next((c for c in nb.cells if c.number == number), None)
        if cell is None or cell.frozen:
            _left(outcome, len(cell_items), f"{shown}: cell {number} is not Python that ptlint can edit; add its `# noqa` comments by hand")
            continue
        try:
            program, n, skipped = add_to_text(cell.program, cell_items)
        except (tokenize.TokenError, SyntaxError) as exc:
            _left(outcome, len(cell_items), f"{shown}: cell {number}: cannot add noqa comments: {exc}")
            continue
        if skipped:
            _left(outcome, skipped, f"{shown}: cell {number}: {skipped} finding(s) left without a noqa comment (no safe line for it)")
        source = notebook.restore(cell, program) if n else None
        if n and (source is None or not parses(program)):
            _left(outcome, len(cell_items) - skipped, f"{shown}: cell {number}: adding noqa comments would break the cell; not written")
            continue
        if source is not None:
            sources[number] = source
            added += n
    if not sources:
        return
    text = notebook.write_back(nb, sources)
    if text is None:
        _left(outcome, len(items), f"{shown}: cannot locate the cells' sources in the notebook file; not written")
        return
    try:
        atomic_write(str(path), (notebook.BOM if bom else b"") + text.encode("utf-8"))
    except OSError as exc:
        _left(outcome, len(items), f"{shown}: cannot write: {exc.strerror or exc}")
        return
    outcome.added += added
    outcome.files += 1
