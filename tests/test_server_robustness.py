"""`ptlint server` survives faults, and serves a client that resolves code actions lazily.

The server here is tests/server_hooks.py: `ptlint server` with rule PTL006 broken (it raises on every
call it visits) and an engine that crashes on a marker text. The client announces Neovim 0.11's
capabilities: code action edits come with `codeAction/resolve`, and positions count UTF-8 bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("pytest_lsp")

import pytest_lsp  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402
from server_support import (  # noqa: E402
    HOOKED_SERVER,
    actions_at,
    all_logs,
    apply_edit,
    at,
    by_title,
    change,
    close,
    codes,
    diagnostics_of,
    eventually,
    make_client,
    open_text,
    published,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRAIN = '''import torch


def train(model, loader, opt):
    for x, y in loader:
        opt.zero_grad()
        loss = model.forward(x)
        loss.backward()
        opt.step()
    torch.save(model, "m.pt")
'''


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws_robust")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=HOOKED_SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient, ws: Path):
    result = await lsp_client.initialize_session(
        lsp.InitializeParams(
            capabilities=client_capabilities("neovim@v0.11"),
            root_uri=ws.as_uri(),
            initialization_options={"ptlint": {"debounceMs": 0}},
        )
    )
    assert result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


async def test_a_crashing_rule_is_survived(client: LanguageClient, ws: Path):
    uri = (ws / "train.py").as_uri()
    open_text(client, uri, TRAIN)
    diagnostics = await diagnostics_of(client, uri, version=1)
    assert codes(diagnostics) == ["PTL030"]  # PTL006 is broken; the other rules still report
    await eventually(lambda: "internal error in rule PTL006" in all_logs(client), "the rule's error is logged")
    assert "injected fault in PTL006" in all_logs(client)
    # The server goes on: an edit is checked as usual.
    change(client, uri, 2, (6, 20), (6, 28), "")
    assert codes(await diagnostics_of(client, uri, version=2)) == []
    close(client, uri)


async def test_a_crashing_engine_is_survived(client: LanguageClient, ws: Path):
    uri = (ws / "crash.py").as_uri()
    open_text(client, uri, TRAIN + "# CRASH_THE_ENGINE\n")
    await published(client, uri, lambda p: p.version == 1 and not p.diagnostics)
    assert "injected crash of the engine" in all_logs(client)
    assert any("internal error while checking" in m.message for m in client.messages)
    # Requests about it get an error reply, not a dead server.
    with pytest.raises(Exception, match="internal error"):
        await actions_at(client, uri, at(TRAIN, "torch"))
    # Once the text no longer crashes the engine, the file is checked again.
    lines = (TRAIN + "# CRASH_THE_ENGINE\n").count("\n")
    change(client, uri, 2, (lines - 1, 0), (lines, 0), "")
    assert codes(await diagnostics_of(client, uri, version=2)) == ["PTL030"]
    # And other documents were never affected.
    other = (ws / "other.py").as_uri()
    open_text(client, other, TRAIN)
    assert codes(await diagnostics_of(client, other)) == ["PTL030"]
    close(client, uri)
    close(client, other)


async def test_code_actions_resolve_lazily(client: LanguageClient, ws: Path):
    uri = (ws / "lazy.py").as_uri()
    open_text(client, uri, TRAIN)
    forward = (await diagnostics_of(client, uri))[0]
    actions = await actions_at(client, uri, forward.range)
    fix = by_title(actions, "(PTL030)")
    assert fix.edit is None and fix.data is not None  # the edit is computed on resolve
    resolved = await client.code_action_resolve_async(fix)
    assert resolved.edit is not None and resolved.edit.changes is not None
    assert apply_edit(TRAIN, list(resolved.edit.changes[uri]), "utf-8") == TRAIN.replace("model.forward(x)", "model(x)")
    # A stale action (the document changed since) is refused with ContentModified.
    change(client, uri, 2, (0, 0), (0, 0), "# edited\n")
    await diagnostics_of(client, uri, version=2)
    with pytest.raises(Exception, match="changed since"):
        await client.code_action_resolve_async(fix)
    close(client, uri)


async def test_utf8_positions(client: LanguageClient, ws: Path):
    text = 'import torch\n\n\ndef train(model, x):\n    msg = "é😀"; y = model.forward(x)\n    return y\n'
    uri = (ws / "utf8.py").as_uri()
    open_text(client, uri, text)
    forward = (await diagnostics_of(client, uri))[0]
    line = text.splitlines()[4]
    start = len(line[: line.index("model.forward")].encode("utf-8"))
    assert forward.range.start == lsp.Position(line=4, character=start)
    # An edit after the emoji, in UTF-8 units, lands where it should.
    col = len(line[: line.index(".forward")].encode("utf-8"))
    change(client, uri, 2, (4, col), (4, col + len(".forward")), "")
    assert codes(await diagnostics_of(client, uri, version=2)) == []
    close(client, uri)
