"""A per-file result cache keyed on content, ptlint's code, the enabled rules and their options."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from ptlint import __version__

CACHE_DIR = ".ptlint_cache"
TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by ptlint.\n"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """ptlint's version plus a hash of its engine and rule sources (so edits invalidate entries)."""
    digest = hashlib.sha256(__version__.encode())
    roots = [Path(__file__).parent, *_rules_folders()]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _rules_folders() -> list[Path]:
    """Where the rule modules live, found without importing them."""
    rules = sys.modules.get("ptlint.rules")
    if rules is not None and getattr(rules, "__path__", None):
        return [Path(p) for p in rules.__path__]
    try:
        spec = importlib.util.find_spec("ptlint.rules")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    checkout = Path(__file__).resolve().parents[2] / "rules"  # a source checkout without an install
    return [checkout] if checkout.is_dir() else []


def key(data: bytes, shown: str, *parts: Any) -> str:
    digest = hashlib.sha256(code_fingerprint().encode())
    digest.update(shown.encode())
    digest.update(repr(parts).encode())
    digest.update(data)
    return digest.hexdigest()


def folder(root: Path | None = None) -> Path:
    return (root or Path.cwd()) / CACHE_DIR


def load(root: Path, entry: str) -> Any | None:
    try:
        with open(root / entry[:2] / entry, "rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError, ImportError):
        return None


def store(root: Path, entry: str, value: Any) -> None:
    """Write an entry atomically; a cache that cannot be written is silently skipped."""
    try:
        ensure(root)
        target = root / entry[:2]
        target.mkdir(exist_ok=True)
    except OSError:
        return
    write_atomic(target / entry, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file; failures are silently skipped."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def ensure(root: Path) -> None:
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        (root / "CACHEDIR.TAG").write_text(TAG)
        (root / ".gitignore").write_text("*\n")


def clean(root: Path) -> bool:
    """Remove the cache folder; True if there was one."""
    import shutil

    if not (root / "CACHEDIR.TAG").is_file():
        return False
    shutil.rmtree(root)
    return True
