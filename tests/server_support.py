"""Shared helpers of the language server's end-to-end tests: a test client that records what the
server sends, waiting for diagnostics, and applying the edits of a code action."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from ptlint.server import edits as E

SERVER = [sys.executable, "-m", "ptlint", "server"]
HOOKED_SERVER = [sys.executable, str(Path(__file__).with_name("server_hooks.py"))]
TIMEOUT = 60.0  # generous: the machine is shared; timing bars live in benchmarks/


def make_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics and registration it receives."""
    client = LanguageClient(converter_factory=default_converter)
    features = {k: v for k, v in DEFAULT_CLIENT_FEATURES.items() if k != lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS}
    register_lsp_features(client, features)
    client.ptlint_published = defaultdict(list)  # type: ignore[attr-defined]
    client.ptlint_registrations = []  # type: ignore[attr-defined]

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def publish(client: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
        client.diagnostics[params.uri] = params.diagnostics
        client.ptlint_published[params.uri].append(params)  # type: ignore[attr-defined]

    @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(client: LanguageClient, params: lsp.RegistrationParams) -> None:
        client.ptlint_registrations.append(params)  # type: ignore[attr-defined]

    return client


async def published(
    client: LanguageClient, uri: str, predicate: Callable[[lsp.PublishDiagnosticsParams], bool] = lambda p: True,
    timeout: float = TIMEOUT,
) -> lsp.PublishDiagnosticsParams:
    """The latest diagnostics of `uri` once they satisfy `predicate`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        sent = client.ptlint_published.get(uri)  # type: ignore[attr-defined]
        if sent and predicate(sent[-1]):
            return sent[-1]
        if loop.time() > deadline:
            last = sent[-1] if sent else None
            raise AssertionError(f"no matching diagnostics for {uri} within {timeout}s; last: {last}")
        await asyncio.sleep(0.02)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def diagnostics_of(client: LanguageClient, uri: str, version: int | None = None) -> list[lsp.Diagnostic]:
    params = await published(client, uri, lambda p: version is None or p.version == version)
    return list(params.diagnostics)


def codes(diagnostics: list[lsp.Diagnostic]) -> list[str]:
    return [str(d.code) for d in diagnostics]


def open_text(client: LanguageClient, uri: str, text: str, version: int = 1, language: str = "python") -> None:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=version, text=text))
    )


def change(client: LanguageClient, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(start=lsp.Position(line=start[0], character=start[1]),
                                    end=lsp.Position(line=end[0], character=end[1])),
                    text=text,
                )
            ],
        )
    )


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))


def point_range(diagnostic: lsp.Diagnostic) -> lsp.Range:
    return diagnostic.range


async def actions_at(client: LanguageClient, uri: str, rng: lsp.Range, only: list[str] | None = None,
                     diagnostics: list[lsp.Diagnostic] | None = None) -> list[lsp.CodeAction]:
    result = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=lsp.CodeActionContext(diagnostics=diagnostics or [], only=only),  # type: ignore[arg-type]
        )
    )
    return [a for a in result or [] if isinstance(a, lsp.CodeAction)]


def apply_edit(text: str, edits: list[lsp.TextEdit], encoding: str = "utf-16") -> str:
    """`text` after a client applies `edits` (positions in the client's units)."""
    lines = E.lines_of(text)
    spans = []
    for edit in edits:
        start = E.from_client(lines, edit.range.start.line, edit.range.start.character, encoding)
        end = E.from_client(lines, edit.range.end.line, edit.range.end.character, encoding)
        spans.append((start, end, edit.new_text))
    return E.apply_edits(text, spans)


def line_col(text: str, needle: str) -> tuple[int, int]:
    """0-based line and column (code points) of the first occurrence of `needle`."""
    index = text.index(needle)
    before = text[:index]
    return before.count("\n"), index - (before.rfind("\n") + 1)


def at(text: str, needle: str) -> lsp.Range:
    line, col = line_col(text, needle)
    return lsp.Range(start=lsp.Position(line=line, character=col), end=lsp.Position(line=line, character=col))


def by_title(actions: list[lsp.CodeAction], fragment: str) -> lsp.CodeAction:
    found = [a for a in actions if fragment in a.title]
    assert found, f"no action with {fragment!r} in {[a.title for a in actions]}"
    return found[0]


def edits_for(action: lsp.CodeAction, uri: str) -> list[lsp.TextEdit]:
    assert action.edit is not None and action.edit.changes is not None, action
    return list(action.edit.changes[uri])


def all_logs(client: LanguageClient) -> str:
    return "\n".join(m.message for m in client.log_messages)


def notebook_cell_uri(notebook: Path, index: int) -> str:
    return f"vscode-notebook-cell:{notebook.as_posix()}#W{index}sZmlsZQ%3D%3D"


def data_of(diagnostic: lsp.Diagnostic) -> Any:
    return diagnostic.data
