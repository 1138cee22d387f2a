"""Which files git ignores: `.gitignore` files, `.git/info/exclude` and git's global excludes file.

Discovery skips what git ignores, as ruff does (`respect-gitignore`, on by default). The patterns
follow gitignore(5): `#` comments, `!` negation, a trailing `/` for folders only, a `/` at the start or
in the middle anchors a pattern to its file's folder, `*`, `?`, `[...]` and `**`. The last matching
pattern wins, the patterns of a deeper `.gitignore` come after those of the folders above it, and a
file inside an ignored folder stays ignored. Git itself is never run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(glob: str) -> str:
    """A gitignore glob (without its `!`, leading and trailing `/`) as a regex on a relative path."""
    out = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob[i : i + 2] == "**":
                at_start = i == 0 or glob[i - 1] == "/"
                at_end = i + 2 == n or glob[i + 2] == "/"
                if at_start and at_end:
                    if i + 2 == n:
                        out.append(".*")  # `a/**`: everything inside
                        i += 2
                    else:
                        out.append("(?:.*/)?")  # `**/b`, `a/**/b`: zero or more folders
                        i += 3
                    continue
            while i < n and glob[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse(text: str) -> list[Pattern]:
    """The patterns of a gitignore file's text, in order."""
    patterns = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        stripped = line.rstrip(" ")
        if stripped.endswith("\\") and len(line) > len(stripped):
            stripped += " "  # `\ ` keeps a trailing space
        line = stripped
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith("\\"):
            line = line[1:] if line[1:2] in ("#", "!") else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        prefix = "" if anchored else "(?:.*/)?"
        try:
            regex = re.compile(f"^{prefix}{_translate(line)}$", re.DOTALL)
        except re.error:
            continue
        patterns.append(Pattern(regex, negate, dir_only))
    return patterns


@lru_cache(maxsize=1024)
def _read(path: str, mtime: float) -> tuple[Pattern, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return tuple(parse(handle.read()))
    except OSError:
        return ()


def read(path: Path) -> tuple[Pattern, ...]:
    try:
        return _read(str(path), path.stat().st_mtime)
    except OSError:
        return ()


def repository_root(start: Path) -> Path | None:
    """The folder holding `.git` (a folder, or a file for worktrees and submodules) at or above `start`."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _git_config_values(path: Path, section: str, key: str) -> list[str]:
    """The values of `key` in `[section]` of a git config file (a small reader: no includes)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    values, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = line[1 : line.find("]")].strip().split(" ")[0].lower() if "]" in line else ""
            continue
        if current == section and "=" in line:
            name, value = line.split("=", 1)
            if name.strip().lower() == key:
                value = value.split(" #")[0].split(" ;")[0].strip().strip('"')
                values.append(value)
    return values


def global_excludes_file(repo: Path | None = None) -> Path | None:
    """git's `core.excludesFile`, else `$XDG_CONFIG_HOME/git/ignore` (`~/.config/git/ignore`)."""
    home = Path(os.path.expanduser("~"))
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    configs = [xdg / "git" / "config", home / ".gitconfig"]
    if repo is not None and (repo / ".git").is_dir():
        configs.append(repo / ".git" / "config")
    chosen = None
    for config in configs:  # later files win, as in git
        for value in _git_config_values(config, "core", "excludesfile"):
            chosen = value
    if chosen:
        return Path(os.path.expanduser(chosen))
    default = xdg / "git" / "ignore"
    return default if default.is_file() else None


class Matcher:
    """Answers `ignored(path, is_dir)` for paths under one walk; reads each `.gitignore` once."""

    def __init__(self, start: Path) -> None:
        start = Path(os.path.abspath(start))
        start = start if start.is_dir() else start.parent
        repo = repository_root(start)
        # Above the repository (or, outside one, above the folder walked) no .gitignore counts.
        self.top = repo if repo is not None else start
        base: list[Pattern] = []
        if repo is not None:
            excludes = global_excludes_file(repo)
            if excludes is not None:
                base += read(excludes)
            if (repo / ".git").is_dir():
                base += read(repo / ".git" / "info" / "exclude")
        self.base = tuple(base)
        self._folders: dict[Path, tuple[tuple[Path, tuple[Pattern, ...]], ...]] = {}

    def _chain(self, folder: Path) -> tuple[tuple[Path, tuple[Pattern, ...]], ...]:
        """(folder, its .gitignore patterns) from the top down to `folder`, folders without patterns left out."""
        cached = self._folders.get(folder)
        if cached is not None:
            return cached
        if folder == self.top or self.top not in folder.parents:
            above: tuple[tuple[Path, tuple[Pattern, ...]], ...] = ()
        else:
            above = self._chain(folder.parent)
        own = read(folder / ".gitignore") if folder == self.top or self.top in folder.parents else ()
        chain = above + ((folder, own),) if own else above
        self._folders[folder] = chain
        return chain

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """Whether git ignores `path` itself (its folders are checked by the walk that reaches it)."""
        path = Path(os.path.abspath(path))
        if self.top not in path.parents:
            return False
        decision = self._decide(self.base, self.top, path, is_dir)
        for folder, patterns in self._chain(path.parent):
            found = self._decide(patterns, folder, path, is_dir)
            if found is not None:
                decision = found
        return bool(decision)

    def ignored_with_parents(self, path: Path, is_dir: bool) -> bool:
        """Whether git ignores `path` or one of its folders below the top (for paths named explicitly)."""
        path = Path(os.path.abspath(path))
        if self.top not in path.parents:
            return False
        folders = [p for p in reversed(path.parents) if self.top in p.parents]
        return any(self.ignored(f, True) for f in folders) or self.ignored(path, is_dir)

    @staticmethod
    def _decide(patterns: tuple[Pattern, ...], folder: Path, path: Path, is_dir: bool) -> bool | None:
        if not patterns:
            return None
        rel = path.relative_to(folder).as_posix()
        decision = None
        for p in patterns:
            if p.dir_only and not is_dir:
                continue
            if p.regex.match(rel):
                decision = not p.negate
        return decision
