"""Count the code lines of the rule modules: lines that are not blank, not comments and not docstrings.

    python tools/rule_lines.py                 # rules/ of the working tree
    python tools/rule_lines.py --rev 82c1cff   # rules/ at a commit (read with git)
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_lines(source: str) -> int:
    """Lines holding code: blank lines, comments and docstrings (module, class, function) excluded."""
    doc_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                doc_lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - doc_lines)


def sources(rev: str | None) -> dict[str, str]:
    if rev is None:
        return {p.name: p.read_text() for p in sorted((ROOT / "rules").glob("ptl*.py"))}
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "rules/"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {Path(n).name: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True, text=True,
                                         check=True).stdout for n in names if Path(n).name.startswith("ptl")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", help="a git revision instead of the working tree")
    args = parser.parse_args(argv)
    total = code = 0
    for name, text in sources(args.rev).items():
        n, c = text.count("\n"), code_lines(text)
        total, code = total + n, code + c
        print(f"{name:45} {n:5} lines {c:5} code")
    print(f"{'total':45} {total:5} lines {code:5} code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
