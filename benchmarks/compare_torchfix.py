"""Run TorchFix and ptlint on the same fixtures and write the comparison table of the README.

    python benchmarks/compare_torchfix.py [--torchfix PATH] [--readme]

Cases: every rule's `fixtures/PTLxxx/positive_*.py` (the expected locations come from its `.expected`
file) and `fixtures/compare/*.py` (anti-patterns TorchFix targets, lines marked `# expect`). A tool
*finds* a case when it reports, on the expected line, a code that stands for the row's anti-pattern: for a
ptlint rule's own fixtures, ptlint's rule code; otherwise any code the tool reports on at least half of the
row's expected lines (so a `torch.load` finding that happens to share a line with a missing `.eval()` does
not count). It *fixes* it when `--fix` (ptlint: `--fix --unsafe-fixes`) changes the file and a second run
no longer reports those codes there. False alarms: trap files (`trap_*.py`, code that looks like the
anti-pattern but is fine) on which a tool reports those codes. Both tools run with every rule enabled
(`--select ALL`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ptlint.fixtures import positives, traps  # noqa: E402
from ptlint.registry import all_rules  # noqa: E402

TORCHFIX = "/work/venv-torchfix/bin/torchfix"
FINDING_RE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+)\b")
META_RULES = {"PTL000", "PTL100"}  # syntax errors and unused noqa comments: not PyTorch anti-patterns
BEGIN, END = "<!-- torchfix-comparison:begin -->", "<!-- torchfix-comparison:end -->"

Findings = dict[str, list[tuple[int, str]]]  # relative path -> [(line, code)]


@dataclass
class Row:
    title: str
    own_code: str | None  # ptlint's rule for its own fixtures; None for the compare cases
    cases: dict[str, set[int]] = field(default_factory=dict)  # staged path -> expected lines
    traps: list[str] = field(default_factory=list)


def rows() -> list[Row]:
    out = []
    for rule in all_rules():
        folder = ROOT / "fixtures" / rule.code
        if rule.code in META_RULES or not folder.is_dir():
            continue
        row = Row(f"`{rule.code}` {rule.name}", rule.code)
        for pos in positives(folder):
            lines = {line for line, _, code in pos.expected or () if code == rule.code}
            if lines:
                row.cases[f"{rule.code}/{pos.path.name}"] = lines
        row.traps = [f"{rule.code}/{t.name}" for t in traps(folder)]
        if row.cases:
            out.append(row)
    for path in sorted((ROOT / "fixtures" / "compare").glob("*.py")):
        text = path.read_text()
        title = re.search(r'"""(.+?)(?:\n|""")', text)
        lines = {n for n, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith("# expect")}
        row = Row(title.group(1).strip().rstrip(".") if title else path.stem, None, {f"compare/{path.name}": lines})
        out.append(row)
    return out


def stage(rows_: list[Row], target: Path) -> None:
    for row in rows_:
        for rel in [*row.cases, *row.traps]:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "fixtures" / rel, dest)


def parse(output: str, base: Path) -> Findings:
    found: Findings = defaultdict(list)
    for line in output.splitlines():
        m = FINDING_RE.match(line)
        if m:
            path = Path(m.group("path"))
            rel = (path if path.is_absolute() else base / path).resolve().relative_to(base.resolve()).as_posix()
            found[rel].append((int(m.group("line")), m.group("code")))
    return found


def run_ptlint(folder: Path, fix: bool = False) -> Findings:
    cmd = [sys.executable, "-m", "ptlint", "check", ".", "--select", "ALL", "--no-cache", "--exit-zero",
           "--output-format", "concise", "--quiet"]
    if fix:
        cmd += ["--fix", "--unsafe-fixes"]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    return parse(proc.stdout, folder)


def run_torchfix(torchfix: str, folder: Path, fix: bool = False, paths: list[str] | None = None) -> Findings:
    cmd = [torchfix, "--select", "ALL", *(["--fix"] if fix else []), *(paths or ["."])]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    return parse(proc.stdout, folder)


@dataclass
class Tally:
    found: int = 0
    fixed: int = 0
    total: int = 0
    alarms: int = 0
    traps: int = 0
    codes: set[str] = field(default_factory=set)


def row_codes(row: Row, before: Findings, own: str | None) -> set[str]:
    """The codes that stand for the row's anti-pattern: `own`, or those on at least half its expected lines."""
    if own is not None:
        return {own}
    hit: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for rel, lines in row.cases.items():
        for n, c in before.get(rel, []):
            if n in lines:
                hit[c].add((rel, n))
    total = sum(len(lines) for lines in row.cases.values())
    return {c for c, where in hit.items() if 2 * len(where) >= total}


def tally(row: Row, before: Findings, after: Findings, changed: set[str], traps_: Findings, own: str | None) -> Tally:
    t = Tally(traps=len(row.traps))
    wanted = row_codes(row, before, own)
    for rel, lines in row.cases.items():
        t.total += len(lines)
        hits = {(n, c) for n, c in before.get(rel, []) if n in lines and c in wanted}
        caught = {n for n, _ in hits}
        codes = {c for _, c in hits}
        t.found += len(caught)
        t.codes |= codes
        if caught and rel in changed:
            left = sum(1 for _, c in after.get(rel, []) if c in codes)
            t.fixed += max(0, len(caught) - left)
    t.alarms = sum(1 for rel in row.traps if any(c in t.codes for _, c in traps_.get(rel, [])))
    return t


def changed_files(original: Path, fixed: Path) -> set[str]:
    return {
        p.relative_to(fixed).as_posix()
        for p in fixed.rglob("*.py")
        if p.read_bytes() != (original / p.relative_to(fixed)).read_bytes()
    }


def measure(torchfix: str) -> str:
    table = rows()
    with tempfile.TemporaryDirectory(prefix="ptlint-vs-torchfix-") as tmp:
        base = Path(tmp) / "cases"
        stage(table, base)
        results = {}
        for tool in ("torchfix", "ptlint"):
            copy = Path(tmp) / f"fix-{tool}"
            shutil.copytree(base, copy)
            if tool == "ptlint":
                before, _ = run_ptlint(base), run_ptlint(copy, fix=True)
                changed = changed_files(base, copy)
                after = run_ptlint(copy)
            else:  # TorchFix is slow: its --fix run also lists the findings, and only changed files re-run
                before = run_torchfix(torchfix, copy, fix=True)
                changed = changed_files(base, copy)
                after = run_torchfix(torchfix, copy, paths=sorted(changed)) if changed else {}
            results[tool] = (before, after, changed)
    return render(table, results)


def render(table: list[Row], results: dict) -> str:
    lines = [
        "| Anti-pattern | Cases | TorchFix finds | TorchFix fixes | ptlint finds | ptlint fixes | False alarms on traps (TorchFix / ptlint) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    sums = defaultdict(int)
    for row in table:
        tf = tally(row, *results["torchfix"][:2], results["torchfix"][2], results["torchfix"][0], None)
        pt = tally(row, *results["ptlint"][:2], results["ptlint"][2], results["ptlint"][0], row.own_code)
        codes = " / ".join(", ".join(sorted(t.codes)) for t in (tf, pt) if t.codes)
        title = row.title if row.own_code or not codes else f"{row.title} ({codes})"
        traps_cell = f"{tf.alarms} / {pt.alarms} of {len(row.traps)}" if row.traps else "—"
        lines.append(
            f"| {title} | {tf.total} | {tf.found} | {tf.fixed} | {pt.found} | {pt.fixed} | {traps_cell} |"
        )
        for key, value in (("cases", tf.total), ("tf_found", tf.found), ("tf_fixed", tf.fixed),
                           ("pt_found", pt.found), ("pt_fixed", pt.fixed)):
            sums[key] += value
    lines.append(
        f"| **All** | {sums['cases']} | {sums['tf_found']} | {sums['tf_fixed']} | {sums['pt_found']} | {sums['pt_fixed']} | |"
    )
    return "\n".join(lines) + "\n"


def version(torchfix: str) -> str:
    proc = subprocess.run([torchfix, "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().split()[-1] if proc.returncode == 0 else "?"


def write_readme(table: str, torchfix: str) -> None:
    from ptlint import __version__

    readme = ROOT / "README.md"
    text = readme.read_text()
    block = (
        f"{BEGIN}\n<!-- generated by `python benchmarks/compare_torchfix.py --readme` "
        f"(TorchFix {version(torchfix)}, ptlint {__version__}) -->\n{table}{END}"
    )
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Compared with TorchFix\n\n" + block + "\n"
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torchfix", default=shutil.which("torchfix") or TORCHFIX, help="The torchfix executable.")
    parser.add_argument("--readme", action="store_true", help="Replace the table in README.md.")
    args = parser.parse_args()
    if not Path(args.torchfix).exists() and shutil.which(args.torchfix) is None:
        print(f"torchfix not found: {args.torchfix}", file=sys.stderr)
        return 2
    table = measure(args.torchfix)
    if args.readme:
        write_readme(table, args.torchfix)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
