"""GitHub Actions workflow commands: one `::error`, `::warning` or `::notice` annotation per finding."""

from __future__ import annotations

from ptlint.finding import Finding, severity_of
from ptlint.reporters import RunInfo

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message the way the Actions runner decodes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value: the message escapes plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = [("file", f.path)]
    message = f.message
    if f.cell is None:
        props += [
            ("line", str(f.start.line)),
            ("col", str(f.start.column)),
            ("endLine", str(f.end.line)),
            ("endColumn", str(f.end.column)),
        ]
    else:
        # The cell's lines count from the top of the cell: say where in the message, and annotate
        # the line of the .ipynb file that holds the cell's line.
        message = f"cell {f.cell}:{f.start.line}:{f.start.column}: {message}"
        if f.file_start is not None:
            props += [("line", str(f.file_start.line)), ("endLine", str((f.file_end or f.file_start).line))]
    props.append(("title", f"{f.code} ({f.name})"))
    head = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{COMMANDS[severity_of(f)]} {head}::{escape_data(message)}"


def render(findings: list[Finding], run: RunInfo) -> str:
    return "".join(annotation(f) + "\n" for f in findings)
