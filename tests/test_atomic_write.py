"""Fixes are written atomically: a process killed in the middle of a write leaves the original file intact."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import SRC, check_concise

from ptlint.source import atomic_write

BAD = 'import torch\nmodel = torch.nn.Linear(2, 2)\n# keep me\ntorch.save(model, "m.pt")\n'
FIXED = 'import torch\nmodel = torch.nn.Linear(2, 2)\n# keep me\ntorch.save(model.state_dict(), "m.pt")\n'

# Runs `ptlint check --fix --unsafe-fixes` in a child whose writes are sabotaged as $PTLINT_TEST_DIE says.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    how, ready = os.environ["PTLINT_TEST_DIE"], os.environ.get("PTLINT_TEST_READY", "")
    real_fdopen = os.fdopen

    class Dying:
        def __init__(self, handle):
            self.handle = handle
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.handle.close()
        def fileno(self):
            return self.handle.fileno()
        def flush(self):
            self.handle.flush()
        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            if how == "exit-mid-write":
                os._exit(9)
            open(ready, "w").close()
            time.sleep(60)  # the parent kills us here

    if how == "exit-before-replace":
        os.replace = lambda *args: os._exit(9)
    else:
        os.fdopen = lambda fd, mode="r", *a, **k: Dying(real_fdopen(fd, mode, *a, **k))
    from ptlint.cli import main
    main(["check", "--fix", "--unsafe-fixes", "--no-cache", "--jobs", "1", "a.py"])
    """
)


def _child(tmp_path: Path, how: str, ready: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PTLINT_TEST_DIE=how, PTLINT_TEST_READY=str(ready or ""))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(SRC)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name != "a.py")


@pytest.mark.parametrize("how", ["exit-mid-write", "exit-before-replace"])
def test_a_fix_that_dies_leaves_the_original(tmp_path, how):
    (tmp_path / "a.py").write_text(BAD)
    proc = _child(tmp_path, how)
    proc.communicate(timeout=60)
    assert proc.returncode == 9
    assert (tmp_path / "a.py").read_text() == BAD
    # Only a hidden temporary file may be left; it is not a .py file, so no later run picks it up.
    left = _leftovers(tmp_path)
    assert all(name.startswith(".ptlint-") and name.endswith(".tmp") for name in left), left
    result = check_concise(tmp_path, "--no-cache")
    assert result.output.splitlines() == [
        "a.py:4:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    ]


def test_sigkill_during_a_slow_write_leaves_the_original(tmp_path):
    (tmp_path / "a.py").write_text(BAD)
    ready = tmp_path / "ready"
    proc = _child(tmp_path, "sleep-mid-write", ready)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "a.py").read_text() == BAD
    assert all(n == "ready" or (n.startswith(".ptlint-") and n.endswith(".tmp")) for n in _leftovers(tmp_path))


def test_a_failed_write_leaves_the_original_and_no_temporary_file(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text(BAD)
    real = os.fdopen

    class Full:
        def __init__(self, fd: int, mode: str) -> None:
            self.handle = real(fd, mode)

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> None:
            self.handle.write(data[:5])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", Full)
    result = check_concise(tmp_path, "--fix", "--unsafe-fixes", "--no-cache", "--jobs", "1")
    monkeypatch.undo()
    assert (tmp_path / "a.py").read_text() == BAD
    assert _leftovers(tmp_path) == []
    assert result.exit_code == 1
    assert "ptlint: warning: a.py: cannot write the fix: No space left on device" in result.stderr
    # The finding was not fixed, so it is still reported.
    assert "a.py:4:12: PTL006 " in result.stdout


def test_a_fix_keeps_the_file_mode(tmp_path):
    path = tmp_path / "a.py"
    path.write_text(BAD)
    path.chmod(0o751)
    result = check_concise(tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    assert result.exit_code == 0
    assert path.read_text() == FIXED
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert _leftovers(tmp_path) == []


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes(b"x" * 10000)
    atomic_write(str(path), b"y = 1\r\n")
    assert path.read_bytes() == b"y = 1\r\n"
    assert _leftovers(tmp_path) == []
