"""Scenarios: discovery, their declarations, and making the bad and fixed variants with ptlint's fixer."""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ptlint.registry import all_rules
from ptlint.rule import FixSafety, Rule

# A fixer takes (source, path, rules) and returns the fixed source. Tests pass broken ones.
Fixer = Callable[[str, str, Sequence[type[Rule]]], str]


def _fixtures() -> Path:
    """`fixtures/` of the source checkout; else the scenarios installed with ptlint (`ptlint.verify.bundled`,
    the fixtures' `*/verify/*.py` as package data); else `fixtures/` of the current folder."""
    beside = Path(__file__).resolve().parents[3] / "fixtures"
    if beside.is_dir():
        return beside
    bundled = Path(__file__).resolve().parent / "bundled"
    return bundled if bundled.is_dir() else Path.cwd() / "fixtures"


FIXTURES = _fixtures()
DECLARATIONS = {"RTOL": "rtol", "ATOL": "atol", "INVARIANT": "invariant_text", "NEEDS": "needs",
                "BAD_RAISES_ON": "bad_raises_on", "CONTRACT": "contract"}


def default_fixer(text: str, path: str, rules: Sequence[type[Rule]]) -> str:
    """ptlint's own fixer with unsafe fixes: what `ptlint check --fix --unsafe-fixes` writes."""
    from ptlint.api import lint_text

    return lint_text(text, path, rules, fix=True, unsafe=True).text


@dataclass
class Scenario:
    """One scenario file and what it is checked against."""

    name: str  # the rule code, or the file name for a user scenario
    path: Path
    rules: tuple[type[Rule], ...]  # the rules whose fixes make the fixed variant
    contract: str
    decl: dict[str, Any] = field(default_factory=dict)
    rule_name: str = ""


def fixable_rules() -> list[type[Rule]]:
    return [r for r in all_rules() if r.fix_safety != FixSafety.NONE and r.code != "PTL000"]


def scenario_files(code: str, root: Path = FIXTURES) -> list[Path]:
    return sorted((root / code / "verify").glob("*.py"))


def declarations(text: str) -> dict[str, Any]:
    """The module-level declarations of a scenario, read without running it."""
    found: dict[str, Any] = {}
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            key = DECLARATIONS.get(node.targets[0].id)
            if key is not None:
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                found[key] = (value,) if key == "bad_raises_on" and isinstance(value, str) else value
        elif isinstance(node, ast.FunctionDef) and node.name == "invariant":
            found["has_invariant"] = True
    return found


def builtin(codes: Sequence[str] = (), root: Path = FIXTURES) -> tuple[list[Scenario], list[str]]:
    """The scenarios of the fixable rules (all, or those in `codes`), and the rules that have none."""
    wanted = {c.upper() for c in codes}
    out: list[Scenario] = []
    missing: list[str] = []
    for rule in fixable_rules():
        if wanted and rule.code not in wanted and rule.name not in {c.lower() for c in codes}:
            continue
        files = scenario_files(rule.code, root)
        if not files:
            missing.append(rule.code)
        for path in files:
            name = rule.code if path.name == "scenario.py" else f"{rule.code}/{path.stem}"
            decl = declarations(path.read_text(encoding="utf-8"))
            out.append(Scenario(name, path, (rule,), rule.contract or "E0", decl, rule.name))
    return out, missing


def user(path: Path) -> Scenario:
    """A scenario the user wrote: every fixable rule applies; the contract is declared or inferred."""
    text = path.read_text(encoding="utf-8")
    decl = declarations(text)
    inferred = "E2" if decl.get("has_invariant") else "E1" if "rtol" in decl or "atol" in decl else "E0"
    contract = decl.get("contract") or inferred
    return Scenario(path.name, path, tuple(fixable_rules()), str(contract), decl, "user scenario")


def description(text: str) -> str:
    """The scenario's docstring: what it runs and what goes wrong in it."""
    try:
        return ast.get_docstring(ast.parse(text)) or ""
    except SyntaxError:
        return ""


def needed_modules(decl: dict[str, Any]) -> list[str]:
    """The module names in NEEDS (not "cuda" or "2gpus")."""
    needs = decl.get("needs") or ()
    return [str(n) for n in ((needs,) if isinstance(needs, str) else tuple(needs)) if n not in ("cuda", "2gpus")]


@dataclass
class Variants:
    bad: Path
    fixed: Path
    applied: list[str]  # codes reported in the bad variant
    error: str | None = None
    diff: str = ""  # unified diff of the fixer's change


def make_variants(scenario: Scenario, folder: Path, fixer: Fixer = default_fixer) -> Variants:
    """Write the bad copy and the fixer's output under `folder`; the fix must apply."""
    from ptlint.api import lint_text

    text = scenario.path.read_text(encoding="utf-8")
    bad = folder / "bad" / scenario.path.name
    fixed = folder / "fixed" / scenario.path.name
    for target in (bad, fixed):
        target.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(text, encoding="utf-8")
    found = lint_text(text, str(scenario.path), scenario.rules).findings
    applied = sorted({f.code for f in found if f.fix is not None})
    try:
        new = fixer(text, str(scenario.path), scenario.rules)
    except Exception as exc:
        return Variants(bad, fixed, applied, f"the fixer raised {type(exc).__name__}: {exc}")
    fixed.write_text(new, encoding="utf-8")
    name = scenario.path.name
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"bad/{name}", f"fixed/{name}"))
    if not found:
        codes = ", ".join(r.code for r in scenario.rules) if len(scenario.rules) == 1 else "any rule"
        return Variants(bad, fixed, applied, f"{codes} reports nothing in the scenario", diff)
    if new == text:
        return Variants(bad, fixed, applied, "the fix does not apply: the fixer changed nothing")
    return Variants(bad, fixed, applied, diff=diff)
