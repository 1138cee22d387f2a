"""Jupyter notebooks: the code cells as one program, findings per cell, fixes written back in place.

The notebook is read with the stdlib `json` module. Its code cells are joined into one program (so an
import in cell 1 resolves in cell 5); IPython magics, shell escapes and help lines become placeholders
of the same line count. A fix is written back by replacing only the changed cells' `"source"` values in
the original file text, so outputs, metadata and formatting stay byte-for-byte as they were.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field, replace
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from ptlint.finding import Finding, Position

_ONLY_AST, _TOP_LEVEL_AWAIT = 0x400, 0x2000
_MAGIC_TAG = "# ptlint-magic "
_PLACEHOLDER_RE = re.compile(r"^[ \t]*(?:pass  )?# ptlint-magic (\d+)$")
# `%time f()`, `!ls`, `?obj`, `files = !ls`, `t = %timeit f()`
_MAGIC_RE = re.compile(r"^[ \t]*(?:[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*)?[%!?]")
# `obj?`, `obj.attr??`
_HELP_RE = re.compile(r"^[ \t]*[A-Za-z_][\w.]*\?\??[ \t]*$")
# Cell magics whose body is Python that runs in the user's namespace.
_PYTHON_CELL_MAGICS = {"time", "capture", "prun"}
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class NotebookError(Exception):
    """The file is not a notebook that ptlint can read."""


@dataclass
class Cell:
    """One code cell: its original source and the Python text that stands for it in the program."""

    number: int  # 1-based index among all cells of the notebook (markdown cells count)
    source: str
    program: str
    span: tuple[int, int] | None  # where the cell's "source" value is in the file text
    frozen: bool = False  # a cell that is not Python (a cell magic, a syntax error): never changed
    error: tuple[int, int, str] | None = None
    magics: dict[int, str] = field(default_factory=dict)  # placeholder id -> original line (no ending)
    trailing_newline: bool = True


@dataclass
class Notebook:
    """A parsed notebook: the file text, its code cells, and the joined program with its line map."""

    text: str
    cells: list[Cell]
    python: bool = True
    program: str = ""
    line_map: list[tuple[int, int]] = field(default_factory=list)  # program line - 1 -> (cell, line)
    _line_starts: list[int] | None = None  # offsets of the file text's lines, built when first needed
    _layouts: dict[int, Any] = field(default_factory=dict)  # cell number -> its source's JSON strings

    def cell(self, number: int) -> Cell:
        return next(c for c in self.cells if c.number == number)

    def file_position(self, number: int, line: int, column: int) -> Position | None:
        """Where line `line`, column `column` of cell `number` lies in the .ipynb file's text (1-based),
        or None when the cell's source cannot be located."""
        import bisect

        cell = self.cell(number)
        strings = self._strings(cell)
        if not strings:
            return None
        offset = sum(len(ln) for ln in lines_of(cell.source)[: max(line - 1, 0)]) + max(column - 1, 0)
        at = strings[-1][0] + strings[-1][2][-1]
        for k, (start, decoded, raw_of) in enumerate(strings):
            if offset < len(decoded) or k == len(strings) - 1:
                at = start + raw_of[min(offset, len(decoded))]
                break
            offset -= len(decoded)
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", self.text)]
        row = bisect.bisect_right(self._line_starts, at)
        return Position(row, at - self._line_starts[row - 1] + 1)

    def _strings(self, cell: Cell) -> list[tuple[int, str, list[int]]]:
        """The JSON strings of the cell's "source": (file offset of the first character after the opening
        quote, the decoded text, the raw offset of each decoded character plus one past the end)."""
        if cell.number not in self._layouts:
            self._layouts[cell.number] = _json_strings(self.text, cell.span) if cell.span is not None else []
        return self._layouts[cell.number]  # type: ignore[no-any-return]


def lines_of(text: str) -> list[str]:
    """The lines of `text` with their endings (\\n, \\r\\n or \\r, as Python counts lines)."""
    return _LINE_RE.findall(text)


def load(text: str) -> Notebook:
    """Parse notebook JSON text; raises NotebookError if it is not an nbformat 4 notebook."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"invalid notebook JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (nbformat 4): no `cells` list")
    spans = _source_spans(text)
    cells = []
    counter = [0]
    for index, raw in enumerate(data["cells"], start=1):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        source = raw.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        span = spans[index - 1] if index - 1 < len(spans) else None
        cells.append(_code_cell(index, source, span, counter))
    nb = Notebook(text, cells, python=_is_python(data.get("metadata")))
    _join(nb)
    return nb


def _is_python(metadata: Any) -> bool:
    if not isinstance(metadata, dict):
        return True
    for key, sub in (("kernelspec", "language"), ("language_info", "name")):
        value = metadata.get(key)
        if isinstance(value, dict) and isinstance(value.get(sub), str):
            return value[sub].lower() in ("python", "python3", "ipython")
    return True


def _code_cell(number: int, source: str, span: tuple[int, int] | None, counter: list[int]) -> Cell:
    cell = Cell(number, source, "", span)
    text = source
    if text and not text.endswith(("\n", "\r")):
        text += "\n"
        cell.trailing_newline = False
    lines = lines_of(text)
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        magic = first[2:].split(None, 1)[0] if len(first) > 2 else ""
        head = next(i for i, ln in enumerate(lines) if ln.strip())
        if magic in _PYTHON_CELL_MAGICS:
            lines[head] = _placeholder(lines[head], cell, counter, "pass  ")
        else:
            cell.frozen = True
            cell.program = "".join(_ending(ln) for ln in lines)
            return cell
    if not _compiles(text):
        lines = _replace_magics(lines, cell, counter)
    program = "".join(lines)
    error = _syntax_error(program)
    if error is not None or _syntax_error(program, top_level_await=False) is not None:
        # Not Python, or IPython's top-level `await` (which ptlint's fix check would reject): left out.
        cell.error, cell.frozen = error, True
        program = "".join(_ending(ln) for ln in lines)
    cell.program = program
    return cell


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def _placeholder(line: str, cell: Cell, counter: list[int], stmt: str) -> str:
    counter[0] += 1
    body = line.rstrip("\r\n")
    cell.magics[counter[0]] = body
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    return f"{indent}{stmt}{_MAGIC_TAG}{counter[0]}{_ending(line)}"


def _replace_magics(lines: list[str], cell: Cell, counter: list[int]) -> list[str]:
    out: list[str] = []
    continued = False
    for line in lines:
        body = line.rstrip("\r\n")
        if continued:
            out.append(_placeholder(line, cell, counter, ""))
        elif _MAGIC_RE.match(body) or _HELP_RE.match(body):
            # A statement only where a block needs one: at top level a comment keeps a later cell's
            # `from __future__` import first in the joined program (so it still compiles).
            indented = body[:1] in (" ", "\t")
            out.append(_placeholder(line, cell, counter, "pass  " if indented else ""))
        else:
            out.append(line)
            continue
        continued = body.endswith("\\")
    return out


def _compiles(text: str) -> bool:
    return _syntax_error(text) is None


def _syntax_error(text: str, top_level_await: bool = True) -> tuple[int, int, str] | None:
    flags = _ONLY_AST | _TOP_LEVEL_AWAIT if top_level_await else 0  # `await` outside a function: compiler check
    try:
        compile(text, "<cell>", "exec", flags=flags, dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or 1, exc.offset or 1, f"SyntaxError: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return 1, 1, str(exc) or type(exc).__name__
    return None


def _join(nb: Notebook) -> None:
    parts, line_map = [], []
    for cell in nb.cells:
        parts.append(cell.program)
        line_map.extend((cell.number, n) for n in range(1, len(lines_of(cell.program)) + 1))
    nb.program, nb.line_map = "".join(parts), line_map


# --- locating each cell's "source" value in the file text ---------------------------------------

_WS_RE = re.compile(r"[ \t\n\r]*")
_SCALAR_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


def _source_spans(text: str) -> list[tuple[int, int] | None]:
    """Per cell (all cells, in order), the span of its "source" value; [] where the layout is odd."""
    try:
        return _Scanner(text).top()
    except (ValueError, IndexError):
        return []


class _Scanner:
    """A small JSON walker that records where values are; `json.loads` has already validated the text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def ws(self, i: int) -> int:
        return _WS_RE.match(self.text, i).end()  # type: ignore[union-attr]

    def top(self) -> list[tuple[int, int] | None]:
        spans: list[tuple[int, int] | None] = []
        i = self.ws(1 if self.text.startswith("\ufeff") else 0)
        for key, start, end in self.members(i):
            if key == "cells" and self.text[start] == "[":
                spans = [self.source_span(s, e) for s, e in self.items(start)]
        return spans

    def source_span(self, start: int, end: int) -> tuple[int, int] | None:
        if self.text[start] != "{":
            return None
        found = None
        for key, s, e in self.members(start):
            if key == "source":
                found = (s, e)
        return found

    def members(self, i: int) -> list[tuple[str, int, int]]:
        out = []
        i = self.ws(i + 1)
        while self.text[i] != "}":
            key, i = scanstring(self.text, i + 1)
            i = self.ws(self.ws(i) + 1)  # past ':'
            end = self.skip(i)
            out.append((key, i, end))
            i = self.ws(end)
            if self.text[i] == ",":
                i = self.ws(i + 1)
        return out

    def items(self, i: int) -> list[tuple[int, int]]:
        out = []
        i = self.ws(i + 1)
        while self.text[i] != "]":
            end = self.skip(i)
            out.append((i, end))
            i = self.ws(end)
            if self.text[i] == ",":
                i = self.ws(i + 1)
        return out

    def skip(self, i: int) -> int:
        """The end of the value that starts at `i`."""
        ch = self.text[i]
        if ch == '"':
            return int(scanstring(self.text, i + 1)[1])
        if ch in "{[":
            close = "}" if ch == "{" else "]"
            if ch == "{":
                last = self.members(i)
                j = last[-1][2] if last else i + 1
            else:
                items = self.items(i)
                j = items[-1][1] if items else i + 1
            j = self.ws(j)
            if self.text[j] != close:
                raise ValueError("unbalanced JSON")
            return j + 1
        match = _SCALAR_RE.match(self.text, i)
        if match is None:
            raise ValueError("bad JSON value")
        return match.end()


def _json_strings(text: str, span: tuple[int, int]) -> list[tuple[int, str, list[int]]]:
    """The strings of the JSON value (a string or a list of strings) at `span` of `text`."""
    start, end = span
    out = []
    i = start
    while i < end:
        if text[i] != '"':
            i += 1
            continue
        decoded: list[str] = []
        raw_of: list[int] = []
        j = i + 1
        while text[j] != '"':
            raw_of.append(j - i - 1)
            if text[j] != "\\":
                decoded.append(text[j])
                j += 1
                continue
            kind = text[j + 1]
            if kind != "u":
                decoded.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(kind, kind))
                j += 2
                continue
            code = int(text[j + 2 : j + 6], 16)
            j += 6
            if 0xD800 <= code < 0xDC00 and text[j : j + 2] == "\\u":  # a surrogate pair: one code point
                low = int(text[j + 2 : j + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    j += 6
            decoded.append(chr(code))
        raw_of.append(j - i - 1)
        out.append((i + 1, "".join(decoded), raw_of))
        i = j + 1
    return out


# --- write-back ----------------------------------------------------------------------------------


def split_program(nb: Notebook, fixed: str) -> dict[int, str] | None:
    """New program text per cell after a fix, or None if the change cannot be mapped onto cells safely."""
    old_lines, new_lines = lines_of(nb.program), lines_of(fixed)
    owner: list[list[str]] = [[] for _ in nb.cells]
    index = {cell.number: k for k, cell in enumerate(nb.cells)}
    cell_of = [index[c] for c, _ in nb.line_map]
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                owner[cell_of[i1 + offset]].append(new_lines[j1 + offset])
            continue
        if i2 > i1:
            cells = {cell_of[i] for i in range(i1, i2)}
            if len(cells) != 1:
                return None
            owner[cells.pop()].extend(new_lines[j1:j2])
            continue
        # A pure insertion goes to the next cell; indented lines at its start continue the previous cell.
        inserted = new_lines[j1:j2]
        split = 0 if i1 > 0 else len(inserted)
        for n, line in enumerate(inserted if i1 > 0 else ()):
            if line.strip():
                if line[:1] not in (" ", "\t"):
                    break
                split = n + 1
        if i1 >= len(cell_of):
            split = len(inserted)
        if split:
            owner[cell_of[i1 - 1] if i1 > 0 else 0].extend(inserted[:split])
        if split < len(inserted):
            owner[cell_of[i1]].extend(inserted[split:])
    out = {}
    for k, cell in enumerate(nb.cells):
        text = "".join(owner[k])
        if text == cell.program:
            continue
        if cell.frozen or _syntax_error(text) is not None:
            return None
        out[cell.number] = text
    if "".join("".join(o) for o in owner) != fixed:
        return None
    return out


def restore(cell: Cell, program: str) -> str | None:
    """The cell's source for a fixed program text: magics put back, the trailing newline as it was."""
    out = []
    for line in lines_of(program):
        match = _PLACEHOLDER_RE.match(line.rstrip("\r\n"))
        if match:
            original = cell.magics.get(int(match.group(1)))
            if original is None:
                return None
            out.append(original + _ending(line))
        else:
            out.append(line)
    text = "".join(out)
    if not cell.trailing_newline and text.endswith("\n"):
        text = text[:-1]
    return text


def write_back(nb: Notebook, sources: dict[int, str]) -> str | None:
    """The file text with the given cells' sources replaced; None if a cell's source cannot be located."""
    ensure_ascii = _escapes_non_ascii(nb.text)
    pieces, last = [], 0
    for cell in sorted((nb.cell(n) for n in sources), key=lambda c: c.span or (0, 0)):
        if cell.span is None:
            return None
        start, end = cell.span
        pieces.append(nb.text[last:start])
        pieces.append(_source_json(nb.text[start:end], sources[cell.number], ensure_ascii))
        last = end
    pieces.append(nb.text[last:])
    text = "".join(pieces)
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return None
    return text


def _escapes_non_ascii(text: str) -> bool:
    return text.isascii() and re.search(r"\\u(?:00[89a-fA-F]|0[1-9a-fA-F]|[1-9a-fA-F])", text) is not None


def _source_json(old: str, source: str, ensure_ascii: bool) -> str:
    """`source` as a JSON list of lines, laid out like the original value `old`."""
    parts = source.splitlines(keepends=True)
    items = [json.dumps(p, ensure_ascii=ensure_ascii) for p in parts]
    if old.startswith('"'):
        return json.dumps(source, ensure_ascii=ensure_ascii)
    inner = old[1:-1]
    if not items:
        return "[]"
    if "\n" not in inner:
        return "[" + ", ".join(items) + "]"
    lead = inner[: len(inner) - len(inner.lstrip())]
    tail = inner[len(inner.rstrip()):]
    if not inner.strip():  # an empty list laid out over lines: indent one more than its closing bracket
        lead = tail + " "
    return "[" + lead + ("," + lead).join(items) + tail + "]"


# --- mapping findings ------------------------------------------------------------------------------


def to_cell(nb: Notebook, finding: Finding) -> Finding:
    """The finding with its lines counted within its cell, and `cell` set."""
    if not nb.line_map:
        return finding
    line = min(max(finding.start.line, 1), len(nb.line_map))
    cell, start_line = nb.line_map[line - 1]
    end = finding.end
    end_line = min(max(end.line, 1), len(nb.line_map))
    if nb.line_map[end_line - 1][0] == cell and end.line <= len(nb.line_map):
        end = Position(nb.line_map[end_line - 1][1], end.column)
    else:
        end = Position(start_line, finding.start.column)
    first, last = finding.stmt_lines
    stmt = tuple(nb.line_map[n - 1][1] if 1 <= n <= len(nb.line_map) and nb.line_map[n - 1][0] == cell else 0
                 for n in (first, last))
    out = replace(finding, start=Position(start_line, finding.start.column), end=end, cell=cell,
                  stmt_lines=(stmt[0], stmt[1]))
    out.file_start = nb.file_position(cell, start_line, finding.start.column)
    out.file_end = nb.file_position(cell, end.line, end.column)
    if finding.lines:
        source = lines_of(nb.cell(cell).source)
        first_ctx, last_ctx = max(1, start_line - 1), min(len(source), end.line + 1)
        out.lines = [(n, source[n - 1].rstrip("\r\n")) for n in range(first_ctx, last_ctx + 1)]
    if finding.edits:
        out.edits = [_edit_to_cell(nb, e, cell) for e in finding.edits]
    return out


def _edit_to_cell(nb: Notebook, edit: dict[str, Any], cell: int) -> dict[str, Any]:
    def row(n: int) -> int:
        if 1 <= n <= len(nb.line_map) and nb.line_map[n - 1][0] == cell:
            return nb.line_map[n - 1][1]
        if 2 <= n <= len(nb.line_map) + 1 and nb.line_map[n - 2][0] == cell:
            return nb.line_map[n - 2][1] + 1
        return n

    loc, end = edit["location"], edit["end_location"]
    return {**edit, "location": {**loc, "row": row(loc["row"])}, "end_location": {**end, "row": row(end["row"])}}


def syntax_findings(nb: Notebook, path: str) -> list[Finding]:
    """PTL000 for each cell that is not valid Python (after magics are set aside)."""
    from ptlint.engine import syntax_at

    out = []
    for cell in nb.cells:
        if cell.error is not None:
            line, col, message = cell.error
            start = nb.file_position(cell.number, line, col)
            out.append(replace(syntax_at(path, line, col, message), cell=cell.number, file_start=start, file_end=start))
    return out


def cell_diff(nb: Notebook, sources: dict[int, str], path: str) -> str:
    out = []
    for number in sorted(sources):
        before = nb.cell(number).source
        after = sources[number]
        out.extend(difflib.unified_diff(
            _with_newline(before).splitlines(keepends=True), _with_newline(after).splitlines(keepends=True),
            f"a/{path}:cell {number}", f"b/{path}:cell {number}",
        ))
    return "".join(out)


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def is_notebook(path: Path | str) -> bool:
    return str(path).lower().endswith(".ipynb")


# --- checking -------------------------------------------------------------------------------------


def check_notebook_text(text: str, shown: str, settings: Any, mode: Any, rules_path: Path | None = None) -> tuple[Any, str | None]:
    """Lint (and maybe fix) a notebook's text: (FileReport with per-cell findings, the fixed text or None)."""
    from dataclasses import replace as copy

    from ptlint.engine import syntax_at
    from ptlint.runner import FileReport, check_text

    try:
        nb = load(text)
    except NotebookError as exc:
        return FileReport(shown, [syntax_at(shown, 1, 1, str(exc))]), None
    if not nb.python:
        return FileReport(shown), None
    report = check_text(nb.program, shown, settings, mode, rules_path, _locator(nb, shown))
    report.diff = ""
    new_text = None
    if report.fixed_text is not None:
        sources = _fixed_sources(nb, report.fixed_text)
        new_text = write_back(nb, sources) if sources else None
        plain = copy(mode, fix=False, diff=False)
        if new_text is None:
            again = check_text(nb.program, shown, settings, plain, rules_path, _locator(nb, shown))
            again.warnings.insert(0, f"{shown}: cannot map the fixes back onto the notebook's cells; not fixed")
            report = again
        else:
            if mode.diff:
                report.diff = cell_diff(nb, sources or {}, shown)
            nb = load(new_text)
            again = check_text(nb.program, shown, settings, plain, rules_path, _locator(nb, shown))
            report.findings = again.findings
            report.warnings += [w for w in again.warnings if w not in report.warnings]
    report.fixed_text = None
    report.findings = [to_cell(nb, f) for f in report.findings] + syntax_findings(nb, shown)
    return report, new_text


def _locator(nb: Notebook, shown: str) -> Any:
    """`line of the program` -> `nb.ipynb:cell N:line`, for warnings."""

    def locate(line: int) -> str:
        if 1 <= line <= len(nb.line_map):
            cell, cell_line = nb.line_map[line - 1]
            return f"{shown}:cell {cell}:{cell_line}"
        return f"{shown}:{line}"

    return locate


def _fixed_sources(nb: Notebook, fixed: str) -> dict[int, str] | None:
    programs = split_program(nb, fixed)
    if not programs:
        return None
    sources = {}
    for number, program in programs.items():
        source = restore(nb.cell(number), program)
        if source is None:
            return None
        sources[number] = source
    return sources


BOM = _BOM = b"\xef\xbb\xbf"


def check_notebook(path: Path, data: bytes, shown: str, settings: Any, mode: Any) -> Any:
    """Read, lint and (with --fix) rewrite one notebook file."""
    from ptlint.engine import syntax_at
    from ptlint.runner import FileReport, _write_fix

    bom = data.startswith(_BOM)
    try:
        text = data[len(_BOM) if bom else 0:].decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileReport(shown, [syntax_at(shown, 1, 1, f"cannot decode notebook: not valid utf-8 (offset {exc.start})")])
    report, new_text = check_notebook_text(text, shown, settings, mode, path)
    if mode.fix and not mode.diff and new_text is not None and new_text != text:
        if _write_fix(path, data, (_BOM if bom else b"") + new_text.encode("utf-8"), report) is False:
            # Nothing was written, so the findings are those of the notebook as it is.
            plain = replace(mode, fix=False, diff=False)
            report.findings = check_notebook_text(text, shown, settings, plain, path)[0].findings
    return report
