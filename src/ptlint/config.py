"""`[tool.ptlint]` / `ptlint.toml` discovery, validation and rule selection."""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ptlint import catalog

if TYPE_CHECKING:
    from ptlint.catalog import RuleLike
    from ptlint.rule import Rule

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".ptlint_cache", "__pycache__", "build", "dist", "node_modules", "site-packages",
    ".eggs", "*.egg-info",
)
KNOWN_KEYS = {
    "select", "ignore", "extend-select", "per-file-ignores", "exclude", "extend-exclude",
    "unsafe-fixes", "target-torch-version", "rules", "fail-on", "respect-gitignore",
}
FAIL_ON = ("error", "warning", "info")  # the severities, most severe first (ptlint.finding.SEVERITIES)
DEFAULT_LINE_LENGTH = 88


class ConfigError(Exception):
    """A configuration problem that the user must fix (exit code 2)."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings for the files under one configuration root."""

    root: Path
    source: Path | None = None
    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    # "" means unset: the project's own torch pin decides, else DEFAULT_TORCH (see facts/versions.py)
    target_torch_version: str = ""
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The least severe severity whose findings fail the run; "info" (the default): every finding does.
    fail_on: str = "info"
    # Skip files that git ignores (.gitignore, .git/info/exclude, the global excludes file) when walking folders.
    respect_gitignore: bool = True
    # The longest line a fix may write (`line-length` of [tool.ruff] or [tool.black]); 0: not looked up yet.
    line_length: int = 0

    def enabled_codes(self, path: Path | None = None) -> frozenset[str]:
        """The codes of the rules that apply to `path` after select/ignore and per-file-ignores."""
        chosen = {r.code for r in expand(self.select)} | {r.code for r in expand(self.extend_select)}
        chosen -= {r.code for r in expand(self.ignore)}
        if path is not None:
            for pattern, codes in self.per_file_ignores:
                if _matches(path, pattern, self.root):
                    chosen -= {r.code for r in expand(codes)}
        chosen.add("PTL000")
        return frozenset(chosen)

    def enabled_infos(self, path: Path | None = None) -> list[RuleLike]:
        """`enabled_rules` without importing the rules (codes, names and text globs only)."""
        codes = self.enabled_codes(path)
        return [r for r in catalog.infos() if r.code in codes]

    def enabled_rules(self, path: Path | None = None) -> list[type[Rule]]:
        """The rules that apply to `path` after select/ignore and per-file-ignores."""
        from ptlint.registry import all_rules

        codes = self.enabled_codes(path)
        return [r for r in all_rules() if r.code in codes]

    def is_excluded(self, path: Path) -> bool:
        return _matcher((*self.exclude, *self.extend_exclude))(path.name, _relative(path, self.root))


def expand(selectors: Iterable[str]) -> list[RuleLike]:
    """Rules named by codes, kebab-case names, code prefixes such as `PTL0`, or ALL."""
    out: list[RuleLike] = []
    for sel in selectors:
        sel = sel.strip()
        if not sel:
            continue
        if sel.upper() == "ALL":
            out.extend(catalog.infos())
            continue
        rule = catalog.by_code_or_name(sel)
        if rule is not None:
            out.append(rule)
            continue
        matched = [r for r in catalog.infos() if r.code.startswith(sel.upper())] if sel.upper().startswith("PTL") else []
        if not matched:
            raise ConfigError(f"unknown rule selector {sel!r} (expected a code such as PTL001, a rule name, a prefix or ALL)")
        out.extend(matched)
    return out


@lru_cache(maxsize=256)
def _resolved(root: Path) -> Path:
    return root.resolve()


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` (both resolved), or as given when it lies elsewhere."""
    try:
        return path.resolve().relative_to(_resolved(root)).as_posix()
    except ValueError:
        return path.as_posix()


def _matches(path: Path, pattern: str, root: Path, rel: str | None = None) -> bool:
    """Glob match against the path relative to `root`, any of its parts, or its name."""
    rel = _relative(path, root) if rel is None else rel
    if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(path.name, pattern):
        return True
    if "/" not in pattern.rstrip("/"):
        return any(fnmatch.fnmatch(part, pattern.rstrip("/")) for part in rel.split("/") if part)
    return fnmatch.fnmatch(rel, pattern.rstrip("/") + "/*")


@lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str, str], bool]:
    """`_matches` for many patterns at once: one regex per kind of pattern, built once."""

    def union(globs: list[str]) -> re.Pattern[str] | None:
        return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs)) if globs else None

    stripped = [p.rstrip("/") for p in patterns]
    whole = union(list(patterns))
    parts = union([p for p in stripped if "/" not in p])
    below = union([p + "/*" for p in stripped if "/" in p])

    def match(name: str, rel: str) -> bool:
        name, rel = os.path.normcase(name), os.path.normcase(rel)
        if whole is not None and (whole.match(rel) or whole.match(name)):
            return True
        if parts is not None and any(parts.match(part) for part in rel.split("/") if part):
            return True
        return below is not None and below.match(rel) is not None

    return match


def _string_list(key: str, value: Any, where: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def load_file(path: Path) -> Settings:
    """Read and validate `[tool.ptlint]` of a pyproject.toml, or a ptlint.toml."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    table = data.get("tool", {}).get("ptlint", {}) if path.name == "pyproject.toml" else data.get("tool", {}).get("ptlint", data)
    return from_table(table, path)


def from_table(table: dict[str, Any], path: Path) -> Settings:
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown configuration key(s): {', '.join(unknown)}")
    kw: dict[str, Any] = {}
    for key in ("select", "ignore", "extend-select", "exclude", "extend-exclude"):
        if key in table:
            kw[key.replace("-", "_")] = _string_list(key, table[key], path)
    for key in ("select", "ignore", "extend_select"):
        if key in kw:
            _expand_in(kw[key], f"`{key.replace('_', '-')}`", path)
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise ConfigError(f"{path}: `per-file-ignores` must be a table of glob = [codes]")
        items = []
        for glob, codes in pfi.items():
            codes = _string_list(f"per-file-ignores.{glob}", codes, path)
            _expand_in(codes, f"`per-file-ignores` entry {glob!r}", path)
            items.append((glob, codes))
        kw["per_file_ignores"] = tuple(items)
    if "unsafe-fixes" in table:
        if not isinstance(table["unsafe-fixes"], bool):
            raise ConfigError(f"{path}: `unsafe-fixes` must be true or false")
        kw["unsafe_fixes"] = table["unsafe-fixes"]
    if "target-torch-version" in table:
        version = table["target-torch-version"]
        if not isinstance(version, str) or not all(p.isdigit() for p in version.split(".")):
            raise ConfigError(f"{path}: `target-torch-version` must be a version string such as \"2.6\"")
        kw["target_torch_version"] = version
    if "fail-on" in table:
        if table["fail-on"] not in FAIL_ON:
            raise ConfigError(f"{path}: `fail-on` must be one of {', '.join(repr(v) for v in FAIL_ON)}")
        kw["fail_on"] = table["fail-on"]
    if "respect-gitignore" in table:
        if not isinstance(table["respect-gitignore"], bool):
            raise ConfigError(f"{path}: `respect-gitignore` must be true or false")
        kw["respect_gitignore"] = table["respect-gitignore"]
    kw["rule_options"] = _rule_options(table.get("rules", {}), path)
    return Settings(root=path.parent, source=path, **kw)


def _expand_in(selectors: Iterable[str], where: str, path: Path) -> None:
    """`expand`, with the configuration file and the key in the error."""
    try:
        expand(selectors)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}


def _type_name(value: Any) -> str:
    """How the documentation names the type of `value`: "an integer", "a string", ..."""
    kind = type(value)
    if kind in _TYPE_NAMES:
        return _TYPE_NAMES[kind]
    name = kind.__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _has_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _rule_options(table: Any, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `rules` must be a table of per-rule tables")
    out: dict[str, dict[str, Any]] = {}
    from ptlint.registry import by_code_or_name

    for key, opts in table.items():
        rule = by_code_or_name(key)
        if rule is None:
            raise ConfigError(f"{path}: unknown rule {key!r} in [tool.ptlint.rules]")
        if not isinstance(opts, dict):
            raise ConfigError(f"{path}: [tool.ptlint.rules.{key}] must be a table")
        for name, value in opts.items():
            if name not in rule.options:
                known = ", ".join(sorted(rule.options)) or "none"
                raise ConfigError(f"{path}: rule {rule.code} has no option {name!r} (options: {known})")
            default = rule.options[name]
            if default is not None and not _has_type(value, default):
                raise ConfigError(f"{path}: option {name!r} of {rule.code} must be {_type_name(default)}")
        out[rule.code] = dict(opts)
    return out


def line_length_for(folder: Path) -> int:
    """`line-length` of the nearest ruff configuration (`.ruff.toml`, `ruff.toml`, `[tool.ruff]`) or
    `[tool.black]` at or above `folder`, else 88: the longest line a fix writes."""
    return _line_length(Path(os.path.abspath(folder)))


@lru_cache(maxsize=256)
def _line_length(folder: Path) -> int:
    for here in (folder, *folder.parents):
        for name in (".ruff.toml", "ruff.toml", "pyproject.toml"):
            candidate = here / name
            if not candidate.is_file():
                continue
            try:
                with open(candidate, "rb") as handle:
                    data = tomllib.load(handle)
            except (OSError, tomllib.TOMLDecodeError):
                continue
            tool = data.get("tool", {}) if isinstance(data.get("tool"), dict) else {}
            tables = [tool.get("ruff"), tool.get("black")] if name == "pyproject.toml" else [data]
            for table in tables:
                value = table.get("line-length") if isinstance(table, dict) else None
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return DEFAULT_LINE_LENGTH


def find_config(start: Path) -> Path | None:
    """The nearest ptlint.toml, or pyproject.toml with a [tool.ptlint] table, at or above `start`."""
    directory = start if start.is_dir() else start.parent
    directory = directory.resolve()
    for folder in (directory, *directory.parents):
        candidate = folder / "ptlint.toml"
        if candidate.is_file():
            return candidate
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_ptlint_table(candidate):
            return candidate
    return None


def _has_ptlint_table(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return "ptlint" in tomllib.load(handle).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None


@dataclass(frozen=True)
class Overrides:
    """Options given on the command line; they win over configuration files."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    unsafe_fixes: bool | None = None
    fail_on: str | None = None
    respect_gitignore: bool | None = None

    def apply(self, settings: Settings) -> Settings:
        changes: dict[str, Any] = {}
        if self.fail_on is not None:
            changes["fail_on"] = self.fail_on
        if self.respect_gitignore is not None:
            changes["respect_gitignore"] = self.respect_gitignore
        if self.select is not None:
            changes["select"] = self.select
            changes["extend_select"] = ()
        if self.ignore:
            changes["ignore"] = settings.ignore + self.ignore
        if self.extend_select:
            changes["extend_select"] = changes.get("extend_select", settings.extend_select) + self.extend_select
        if self.unsafe_fixes is not None:
            changes["unsafe_fixes"] = self.unsafe_fixes
        return replace(settings, **changes) if changes else settings


class Resolver:
    """Settings per directory: an explicit --config file, or the nearest configuration."""

    def __init__(self, overrides: Overrides, config_file: Path | None = None) -> None:
        self.overrides = overrides
        self.fixed = overrides.apply(load_file(config_file)) if config_file is not None else None
        self._cache: dict[Path, Settings] = {}

    def for_path(self, path: Path) -> Settings:
        if self.fixed is not None:
            return self.fixed
        folder = path if path.is_dir() else path.parent
        folder = Path(os.path.abspath(folder))
        settings = self._cache.get(folder)
        if settings is None:
            found = find_config(folder)
            base = load_file(found) if found is not None else Settings(root=Path.cwd())
            settings = self._cache[folder] = self.overrides.apply(base)
        return settings
