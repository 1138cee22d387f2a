"""Discovery of the rule classes shipped in `ptlint.rules` (the top-level `rules/` folder)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from ptlint.rule import FixSafety, Rule
from ptlint.unused_noqa import UnusedNoqaRule


class SyntaxErrorRule(Rule):
    """A file that cannot be parsed or decoded.

    ## What it does
    Reports files that ptlint cannot read as Python source: syntax errors, undecodable bytes
    and null bytes.

    ## Why is this bad?
    No other rule can check a file that does not parse.

    ## Example
    ```python
    def f(:
    ```

    ## Use instead
    ```python
    def f():
        ...
    ```

    ## Fix safety
    There is no fix.

    ## References
    - [Python grammar](https://docs.python.org/3/reference/grammar.html)
    """

    code = "PTL000"
    name = "syntax-error"
    message = "The file cannot be parsed"
    fix_safety = FixSafety.NONE
    severity = "error"
    triggers = ()


def _rules_package() -> ModuleType:
    try:
        return importlib.import_module("ptlint.rules")
    except ModuleNotFoundError:
        # Running from a source checkout without an install: load ../../rules as ptlint.rules.
        folder = Path(__file__).resolve().parents[2] / "rules"
        spec = importlib.util.spec_from_file_location(
            "ptlint.rules", folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ptlint.rules"] = module
        spec.loader.exec_module(module)
        return module


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by code; PTL000 first."""
    package = _rules_package()
    found: dict[str, type[Rule]] = {SyntaxErrorRule.code: SyntaxErrorRule, UnusedNoqaRule.code: UnusedNoqaRule}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ptlint.rules.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and value.code:
                if value.__module__ == module.__name__:
                    found[value.code] = value
    return tuple(found[c] for c in sorted(found))


def by_code_or_name(key: str) -> type[Rule] | None:
    """The rule whose code (any case) or kebab-case name is `key`."""
    for rule in all_rules():
        if key.upper() == rule.code or key.lower() == rule.name:
            return rule
    return None
