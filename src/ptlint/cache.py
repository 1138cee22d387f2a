"""A per-file result cache keyed on content, ptlint's code, the enabled rules and their options."""

from __future__ import annotations

import hashlib
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
    roots = [Path(__file__).parent]
    rules = sys.modules.get("ptlint.rules")
    if rules is not None and getattr(rules, "__path__", None):
        roots.extend(Path(p) for p in rules.__path__)
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target / entry)
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
