"""The per-file pipeline: parse once, walk once dispatching to every enabled rule, resolve findings."""

from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import libcst as cst
from libcst.metadata import CodeRange

from ptlint import unused_noqa
from ptlint.context import Context
from ptlint.finding import SYNTAX_CODE, syntax_at
from ptlint.facts.walk import memoized
from ptlint.noqa import Suppressions, parse_suppressions
from ptlint.positions import positions_of
from ptlint.rule import Finding, Position, RawFinding, Rule

# Long operator chains make deep trees; Python 3.11 frames are cheap, so allow deeper recursion.
PYTHON_RECURSION_LIMIT = sys.getrecursionlimit()  # what a plain `python` run of the user's file has
sys.setrecursionlimit(max(PYTHON_RECURSION_LIMIT, 12000))


@dataclass
class Analysis:
    """What the rules found in one parsed text."""

    module: cst.Module | None
    raws: list[RawFinding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    positions: Any = None
    errors: list[str] = field(default_factory=list)
    suppressions: Suppressions = field(default_factory=Suppressions)


def parse(text: str) -> cst.Module:
    """libcst's native parser, without re-validating each node it builds (its output is valid).

    Node validation is about a sixth of parsing time; fixes build their nodes with validation on.
    """
    saved = cst.CSTNode.__dict__.get("__post_init__")
    if saved is None:
        return cst.parse_module(text)
    cst.CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
    try:
        return cst.parse_module(text)
    finally:
        cst.CSTNode.__post_init__ = saved  # type: ignore[method-assign]


def _skip_validation(self: cst.CSTNode) -> None:
    return None


def syntax_finding(path: str, exc: Exception, text: str = "") -> Finding:
    """PTL000 at the error's position, worded like Python's own SyntaxError where it agrees."""
    py_error = _python_syntax_error(text) if text else None
    if py_error is not None:
        line, col, msg = py_error
    elif isinstance(exc, cst.ParserSyntaxError):
        line, col = exc.raw_line, exc.raw_column + 1
        msg = f"SyntaxError: {exc.message}"
    elif isinstance(exc, RecursionError):
        line, col, msg = 1, 1, "the file is nested too deeply to parse"
    else:
        line, col, msg = 1, 1, str(exc) or type(exc).__name__
    return syntax_at(path, line, col, msg)


def _python_syntax_error(text: str) -> tuple[int, int, str] | None:
    try:
        compile(text, "<ptlint>", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
    except SyntaxError as exc:
        return exc.lineno or 1, exc.offset or 1, f"SyntaxError: {exc.msg}"
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


_SCAN_RE = re.compile(r"[-+*/%|&^@]|\b(?:and|or)\b|[()\[\]{}]|\n")
MAX_OPERATORS_PER_STATEMENT = 2500


def _operator_count(text: str) -> int:
    """About how many operators `text` holds: a quick bound before the real scan."""
    return sum(text.count(op) for op in "-+*/%|&^@") + text.count(" and ") + text.count(" or ")


def _too_deep(text: str) -> int:
    """The line of a statement whose operator chain would overflow libcst's native parser, or 0.

    A rough scan (strings and comments count too); it only runs on files with many operators.
    """
    if len(text) < 5000 or _operator_count(text) <= MAX_OPERATORS_PER_STATEMENT:
        return 0
    depth = count = 0
    line = start = 1
    for match in _SCAN_RE.finditer(text):
        token = match.group()
        if token == "\n":
            line += 1
            if depth <= 0:
                depth, count, start = 0, 0, line
        elif token in "([{":
            depth += 1
        elif token in ")]}":
            depth -= 1
        else:
            count += 1
            if count > MAX_OPERATORS_PER_STATEMENT:
                return start
    return 0


def active_rules(rules: Iterable[type[Rule]], text: str) -> list[type[Rule]]:
    """The rules whose trigger tokens occur in `text` (a cheap text prefilter)."""
    return [r for r in rules if not r.triggers or any(t in text for t in r.triggers)]


def walk_rules(ctx: Context, instances: list[Rule], errors: list[str]) -> None:
    """One traversal of the tree that calls each rule's visit_/leave_ methods.

    A rule that raises, `RecursionError` included, becomes an internal error of that rule for this
    file: it is not called again, and the other rules go on. The walk itself uses no recursion: it
    follows the source order of the semantic model's tree, built once for the file.
    """
    visits: dict[str, list[tuple[Rule, Callable[[Any], Any]]]] = {}
    leaves: dict[str, list[tuple[Rule, Callable[[Any], Any]]]] = {}
    for rule in instances:
        for attr in rule.visitor_names():
            kind, _, type_name = attr.partition("_")
            table = visits if kind == "visit" else leaves
            table.setdefault(type_name, []).append((rule, getattr(rule, attr)))
    broken: set[int] = set()
    stack = ctx.stack
    imports = ctx.imports

    def call(handlers: list[tuple[Rule, Callable[[Any], Any]]], node: cst.CSTNode) -> None:
        for rule, handler in handlers:
            if id(rule) in broken:
                continue
            try:
                handler(node)
            except (Exception, RecursionError):  # a broken rule must not stop the others
                broken.add(id(rule))
                errors.append(f"internal error in rule {rule.code}: {traceback.format_exc(limit=-3).strip()}")
                rule.reports = []  # what it reported before it broke may be half done

    # The semantic model's tree is the one pass over the file: the walk follows its source order, and
    # leaves each node once the next node to enter lies outside its subtree.
    tree = ctx.model.tree
    ends = tree.ends
    open_ends: list[int] = []
    for index, node in enumerate(tree.preorder):
        while open_ends and open_ends[-1] < index:
            open_ends.pop()
            done = stack.pop()
            handlers = leaves.get(type(done).__name__)
            if handlers:
                call(handlers, done)
        stack.append(node)
        open_ends.append(ends[index])
        name = type(node).__name__
        if name in ("Import", "ImportFrom"):
            imports.add(node)  # nested imports count from here on
        handlers = visits.get(name)
        if handlers:
            call(handlers, node)
    while stack:
        done = stack.pop()
        handlers = leaves.get(type(done).__name__)
        if handlers:
            call(handlers, done)


def analyze(
    text: str,
    path: str,
    rules: list[type[Rule]],
    options: dict[str, dict[str, Any]] | None = None,
    settings: Any = None,
) -> Analysis:
    """Parse `text`, run the enabled rules, and resolve their findings (noqa applied).

    A very large file is checked in parts (see ptlint.segments), so memory stays bounded.
    """
    from ptlint import segments

    if segments.is_large(text):
        return segments.analyze_in_parts(text, path, lambda part: analyze_whole(part, path, rules, options, settings))
    return analyze_whole(text, path, rules, options, settings)


def analyze_whole(
    text: str,
    path: str,
    rules: list[type[Rule]],
    options: dict[str, dict[str, Any]] | None = None,
    settings: Any = None,
) -> Analysis:
    """`analyze` on one parse of the whole text."""
    unused = unused_noqa.wanted(rules, text)  # PTL100 runs after suppression, not in the walk
    todo = [r for r in active_rules(rules, text) if r.code not in (SYNTAX_CODE, unused_noqa.CODE)]
    if not todo and not unused:
        # No rule needs the tree: CPython's own parser is enough to report syntax errors.
        result = Analysis(None)
        error = _python_syntax_error(text)
        if error is not None:
            result.findings.append(syntax_at(path, *error))
        return result
    deep = _too_deep(text)
    if deep:
        return unparsed(path, text, deep, "skipped: an expression is nested too deeply for the parser")
    try:
        module = parse(text)
    except (cst.ParserSyntaxError, RecursionError, ValueError) as exc:
        result = Analysis(None)
        finding = syntax_finding(path, exc, text if not isinstance(exc, RecursionError) else "")
        if isinstance(exc, cst.ParserSyntaxError) and _python_syntax_error(text) is not None:
            result.findings.append(finding)
            return result
        return unparsed(path, text, finding.start.line, finding.message)
    result = Analysis(module)
    result.suppressions = parse_suppressions(text)
    ctx = Context(module, path, text, settings)
    instances = [r(ctx, (options or {}).get(r.code)) for r in todo]
    with memoized():
        walk_rules(ctx, instances, result.errors)
    for rule in instances:
        result.raws.extend(rule.reports)
        rule.reports = []  # a finding refers to its rule: no rule -> finding -> rule cycle to hold the tree
    if result.raws:
        result.positions = positions_of(module)
        keep = []
        for raw in result.raws:
            finding = resolve(raw, path, result.positions)
            if not result.suppressions.suppresses(finding.code, *finding.stmt_lines):
                keep.append(raw)
                result.findings.append(finding)
        result.raws = keep
    if unused:
        unused_noqa.report(result, path, rules, positions_of)
    return result


def unparsed(path: str, text: str, line: int, message: str) -> Analysis:
    """A file libcst cannot parse: PTL000 when Python cannot parse it either, else an internal error.

    PTL000 means only that Python itself rejects the file.
    """
    result = Analysis(None)
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(PYTHON_RECURSION_LIMIT)  # as `python file.py` would parse it
    try:
        compile(text, "<ptlint>", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
    except SyntaxError as exc:
        result.findings.append(syntax_at(path, exc.lineno or 1, exc.offset or 1, f"SyntaxError: {exc.msg}"))
    except (RecursionError, MemoryError):
        result.findings.append(syntax_at(path, line, 1, message))
    except ValueError as exc:
        result.findings.append(syntax_at(path, 1, 1, str(exc)))
    else:
        result.errors.append(f"internal error: {path}:{line}: libcst cannot parse this file, which Python accepts ({message})")
    finally:
        sys.setrecursionlimit(saved)
    return result


def resolve(raw: RawFinding, path: str, positions: Any) -> Finding:
    rng: CodeRange = positions[raw.node]
    first, last = rng.start.line, rng.end.line
    if isinstance(raw.stmt, cst.SimpleStatementLine):
        srng = positions[raw.stmt]
        first, last = min(first, srng.start.line), max(last, srng.end.line)
        # The statement's range includes its trailing newline only through its last line.
    return Finding(
        code=raw.rule.code,
        name=raw.rule.name,
        message=raw.message,
        path=path,
        start=Position(rng.start.line, rng.start.column + 1),
        end=Position(rng.end.line, rng.end.column + 1),
        fix=raw.fix,
        stmt_lines=(first, last),
    )
