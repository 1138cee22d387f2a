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
