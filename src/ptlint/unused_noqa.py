"""PTL100 unused-noqa: `# noqa: CODE` comments that no longer suppress anything.

An engine-level pseudo-rule: it runs after every other rule's findings were matched against the
suppressions of the file, so it knows which line codes were used.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

import libcst as cst

from ptlint.noqa import ALL, codes_in, line_directive
from ptlint.rule import Finding, Fix, FixSafety, Position, RawFinding, Replace, Rule
from ptlint.source import split_lines

if TYPE_CHECKING:
    from ptlint.engine import Analysis

CODE = "PTL100"
NEVER_STALE = {"PTL000"}  # syntax errors are never suppressed, so their code is never "used"
_NOQA_RE = re.compile("noqa", re.IGNORECASE)


class UnusedNoqaRule(Rule):
    """A `# noqa` code that suppresses nothing.

    ## What it does
    Reports a `# noqa: PTLxxx` comment whose code no longer matches any finding on its line.

    Only codes of rules enabled for the file count: codes of other tools (`E501`, `F401`), of rules that are
    disabled or ignored, and bare `# noqa` comments are never reported. A `# noqa` inside a string
    literal is not a comment and is never reported either.

    A `PTL100` code in the list keeps the other codes of that line from being reported; it is itself
    reported when nothing else on the line is stale. `# ptlint: noqa` and `# ptlint: noqa: PTL100`
    on a line of their own turn the rule off for the file.

    ## Why is this bad?
    A stale suppression hides the next real finding on that line: after the code was fixed, a
    regression there would go unreported.

    ## Example
    ```python
    torch.save(model.state_dict(), "model.pt")  # noqa: PTL006
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    The fix is safe: it removes only the stale codes from the list (`# noqa: PTL001, PTL006` becomes
    `# noqa: PTL001`), or the whole directive when no code is left, keeping any other comment text
    (`# type: ignore  # noqa: PTL006` becomes `# type: ignore`). A comment on a line of its own that
    held only the directive is removed with its line.

    ## References
    - [flake8: selecting and ignoring violations](https://flake8.pycqa.org/en/latest/user/violations.html)
    """

    code = CODE
    name = "unused-noqa"
    message = "Unused `noqa` code"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ()
    contract = "E0"  # removing a comment never changes what runs


def wanted(rules: Iterable[type[Rule]], text: str) -> bool:
    """PTL100 is enabled and the text mentions noqa at all."""
    return any(r.code == CODE for r in rules) and _NOQA_RE.search(text) is not None


def _stale_codes(result: "Analysis", enabled: set[str]) -> dict[int, set[str]]:
    """Per line, the codes of its noqa comment that suppressed nothing."""
    sup = result.suppressions
    out: dict[int, set[str]] = {}
    for line, codes in sup.lines.items():
        if ALL in codes:
            continue
        stale = {
            c for c in codes
            if c in enabled and c != CODE and c not in NEVER_STALE and c not in sup.file and (line, c) not in sup.used
        }
        if CODE in codes:
            # The PTL100 code suppresses the other stale codes; alone, it is stale itself.
            stale = set() if stale else {CODE}
        if stale:
            out[line] = stale
    return out


class _Comments(cst.CSTVisitor):
    """Comments that hold `noqa`, with the whitespace node that owns them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[cst.TrailingWhitespace | cst.EmptyLine] = []

    def visit_TrailingWhitespace(self, node: cst.TrailingWhitespace) -> None:
        if node.comment is not None and _NOQA_RE.search(node.comment.value):
            self.found.append(node)

    def visit_EmptyLine(self, node: cst.EmptyLine) -> None:
        if node.comment is not None and _NOQA_RE.search(node.comment.value):
            self.found.append(node)


def report(
    result: "Analysis", path: str, rules: Iterable[type[Rule]], positions_of: Callable[[cst.Module], Any]
) -> None:
    """Append PTL100 findings (with their raws, in step) to `result`."""
    sup = result.suppressions
    if result.module is None or ALL in sup.file or CODE in sup.file:
        return
    enabled = {r.code for r in rules}
    stale = _stale_codes(result, enabled)
    if not stale:
        return
    if result.positions is None:
        result.positions = positions_of(result.module)
    positions = result.positions
    visitor = _Comments()
    result.module.visit(visitor)
    lines = split_lines(result.module.code)
    rule = UnusedNoqaRule(None, None)  # type: ignore[arg-type]
    for owner in visitor.found:
        comment = owner.comment
        assert comment is not None
        start = positions[comment].start
        codes = stale.get(start.line)
        if codes is None:
            continue
        match = line_directive(comment.value)
        first = line_directive(lines[start.line - 1])
        if match is None or first is None or first.start() != start.column + match.start():
            continue  # the directive that counts on this line is inside a string, not this comment
        fix = _fix(owner, comment, match, codes)
        if fix is None:
            continue
        ordered = [m.group().upper() for m in codes_in(match.group("codes") or "") if m.group().upper() in codes]
        listed = ", ".join(dict.fromkeys(ordered))
        if len(ordered) == 1:
            message = f"`noqa` code {listed} suppresses nothing on this line"
        else:
            message = f"`noqa` codes {listed} suppress nothing on this line"
        col = start.column + match.start() + 1
        finding = Finding(
            code=CODE,
            name=UnusedNoqaRule.name,
            message=message,
            path=path,
            start=Position(start.line, col),
            end=Position(start.line, col + len(match.group())),
            fix=fix,
            stmt_lines=(start.line, start.line),
        )
        result.raws.append(RawFinding(rule, comment, message, fix, None))
        result.findings.append(finding)


def _fix(
    owner: cst.TrailingWhitespace | cst.EmptyLine, comment: cst.Comment, match: re.Match[str], stale: set[str]
) -> Fix | None:
    """Remove the stale codes, or the whole directive (and an emptied comment) when none is left."""
    text = comment.value
    codes_text = match.group("codes") or ""
    keep = [m.group() for m in codes_in(codes_text) if m.group().upper() not in stale]
    if keep:
        sep = ", " if "," in codes_text else " "
        directive = text[match.start():match.start("codes")] + sep.join(keep)
        new = text[:match.start()] + directive + text[match.end():]
        title = "Remove the unused `noqa` code" if len(stale) == 1 else "Remove the unused `noqa` codes"
        return Fix(title, FixSafety.SAFE, (Replace(comment, comment.with_changes(value=new)),))
    before, after = text[:match.start()], text[match.end():].strip()
    if before.strip():
        new = before.rstrip() + (" " + after if after else "")
    elif after:
        new = after if after.startswith("#") else "# " + after
    else:
        new = ""
    title = "Remove the unused `noqa` directive"
    if new:
        return Fix(title, FixSafety.SAFE, (Replace(comment, comment.with_changes(value=new)),))
    if isinstance(owner, cst.EmptyLine):
        return Fix(title, FixSafety.SAFE, (Replace(owner, cst.RemovalSentinel.REMOVE),))  # type: ignore[arg-type]
    bare = owner.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
    return Fix(title, FixSafety.SAFE, (Replace(owner, bare),))
