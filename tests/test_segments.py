"""Very large files are checked in parts: same findings at the same places, bounded memory."""

from __future__ import annotations

import sys
from pathlib import Path

from ptlint import segments
from ptlint.engine import analyze, analyze_whole
from ptlint.registry import all_rules

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from corpus import large_file  # noqa: E402


def _key(result):
    return [(f.code, f.start.line, f.start.column, f.end.line, f.end.column) for f in result.findings]


def test_parts_give_the_whole_file_findings(monkeypatch):
    text = "# header comment\n" + large_file(120).replace("def train_7(", "@decorated\ndef train_7(")
    rules = list(all_rules())
    whole = analyze_whole(text, "big.py", rules)
    monkeypatch.setattr(segments, "LARGE_LINES", 100)
    monkeypatch.setattr(segments, "LARGE_BYTES", 100)
    monkeypatch.setattr(segments, "PART_LINES", 200)
    parted = analyze(text, "big.py", rules)
    assert whole.findings and sorted(_key(parted)) == sorted(_key(whole))
    assert all(f.fix is None for f in parted.findings)
    assert parted.module is None
    assert any("checked in 7 parts" in e for e in parted.errors), parted.errors


def test_parts_respect_noqa_and_report_syntax_errors(monkeypatch):
    monkeypatch.setattr(segments, "LARGE_LINES", 10)
    monkeypatch.setattr(segments, "LARGE_BYTES", 10)
    monkeypatch.setattr(segments, "PART_LINES", 20)
    text = large_file(6).replace("torch.save(model, 'model_4.pt')", "torch.save(model, 'model_4.pt')  # noqa: PTL006")
    parted = analyze(text, "big.py", list(all_rules()))
    saves = [f.start.line for f in parted.findings if f.code == "PTL006"]
    assert len(saves) == 5 and text.splitlines()[4 * 11 + 12].strip().endswith("noqa: PTL006")
    broken = analyze(text + "def (\n", "big.py", list(all_rules()))
    assert [f.code for f in broken.findings] == ["PTL000"]


def test_imports_reach_every_part(monkeypatch):
    monkeypatch.setattr(segments, "LARGE_LINES", 10)
    monkeypatch.setattr(segments, "LARGE_BYTES", 10)
    monkeypatch.setattr(segments, "PART_LINES", 20)
    text = "import torch as T\n\n" + "".join(f"def f{i}():\n    net = T.nn.Linear(2, 2)\n    T.save(net, 'x.pt')\n\n\n" for i in range(30))
    parted = analyze(text, "big.py", list(all_rules()))
    lines = sorted(f.start.line for f in parted.findings if f.code == "PTL006")
    assert lines == [5 + 5 * i for i in range(30)]
