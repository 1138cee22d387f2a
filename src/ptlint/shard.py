"""`--shard I/N`: a deterministic split of the checked files by a hash of their path."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePath
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
_SPEC = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")


class ShardError(ValueError):
    """A malformed `I/N` shard specification."""


def parse(spec: str) -> tuple[int, int]:
    """`"2/4"` -> (2, 4); shards count from 1."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ShardError(f"invalid shard {spec!r}: expected I/N, such as 1/4")
    i, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ShardError(f"invalid shard {spec!r}: I must be between 1 and N")
    return i, n


def shard_of(path: str, count: int) -> int:
    """The shard (1..count) of a path; the same on every machine and Python version."""
    key = PurePath(path).as_posix()
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(items: Sequence[T], shard: tuple[int, int], key: Callable[[T], str] = str) -> list[T]:
    """The items that belong to `shard`, in their original order."""
    index, count = shard
    return [item for item in items if shard_of(key(item), count) == index]


def select_paths(files: Sequence[Path], shard: tuple[int, int]) -> list[Path]:
    """Files of one shard, keyed on the path as ptlint shows it (relative to the current folder)."""
    from ptlint.runner import display_path

    return select(files, shard, display_path)
