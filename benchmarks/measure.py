"""Measure every figure of ptlint's performance bar and print a markdown block.

    python benchmarks/measure.py --repo /path/to/pytorch-image-models          # everything
    python benchmarks/measure.py --repo ... --no-torchfix                        # skip TorchFix
    python benchmarks/measure.py --quick --no-torchfix                           # a smoke run (CI)
    python benchmarks/measure.py --compare-with /old/venv/bin/ptlint --repo A --repo B --large-file 20600
                                     # before/after: cold runs of an older ptlint and this one, alternating

Figures: TorchFix vs ptlint cold wall time on the repo (back to back: TorchFix, then ptlint with an
empty cache, then ptlint warm), warm vs cold run, peak RSS (largest process and the sampled sum over
ptlint's process tree), the latency of checking one generated 500-line file including start-up,
`--jobs 1` vs `--jobs 2`, and lines per second on generated corpora of 10k, 50k and 150k lines. Every ptlint run is a fresh process with all
rules enabled. Nothing here is asserted; the bar is printed next to each figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

TORCHFIX = "/work/venv-torchfix/bin/torchfix"


@dataclass
class Run:
    wall: float
    cpu: float
    rc: int
    max_rss_mb: float  # the largest single process (sampled; getrusage where /proc is missing)
    tree_rss_mb: float  # peak of the summed RSS of the process tree (sampled every 20 ms; 0 if unknown)
    timed_out: bool = False


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    """The summed RSS of a process and its descendants, and the largest single one (kB)."""
    total = largest = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                        total, largest = total + rss, max(largest, rss)
                        break
            with open(f"/proc/{current}/task/{current}/children") as handle:
                todo.extend(int(p) for p in handle.read().split())
        except (OSError, ValueError):
            continue
    return total, largest


def run(cmd: list[str], cwd: Path, timeout: float = 3600) -> Run:
    """Run `cmd`, output discarded; wall, CPU (user+sys of all descendants) and memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = [0, 0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            total, largest = _tree_rss_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)

    sampler = threading.Thread(target=sample, daemon=True)
    if os.path.isdir("/proc"):
        sampler.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its worker processes too
        except OSError:
            proc.kill()
        rc = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest process ever waited for, so only sampling isolates one run.
    largest = peak[1] if peak[1] else after.ru_maxrss
    return Run(wall, cpu, rc, largest / 1024, peak[0] / 1024, timed_out)


def ptlint_cmd() -> list[str]:
    script = Path(sys.executable).with_name("ptlint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptlint"]


def check_cmd(target: Path, jobs: int, cache: bool = True, exe: list[str] | None = None) -> list[str]:
    cmd = (exe or ptlint_cmd()) + ["check", str(target), "--select", "ALL", "--output-format", "concise", "--quiet",
                          "--exit-zero", "--jobs", str(jobs)]
    return cmd if cache else cmd + ["--no-cache"]


def count_lines(root: Path) -> tuple[int, int]:
    files = lines = 0
    for path in root.rglob("*.py"):
        if path.is_file():
            files += 1
            with open(path, "rb") as handle:
                lines += sum(1 for _ in handle)
    return files, lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def versions() -> str:
    from importlib import metadata

    from ptlint import __version__
    from ptlint.registry import all_rules

    rules = len(list(all_rules()))
    return f"ptlint {__version__} ({rules} rules), libcst {metadata.version('libcst')}"


def progress(message: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def compile_ptlint() -> None:
    """Compile ptlint's own modules to bytecode, as installing the wheel does.

    An editable install leaves that to the first import, which does not write it where
    PYTHONDONTWRITEBYTECODE is set: every start would then recompile about 100 modules."""
    import compileall
    import importlib.util

    for name in ("ptlint", "ptlint.rules"):
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, action="append", default=[],
                        help="A real repository (pytorch-image-models for the bar); repeat it with --compare-with.")
    parser.add_argument("--compare-with", metavar="PTLINT",
                        help="Another ptlint executable (an older version): print cold-run ratios against it instead.")
    parser.add_argument("--rounds", type=int, default=3, help="With --compare-with: alternating runs of each (median).")
    parser.add_argument("--large-file", type=int, metavar="FUNCTIONS",
                        help="Also check one generated file of this many training functions (corpus.large_file).")
    parser.add_argument("--no-torchfix", action="store_true", help="Skip the TorchFix comparison.")
    parser.add_argument("--torchfix", default=TORCHFIX, help=f"The torchfix executable (default: {TORCHFIX}).")
    parser.add_argument("--torchfix-timeout", type=float, default=3600)
    parser.add_argument("--jobs", type=int, default=2, help="Jobs for the cold and warm runs (default: 2).")
    parser.add_argument("--sizes", default="10000,50000,150000", help="Corpus sizes in lines.")
    parser.add_argument("--latency-lines", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of the single-file latency (median).")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes, one repeat: only checks it all runs.")
    parser.add_argument("--work", type=Path, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--no-compile", action="store_true",
                        help="Do not compile ptlint's modules to bytecode first (see `compile_ptlint`).")
    args = parser.parse_args(argv)
    if not args.no_compile:
        compile_ptlint()
    if args.quick:
        args.sizes, args.repeat = "300,600", 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="ptlint-measure-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows, notes = compare(args, work) if args.compare_with else measure(args, sizes, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(render(rows, notes, args))
    return 0


Row = tuple[str, str, str, str]  # figure, bar, measured, verdict


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def measure(args: argparse.Namespace, sizes: list[int], work: Path) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes = [f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", f"Machine: {machine()}", f"Versions: {versions()}",
             f"Load average before: {load()}"]
    jobs = args.jobs

    # Repository: cold (fresh cache), TorchFix right after it, then warm.
    for repo in args.repo[:1]:
        repo = repo.resolve()
        files, lines = count_lines(repo)
        notes.append(f"Repository: {repo.name}, {files} files, {lines:,} lines")
        cwd = work / "repo-run"
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir()
        tf = None
        if not args.no_torchfix:
            tf = run([args.torchfix, "--select", "ALL", str(repo)], cwd, args.torchfix_timeout)
            progress(f"torchfix: {tf}")
        cold = run(check_cmd(repo, jobs), cwd)  # right after TorchFix; an empty cache
        progress(f"cold: {cold}")
        warm = run(check_cmd(repo, jobs), cwd)
        progress(f"warm: {warm}")
        notes.append(f"ptlint cold on {repo.name}: {fmt_s(cold.wall)} wall, {fmt_s(cold.cpu)} CPU, "
                     f"{lines / cold.wall:,.0f} lines/s (--jobs {jobs}, exit {cold.rc})")
        if tf is not None:
            more = " (timed out: the ratio is a lower bound)" if tf.timed_out else ""
            rows.append(("TorchFix / ptlint cold wall time", ">= 15x",
                         f"{tf.wall / cold.wall:.1f}x ({fmt_s(tf.wall)} / {fmt_s(cold.wall)}){more}",
                         verdict(tf.wall / cold.wall >= 15)))
            cpu = "CPU unknown (killed)" if tf.timed_out else (
                f"{fmt_s(tf.cpu)} CPU, CPU ratio {tf.cpu / max(cold.cpu, 1e-9):.1f}x")
            notes.append(f"TorchFix --select ALL on {repo.name}: {fmt_s(tf.wall)} wall, {cpu} (exit {tf.rc})")
        rows.append(("Warm run / cold run", "<= 5%",
                     f"{100 * warm.wall / cold.wall:.1f}% ({fmt_s(warm.wall)} / {fmt_s(cold.wall)})",
                     verdict(warm.wall / cold.wall <= 0.05)))
        rss = max(cold.tree_rss_mb, cold.max_rss_mb)
        rows.append((f"Peak RSS, cold run on {lines:,} lines", "<= 300 MB",
                     f"{cold.max_rss_mb:.0f} MB largest process, {cold.tree_rss_mb:.0f} MB all processes",
                     verdict(rss <= 300)))

    # Single-file latency, start-up included.
    single = work / "single"
    single.mkdir(exist_ok=True)
    target = single / "train_and_models.py"
    target.write_text(corpus.single_file(args.latency_lines))
    startup = [run(ptlint_cmd() + ["--version"], single).wall for _ in range(args.repeat)]
    # The floor of any libcst-based checker on this machine: the interpreter and `import libcst`.
    floor = [run([sys.executable, "-c", "import libcst"], single).wall for _ in range(args.repeat)]
    bare = [run([sys.executable, "-c", "pass"], single).wall for _ in range(args.repeat)]
    runs = [run(check_cmd(target, 1, cache=False), single) for _ in range(args.repeat)]
    walls = [r.wall for r in runs]
    median = statistics.median(walls)
    progress(f"single file: {walls}")
    rows.append((f"One {args.latency_lines}-line file, start-up included", "<= 0.3 s",
                 f"{fmt_s(median)} median of {len(walls)} (min {fmt_s(min(walls))}, CPU "
                 f"{fmt_s(statistics.median(r.cpu for r in runs))}; `ptlint --version` "
                 f"{fmt_s(statistics.median(startup))}; `python -c pass` {fmt_s(statistics.median(bare))}, "
                 f"`python -c 'import libcst'` {fmt_s(statistics.median(floor))})", verdict(median <= 0.3)))

    # Synthetic corpora: linearity at --jobs 1, then --jobs 2 on the largest.
    per_line: list[tuple[int, float]] = []
    largest = None
    for size in sizes:
        root = work / f"corpus-{size}"
        made = corpus.generate(root, size)
        one = run(check_cmd(root, 1, cache=False), work)
        per_line.append((made.lines, one.wall))
        progress(f"corpus {made.lines} lines, jobs 1: {one}")
        notes.append(f"Corpus {made.lines:,} lines ({len(made.files)} files), --jobs 1, no cache: "
                     f"{fmt_s(one.wall)} wall, {fmt_s(one.cpu)} CPU, {made.lines / one.wall:,.0f} lines/s, peak RSS "
                     f"{max(one.max_rss_mb, one.tree_rss_mb):.0f} MB")
        largest = (root, made.lines, one)
    if len(per_line) >= 2:
        (l0, t0), (l1, t1) = per_line[0], per_line[-1]
        ratio = (t1 / l1) / (t0 / l0)
        rows.append((f"Linearity: time per line, {l1:,} vs {l0:,} lines", "about 1.0 (linear)",
                     f"{ratio:.2f}", verdict(ratio <= 1.25)))
    if largest is not None:
        root, lines, one = largest
        two = run(check_cmd(root, 2, cache=False), work)
        progress(f"corpus {lines} lines, jobs 2: {two}")
        rows.append((f"--jobs 1 / --jobs 2 wall time ({lines:,} lines)", ">= 1.7x",
                     f"{one.wall / two.wall:.2f}x ({fmt_s(one.wall)} / {fmt_s(two.wall)})",
                     verdict(one.wall / two.wall >= 1.7)))
    notes.append(f"Load average after: {load()}")
    return rows, notes


def compare(args: argparse.Namespace, work: Path) -> tuple[list[Row], list[str]]:
    """Cold runs (no cache, --jobs 1) of `--compare-with` and of this ptlint, alternating, on each repository
    and on the generated large file; the ratios of their median CPU times, and CPU per line."""
    rows: list[Row] = []
    notes = [f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", f"Machine: {machine()}", f"Versions: {versions()}",
             f"Baseline: {args.compare_with}", f"Load average before: {load()}"]
    targets = [(repo.resolve(), count_lines(repo.resolve())[1]) for repo in args.repo]
    if args.large_file:
        big = work / "large"
        big.mkdir(exist_ok=True)
        text = corpus.large_file(args.large_file)
        (big / "large.py").write_text(text)
        lines = text.count("\n")
        runs = [run(check_cmd(big, 1, cache=False), work) for _ in range(args.rounds)]
        cpu = statistics.median(r.cpu for r in runs)
        rss = max(max(r.max_rss_mb, r.tree_rss_mb) for r in runs)
        progress(f"large file: {runs}")
        rows.append((f"Generated file of {lines:,} lines ({len(text) / 1e6:.1f} MB): CPU, peak RSS", "< 1.5 GB",
                     f"{fmt_s(cpu)} CPU ({1e3 * cpu / lines:.3f} ms/line), peak RSS {rss:.0f} MB", verdict(rss < 1536)))
        large_per_line = cpu / lines
    per_line: dict[str, float] = {}
    for target, lines in targets:
        old_runs, new_runs = [], []
        for _ in range(args.rounds):
            old_runs.append(run(check_cmd(target, 1, cache=False, exe=[args.compare_with]), work))
            new_runs.append(run(check_cmd(target, 1, cache=False), work))
        old = statistics.median(r.cpu for r in old_runs)
        new = statistics.median(r.cpu for r in new_runs)
        rss = max(max(r.max_rss_mb, r.tree_rss_mb) for r in new_runs)
        old_rss = max(max(r.max_rss_mb, r.tree_rss_mb) for r in old_runs)
        per_line[target.name] = new / lines
        progress(f"{target.name}: old {old_runs} new {new_runs}")
        rows.append((f"Cold CPU, new / old, {target.name} ({lines:,} lines)", "<= 1.05",
                     f"{new / old:.2f} ({fmt_s(new)} / {fmt_s(old)}; {1e3 * new / lines:.3f} ms/line; "
                     f"peak RSS {rss:.0f} MB, old {old_rss:.0f} MB)", verdict(new / old <= 1.05)))
    if args.large_file and targets:
        reference = targets[0][0].name
        ratio = large_per_line / per_line[reference]
        rows.append((f"CPU per line, generated large file / {reference}", "<= 2.0",
                     f"{ratio:.2f}", verdict(ratio <= 2.0)))
    notes.append(f"Load average after: {load()}")
    return rows, notes


def render(rows: list[Row], notes: list[str], args: argparse.Namespace) -> str:
    out = ["| Figure | Bar | Measured | Met |", "| --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    out.append("")
    out += [f"- {note}" for note in notes]
    command = "python benchmarks/measure.py " + " ".join(sys.argv[1:])
    out.append(f"- Command: `{command.strip()}`")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
