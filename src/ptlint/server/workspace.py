"""Where a document lives (its URI, its path, its workspace folder) and the settings that apply to it.

Settings come from the same files as on the command line: the nearest `ptlint.toml`, or
`pyproject.toml` with a `[tool.ptlint]` table, at or above the file; or the one file named by the
`configuration` option (like `ptlint check --config`). They are read once per folder and read again
after any configuration or packaging file changes (`workspace/didChangeWatchedFiles`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ptlint.config import Overrides, Resolver, Settings

# Files whose change means settings (or the torch version that a project pins) may have changed.
SETTINGS_FILES = frozenset({"pyproject.toml", "ptlint.toml"})
PIN_FILES = frozenset({"setup.cfg", "setup.py", "requirements.txt", "base.txt", "environment.yml"})
WATCHED_GLOBS = (
    "**/pyproject.toml", "**/ptlint.toml", "**/setup.cfg", "**/setup.py", "**/requirements.txt",
    "**/requirements/base.txt", "**/environment.yml",
)
FILE_SCHEMES = ("file",)
UNTITLED_SCHEMES = ("untitled",)
CELL_SCHEMES = ("vscode-notebook-cell",)


class Unsupported(Exception):
    """A document that ptlint does not check: its message is the reply to a request about it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


INVALID_PARAMS = -32602
REQUEST_FAILED = -32803


@dataclass(frozen=True)
class Location:
    """A document's file system path (real, or made up for an untitled one) and the path rules see."""

    path: Path
    shown: str
    untitled: bool = False


def scheme_of(uri: str) -> str:
    return urlparse(uri).scheme.lower()


def path_of(uri: str) -> Path:
    """The file system path of a `file:` URI."""
    parsed = urlparse(uri)
    path = unquote(parsed.path)
    if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
        path = path[1:]
    if parsed.netloc and parsed.netloc != "localhost":
        path = f"//{parsed.netloc}{path}"
    return Path(path)


def is_settings_file(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name in SETTINGS_FILES or name in PIN_FILES


class Folders:
    """The workspace folders. With none (a client started on a single file), every file is inside."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def set(self, uris: list[str]) -> None:
        seen: list[Path] = []
        for uri in uris:
            if scheme_of(uri) in FILE_SCHEMES:
                path = Path(os.path.abspath(path_of(uri)))
                if path not in seen:
                    seen.append(path)
        self.paths = seen

    def add(self, uri: str) -> None:
        self.set([p.as_uri() for p in self.paths] + [uri])

    def remove(self, uri: str) -> None:
        if scheme_of(uri) in FILE_SCHEMES:
            gone = Path(os.path.abspath(path_of(uri)))
            self.paths = [p for p in self.paths if p != gone]

    def folder_of(self, path: Path) -> Path | None:
        """The innermost workspace folder holding `path`, or None."""
        best = None
        for folder in self.paths:
            if path == folder or folder in path.parents:
                if best is None or len(folder.parts) > len(best.parts):
                    best = folder
        return best

    def locate(self, uri: str) -> Location:
        """Where the document `uri` lives; `Unsupported` for an unknown scheme or a file outside."""
        scheme = scheme_of(uri)
        if scheme in FILE_SCHEMES:
            path = Path(os.path.abspath(path_of(uri)))
            if self.paths and self.folder_of(path) is None:
                folders = ", ".join(str(p) for p in self.paths)
                raise Unsupported(
                    f"ptlint: {path} is outside the workspace folders ({folders}); "
                    "ptlint checks only files inside them",
                    REQUEST_FAILED,
                )
            return Location(path, display(path))
        if scheme in UNTITLED_SCHEMES:
            base = self.paths[0] if self.paths else Path(os.getcwd())
            name = unquote(urlparse(uri).path).replace("\\", "/").rsplit("/", 1)[-1] or "untitled"
            if not name.endswith((".py", ".pyi", ".ipynb")):
                name += ".py"
            path = base / name
            return Location(path, name, untitled=True)
        raise Unsupported(
            f"ptlint: cannot check {uri}: unsupported URI scheme {scheme or '(none)'!r}; "
            "ptlint checks file: and untitled: documents and the cells of open notebooks",
            INVALID_PARAMS,
        )


def display(path: Path) -> str:
    """The path as `ptlint check` run in the server's folder would show it (relative when below it)."""
    text = str(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


class SettingsStore:
    """Resolved settings per folder, forgotten whenever a configuration file may have changed."""

    def __init__(self, folders: Folders, config_file: str | None = None) -> None:
        self.folders = folders
        self.config_file = config_file
        self.epoch = 0
        self._resolver: Resolver | None = None

    def reset(self, config_file: str | None = None, keep_file: bool = True) -> None:
        """Read every configuration again on next use (and, with `keep_file=False`, use a new --config)."""
        if not keep_file:
            self.config_file = config_file
        self._resolver = None
        self.epoch += 1
        _forget_project_pins()

    def for_path(self, location: Location) -> Settings:
        """The settings of a document (raises `ptlint.config.ConfigError` for a broken configuration)."""
        if self._resolver is None:
            config = Path(self.config_file).expanduser() if self.config_file else None
            if config is not None and not config.is_absolute() and self.folders.paths:
                config = self.folders.paths[0] / config
            self._resolver = Resolver(Overrides(), config)
        settings = self._resolver.for_path(location.path)
        if settings.source is None:
            # No configuration file: the defaults, rooted at the workspace folder (for exclusions).
            root = self.folders.folder_of(location.path) or location.path.parent
            if settings.root != root:
                settings = replace(settings, root=root)
        return settings


def _forget_project_pins() -> None:
    """Drop the cached torch pins of projects (they are read from packaging files that may have changed)."""
    try:
        from ptlint.facts import versions
    except ImportError:  # pragma: no cover - the facts moved
        return
    for name in ("project_pin", "project_root"):
        cached = getattr(versions, name, None)
        clear = getattr(cached, "cache_clear", None)
        if callable(clear):
            clear()
