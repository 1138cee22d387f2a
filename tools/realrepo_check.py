"""Run `ptlint check --fix --unsafe-fixes` on copies of real repositories and check the outcome.

For each repository folder given:
  1. copy it to a temporary folder (the original is never written);
  2. `ptlint check --select ALL` counts the findings before fixing;
  3. `ptlint check --fix --unsafe-fixes --select ALL` fixes the copy;
  4. every changed file must compile (`py_compile`; each code cell of a notebook);
  5. a re-run counts the findings left, and the fixable ones among them (should be 0);
  6. a second `--fix --unsafe-fixes` must change no byte.
A crash is a ptlint exit code other than 0/1, an internal error line, or a traceback.

Prints a markdown table, then the details of every problem. Exit status 1 when any repository has
a crash, a compile failure, a remaining fixable finding or a second fix that changes something.

    python3 tools/realrepo_check.py /work/realrepos/* --mirrors /work/.mirror
    python3 tools/realrepo_check.py repo_a repo_b --manifest commits.txt   # lines: NAME COMMIT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ptlint_cache"}


@dataclass
class Outcome:
    name: str
    commit: str
    files: int = 0
    lines: int = 0
    before: int = 0
    fixable_before: int = 0
    fixed: int = 0
    changed: list[str] = field(default_factory=list)
    after: int = 0
    fixable_after: list[str] = field(default_factory=list)
    compile_failures: list[str] = field(default_factory=list)
    second_fix_changed: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.crashes or self.compile_failures or self.fixable_after or self.second_fix_changed)


def python_files(root: Path) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        out.extend(Path(folder) / n for n in sorted(names) if n.endswith(".py"))
    return [p for p in out if p.is_file() and not p.is_symlink()]


def all_files(root: Path) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        out.extend(Path(folder) / n for n in sorted(names))
    return [p for p in out if p.is_file() and not p.is_symlink()]


def snapshot(root: Path) -> dict[str, str]:
    """A hash of every file (fixes may touch notebooks and other text files too)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in all_files(root)}


def notebook_cells(path: Path) -> list[str]:
    """The code cells of a notebook, IPython magics and shell lines blanked out."""
    cells = []
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            cells.append(re.sub(r"(?m)^(\s*)[%!?].*$", r"\1pass", text))
    return cells


def compiles(text: str) -> bool:
    try:
        compile(text, "<cell>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def compile_problem(fixed: Path, original: Path, tmp: Path) -> str | None:
    """Why a changed file no longer compiles (.py: py_compile; .ipynb: JSON and every code cell)."""
    if fixed.suffix == ".py":
        try:
            py_compile.compile(str(fixed), cfile=str(tmp / "out.pyc"), doraise=True)
        except py_compile.PyCompileError as exc:
            return exc.msg.strip().splitlines()[-1]
    elif fixed.suffix == ".ipynb":
        try:
            cells = notebook_cells(fixed)
        except (ValueError, UnicodeDecodeError) as exc:
            return f"not a valid notebook: {exc}"
        before = notebook_cells(original)
        for n, cell in enumerate(cells):
            was_ok = n < len(before) and compiles(before[n])
            if was_ok and not compiles(cell):
                return f"code cell {n + 1} does not compile"
    return None


def count_lines(files: list[Path]) -> int:
    total = 0
    for path in files:
        data = path.read_bytes()
        total += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return total


SELECT = ["ALL"]  # `--select`: the rules whose findings and fixes are checked


def ptlint(root: Path, *args: str, jobs: int) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ptlint", "check", ".", "--select", SELECT[0], "--no-cache", "--jobs", str(jobs), *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=3600)


def crash_lines(proc: subprocess.CompletedProcess[str], step: str) -> list[str]:
    out = []
    if proc.returncode not in (0, 1):
        out.append(f"{step}: exit code {proc.returncode}")
    for line in proc.stderr.splitlines():
        if line.startswith("ptlint: error:") or line.startswith("Traceback"):
            out.append(f"{step}: {line}")
    return out


def warning_lines(proc: subprocess.CompletedProcess[str], step: str) -> list[str]:
    return [f"{step}: {line}" for line in proc.stderr.splitlines() if line.startswith("ptlint: warning:")]


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    try:
        return json.loads(proc.stdout) if proc.stdout.strip() else []
    except json.JSONDecodeError:
        return []


def fixable(items: list[dict]) -> list[dict]:
    return [f for f in items if f.get("fix") and f["fix"].get("applicability") in ("safe", "unsafe")]


def check_repo(source: Path, commit: str, jobs: int, keep: Path | None) -> Outcome:
    outcome = Outcome(source.name, commit)
    tmp = Path(tempfile.mkdtemp(prefix="ptlint-realrepo-"))
    copy = (keep or tmp) / source.name
    try:
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
        files = python_files(copy)
        outcome.files, outcome.lines = len(files), count_lines(files)

        before = ptlint(copy, "--output-format", "json", "--unsafe-fixes", jobs=jobs)
        outcome.crashes += crash_lines(before, "check")
        items = findings(before)
        outcome.before, outcome.fixable_before = len(items), len(fixable(items))

        first = snapshot(copy)
        fix = ptlint(copy, "--fix", "--unsafe-fixes", "--output-format", "concise", jobs=jobs)
        outcome.crashes += crash_lines(fix, "fix")
        outcome.warnings += warning_lines(fix, "fix")
        m = re.search(r"\((\d+) fixed", fix.stdout)
        outcome.fixed = int(m.group(1)) if m else 0
        second = snapshot(copy)
        outcome.changed = sorted(k for k in second if first.get(k) != second[k])
        for rel in outcome.changed:
            problem = compile_problem(copy / rel, source / rel, tmp)
            if problem is not None:
                outcome.compile_failures.append(f"{rel}: {problem}")

        after = ptlint(copy, "--output-format", "json", "--unsafe-fixes", jobs=jobs)
        outcome.crashes += crash_lines(after, "re-check")
        items = findings(after)
        outcome.after = len(items)
        outcome.fixable_after = [
            f"{os.path.relpath(f['filename'], copy)}:{f['location']['row']}:{f['location']['column']}: {f['code']}"
            for f in fixable(items)
        ]

        again = ptlint(copy, "--fix", "--unsafe-fixes", "--output-format", "concise", jobs=jobs)
        outcome.crashes += crash_lines(again, "second fix")
        third = snapshot(copy)
        outcome.second_fix_changed = sorted(k for k in third if second.get(k) != third[k])
    except Exception as exc:  # the script itself must report, not stop
        outcome.crashes.append(f"realrepo_check: {exc!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outcome


def read_manifest(path: Path | None) -> dict[str, str]:
    commits: dict[str, str] = {}
    if path is not None:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("#"):
                commits[parts[0]] = parts[1]
    return commits


def commit_of(repo: Path, manifest: dict[str, str], mirrors: Path | None) -> str:
    if repo.name in manifest:
        return manifest[repo.name]
    candidates = []
    if mirrors is not None:
        candidates += [d / "repo" for d in sorted(mirrors.glob(f"*+{repo.name}")) if d.is_dir()]
    candidates.append(repo / ".git")
    for git_dir in candidates:
        proc = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip()
    return "unknown"


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| repository | commit | .py files | lines | findings before | fixable before | fixed | changed files "
        "| findings after | fixable after | compile failures | second fix changes | crashes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.name} | {o.commit[:12]} | {o.files} | {o.lines:,} | {o.before} | {o.fixable_before} | {o.fixed} "
            f"| {len(o.changed)} | {o.after} | {len(o.fixable_after)} | {len(o.compile_failures)} "
            f"| {len(o.second_fix_changed)} | {len(o.crashes)} |"
        )
    total = Outcome("**total**", "")
    for o in outcomes:
        total.files += o.files
        total.lines += o.lines
        total.before += o.before
        total.fixable_before += o.fixable_before
        total.fixed += o.fixed
        total.after += o.after
    n = lambda attr: sum(len(getattr(o, attr)) for o in outcomes)  # noqa: E731
    rows.append(
        f"| **total** | | {total.files} | {total.lines:,} | {total.before} | {total.fixable_before} | {total.fixed} "
        f"| {n('changed')} | {total.after} | {n('fixable_after')} | {n('compile_failures')} "
        f"| {n('second_fix_changed')} | {n('crashes')} |"
    )
    return "\n".join(rows) + "\n"


def details(outcomes: list[Outcome]) -> str:
    out = []
    for o in outcomes:
        for title, items in (
            ("crash", o.crashes),
            ("does not compile after the fix", o.compile_failures),
            ("fixable finding left after the fix", o.fixable_after),
            ("changed by a second fix", o.second_fix_changed),
            ("warning", o.warnings),
        ):
            out.extend(f"- {o.name}: {title}: {item}" for item in items)
    return "\n".join(out) + ("\n" if out else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repos", nargs="+", type=Path, help="repository folders (never written)")
    parser.add_argument("--manifest", type=Path, help="a file of `NAME COMMIT` lines")
    parser.add_argument("--mirrors", type=Path, help="a folder of git mirrors named OWNER+NAME/repo")
    parser.add_argument("--jobs", type=int, default=2, help="ptlint --jobs (default 2)")
    parser.add_argument("--keep", type=Path, help="keep the fixed copies in this folder")
    parser.add_argument("--select", default="ALL", help="the rules to check and fix (default ALL), e.g. PTL042,PTL043")
    args = parser.parse_args(argv)
    SELECT[0] = args.select
    manifest = read_manifest(args.manifest)
    outcomes = []
    for repo in args.repos:
        if not repo.is_dir():
            print(f"skipped {repo}: not a folder", file=sys.stderr)
            continue
        outcome = check_repo(repo, commit_of(repo, manifest, args.mirrors), args.jobs, args.keep)
        print(f"{outcome.name}: {'ok' if outcome.ok else 'PROBLEMS'}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print(table(outcomes))
    problems = details(outcomes)
    if problems:
        print(problems)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
