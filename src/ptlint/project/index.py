"""The project index: every file's summary, and the facts that cross file boundaries.

The project root is the nearest folder above the checked paths that holds `pyproject.toml`,
`setup.py`, `setup.cfg` or `.git`. Every Python file and notebook below it is summarized (also the
ones not being checked: pre-commit passes only staged files, `--shard` checks a slice), each summary
cached by content hash. A rule sees the index through `ProjectView`, the facts for one file; the
digest of that view goes into the file's result-cache key, so changing one file invalidates exactly
the results that depend on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ptlint.project.summary import CallSite, ClassSummary, FileSummary, LoadSite, SaveSite, summarize

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ptlint_cache", ".venv", "venv", "env", ".tox", ".nox", "node_modules",
             "build", "dist", "site-packages", ".mypy_cache", ".pytest_cache", ".ipynb_checkpoints"}
SUMMARY_VERSION = "1"
MAX_BYTES = 2_000_000  # larger files (generated code, data) contribute no summary
MODULE_BASES = {"torch.nn.Module", "torch.nn.modules.module.Module", "nn.Module"}


def find_root(paths: Iterable[Path]) -> Path:
    """The nearest folder above all `paths` that has a project marker, else their common folder."""
    resolved = [p.resolve() for p in paths] or [Path.cwd().resolve()]
    common = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in resolved]))
    for folder in (common, *common.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return common


def module_name(rel: str) -> str:
    """`pkg/sub/mod.py` -> `pkg.sub.mod`; `pkg/__init__.py` -> `pkg`; a `src/` layout drops `src`."""
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.rsplit(".", 1)[0].split("/")
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def project_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".py", ".ipynb")):
                yield Path(folder) / name


def notebook_source(text: str) -> str:
    """The code cells of a notebook joined (magics and shell lines commented out)."""
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return ""
    out = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            out.append("\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()))
    return "\n\n".join(out) + "\n"


class SummaryStore:
    """Summaries cached by content hash in `<cache>/summaries/`."""

    def __init__(self, cache: Path | None) -> None:
        self.folder = cache / "summaries" if cache is not None else None
        self.hits = self.misses = 0

    def get(self, path: Path, rel: str) -> FileSummary:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return FileSummary(rel, module_name(rel), error=f"cannot read: {exc.strerror or exc}")
        if len(data) > MAX_BYTES:
            return FileSummary(rel, module_name(rel), error="too large to summarize")
        key = hashlib.sha256(f"{SUMMARY_VERSION}\0{rel}\0".encode() + data).hexdigest()
        entry = self.folder / key[:2] / key if self.folder is not None else None
        if entry is not None:
            try:
                summary = pickle.loads(entry.read_bytes())
                self.hits += 1
                return summary
            except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError):
                pass
        self.misses += 1
        text = data.decode("utf-8", errors="replace")
        if rel.endswith(".ipynb"):
            text = notebook_source(text)
        summary = summarize(text, rel, module_name(rel))
        if entry is not None:
            try:
                entry.parent.mkdir(parents=True, exist_ok=True)
                tmp = entry.with_suffix(".tmp")
                tmp.write_bytes(pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL))
                os.replace(tmp, entry)
            except OSError:
                pass
        return summary


@dataclass
class Located:
    """A fact together with the file it comes from."""

    path: str
    item: CallSite | SaveSite | LoadSite | ClassSummary


class ProjectIndex:
    """Summaries of every file of one project, and lookups across them."""

    def __init__(self, root: Path, summaries: dict[str, FileSummary]) -> None:
        self.root = root
        self.files = summaries  # relative path -> summary
        self.modules: dict[str, FileSummary] = {}
        for summary in summaries.values():
            self.modules.setdefault(summary.module, summary)

    @classmethod
    def build(cls, root: Path, cache: Path | None = None) -> "ProjectIndex":
        store = SummaryStore(cache)
        summaries = {}
        for path in project_files(root):
            rel = path.relative_to(root).as_posix()
            summaries[rel] = store.get(path, rel)
        index = cls(root, summaries)
        index.store = store  # type: ignore[attr-defined]
        return index

    # --- modules and names ---

    def resolve_module(self, name: str, importer: str | None = None) -> FileSummary | None:
        """The project file of module `name` as seen from `importer` (a sibling script's `import utils` first)."""
        if importer is not None:
            folder = importer.rsplit("/", 1)[0] if "/" in importer else ""
            if folder:
                sibling = self.modules.get(module_name(f"{folder}/{name.replace('.', '/')}.py"))
                if sibling is not None:
                    return sibling
                package = self.modules.get(module_name(f"{folder}/{name.replace('.', '/')}/__init__.py"))
                if package is not None:
                    return package
        return self.modules.get(name)

    def star_names(self, module: str, importer: str | None = None, _seen: frozenset[str] = frozenset()) -> dict[str, str]:
        """Local name -> qualified name for what `from module import *` binds (project modules only)."""
        summary = self.resolve_module(module, importer)
        if summary is None or summary.module in _seen or summary.error:
            return {}
        out: dict[str, str] = {}
        for local, target, star, _ in summary.imports:
            if star:
                for name, qual in self.star_names(target, summary.path, _seen | {summary.module}).items():
                    out.setdefault(name, qual)
            elif not local.startswith("_"):
                out.setdefault(local, target)
        for name, kind in summary.names.items():
            if kind != "import" and not name.startswith("_"):
                out.setdefault(name, f"{summary.module}.{name}")
        return out

    def qualify(self, summary: FileSummary, name: str) -> str:
        """What a dotted name written in `summary`'s file refers to, qualified (imports, stars, own names)."""
        head, _, rest = name.partition(".")
        for local, target, star, _ in summary.imports:
            if not star and local == head:
                return f"{target}.{rest}" if rest else target
        if summary.names.get(head) in ("class", "function", "value"):
            return f"{summary.module}.{name}"
        for local, target, star, _ in summary.imports:
            if star:
                qual = self.star_names(target, summary.path).get(head)
                if qual is not None:
                    return f"{qual}.{rest}" if rest else qual
        return name

    # --- classes ---

    def find_class(self, qualified: str, importer: str | None = None) -> tuple[FileSummary, ClassSummary] | None:
        module, _, name = qualified.rpartition(".")
        summary = self.resolve_module(module, importer) if module else None
        if summary is None:
            return None
        cls = summary.classes.get(name)
        if cls is not None:
            return summary, cls
        target = self.qualify(summary, name)  # re-exported from another project module
        if target != f"{summary.module}.{name}" and target != qualified:
            return self.find_class(target, summary.path)
        return None

    def class_mode(self, qualified: str, importer: str | None = None, _seen: frozenset[str] = frozenset()) -> str:
        """"free" when the class, its layers and its in-project bases behave the same in train and eval mode,
        "dependent" when one of them does not, "unknown" when a class cannot be resolved."""
        found = self.find_class(qualified, importer)
        if found is None or qualified in _seen:
            return "unknown"
        summary, cls = found
        if cls.mode == "dependent":
            return "dependent"
        seen = _seen | {qualified}
        modes = {self.class_mode(self.qualify(summary, layer), summary.path, seen)
                 for layer, mode in zip(cls.layers, cls.layer_modes) if mode == "unknown"}
        modes |= {self.class_mode(self.qualify(summary, base), summary.path, seen) for base in cls.bases if base not in MODULE_BASES}
        if "dependent" in modes:
            return "dependent"
        return "unknown" if "unknown" in modes else "free"

    # --- calls, saves and loads ---

    def call_sites(self, module: str, function: str) -> list[Located]:
        """Every call in the project that runs `module.function`."""
        wanted = f"{module}.{function}"
        out = []
        for summary in self.files.values():
            for call in summary.calls:
                if call.callee == function and summary.module == module:
                    out.append(Located(summary.path, call))
                elif self.qualify(summary, call.callee) == wanted:
                    out.append(Located(summary.path, call))
        return out

    def saves_to(self, path: str | None) -> list[Located]:
        return [Located(s.path, site) for s in self.files.values() for site in s.saves if _same_path(site.path, path)]

    def loads_from(self, path: str | None) -> list[Located]:
        return [Located(s.path, site) for s in self.files.values() for site in s.loads if _same_path(site.path, path)]

    def view(self, path: Path) -> "ProjectView":
        try:
            rel = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            rel = path.as_posix()
        return ProjectView(self, rel)


def _same_path(a: str | None, b: str | None) -> bool:
    """Two save/load paths that name the same file: equal literals or patterns, or the same variable."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    if a.startswith("name:") or b.startswith("name:"):
        return False
    return os.path.basename(a) == os.path.basename(b) and "{}" not in a + b


class ProjectView:
    """The project's facts as one file sees them.

    Every question is recorded with its answer: a cached result stays valid exactly as long as the same
    questions get the same answers (`still_valid`), so changing one file invalidates only the results
    that read a fact it contributes.
    """

    QUERIES = ("star_names", "class_mode", "call_sites", "loads_from", "saves_to")

    def __init__(self, index: ProjectIndex, rel: str) -> None:
        self.index = index
        self.rel = rel
        self.summary = index.files.get(rel)
        self.asked: list[tuple[str, tuple[object, ...], str]] = []  # (query, arguments, digest of the answer)

    def _ask(self, query: str, *args: object) -> object:
        answer = _answer(self.index, self.rel, query, args)
        self.asked.append((query, args, _digest(answer)))
        return answer

    def star_names(self, module: str) -> dict[str, str]:
        return self._ask("star_names", module)  # type: ignore[return-value]

    def class_mode(self, qualified: str) -> str:
        return self._ask("class_mode", qualified)  # type: ignore[return-value]

    def call_sites(self, function: str) -> list[Located]:
        """Calls anywhere in the project of this file's module-level function `function`."""
        return self._ask("call_sites", function)  # type: ignore[return-value]

    def loads_from(self, path: str | None) -> list[Located]:
        return self._ask("loads_from", path)  # type: ignore[return-value]

    def saves_to(self, path: str | None) -> list[Located]:
        return self._ask("saves_to", path)  # type: ignore[return-value]


def _answer(index: ProjectIndex, rel: str, query: str, args: tuple[object, ...]) -> object:
    if query == "star_names":
        return index.star_names(str(args[0]), rel)
    if query == "class_mode":
        return index.class_mode(str(args[0]), rel)
    if query == "call_sites":
        summary = index.files.get(rel)
        return index.call_sites(summary.module if summary is not None else "", str(args[0]))
    if query == "loads_from":
        return index.loads_from(args[0])  # type: ignore[arg-type]
    if query == "saves_to":
        return index.saves_to(args[0])  # type: ignore[arg-type]
    raise ValueError(query)


def _digest(answer: object) -> str:
    return hashlib.sha256(repr(answer).encode()).hexdigest()[:16]


def still_valid(index: ProjectIndex, rel: str, asked: list[tuple[str, tuple[object, ...], str]]) -> bool:
    """Whether every recorded question still gets the same answer from `index`."""
    return all(_digest(_answer(index, rel, query, args)) == digest for query, args, digest in asked)
