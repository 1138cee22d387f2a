"""Pool tasks: every file once, largest first, small files grouped."""

from __future__ import annotations

from ptlint.config import Settings
from ptlint.runner import _chunks


def test_chunks_cover_every_file_once_largest_first(tmp_path):
    settings = Settings(root=tmp_path)
    work = []
    for i, size in enumerate([10, 5000, 20, 30, 40000, 7, 0]):
        path = tmp_path / f"f{i}.py"
        path.write_text("x" * size)
        work.append((path, settings))
    work.append((tmp_path / "gone.py", settings))  # vanished since discovery: still checked (and reported)
    chunks = _chunks(work, 2)
    flat = [p.name for chunk in chunks for p, _ in chunk]
    assert sorted(flat) == sorted(p.name for p, _ in work)
    assert flat[:2] == ["f4.py", "f1.py"]
    assert [p.name for p, _ in chunks[0]] == ["f4.py"]  # a big file is a task of its own
    assert len(chunks[-1]) > 1  # small files travel together


def test_in_process_run_restores_automatic_gc(tmp_path):
    import gc

    from ptlint.config import Overrides, Resolver
    from ptlint.runner import Mode, run_files

    path = tmp_path / "a.py"
    path.write_text("import torch\nx = torch.zeros(1).cuda()\n")
    assert gc.isenabled()
    reports = run_files([path], Resolver(Overrides(select=("ALL",)), None), Mode(), 1)
    assert [f.code for f in reports[0].findings] == ["PTL005", "PTL026"]
    assert gc.isenabled()


def test_analysing_a_file_leaves_no_garbage_cycles():
    """The tree is freed by reference counting as soon as the analysis is dropped."""
    import gc

    from ptlint import engine
    from ptlint.registry import all_rules

    text = "import torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x.cuda()\n"
    engine.analyze(text, "warm.py", list(all_rules()))  # first-time caches
    gc.collect()
    gc.disable()
    try:
        engine.analyze(text, "a.py", list(all_rules()))
        assert gc.collect() == 0
    finally:
        gc.enable()
