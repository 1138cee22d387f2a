"""Running checks over files: discovery, per-file jobs in a process pool, writing fixes."""

from __future__ import annotations

import difflib
import gc
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ptlint import cache, textfiles
from ptlint.config import Resolver, Settings
from ptlint.facts import versions
from ptlint.finding import Finding, Fix, severity_of, syntax_at
from ptlint.source import DecodeError, atomic_write, decode, split_lines



@dataclass(frozen=True)
class Mode:
    """What a run does with fixes and what its reporters need."""

    fix: bool = False
    diff: bool = False
    with_edits: bool = False
    with_lines: bool = False
    cache_dir: str | None = None


@dataclass
class FileReport:
    """The outcome of one file."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0
    fixed_codes: list[str] = field(default_factory=list)
    diff: str = ""
    fixed_text: str | None = None
    warnings: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)


@dataclass
class Discovery:
    files: list[Path]
    missing: list[str]


def display_path(path: Path | str) -> str:
    text = str(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


def discover(paths: Sequence[str], resolver: Resolver, force_exclude: bool = False) -> Discovery:
    """Python files and notebooks under `paths`, sorted; excluded folders are skipped, explicit files
    kept (unless `force_exclude`)."""
    found: set[Path] = set()
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if force_exclude and path.exists() and _force_excluded(path, resolver):
            continue
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            found.update(_walk(path, resolver))
        elif os.path.lexists(raw) and not path.exists():
            missing.append(f"{raw}: broken symbolic link")
        else:
            missing.append(raw)
    return Discovery(sorted(found, key=lambda p: display_path(p)), missing)


def _force_excluded(path: Path, resolver: Resolver) -> bool:
    """Whether `--force-exclude` drops a path named on the command line: excluded, or ignored by git."""
    settings = resolver.for_path(path)
    if settings.is_excluded(path):
        return True
    if not settings.respect_gitignore:
        return False
    from ptlint.gitignore import Matcher

    return Matcher(path).ignored_with_parents(path, path.is_dir())


def _walk(root: Path, resolver: Resolver) -> Iterator[Path]:
    git = None
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        settings = resolver.for_path(here)
        if settings.respect_gitignore and git is None:
            from ptlint.gitignore import Matcher

            git = Matcher(root)
        ignored = git.ignored if git is not None and settings.respect_gitignore else None
        dirs[:] = sorted(
            d for d in dirs
            if d != ".ipynb_checkpoints" and not settings.is_excluded(here / d)
            and not (ignored is not None and ignored(here / d, True))
        )
        rules = settings.enabled_infos()
        for name in sorted(files):
            if name.endswith((".py", ".ipynb")) or textfiles.wants(name, rules):
                full = here / name
                if full.is_file() and not settings.is_excluded(full) and not (ignored is not None and ignored(full, False)):
                    yield full


def _error_finding(path: str, message: str) -> Finding:
    return syntax_at(path, 1, 1, message)


def check_text(
    text: str,
    path: str,
    settings: Settings,
    mode: Mode,
    rules_path: Path | None = None,
    locate: Callable[[int], str] | None = None,
) -> FileReport:
    """Lint (and maybe fix) one decoded text; nothing is written. `locate(line)` says where a line
    of `text` is, for warnings (`path:line` unless given)."""
    report = FileReport(path)
    if "\x00" in text:
        report.findings.append(_error_finding(path, "the file contains null bytes"))
        return report
    report.warnings.extend(_unknown_noqa_codes(text, path, locate))
    from ptlint.api import lint_text

    rules = settings.enabled_rules(rules_path or Path(path))
    result = lint_text(
        text,
        path,
        rules,
        fix=mode.fix or mode.diff,
        unsafe=settings.unsafe_fixes,
        options=settings.rule_options,
        settings=settings,
        with_edits=mode.with_edits,
    )
    for message in result.errors:
        (report.internal_errors if message.startswith("internal error") else report.warnings).append(
            f"{path}: {message}"
        )
    report.fixed = result.fixed
    report.fixed_codes = result.fixed_codes
    if result.text != text:
        report.fixed_text = result.text
        if mode.diff:
            report.diff = unified_diff(text, result.text, path)
    lines = split_lines(result.text) if mode.with_lines else []
    severities = {r.code: r.severity for r in rules}
    for finding in result.findings:
        report.findings.append(_portable(finding, lines, severities))
    return report


def _unknown_noqa_codes(text: str, path: str, locate: Callable[[int], str] | None) -> list[str]:
    """Warnings for `# noqa: PTL999`: a code of no rule suppresses nothing (a typo, or a removed rule)."""
    from ptlint import catalog
    from ptlint.noqa import unknown_codes

    if "noqa" not in text.lower():
        return []
    known = {r.code for r in catalog.infos()}
    return [
        f"{locate(line) if locate else f'{path}:{line}'}: unknown rule code {code} in a `# noqa` comment"
        " (`ptlint rule --all` lists the codes)"
        for line, code in unknown_codes(text, known)
    ]


def _portable(finding: Finding, lines: list[str], severities: dict[str, str]) -> Finding:
    """A copy without libcst nodes (so it pickles cheaply), with its severity, and context lines when asked."""
    fix = finding.fix
    if fix is not None:
        fix = Fix(fix.title, fix.safety, ())
    severity = finding.severity or severities.get(finding.code) or severity_of(finding)
    out = replace(finding, fix=fix, severity=severity)
    if lines:
        first = max(1, finding.start.line - 1)
        last = min(len(lines), finding.end.line + 1)
        out.lines = [(n, lines[n - 1]) for n in range(first, last + 1)]
    return out


def unified_diff(before: str, after: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )


def check_file(path: Path, settings: Settings, mode: Mode) -> FileReport:
    """Read, lint and (with --fix) atomically rewrite one file. Never raises for bad input."""
    shown = display_path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        return FileReport(shown, [_error_finding(shown, "is a directory, not a file")])
    except FileNotFoundError:
        return FileReport(shown, [_error_finding(shown, "cannot read file: it no longer exists")])
    except OSError as exc:
        return FileReport(shown, [_error_finding(shown, f"cannot read file: {exc.strerror or exc}")])
    entry = None
    if mode.cache_dir is not None and not mode.fix and not mode.diff:
        entry = _cache_key(data, shown, path, settings, mode)
        cached = cache.load(Path(mode.cache_dir), entry)
        if isinstance(cached, FileReport):
            return cached
    if path.suffix.lower() == ".ipynb":
        from ptlint.notebook import check_notebook

        report = check_notebook(path, data, shown, settings, mode)
        if entry is not None and not report.internal_errors:
            cache.store(Path(mode.cache_dir), entry, report)  # type: ignore[arg-type]
        return report  # type: ignore[no-any-return]
    try:
        source = decode(data)
    except DecodeError as exc:
        return FileReport(shown, [_error_finding(shown, f"cannot decode file: {exc}")])
    report = check_text(source.text, shown, settings, mode, path)
    if mode.fix and not mode.diff and report.fixed_text is not None:
        if not _write_fix(path, data, source.encode(report.fixed_text), report):
            # Nothing was written, so the findings are those of the file as it is.
            report.findings = check_text(source.text, shown, settings, replace(mode, fix=False), path).findings
    report.fixed_text = None
    if entry is not None and not report.internal_errors:
        cache.store(Path(mode.cache_dir), entry, report)  # type: ignore[arg-type]
    return report


def _cache_key(data: bytes, shown: str, path: Path, settings: Settings, mode: Mode) -> str:
    rules = tuple(sorted(settings.enabled_codes(path)))
    options = sorted((k, sorted(v.items())) for k, v in settings.rule_options.items())
    torch_target = versions.target_torch(settings.target_torch_version, path)
    return cache.key(data, shown, rules, options, settings.unsafe_fixes, mode.with_edits, mode.with_lines, torch_target)


def _write_fix(path: Path, original: bytes, new: bytes, report: FileReport) -> bool:
    """Write a fix unless the file changed on disk since it was read or is read-only; True if written."""
    problem = None
    try:
        if path.read_bytes() != original:
            problem = "changed on disk while being checked; not fixed"
        elif not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
            problem = "the file is read-only; not fixed"
        else:
            atomic_write(str(path), new)
            return True
    except OSError as exc:
        problem = f"cannot write the fix: {exc.strerror or exc}"
    report.warnings.append(f"{report.path}: {problem}")
    report.fixed = 0
    report.fixed_codes = []
    return False


def _job(args: tuple[list[tuple[Path, Settings]], Mode]) -> list[FileReport]:
    chunk, mode = args
    return [_collected(_safe_check(path, settings, mode)) for path, settings in chunk]


def _collected(report: FileReport) -> FileReport:
    """Collect the garbage cycles of one file once it is done (see `_automatic_gc_off`)."""
    if not gc.isenabled():
        gc.collect(1)
    return report


def _automatic_gc_off() -> None:
    """Turn off the cyclic collector's automatic runs; `_collected` runs it after each file.

    A parsed file is a tree of a few hundred thousand objects without cycles. The automatic
    collector would walk it again and again while it is built and checked (a sixth to a third
    of a run); freed by reference counting, it leaves little for one collection per file.
    """
    gc.disable()


def _safe_check(path: Path, settings: Settings, mode: Mode) -> FileReport:
    try:
        return check_file(path, settings, mode)
    except Exception as exc:  # last line of defence: one bad file never stops the run
        return FileReport(display_path(path), internal_errors=[f"{display_path(path)}: internal error: {exc!r}"])


def run_files(
    files: list[Path], resolver: Resolver, mode: Mode, jobs: int, progress: Callable[[int], None] | None = None
) -> list[FileReport]:
    """Check `files`, in parallel when it pays off; reports come back sorted by path.

    `progress(n)` is called as each n files are done."""
    work = [(path, resolver.for_path(path)) for path in files]
    done = progress or (lambda n: None)
    hits, work = _cache_hits(work, mode)  # answered here, so a warm run starts no workers
    if hits:
        done(len(hits))
    if jobs <= 1 or len(work) < 4:
        reports = hits
        was_enabled = gc.isenabled()
        _automatic_gc_off()
        try:
            for p, s in work:
                reports.append(_collected(_safe_check(p, s, mode)))
                done(1)
        finally:
            if was_enabled:
                gc.enable()
    else:
        chunks = _chunks(work, jobs)
        reports = hits
        crashed: list[tuple[Path, Settings]] = []
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        with ProcessPoolExecutor(max_workers=jobs, initializer=_automatic_gc_off) as pool:
            futures = [(chunk, pool.submit(_job, (chunk, mode))) for chunk in chunks]
            for chunk, future in futures:
                try:
                    reports.extend(future.result())
                except BrokenProcessPool:
                    crashed.extend(chunk)
                done(len(chunk))
        reports.extend(_isolated(item, mode) for item in crashed)
    return sorted(reports, key=lambda r: r.path)


def _chunks(work: list[tuple[Path, Settings]], jobs: int) -> list[list[tuple[Path, Settings]]]:
    """Pool tasks, largest files first, each about 1/(16*jobs) of the bytes, so that no worker
    is left with a long task while the others idle at the end."""
    sizes = []
    for item in work:
        try:
            sizes.append(item[0].stat().st_size)
        except OSError:
            sizes.append(0)
    order = sorted(range(len(work)), key=lambda i: -sizes[i])
    target = max(1, sum(sizes) // (16 * jobs))
    chunks: list[list[tuple[Path, Settings]]] = []
    current: list[tuple[Path, Settings]] = []
    filled = 0
    for i in order:
        current.append(work[i])
        filled += sizes[i]
        if filled >= target or len(current) >= 32:
            chunks.append(current)
            current, filled = [], 0
    if current:
        chunks.append(current)
    return chunks


def _cache_hits(
    work: list[tuple[Path, Settings]], mode: Mode
) -> tuple[list[FileReport], list[tuple[Path, Settings]]]:
    """Reports found in the cache, and the files still to check."""
    if mode.cache_dir is None or mode.fix or mode.diff:
        return [], work
    hits: list[FileReport] = []
    misses: list[tuple[Path, Settings]] = []
    root = Path(mode.cache_dir)
    for path, settings in work:
        try:
            data = path.read_bytes()
        except OSError:
            misses.append((path, settings))
            continue
        cached = cache.load(root, _cache_key(data, display_path(path), path, settings, mode))
        if isinstance(cached, FileReport):
            hits.append(cached)
        else:
            misses.append((path, settings))
    return hits, misses


def _isolated(item: tuple[Path, Settings], mode: Mode) -> FileReport:
    """Re-check one file in a process of its own, after a worker died (e.g. a parser crash)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    path, settings = item
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            return pool.submit(_job, ([item], mode)).result()[0]
    except BrokenProcessPool:
        shown = display_path(path)
        return FileReport(shown, internal_errors=[f"{shown}: internal error: the parser crashed on this file"])
