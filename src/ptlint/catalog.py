"""The rules' codes, names and text globs, for the paths that need nothing more.

Selecting rules, discovering files and looking results up in the cache only need these three
facts. A warm run takes them from an index saved in the cache folder (keyed on ptlint's code),
so it never imports libcst or the rule modules; anything else imports the rules themselves.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import NamedTuple, Protocol, Sequence


class RuleLike(Protocol):
    code: str
    name: str
    text_globs: tuple[str, ...]


class RuleInfo(NamedTuple):
    code: str
    name: str
    text_globs: tuple[str, ...]


_index: Sequence[RuleLike] | None = None


def infos() -> Sequence[RuleLike]:
    """Every rule (or what the light paths need of it), sorted by code."""
    global _index
    if _index is None:
        from ptlint.registry import all_rules

        _index = all_rules()
    return _index


def _index_file(cache_root: Path) -> Path:
    from ptlint.cache import code_fingerprint

    return cache_root / f"rules-{code_fingerprint()[:20]}.pickle"


def load(cache_root: Path) -> bool:
    """Use the index saved in `cache_root` for this very code of ptlint, if there is one."""
    global _index
    try:
        with open(_index_file(cache_root), "rb") as handle:
            found = pickle.load(handle)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError, ImportError, TypeError):
        return False
    if not isinstance(found, tuple) or not all(isinstance(i, RuleInfo) for i in found):
        return False
    if _index is None:
        _index = found
    return True


def save(cache_root: Path) -> None:
    """Save the index for the next run (once the rules have been imported anyway)."""
    from ptlint import cache

    if _index is None or isinstance(next(iter(_index), None), RuleInfo) or not cache_root.is_dir():
        return
    target = _index_file(cache_root)
    if target.exists():
        return
    for old in cache_root.glob("rules-*.pickle"):  # indexes of earlier versions of ptlint
        try:
            old.unlink()
        except OSError:
            pass
    cache.write_atomic(target, pickle.dumps(tuple(RuleInfo(r.code, r.name, tuple(r.text_globs)) for r in _index)))


def by_code_or_name(key: str) -> RuleLike | None:
    """The rule whose code (any case) or kebab-case name is `key`."""
    for rule in infos():
        if key.upper() == rule.code or key.lower() == rule.name:
            return rule
    return None
