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
