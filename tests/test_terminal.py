"""What people see: a progress bar and colour on terminals only, NO_COLOR, CI, --quiet; --force-exclude."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import check_concise

BAD = "import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, 'm.pt')\n"
ESC = "\x1b["


def ptlint(cwd: Path, args: list[str], tty_out: bool = False, tty_err: bool = False, **env: str) -> tuple[str, str]:
    """Run the real `ptlint` with stdout and/or stderr on a pseudo-terminal; returns (stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "TERM", "GITHUB_ACTIONS")}
    environ.update(TERM="xterm", COLUMNS="100", **env)
    fds = {}
    streams: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    for name, wanted in (("stdout", tty_out), ("stderr", tty_err)):
        if wanted:
            fds[name] = pty.openpty()
            streams[name] = fds[name][1]
    proc = subprocess.Popen([sys.executable, "-m", "ptlint", *args], cwd=cwd, env=environ, **streams)  # type: ignore[call-overload]
    for _, slave in fds.values():
        os.close(slave)
    captured = {name: _drain(master) for name, (master, _) in fds.items()}
    out, err = proc.communicate()
    return captured.get("stdout", (out or b"").decode()), captured.get("stderr", (err or b"").decode())


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode()


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("many")
    for n in range(60):
        (root / f"m{n:02}.py").write_text("x = 1\n")
    (root / "bad.py").write_text(BAD)
    return root


ARGS = ["check", "--no-cache", "--jobs", "1", "--output-format", "concise", "--select", "PTL006"]


def test_progress_bar_on_a_terminal(many):
    _, err = ptlint(many, ARGS, tty_err=True)
    assert "Checking" in err and "61/61" in err


@pytest.mark.parametrize("how", ["pipe", "ci", "quiet", "few files"])
def test_no_progress_bar_in_pipes_ci_quiet_or_small_runs(many, how):
    args, env, tty_err = list(ARGS), {}, True
    if how == "pipe":
        tty_err = False
    elif how == "ci":
        env = {"CI": "true"}
    elif how == "quiet":
        args.append("--quiet")
    else:
        args.append("bad.py")
    out, err = ptlint(many, args, tty_err=tty_err, **env)
    assert err == ""
    assert out.startswith("bad.py:3:12: PTL006")


def test_colour_on_a_terminal_only_and_never_with_no_color(many):
    coloured, _ = ptlint(many, [*ARGS, "bad.py"], tty_out=True)
    assert ESC in coloured
    plain, _ = ptlint(many, [*ARGS, "bad.py"], tty_out=True, NO_COLOR="1")
    assert ESC not in plain and "bad.py:3:12: PTL006" in plain
    piped, _ = ptlint(many, [*ARGS, "bad.py"])
    assert ESC not in piped and piped.startswith("bad.py:3:12: PTL006")


def test_force_exclude_applies_to_explicit_paths(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text(BAD)
    (tmp_path / "skip.py").write_text(BAD)
    (tmp_path / "pyproject.toml").write_text('[tool.ptlint]\nextend-exclude = ["skip.py"]\n')
    named = check_concise(tmp_path, "--no-cache", "--select", "PTL006", "build/gen.py", "skip.py")
    assert named.output.splitlines() == [
        "build/gen.py:3:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead",
        "skip.py:3:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead",
    ]
    forced = check_concise(tmp_path, "--no-cache", "--select", "PTL006", "--force-exclude", "build/gen.py", "skip.py", "build")
    assert (forced.exit_code, forced.stdout) == (0, "")
    assert forced.stderr == "ptlint: warning: No Python files found under the given path(s)\n"
