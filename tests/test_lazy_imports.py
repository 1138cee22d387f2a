"""Start-up stays light: the CLI imports no libcst, and a warm run never needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ptlint import catalog
from ptlint.registry import all_rules

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('libcst' in sys.modules, 'ptlint.rules.ptl001_missing_eval_mode' in sys.modules,"
    " file=sys.stderr))\n"
    "from ptlint.cli import main\n"
    "main()\n"
)


def _check(cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, "check", *args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr.strip().splitlines()[-1]


def test_importing_the_cli_imports_no_libcst():
    code = "import sys, ptlint.cli; print(sorted(m for m in sys.modules if m.startswith(('libcst', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_warm_run_imports_neither_libcst_nor_rules(tmp_path):
    (tmp_path / "a.py").write_text("import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, 'm.pt')\n")
    (tmp_path / "run.sh").write_text("python -m torch.distributed.launch train.py\n")
    args = ("--select", "ALL", "--output-format", "concise", "--quiet")
    cold = _check(tmp_path, *args)
    assert cold[2] == "True True"
    warm = _check(tmp_path, *args)
    assert warm[2] == "False False"
    assert warm[:2] == cold[:2] and cold[0] == 1
    assert "a.py:3:12: PTL006" in cold[1] and "run.sh:1:1: PTL017" in cold[1]


def test_no_cache_run_does_not_save_an_index(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    assert _check(tmp_path, "--no-cache")[0] == 0
    assert not (tmp_path / ".ptlint_cache").exists()


def test_saved_index_matches_the_rule_classes(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "_index", None)
    (tmp_path / "CACHEDIR.TAG").write_text("")
    catalog.save(tmp_path)  # the rules are not imported yet through the catalog: nothing to save
    assert not list(tmp_path.glob("rules-*.pickle"))
    catalog.infos()
    (tmp_path / "rules-old.pickle").write_text("stale")
    catalog.save(tmp_path)
    [saved] = list(tmp_path.glob("rules-*.pickle"))
    monkeypatch.setattr(catalog, "_index", None)
    assert catalog.load(tmp_path)
    expected = [(r.code, r.name, tuple(r.text_globs)) for r in all_rules()]
    assert [tuple(i) for i in catalog.infos()] == expected
    saved.write_bytes(b"not a pickle")
    monkeypatch.setattr(catalog, "_index", None)
    assert not catalog.load(tmp_path)
