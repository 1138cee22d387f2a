"""JUnit XML: one testsuite per file with findings, one failed testcase per finding."""

from __future__ import annotations

from itertools import groupby
from xml.sax.saxutils import escape, quoteattr

from ptlint.finding import Finding, severity_of
from ptlint.reporters import RunInfo
from ptlint.reporters.text import location


def _attrs(**values: object) -> str:
    return "".join(f" {key}={quoteattr(str(value))}" for key, value in values.items())


def _properties(values: list[tuple[str, object]]) -> list[str]:
    out = ["      <properties>"]
    out += [f"        <property{_attrs(name=name, value=value)}/>" for name, value in values]
    return out + ["      </properties>"]


def _case(f: Finding) -> list[str]:
    severity = severity_of(f)
    where = f"cell {f.cell}, line {f.start.line}" if f.cell is not None else f"line {f.start.line}"
    name = f"{f.code} ({f.name}) at {where}, column {f.start.column}"
    props: list[tuple[str, object]] = [("severity", severity)]
    line = f.start.line
    if f.cell is not None:
        # `line` is the line of the .ipynb file that holds the finding; the cell's own numbers are properties.
        line = f.file_start.line if f.file_start is not None else line
        props += [("cell", f.cell), ("cell_line", f.start.line), ("cell_column", f.start.column)]
    return [
        f"    <testcase{_attrs(name=name, classname=f.path, file=f.path, line=line)}>",
        *_properties(props),
        f"      <failure{_attrs(message=f.message, type=f.code)}>"
        f"{escape(f'{location(f)}: {severity}: {f.code} {f.message}')}</failure>",
        "    </testcase>",
    ]


def _errors(errors: tuple[str, ...]) -> list[str]:
    """A testsuite with one errored testcase per internal error."""
    out = [f"  <testsuite{_attrs(name='ptlint internal errors', tests=len(errors), failures=0, errors=len(errors))}>"]
    for n, message in enumerate(errors, start=1):
        out += [
            f"    <testcase{_attrs(name=f'internal error {n}', classname='ptlint')}>",
            f"      <error{_attrs(message=message, type='internal-error')}>{escape(message)}</error>",
            "    </testcase>",
        ]
    return out + ["  </testsuite>"]


def render(findings: list[Finding], run: RunInfo) -> str:
    n = len(findings)
    errors = run.internal_errors
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    if not findings:
        # A passing testcase, so that CI dashboards show a green test rather than an empty report.
        out += [
            f"<testsuites{_attrs(name='ptlint', tests=1 + len(errors), failures=0, errors=len(errors))}>",
            f"  <testsuite{_attrs(name='ptlint', tests=1, failures=0, errors=0)}>",
            f"    <testcase{_attrs(name='no findings', classname='ptlint')}/>",
            "  </testsuite>",
            *(_errors(errors) if errors else []),
            "</testsuites>",
        ]
        return "\n".join(out) + "\n"
    out.append(f"<testsuites{_attrs(name='ptlint', tests=n + len(errors), failures=n, errors=len(errors))}>")
    for path, group in groupby(findings, key=lambda f: f.path):
        items = list(group)
        out.append(f"  <testsuite{_attrs(name=path, tests=len(items), failures=len(items), errors=0)}>")
        for f in items:
            out += _case(f)
        out.append("  </testsuite>")
    if errors:
        out += _errors(errors)
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
