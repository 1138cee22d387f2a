"""The language server's parts that need no client: positions and edits, settings, the lint model."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptlint.config import Settings
from ptlint.server import edits as E
from ptlint.server.lint import (
    Cell,
    is_deprecation,
    lint_notebook,
    lint_plain,
    lint_python,
    severity_of,
    wants_plain,
)
from ptlint.server.workspace import INVALID_PARAMS, REQUEST_FAILED, Folders, SettingsStore, Unsupported, is_settings_file

ROOT = Path(__file__).resolve().parents[1]

# --- positions and edits ----------------------------------------------------------------------------

LINE = st.text(alphabet=st.sampled_from(list("ab (x)=#\té😀\x0c")), max_size=8)
TEXT = st.lists(st.tuples(LINE, st.sampled_from(["\n", "\r\n", "\r", ""])), max_size=8).map(
    lambda parts: "".join(a + b for a, b in parts)
)


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT)
def test_diff_edits_turn_old_into_new(old: str, new: str):
    edits = E.diff(old, new)
    assert E.apply_edits(old, edits) == new
    lines = E.lines_of(old)
    for start, end, _ in edits:
        assert start <= end
        for line, col in (start, end):  # every position is a real place in the old text
            assert 0 <= line <= len(lines)
            if line < len(lines):
                assert col <= len(E.content(lines[line]))


@settings(max_examples=200, deadline=None)
@given(TEXT, st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_client_units_round_trip(text: str, encoding: str):
    lines = E.lines_of(text)
    for number, line in enumerate(lines):
        body = E.content(line)
        for col in range(len(body) + 1):
            client = E.to_client(lines, (number, col), encoding)
            assert E.from_client(lines, client[0], client[1], encoding) == (number, col)


def test_utf16_counts_astral_characters_twice():
    lines = E.lines_of('s = "😀"; x.cuda()\n')
    assert E.to_client(lines, (0, 10), "utf-16") == (0, 11)
    assert E.to_client(lines, (0, 10), "utf-8") == (0, 13)
    assert E.to_client(lines, (0, 10), "utf-32") == (0, 10)
    assert E.from_client(lines, 0, 11, "utf-16") == (0, 10)


def test_lines_split_only_where_lsp_does():
    # A form feed is not a line break for LSP or libcst (str.splitlines would split there).
    assert E.lines_of("a\x0cb\nc\r\nd\re") == ["a\x0cb\n", "c\r\n", "d\r", "e"]


def test_apply_change_and_end_of_file():
    text = "import torch\nx = 1"
    assert E.apply_change(text, (1, 4), (1, 5), "2") == "import torch\nx = 2"
    assert E.apply_change(text, (5, 0), (5, 0), "\n") == text + "\n"  # beyond the end: appended
    assert E.to_client(E.lines_of(text), (2, 0), "utf-16") == (1, 5)  # the end of a last line without newline


def test_diff_keeps_crlf_pairs_whole():
    old, new = "a\r\nb\r\n", "a\r\nxb\r\n"
    edits = E.diff(old, new)
    assert edits == [((1, 0), (1, 0), "x")]


# --- settings and locations -------------------------------------------------------------------------


def test_locate_inside_outside_and_schemes(tmp_path: Path):
    folders = Folders()
    folders.set([tmp_path.as_uri()])
    inside = folders.locate((tmp_path / "a" / "train.py").as_uri())
    assert inside.path == tmp_path / "a" / "train.py"
    with pytest.raises(Unsupported) as outside:
        folders.locate(Path("/elsewhere/train.py").as_uri())
    assert outside.value.code == REQUEST_FAILED and "outside the workspace" in outside.value.message
    with pytest.raises(Unsupported) as scheme:
        folders.locate("git:/repo/train.py")
    assert scheme.value.code == INVALID_PARAMS and "'git'" in scheme.value.message
    untitled = folders.locate("untitled:Untitled-1")
    assert untitled.untitled and untitled.path == tmp_path / "Untitled-1.py"
    nowhere = Folders()  # no workspace folder: every file counts as inside
    assert nowhere.locate(Path("/elsewhere/train.py").as_uri()).path == Path("/elsewhere/train.py")


def test_percent_encoded_uri(tmp_path: Path):
    folder = tmp_path / "my project"
    folders = Folders()
    folders.set([folder.as_uri()])
    assert folders.locate((folder / "é.py").as_uri()).path == folder / "é.py"


def test_settings_store_rereads_after_reset(tmp_path: Path):
    folders = Folders()
    folders.set([tmp_path.as_uri()])
    store = SettingsStore(folders)
    location = folders.locate((tmp_path / "train.py").as_uri())
    assert store.for_path(location).root == tmp_path  # defaults rooted at the workspace folder
    (tmp_path / "ptlint.toml").write_text('ignore = ["PTL006"]\n')
    assert store.for_path(location).ignore == ()  # cached until told
    store.reset()
    assert store.for_path(location).ignore == ("PTL006",)


@pytest.mark.parametrize("name,expected", [
    ("file:///p/pyproject.toml", True), ("file:///p/ptlint.toml", True), ("file:///p/requirements.txt", True),
    ("file:///p/setup.cfg", True), ("file:///p/train.py", False), ("file:///p/README.md", False),
])
def test_settings_files(name: str, expected: bool):
    assert is_settings_file(name) is expected


# --- severities and tags ----------------------------------------------------------------------------


class Level(enum.Enum):
    ERROR = "error"


@pytest.mark.parametrize("value,expected", [
    (None, "warning"), ("error", "error"), ("warning", "warning"), ("info", "information"), ("hint", "hint"),
    (Level.ERROR, "error"), (1, "error"), (3, "information"), ("nonsense", "warning"),
])
def test_severity_of_rule(value, expected):
    rule = type("R", (), {} if value is None else {"severity": value})
    assert severity_of("PTL001", rule) == expected


def test_severity_of_syntax_error_and_finding_override():
    assert severity_of("PTL000", None) == "error"
    assert severity_of("PTL001", type("R", (), {"severity": "warning"}), "error") == "error"


def test_deprecation_tags():
    from ptlint.registry import all_rules

    tagged = {r.code for r in all_rules() if is_deprecation(r.code, r)}
    assert {"PTL015", "PTL016", "PTL017", "PTL018", "PTL039", "PTL040"} <= tagged
    assert all(r.code in tagged for r in all_rules() if r.name.startswith("deprecated"))
    assert "PTL006" not in tagged


# --- the lint model -----------------------------------------------------------------------------------

TRAIN = "import torch\n\n\ndef train(model, x):\n    y = model.forward(x)\n    torch.save(model, 'm.pt')\n"


def test_python_lint_fixes_and_noqa(tmp_path: Path):
    settings_ = Settings(root=tmp_path)
    lint = lint_python("file:///t.py", TRAIN, 1, tmp_path / "t.py", "t.py", settings_)
    assert [p.code for p in lint.problems] == ["PTL030", "PTL006"]
    assert lint.fix_texts(lint.problems[0]) == {"file:///t.py": TRAIN.replace("model.forward(x)", "model(x)")}
    noqa = lint.noqa_texts(lint.problems[1])
    assert noqa is not None and "torch.save(model, 'm.pt')  # noqa: PTL006\n" in noqa["file:///t.py"]
    assert lint.fix_all_texts() == {"file:///t.py": TRAIN.replace("model.forward(x)", "model(x)")}


def test_python_lint_null_bytes_and_syntax_errors(tmp_path: Path):
    settings_ = Settings(root=tmp_path)
    nul = lint_python("file:///n.py", "import torch\x00\n", 1, tmp_path / "n.py", "n.py", settings_)
    assert [p.code for p in nul.problems] == ["PTL000"]
    assert nul.fix_all_texts() == {}
    broken = lint_python("file:///b.py", "def f(:\n", 1, tmp_path / "b.py", "b.py", settings_)
    assert [p.code for p in broken.problems] == ["PTL000"]
    assert broken.noqa_texts(broken.problems[0]) is None  # a syntax error cannot be suppressed


def test_notebook_lint_maps_problems_to_cells(tmp_path: Path):
    settings_ = Settings(root=tmp_path)
    cells = [Cell("cell:1", "import torch\n"), Cell("cell:2", "!pip install x\ny = model.forward(1)")]
    lint = lint_notebook("file:///n.ipynb", cells, 1, tmp_path / "n.ipynb", "n.ipynb", settings_)
    [problem] = lint.problems
    assert problem.uri == "cell:2" and (problem.finding.start.line, problem.finding.start.column) == (2, 5)
    assert lint.fix_texts(problem) == {"cell:2": "!pip install x\ny = model(1)"}  # magic and no-newline end kept
    assert lint.noqa_texts(problem) == {"cell:2": "!pip install x\ny = model.forward(1)  # noqa: PTL030"}
    assert lint.fix_all_texts() == {"cell:2": "!pip install x\ny = model(1)"}
    empty = lint_notebook("file:///e.ipynb", [], 1, tmp_path / "e.ipynb", "e.ipynb", settings_)
    assert empty.problems == [] and empty.fix_all_texts() == {}


def test_plain_lint_of_a_shell_script(tmp_path: Path):
    settings_ = Settings(root=tmp_path)
    path = tmp_path / "train.sh"
    if not wants_plain(path, settings_):
        pytest.skip("no rule checks shell scripts")
    text = "#!/bin/sh\npython -m torch.distributed.launch --nproc_per_node 2 train.py\n"
    lint = lint_plain(path.as_uri(), text, 1, path, "train.sh", settings_)
    assert [p.code for p in lint.problems] == ["PTL017"]
    fixed = lint.fix_texts(lint.problems[0])
    assert fixed is not None and "torch.distributed.launch" not in fixed[path.as_uri()]


# --- the process ------------------------------------------------------------------------------------


def test_server_never_imports_torch(tmp_path: Path):
    pytest.importorskip("pygls")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ptlint.server.protocol import warm_up, create_server\n"
        "from ptlint.server.lint import lint_python\n"
        "from ptlint.config import Settings\n"
        "warm_up(); create_server()\n"
        f"lint = lint_python('file:///t.py', {TRAIN!r}, 1, Path('t.py'), 't.py', Settings(root=Path('.')))\n"
        "lint.fix_all_texts(); [lint.fix_texts(p) for p in lint.problems]\n"
        "assert lint.problems, 'no findings'\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_server_without_pygls_says_how_to_install(tmp_path: Path):
    blocked = tmp_path / "blocked"
    (blocked / "pygls").mkdir(parents=True)
    (blocked / "pygls" / "__init__.py").write_text("raise ImportError('pygls is not installed')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocked), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "ptlint", "server"], capture_output=True, text=True, env=env,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "pip install 'ptlint[server]'" in result.stderr
    assert result.stdout == ""


def test_crlf_file_positions_and_edits(tmp_path: Path):
    text = TRAIN.replace("\n", "\r\n")
    lint = lint_python("file:///t.py", text, 1, tmp_path / "t.py", "t.py", Settings(root=tmp_path))
    forward = lint.problems[0]
    assert (forward.finding.start.line, forward.finding.start.column) == (5, 9)
    fixed = lint.fix_texts(forward)
    assert fixed is not None
    assert E.diff(text, fixed["file:///t.py"]) == [((4, 13), (4, 21), "")]
    noqa = lint.noqa_texts(forward)
    assert noqa is not None and "y = model.forward(x)  # noqa: PTL030\r\n" in noqa["file:///t.py"]
