"""End-to-end tests of `ptlint server`: the real server over stdio, driven by pytest-lsp's client.

One server (VS Code's client capabilities, edits computed eagerly) serves every test of this module;
each test works on its own files. tests/test_server_robustness.py runs a second server with injected
faults and Neovim's capabilities (code actions resolved lazily, UTF-8 positions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("pytest_lsp")

import pytest_lsp  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402
from server_support import (  # noqa: E402
    SERVER,
    actions_at,
    apply_edit,
    at,
    by_title,
    change,
    close,
    codes,
    diagnostics_of,
    edits_for,
    eventually,
    make_client,
    notebook_cell_uri,
    open_text,
    published,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRAIN = '''import torch
from torch.autograd import Variable


def train(model, loader, opt):
    total = 0
    for x, y in loader:
        opt.zero_grad()
        x = Variable(x)
        loss = model.forward(x)
        loss.backward()
        opt.step()
        total += loss
    torch.save(model, "m.pt")
    return total
'''


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    for name in ("open", "edit", "close", "fix", "noqa", "all", "unsafe", "cfg", "nb", "syntax", "hover", "cr", "excl"):
        (root / name).mkdir()
    (root / "unsafe" / "ptlint.toml").write_text("unsafe-fixes = true\n")
    (root / "excl" / "ptlint.toml").write_text('extend-exclude = ["generated_*.py"]\n')
    return root


def vscode_capabilities() -> lsp.ClientCapabilities:
    """VS Code's capabilities without lazy code action edits (so actions carry their edits), with notebooks."""
    caps = client_capabilities("visual-studio-code")
    assert caps.text_document is not None and caps.text_document.code_action is not None
    caps.text_document.code_action.resolve_support = None
    caps.notebook_document = lsp.NotebookDocumentClientCapabilities(
        synchronization=lsp.NotebookDocumentSyncClientCapabilities(execution_summary_support=True)
    )
    return caps


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient, ws: Path):
    lsp_client.ptlint_initialized = await lsp_client.initialize_session(
        lsp.InitializeParams(
            capabilities=vscode_capabilities(),
            workspace_folders=[lsp.WorkspaceFolder(uri=ws.as_uri(), name="ws")],
            root_uri=ws.as_uri(),
        )
    )
    yield
    await lsp_client.shutdown_session()


def write(ws: Path, rel: str, text: str) -> tuple[Path, str]:
    path = ws / rel
    path.write_text(text)
    return path, path.as_uri()


# --- diagnostics ----------------------------------------------------------------------------------


async def test_initialize_advertises_features(client: LanguageClient):
    # The registration of the settings files to watch arrives after `initialized`.
    await eventually(lambda: bool(client.ptlint_registrations), "the server registers file watchers")
    methods = [r.method for p in client.ptlint_registrations for r in p.registrations]
    assert lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES in methods
    caps = client.ptlint_initialized.capabilities
    assert caps.hover_provider
    assert caps.code_action_provider is not None
    assert set(caps.code_action_provider.code_action_kinds) == {"quickfix", "source.fixAll.ptlint",
                                                                 "notebook.source.fixAll.ptlint"}
    assert caps.notebook_document_sync is not None  # the client said it syncs notebooks
    assert caps.text_document_sync.change == lsp.TextDocumentSyncKind.Incremental


async def test_open_publishes_diagnostics(client: LanguageClient, ws: Path):
    path, uri = write(ws, "open/train.py", TRAIN)
    open_text(client, uri, TRAIN, version=3)
    diagnostics = await diagnostics_of(client, uri, version=3)
    assert codes(diagnostics) == ["PTL039", "PTL030", "PTL003", "PTL006"]
    variable = diagnostics[0]
    assert variable.source == "ptlint"
    assert variable.range == lsp.Range(start=lsp.Position(line=8, character=12), end=lsp.Position(line=8, character=20))
    assert variable.code_description is not None
    assert variable.code_description.href.endswith("docs/rules.md#ptl039-deprecated-variable")
    assert list(variable.tags or []) == [lsp.DiagnosticTag.Deprecated]
    assert "deprecated" in variable.message
    forward = diagnostics[1]
    assert not forward.tags
    from ptlint.registry import by_code_or_name
    from ptlint.server.lint import severity_of

    expected = {"error": 1, "warning": 2, "information": 3, "hint": 4}
    for d in diagnostics:
        rule = by_code_or_name(str(d.code))
        assert d.severity == expected[severity_of(str(d.code), rule)]
        if getattr(rule, "severity", None) is None:
            assert d.severity == lsp.DiagnosticSeverity.Warning
    close(client, uri)


async def test_change_updates_diagnostics_and_close_clears(client: LanguageClient, ws: Path):
    _, uri = write(ws, "edit/train.py", TRAIN)
    open_text(client, uri, TRAIN, version=1)
    assert "PTL030" in codes(await diagnostics_of(client, uri, version=1))
    # `model.forward(x)` -> `model(x)`: PTL030 goes away.
    line = TRAIN.splitlines()[9]
    col = line.index(".forward")
    change(client, uri, 2, (9, col), (9, col + len(".forward")), "")
    assert codes(await diagnostics_of(client, uri, version=2)) == ["PTL039", "PTL003", "PTL006"]
    # Several quick edits (a debounced burst): the diagnostics follow the last version.
    change(client, uri, 3, (14, 0), (14, 0), "    model.forward(x)\n")
    change(client, uri, 4, (14, 4), (14, 4), "other = model\n    ")
    change(client, uri, 5, (14, 0), (15, 0), "")
    final = await diagnostics_of(client, uri, version=5)
    assert codes(final) == ["PTL039", "PTL003", "PTL006", "PTL030"]
    close(client, uri)
    params = await published(client, uri, lambda p: p.version is None and not p.diagnostics)
    assert not params.diagnostics


async def test_syntax_error_gets_ptl000_and_is_survived(client: LanguageClient, ws: Path):
    _, uri = write(ws, "syntax/broken.py", "import torch\ndef f(:\n    pass\n")
    open_text(client, uri, "import torch\ndef f(:\n    pass\n", version=1)
    diagnostics = await diagnostics_of(client, uri, version=1)
    assert codes(diagnostics) == ["PTL000"]
    assert diagnostics[0].severity == lsp.DiagnosticSeverity.Error
    assert diagnostics[0].range.start.line == 1
    assert diagnostics[0].range.end.character > diagnostics[0].range.start.character
    change(client, uri, 2, (1, 6), (1, 6), ")")
    # `def f():` now parses: the diagnostics follow.
    assert "PTL000" not in codes(await diagnostics_of(client, uri, version=2))
    close(client, uri)


# --- code actions ---------------------------------------------------------------------------------


async def test_quick_fix_produces_its_edit(client: LanguageClient, ws: Path):
    _, uri = write(ws, "fix/train.py", TRAIN)
    open_text(client, uri, TRAIN)
    diagnostics = await diagnostics_of(client, uri, version=1)
    forward = next(d for d in diagnostics if d.code == "PTL030")
    actions = await actions_at(client, uri, forward.range, diagnostics=[forward])
    fix = by_title(actions, "(PTL030)")
    assert fix.kind == lsp.CodeActionKind.QuickFix
    assert fix.is_preferred
    assert fix.diagnostics and fix.diagnostics[0].code == "PTL030"
    assert apply_edit(TRAIN, edits_for(fix, uri)) == TRAIN.replace("model.forward(x)", "model(x)")
    # PTL039's fix removes `x = Variable(x)`.
    variable = next(d for d in diagnostics if d.code == "PTL039")
    fix = by_title(await actions_at(client, uri, variable.range), "(PTL039)")
    assert "x = Variable(x)" not in apply_edit(TRAIN, edits_for(fix, uri))
    close(client, uri)


async def test_unsafe_fixes_only_where_allowed(client: LanguageClient, ws: Path):
    _, uri = write(ws, "fix/save.py", TRAIN)
    open_text(client, uri, TRAIN)
    save = next(d for d in await diagnostics_of(client, uri) if d.code == "PTL006")
    titles = [a.title for a in await actions_at(client, uri, save.range)]
    assert not any("unsafe fix" in t for t in titles), titles  # unsafe-fixes is off by default
    assert "Disable PTL006 for this line" in titles
    close(client, uri)
    # Where the configuration sets `unsafe-fixes = true`, the unsafe fix is offered, labelled.
    _, uri = write(ws, "unsafe/save.py", TRAIN)
    open_text(client, uri, TRAIN)
    save = next(d for d in await diagnostics_of(client, uri) if d.code == "PTL006")
    fix = by_title(await actions_at(client, uri, save.range), "(PTL006, unsafe fix)")
    assert not fix.is_preferred
    assert 'torch.save(model.state_dict(), "m.pt")' in apply_edit(TRAIN, edits_for(fix, uri))
    close(client, uri)


async def test_unsafe_fixes_behind_a_setting(client: LanguageClient, ws: Path):
    _, uri = write(ws, "fix/setting.py", TRAIN)
    open_text(client, uri, TRAIN)
    save = next(d for d in await diagnostics_of(client, uri) if d.code == "PTL006")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"ptlint": {"unsafeFixes": True}}))
    try:
        by_title(await actions_at(client, uri, save.range), "(PTL006, unsafe fix)")
    finally:
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"ptlint": {}}))
    titles = [a.title for a in await actions_at(client, uri, save.range)]
    assert not any("unsafe fix" in t for t in titles)
    close(client, uri)


async def test_disable_for_this_line_adds_or_extends_noqa(client: LanguageClient, ws: Path):
    text = TRAIN.replace("        total += loss\n", "        total += loss  # noqa: PTL005\n")
    _, uri = write(ws, "noqa/train.py", text)
    open_text(client, uri, text)
    diagnostics = await diagnostics_of(client, uri)
    forward = next(d for d in diagnostics if d.code == "PTL030")
    action = by_title(await actions_at(client, uri, forward.range), "Disable PTL030 for this line")
    assert action.kind == lsp.CodeActionKind.QuickFix
    fixed = apply_edit(text, edits_for(action, uri))
    assert "        loss = model.forward(x)  # noqa: PTL030\n" in fixed
    # The line whose noqa comment lists PTL005 gets PTL003 added to its list.
    accumulate = next(d for d in diagnostics if d.code == "PTL003")
    action = by_title(await actions_at(client, uri, accumulate.range), "Disable PTL003 for this line")
    fixed = apply_edit(text, edits_for(action, uri))
    assert "        total += loss  # noqa: PTL005, PTL003\n" in fixed
    # Applied, it silences the finding.
    change(client, uri, 2, (0, 0), (len(text.splitlines()) + 1, 0), fixed)
    assert "PTL003" not in codes(await diagnostics_of(client, uri, version=2))
    close(client, uri)


async def test_fix_all_applies_only_safe_fixes(client: LanguageClient, ws: Path):
    _, uri = write(ws, "unsafe/all.py", TRAIN)  # unsafe-fixes = true here: fixAll still applies safe fixes only
    open_text(client, uri, TRAIN)
    await diagnostics_of(client, uri)
    actions = await actions_at(client, uri, at(TRAIN, "import"), only=[lsp.CodeActionKind.SourceFixAll])
    assert [a.kind for a in actions] == ["source.fixAll.ptlint"]
    fixed = apply_edit(TRAIN, edits_for(actions[0], uri))
    assert "Variable" not in fixed  # PTL039 (safe), import removed too
    assert "model(x)" in fixed  # PTL030 (safe)
    assert "total += loss\n" in fixed  # PTL003 (unsafe) left
    assert 'torch.save(model, "m.pt")' in fixed  # PTL006 (unsafe) left
    # Only quick fixes asked for: no fixAll.
    quick = await actions_at(client, uri, at(TRAIN, "import"), only=[lsp.CodeActionKind.QuickFix])
    assert all(a.kind == lsp.CodeActionKind.QuickFix for a in quick)
    close(client, uri)


async def test_fix_all_not_offered_without_safe_fixes(client: LanguageClient, ws: Path):
    text = "import torch\n\n\ndef save(model):\n    torch.save(model, 'm.pt')\n"
    _, uri = write(ws, "all/unsafe_only.py", text)
    open_text(client, uri, text)
    assert codes(await diagnostics_of(client, uri)) == ["PTL006"]
    assert await actions_at(client, uri, at(text, "import"), only=["source.fixAll"]) == []
    close(client, uri)


# --- settings ---------------------------------------------------------------------------------------


async def test_config_change_relints(client: LanguageClient, ws: Path):
    _, uri = write(ws, "cfg/train.py", TRAIN)
    open_text(client, uri, TRAIN)
    assert "PTL006" in codes(await diagnostics_of(client, uri))
    config = ws / "cfg" / "ptlint.toml"
    config.write_text('ignore = ["PTL006"]\n')
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(uri=config.as_uri(), type=lsp.FileChangeType.Created)])
    )
    await published(client, uri, lambda p: codes(list(p.diagnostics)) == ["PTL039", "PTL030", "PTL003"])
    config.write_text('ignore = ["PTL006", "PTL039"]\n')
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(uri=config.as_uri(), type=lsp.FileChangeType.Changed)])
    )
    await published(client, uri, lambda p: codes(list(p.diagnostics)) == ["PTL030", "PTL003"])
    # A broken configuration: no diagnostics and an error message, and the server goes on.
    config.write_text("ignore = 3\n")
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(uri=config.as_uri(), type=lsp.FileChangeType.Changed)])
    )
    await published(client, uri, lambda p: not p.diagnostics)
    assert any("configuration error" in m.message for m in client.messages)
    config.unlink()
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(uri=config.as_uri(), type=lsp.FileChangeType.Deleted)])
    )
    await published(client, uri, lambda p: "PTL006" in codes(list(p.diagnostics)))
    close(client, uri)


async def test_excluded_file_gets_no_diagnostics(client: LanguageClient, ws: Path):
    _, uri = write(ws, "excl/generated_model.py", TRAIN)
    open_text(client, uri, TRAIN)
    await published(client, uri, lambda p: p.version == 1 and not p.diagnostics)
    assert await actions_at(client, uri, at(TRAIN, "import")) == []  # no error either
    close(client, uri)
    _, uri = write(ws, "excl/model.py", TRAIN)  # its neighbour is checked
    open_text(client, uri, TRAIN)
    assert "PTL006" in codes(await diagnostics_of(client, uri))
    close(client, uri)


# --- notebooks ------------------------------------------------------------------------------------


CELLS = [
    (lsp.NotebookCellKind.Code, "import torch\nfrom torch.autograd import Variable\n"),
    (lsp.NotebookCellKind.Markup, "# Training\nWe train the model."),
    (lsp.NotebookCellKind.Code, "%matplotlib inline\nx = Variable(torch.ones(3))\ny = model.forward(x)"),
    (lsp.NotebookCellKind.Code, "torch.save(model, 'm.pt')\n"),
]


async def test_notebook_gets_per_cell_diagnostics(client: LanguageClient, ws: Path):
    notebook = ws / "nb" / "train.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    uris = [notebook_cell_uri(notebook, i) for i in range(len(CELLS))]
    client.notebook_document_did_open(
        lsp.DidOpenNotebookDocumentParams(
            notebook_document=lsp.NotebookDocument(
                uri=notebook.as_uri(), notebook_type="jupyter-notebook", version=1,
                cells=[lsp.NotebookCell(kind=kind, document=uri) for (kind, _), uri in zip(CELLS, uris)],
            ),
            cell_text_documents=[
                lsp.TextDocumentItem(uri=uri, language_id="python" if kind == lsp.NotebookCellKind.Code else "markdown",
                                     version=1, text=text)
                for (kind, text), uri in zip(CELLS, uris)
            ],
        )
    )
    third = await published(client, uris[2], lambda p: len(p.diagnostics) == 2)
    assert codes(list(third.diagnostics)) == ["PTL039", "PTL030"]
    # Lines count within the cell: `x = Variable(...)` is the cell's line 2 (0-based 1).
    assert third.diagnostics[0].range.start == lsp.Position(line=1, character=4)
    assert third.diagnostics[1].range.start.line == 2
    fourth = await published(client, uris[3], lambda p: len(p.diagnostics) == 1)
    assert codes(list(fourth.diagnostics)) == ["PTL006"]
    assert not client.diagnostics.get(uris[0])
    assert uris[1] not in client.ptlint_published  # a markdown cell gets nothing

    # The quick fix of PTL039 edits two cells: the call in cell 3 and the import in cell 1.
    fix = by_title(await actions_at(client, uris[2], third.diagnostics[0].range), "(PTL039)")
    assert fix.edit is not None and fix.edit.changes is not None
    assert set(fix.edit.changes) <= {uris[0], uris[2]}
    cell3 = apply_edit(CELLS[2][1], list(fix.edit.changes[uris[2]]))
    assert cell3 == "%matplotlib inline\nx = torch.ones(3)\ny = model.forward(x)"  # the magic is kept
    # "Disable for this line" on a cell.
    noqa = by_title(await actions_at(client, uris[3], fourth.diagnostics[0].range), "Disable PTL006")
    assert apply_edit(CELLS[3][1], edits_for(noqa, uris[3])) == "torch.save(model, 'm.pt')  # noqa: PTL006\n"
    # fixAll on the notebook fixes the safe problems of every cell.
    actions = await actions_at(client, uris[2], at(CELLS[2][1], "x"), only=["notebook.source.fixAll"])
    assert [a.kind for a in actions] == ["notebook.source.fixAll.ptlint"]
    assert actions[0].edit is not None and actions[0].edit.changes is not None
    changes = actions[0].edit.changes
    assert set(changes) == {uris[0], uris[2]}  # PTL006 in cell 4 is unsafe: untouched
    assert apply_edit(CELLS[2][1], list(changes[uris[2]])) == "%matplotlib inline\nx = torch.ones(3)\ny = model(x)"
    assert apply_edit(CELLS[0][1], list(changes[uris[0]])) == "import torch\n"  # the unused import goes

    # Editing a cell re-lints the notebook: the fixed cell loses PTL039 and PTL030.
    client.notebook_document_did_change(
        lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(uri=notebook.as_uri(), version=2),
            change=lsp.NotebookDocumentChangeEvent(
                cells=lsp.NotebookDocumentCellChanges(
                    text_content=[
                        lsp.NotebookDocumentCellContentChanges(
                            document=lsp.VersionedTextDocumentIdentifier(uri=uris[2], version=2),
                            changes=[lsp.TextDocumentContentChangeWholeDocument(text="%matplotlib inline\nx = torch.ones(3)\ny = model(x)")],
                        )
                    ]
                )
            ),
        )
    )
    await published(client, uris[2], lambda p: not p.diagnostics)
    # A new cell added by a structure change is checked too.
    new_uri = notebook_cell_uri(notebook, 9)
    client.notebook_document_did_change(
        lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(uri=notebook.as_uri(), version=3),
            change=lsp.NotebookDocumentChangeEvent(
                cells=lsp.NotebookDocumentCellChanges(
                    structure=lsp.NotebookDocumentCellChangeStructure(
                        array=lsp.NotebookCellArrayChange(
                            start=4, delete_count=0, cells=[lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=new_uri)]
                        ),
                        did_open=[lsp.TextDocumentItem(uri=new_uri, language_id="python", version=1,
                                                       text="for x in loader:\n    y = model.forward(x)\n")],
                    )
                )
            ),
        )
    )
    new_cell = await published(client, new_uri, lambda p: len(p.diagnostics) > 0)
    assert codes(list(new_cell.diagnostics)) == ["PTL030"]
    assert new_cell.diagnostics[0].range.start.line == 1
    # Closing the notebook clears every cell.
    client.notebook_document_did_close(
        lsp.DidCloseNotebookDocumentParams(
            notebook_document=lsp.NotebookDocumentIdentifier(uri=notebook.as_uri()),
            cell_text_documents=[lsp.TextDocumentIdentifier(uri=u) for u in uris + [new_uri]],
        )
    )
    for uri in (uris[3], new_uri):
        await published(client, uri, lambda p: not p.diagnostics)


async def test_notebook_cell_syntax_error(client: LanguageClient, ws: Path):
    notebook = ws / "nb" / "broken.ipynb"
    uris = [notebook_cell_uri(notebook, i) for i in range(2)]
    texts = ["import torch\ny = model.forward(torch.ones(3))\n", "def f(:\n    pass\n"]
    client.notebook_document_did_open(
        lsp.DidOpenNotebookDocumentParams(
            notebook_document=lsp.NotebookDocument(
                uri=notebook.as_uri(), notebook_type="jupyter-notebook", version=1,
                cells=[lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=u) for u in uris],
            ),
            cell_text_documents=[lsp.TextDocumentItem(uri=u, language_id="python", version=1, text=t) for u, t in zip(uris, texts)],
        )
    )
    second = await published(client, uris[1], lambda p: len(p.diagnostics) > 0)
    assert codes(list(second.diagnostics)) == ["PTL000"]
    assert second.diagnostics[0].range.start.line == 0
    first = await published(client, uris[0], lambda p: len(p.diagnostics) > 0)
    assert codes(list(first.diagnostics)) == ["PTL030"]  # the other cells are still checked
    client.notebook_document_did_close(
        lsp.DidCloseNotebookDocumentParams(
            notebook_document=lsp.NotebookDocumentIdentifier(uri=notebook.as_uri()),
            cell_text_documents=[lsp.TextDocumentIdentifier(uri=u) for u in uris],
        )
    )


# --- hover ------------------------------------------------------------------------------------------


async def test_hover_on_noqa_code_shows_rule_summary(client: LanguageClient, ws: Path):
    text = "import torch\n\n\ndef save(model):\n    torch.save(model, 'm.pt')  # noqa: PTL005, PTL006\n"
    _, uri = write(ws, "hover/save.py", text)
    open_text(client, uri, text)
    await diagnostics_of(client, uri)
    line, col = 4, text.splitlines()[4].index("PTL006") + 2
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=col))
    )
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    assert "PTL006" in hover.contents.value and "save-whole-model" in hover.contents.value
    from ptlint.registry import by_code_or_name

    assert by_code_or_name("PTL006").summary() in hover.contents.value
    assert hover.range is not None and hover.range.start.character == text.splitlines()[4].index("PTL006")
    # Not on a code: no hover.
    nothing = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=4, character=6))
    )
    assert nothing is None
    close(client, uri)


# --- requests the server refuses --------------------------------------------------------------------


async def test_unknown_scheme_gets_a_clear_error(client: LanguageClient):
    with pytest.raises(Exception, match="unsupported URI scheme 'git'"):
        await actions_at(client, "git:/repo/train.py", at("x", "x"))


async def test_file_outside_the_workspace_gets_a_clear_error(client: LanguageClient, tmp_path: Path):
    outside = tmp_path / "elsewhere.py"
    outside.write_text(TRAIN)
    open_text(client, outside.as_uri(), TRAIN)  # a notification: logged, no diagnostics
    with pytest.raises(Exception, match="outside the workspace"):
        await client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=outside.as_uri()), position=lsp.Position(line=0, character=0))
        )
    assert not client.diagnostics.get(outside.as_uri())
    close(client, outside.as_uri())


async def test_document_not_open_gets_a_clear_error(client: LanguageClient, ws: Path):
    with pytest.raises(Exception, match="is not open"):
        await actions_at(client, (ws / "cr" / "never_opened.py").as_uri(), at("x", "x"))


async def test_untitled_document_is_checked(client: LanguageClient):
    uri = "untitled:Untitled-1"
    open_text(client, uri, TRAIN)
    assert "PTL006" in codes(await diagnostics_of(client, uri))
    close(client, uri)
