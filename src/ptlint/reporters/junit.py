"""JUnit XML: one testsuite per file with findings, one failed testcase per finding."""

from __future__ import annotations

from itertools import groupby
from xml.sax.saxutils import escape, quoteattr

from ptlint.reporters import RunInfo
from ptlint.reporters.text import location
from ptlint.finding import Finding


def _attrs(**values: object) -> str:
    return "".join(f" {key}={quoteattr(str(value))}" for key, value in values.items())


def _case(f: Finding) -> list[str]:
    where = f"cell {f.cell}, line {f.start.line}" if f.cell is not None else f"line {f.start.line}"
    name = f"{f.code} ({f.name}) at {where}, column {f.start.column}"
    return [
        f"    <testcase{_attrs(name=name, classname=f.path, file=f.path, line=f.start.line)}>",
        f"      <failure{_attrs(message=f.message, type=f.code)}>"
        f"{escape(f'{location(f)}: {f.code} {f.message}')}</failure>",
        "    </testcase>",
    ]


def render(findings: list[Finding], run: RunInfo) -> str:
    n = len(findings)
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    if not findings:
        # A passing testcase, so that CI dashboards show a green test rather than an empty report.
        out += [
            f"<testsuites{_attrs(name='ptlint', tests=1, failures=0, errors=0)}>",
            f"  <testsuite{_attrs(name='ptlint', tests=1, failures=0, errors=0)}>",
            f"    <testcase{_attrs(name='no findings', classname='ptlint')}/>",
            "  </testsuite>",
            "</testsuites>",
        ]
        return "\n".join(out) + "\n"
    out.append(f"<testsuites{_attrs(name='ptlint', tests=n, failures=n, errors=0)}>")
    for path, group in groupby(findings, key=lambda f: f.path):
        items = list(group)
        out.append(f"  <testsuite{_attrs(name=path, tests=len(items), failures=len(items), errors=0)}>")
        for f in items:
            out += _case(f)
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
