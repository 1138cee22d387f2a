"""Bad input gets one clear finding or error line, the right exit code, and the other files still run."""

from __future__ import annotations

import os

import pytest
from conftest import check_concise

from ptlint.config import Overrides, Resolver

BAD = 'import torch\nmodel = torch.nn.Linear(2, 2)\ntorch.save(model, "m.pt")\n'
PTL006_LINE = "z_ok.py:3:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"import torch\nx = (\n", "a.py:2:5: PTL000 SyntaxError: '(' was never closed"),
        (b'print "python 2"\n', "a.py:1:1: PTL000 SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?"),
        (b"import torch\x00\n", "a.py:1:1: PTL000 the file contains null bytes"),
        (b"x = '\xff\xfe'\n", "a.py:1:1: PTL000 cannot decode file: not valid utf-8 (byte 0xff at offset 5) and no coding declaration"),
    ],
)
def test_bad_file_is_a_finding_and_others_run(tmp_path, data, line):
    (tmp_path / "a.py").write_bytes(data)
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [line, PTL006_LINE]


@pytest.mark.parametrize("data", [b"", b"# only a comment\n", b"\n\n\n", b"\xef\xbb\xbf", b"\tx = 1\r\n".lstrip(b"\t")])
def test_trivial_files_are_clean(tmp_path, data):
    (tmp_path / "a.py").write_bytes(data)
    assert check_concise(tmp_path).exit_code == 0


def test_directory_named_like_a_module(tmp_path):
    (tmp_path / "x.py").mkdir()
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path)
    assert result.output.splitlines() == [PTL006_LINE]
    explicit = check_concise(tmp_path, "x.py")
    assert explicit.exit_code == 0


def test_symlink_loop_does_not_hang(tmp_path):
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink(tmp_path / "nowhere.py", tmp_path / "dangling.py")
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path)
    assert result.output.splitlines() == [PTL006_LINE]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "a.py"
    path.write_text(BAD)
    path.chmod(0)
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path)
    assert result.output.splitlines() == ["a.py:1:1: PTL000 cannot read file: Permission denied", PTL006_LINE]


@pytest.mark.parametrize("joiner", ["+", "+\n"])
def test_deep_nesting_is_reported_not_crashed(tmp_path, joiner):
    # torch.save makes a rule need libcst's tree, whose native parser would overflow its stack.
    (tmp_path / "a.py").write_text("import torch\nx = (" + joiner.join(["1"] * 30000) + ")\ntorch.save(x, 'p')\n")
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "a.py:2:1: PTL000 skipped: an expression is nested too deeply for the parser",
        PTL006_LINE,
    ]


def test_long_but_parseable_chain_is_checked(tmp_path):
    (tmp_path / "a.py").write_text("import torch\nx = " + "+".join(["1"] * 2000) + "\n" + BAD)
    result = check_concise(tmp_path)
    assert result.output.splitlines() == [PTL006_LINE.replace("z_ok.py:3:", "a.py:5:")]


def test_a_crashing_worker_does_not_stop_the_run(tmp_path, monkeypatch):
    from ptlint import runner

    for i in range(8):
        (tmp_path / f"m{i}.py").write_text(BAD)
    (tmp_path / "crash.py").write_text("import os\nos._exit(3)  # ptlint-test-crash\n")
    real = runner._safe_check

    def crashing(path, settings, mode):
        if "ptlint-test-crash" in path.read_text():
            os._exit(3)
        return real(path, settings, mode)

    monkeypatch.setattr(runner, "_safe_check", crashing)
    resolver = Resolver(Overrides())
    files = sorted(tmp_path.glob("*.py"))
    reports = runner.run_files(files, resolver, runner.Mode(), jobs=2)
    assert len(reports) == 9
    crash = next(r for r in reports if r.path.endswith("crash.py"))
    assert crash.internal_errors and "the parser crashed on this file" in crash.internal_errors[0]
    assert sum(len(r.findings) for r in reports) == 8


# -- cases of issue 10 not covered above ------------------------------------------------------------------

FIX = ("--fix", "--unsafe-fixes", "--no-cache", "--jobs", "1")
FIXED = BAD.replace("save(model,", "save(model.state_dict(),")
MESSAGE = "PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # A latin-1 file with a coding cookie keeps its encoding (é is one byte, 0xe9).
        (
            "# -*- coding: latin-1 -*-\n# café\n".encode("latin-1") + BAD.encode(),
            "# -*- coding: latin-1 -*-\n# café\n".encode("latin-1") + FIXED.encode(),
        ),
        (b"\xef\xbb\xbf" + BAD.encode(), b"\xef\xbb\xbf" + FIXED.encode()),  # UTF-8 BOM
        (BAD.replace("\n", "\r\n").encode(), FIXED.replace("\n", "\r\n").encode()),  # CRLF
        (BAD.replace("\n", "\r\n", 1).encode(), FIXED.replace("\n", "\r\n", 1).encode()),  # mixed
        (
            b"import torch\nif True:\n\tmodel = torch.nn.Linear(2, 2)\n\ttorch.save(model, 'm')  # tab\n",
            b"import torch\nif True:\n\tmodel = torch.nn.Linear(2, 2)\n\ttorch.save(model.state_dict(), 'm')  # tab\n",
        ),
    ],
    ids=["latin-1", "bom", "crlf", "mixed-line-endings", "tabs"],
)
def test_fix_keeps_encoding_bom_line_endings_and_tabs(tmp_path, before, after):
    (tmp_path / "a.py").write_bytes(before)
    assert check_concise(tmp_path, "--no-cache").exit_code == 1
    result = check_concise(tmp_path, *FIX)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.py").read_bytes() == after
    assert check_concise(tmp_path, *FIX).exit_code == 0
    assert (tmp_path / "a.py").read_bytes() == after


def test_latin1_without_cookie_is_a_finding(tmp_path):
    (tmp_path / "a.py").write_bytes("# café\n".encode("latin-1") + BAD.encode())
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path, "--no-cache")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "a.py:1:1: PTL000 cannot decode file: not valid utf-8 (byte 0xe9 at offset 5) and no coding declaration",
        PTL006_LINE,
    ]


def test_five_megabyte_file(tmp_path):
    data = "DATA = '''\n" + ("x" * 79 + "\n") * 65536 + "'''\n"  # 5 MiB of a string literal
    path = tmp_path / "a.py"
    path.write_text(BAD + data)
    assert path.stat().st_size > 5 * 2**20
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path, "--no-cache", "--jobs", "1")
    assert result.output.splitlines() == [f"a.py:3:12: {MESSAGE}", PTL006_LINE]
    assert check_concise(tmp_path, *FIX).exit_code == 0
    assert path.read_text() == FIXED + data


def test_file_deleted_before_it_is_read(tmp_path, monkeypatch):
    from ptlint import runner

    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "z_ok.py").write_text(BAD)
    real = runner.discover

    def discover_then_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        (tmp_path / "a.py").unlink()
        return found

    monkeypatch.setattr(runner, "discover", discover_then_delete)
    result = check_concise(tmp_path, "--no-cache", "--jobs", "1")
    assert result.exit_code == 1
    assert result.output.splitlines() == ["a.py:1:1: PTL000 cannot read file: it no longer exists", PTL006_LINE]


def _during_check(monkeypatch, action):  # type: ignore[no-untyped-def]
    """Run `action(path)` after a file was read and before its fix is written."""
    from ptlint import runner

    real = runner.check_text
    done: list[str] = []

    def check_then_act(text, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        report = real(text, path, *args, **kwargs)
        if path.endswith("a.py") and not done:
            done.append(path)
            action(path)
        return report

    monkeypatch.setattr(runner, "check_text", check_then_act)


def test_file_changed_between_read_and_write_is_not_overwritten(tmp_path, monkeypatch):
    newer = BAD + "# edited by someone else meanwhile\n"
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "z_ok.py").write_text(BAD)
    _during_check(monkeypatch, lambda path: open(path, "w").write(newer))
    result = check_concise(tmp_path, *FIX)
    assert (tmp_path / "a.py").read_text() == newer
    assert (tmp_path / "z_ok.py").read_text() == FIXED
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "ptlint: warning: a.py: changed on disk while being checked; not fixed",
        f"a.py:3:12: {MESSAGE.replace('PTL006', 'PTL006 [*]')}",
    ]


def test_file_deleted_between_read_and_write_is_not_recreated(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "z_ok.py").write_text(BAD)
    _during_check(monkeypatch, os.unlink)
    result = check_concise(tmp_path, *FIX)
    assert not (tmp_path / "a.py").exists()
    assert (tmp_path / "z_ok.py").read_text() == FIXED
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "ptlint: warning: a.py: cannot write the fix: No such file or directory",
        f"a.py:3:12: {MESSAGE.replace('PTL006', 'PTL006 [*]')}",
    ]


def test_read_only_file_is_not_fixed(tmp_path):
    path = tmp_path / "a.py"
    path.write_text(BAD)
    path.chmod(0o444)
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path, *FIX)
    assert path.read_text() == BAD
    assert (tmp_path / "z_ok.py").read_text() == FIXED
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "ptlint: warning: a.py: the file is read-only; not fixed",
        f"a.py:3:12: {MESSAGE.replace('PTL006', 'PTL006 [*]')}",
    ]


def test_read_only_folder_is_not_fixed(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "a.py").write_text(BAD)
    folder.chmod(0o555)
    try:
        result = check_concise(tmp_path, *FIX)
        if os.access(folder, os.W_OK):  # root writes anyway; then the fix must simply be right
            assert (folder / "a.py").read_text() == FIXED
            return
        assert (folder / "a.py").read_text() == BAD
        assert result.exit_code == 1
        assert result.output.splitlines()[0] == "ptlint: warning: ro/a.py: cannot write the fix: Permission denied"
    finally:
        folder.chmod(0o755)


def test_unreadable_file_even_as_root(tmp_path, monkeypatch):
    from pathlib import Path

    (tmp_path / "a.py").write_text(BAD)
    (tmp_path / "z_ok.py").write_text(BAD)
    real = Path.read_bytes

    def read_bytes(self):  # type: ignore[no-untyped-def]
        if self.name == "a.py":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = check_concise(tmp_path, "--no-cache", "--jobs", "1")
    assert result.exit_code == 1
    assert result.output.splitlines() == ["a.py:1:1: PTL000 cannot read file: Permission denied", PTL006_LINE]


def test_file_python_parses_but_libcst_cannot_is_an_internal_error_not_ptl000(tmp_path):
    # 2,600 operators in one statement: Python (default recursion limit) parses it, ptlint's guard skips it.
    (tmp_path / "a.py").write_text("import torch\nx = (" + "+".join(["1"] * 2600) + ")\ntorch.save(x, 'p')\n")
    (tmp_path / "z_ok.py").write_text(BAD)
    result = check_concise(tmp_path, "--no-cache")
    assert result.exit_code == 2
    assert "PTL000" not in result.output
    assert PTL006_LINE in result.output.splitlines()
    assert "a.py:2: libcst cannot parse this file, which Python accepts" in result.output
