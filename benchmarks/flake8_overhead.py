"""What installing ptlint costs a flake8 run that does not select PTL codes.

    python benchmarks/flake8_overhead.py              # 3 small files and one ~500 KB file, 5 runs each
    python benchmarks/flake8_overhead.py --quick      # a smoke run (1 run each, small files)
    python benchmarks/flake8_overhead.py --max-overhead 0.05   # exit 1 if a median overhead exceeds 50 ms

flake8 runs every installed plugin on every file and filters the results by `--select` afterwards, so a
plugin that did its work regardless would slow down `flake8 --select E501` for everyone who installs
ptlint. Each row runs flake8 in a fresh process, three ways: without the ptlint plugin (its entry
point hidden from flake8's plugin finder), with it and `--select E501`, and with it and `--select PTL`
(the plugin at work, for reference, one run). The overhead is the difference of the medians of the first two.
Nothing is asserted unless `--max-overhead` is given; the figures are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Runs flake8 in this interpreter, with the ptlint plugin hidden from its plugin finder or not: both
# variants start the same way, so the difference is the plugin's.
FLAKE8 = """
import sys
import flake8.plugins.finder as finder
if {hide}:
    found = finder._find_importlib_plugins
    finder._find_importlib_plugins = lambda: (p for p in found() if p.package != "ptlint")
from flake8.main.cli import main
sys.exit(main(sys.argv[1:]))
"""
WITHOUT_PTLINT, WITH_PTLINT = FLAKE8.format(hide=True), FLAKE8.format(hide=False)


def _files(folder: Path, quick: bool) -> dict[str, list[Path]]:
    import corpus

    small = []
    for n in range(3):
        path = folder / f"small_{n}.py"
        path.write_text(corpus.single_file(200 if quick else 300))
        small.append(path)
    big = folder / "big.py"
    text = corpus.single_file(300)
    big.write_text(text * (2 if quick else max(1, 500_000 // len(text))))
    return {"3 files": small, f"1 file, {big.stat().st_size // 1024} KB": [big]}


def _time(command: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small files, one run each")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5, 1 with --quick)")
    parser.add_argument("--max-overhead", type=float, default=None, help="seconds; exit 1 above it")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 5)
    rows = []
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, files in _files(folder, args.quick).items():
            names = [p.name for p in files]
            without = _time([sys.executable, "-c", WITHOUT_PTLINT, "--select", "E501", *names], folder, runs)
            unselected = _time([sys.executable, "-c", WITH_PTLINT, "--select", "E501", *names], folder, runs)
            selected = _time([sys.executable, "-c", WITH_PTLINT, "--select", "PTL", *names], folder, 1)
            overhead = unselected - without
            worst = max(worst, overhead)
            rows.append((label, without, unselected, overhead, selected))
    print(f"flake8 with and without the ptlint plugin (median of {runs} run{'s' if runs > 1 else ''}, seconds)\n")
    print("| Files | without ptlint, `--select E501` | with ptlint, `--select E501` | overhead | with ptlint, `--select PTL` |")
    print("| --- | --- | --- | --- | --- |")
    for label, without, unselected, overhead, selected in rows:
        print(f"| {label} | {without:.3f} | {unselected:.3f} | {overhead:+.3f} | {selected:.3f} |")
    if args.max_overhead is not None and worst > args.max_overhead:
        print(f"\noverhead {worst:.3f} s is above --max-overhead {args.max_overhead:.3f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
