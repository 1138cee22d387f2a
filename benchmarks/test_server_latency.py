"""Diagnostics latency of `ptlint server` after an edit (pytest-benchmark).

    python -m pytest benchmarks/test_server_latency.py --benchmark-only -p no:cacheprovider   # the figures
    PTLINT_BENCH_QUICK=1 python -m pytest benchmarks/test_server_latency.py                   # checks it runs

The server runs as editors run it (`ptlint server`, a separate process over stdio), warm: the
500-line training file of the single-file bar (`corpus.single_file(500)`, the file that
`measure.py` times from the command line) is open and was checked once. Each round sends one
`textDocument/didChange` (a one-character edit in the training loop) and waits for the
`textDocument/publishDiagnostics` of that version: the time an editor waits, the server's default
debounce (30 ms) included. `test_analysis_in_process` times `engine.analyze` alone on the same
text, for the share of the analysis in that latency. Timings are never asserted.

`PTLINT_SERVER_BENCH_FILE=path/to/train.py` times another file instead (a real training script);
its edit toggles a space at the end of its first `import` line.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

SERVER = [sys.executable, "-m", "ptlint", "server"]
EDIT_NEEDLE = "scaler.update()"  # in the training loop


def quick(config: pytest.Config) -> bool:
    return os.environ.get("PTLINT_BENCH_QUICK") == "1" or not config.getoption("benchmark_only", False)


class Session:
    """A client on its own event loop, driven synchronously (pytest-benchmark calls plain functions)."""

    def __init__(self, root: Path, text: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("ptlint-bench", "1")
        self.path = root / "train.py"
        self.path.write_text(text)
        self.uri = self.path.as_uri()
        self.text = text
        self.version = 0
        self.arrived: dict[int, tuple[float, int]] = {}
        self.events: dict[int, asyncio.Event] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def publish(client: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
            if params.uri == self.uri and params.version is not None:
                self.arrived[params.version] = (time.perf_counter(), len(params.diagnostics))
                event = self.events.get(params.version)
                if event is not None:
                    event.set()

        self.run(self._start(root))

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    async def _start(self, root: Path) -> None:
        await self.client.start_io(*SERVER)
        await self.client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(), process_id=os.getpid())
        )
        self.client.initialized(lsp.InitializedParams())
        self.version = 1
        self.events[1] = asyncio.Event()
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(uri=self.uri, language_id="python", version=1, text=self.text)
            )
        )
        await asyncio.wait_for(self.events[1].wait(), 120)

    async def _edit(self) -> float:
        """One keystroke's change; the seconds until its diagnostics arrive."""
        self.version += 1
        version = self.version
        if EDIT_NEEDLE[:-1] not in self.text:
            return await self._edit_import_line(version)
        line_text = next(i for i, ln in enumerate(self.text.splitlines()) if EDIT_NEEDLE[:-1] in ln)
        column = self.text.splitlines()[line_text].index(EDIT_NEEDLE[:-1]) + len(EDIT_NEEDLE) - 1
        # Alternately type and delete a space inside `scaler.update()`: every version differs from the last.
        if version % 2 == 0:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=line_text, character=column),
                                end=lsp.Position(line=line_text, character=column)), text=" ")
            self.text = self.text.replace(EDIT_NEEDLE, EDIT_NEEDLE[:-1] + " )", 1)
        else:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=line_text, character=column),
                                end=lsp.Position(line=line_text, character=column + 1)), text="")
            self.text = self.text.replace(EDIT_NEEDLE[:-1] + " )", EDIT_NEEDLE, 1)
        return await self._send(version, change)

    async def _edit_import_line(self, version: int) -> float:
        lines = self.text.splitlines(keepends=True)
        number = next(i for i, ln in enumerate(lines) if ln.startswith("import "))
        body = lines[number].rstrip("\r\n")
        if version % 2 == 0:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=number, character=len(body)),
                                end=lsp.Position(line=number, character=len(body))), text=" ")
            lines[number] = body + " " + lines[number][len(body):]
        else:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=number, character=len(body) - 1),
                                end=lsp.Position(line=number, character=len(body))), text="")
            lines[number] = body[:-1] + lines[number][len(body):]
        self.text = "".join(lines)
        return await self._send(version, change)

    async def _send(self, version: int, change: lsp.TextDocumentContentChangePartial) -> float:
        self.events[version] = asyncio.Event()
        start = time.perf_counter()
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=self.uri, version=version),
                content_changes=[change],
            )
        )
        await asyncio.wait_for(self.events[version].wait(), 120)
        return self.arrived[version][0] - start

    def edit(self) -> float:
        return self.run(self._edit())

    def server_cpu(self) -> float | None:
        """CPU seconds the server process has used (Linux), to tell its work from waiting on a busy machine."""
        server = getattr(self.client, "_server", None)
        try:
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (AttributeError, OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        async def stop() -> None:
            await self.client.shutdown_async(None)
            self.client.exit(None)
            await self.client.stop()

        try:
            self.run(asyncio.wait_for(stop(), 30))
        finally:
            self.loop.close()


def bench_text() -> str:
    other = os.environ.get("PTLINT_SERVER_BENCH_FILE")
    if other:
        return Path(other).read_text(encoding="utf-8")
    text = corpus.single_file(500)
    assert EDIT_NEEDLE in text
    return text


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    text = bench_text()
    made = Session(tmp_path_factory.mktemp("server_bench"), text)
    yield made
    made.close()


def test_diagnostics_latency_after_an_edit(benchmark, request, session):
    if hasattr(benchmark, "pedantic"):
        rounds = 3 if quick(request.config) else 40
        for _ in range(3):  # warm: the first edits after opening
            session.edit()
        latencies: list[float] = []
        cpu_before = session.server_cpu()
        benchmark.pedantic(lambda: latencies.append(session.edit()), rounds=rounds, iterations=1)
        cpu_after = session.server_cpu()
        latencies.sort()
        benchmark.extra_info["lines"] = session.text.count("\n")
        benchmark.extra_info["median_ms"] = round(1000 * latencies[len(latencies) // 2], 1)
        if cpu_before is not None and cpu_after is not None:
            benchmark.extra_info["server_cpu_ms_per_edit"] = round(1000 * (cpu_after - cpu_before) / rounds, 1)
        benchmark.extra_info["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        benchmark.extra_info["findings"] = session.arrived[session.version][1]
    assert session.arrived[session.version][1] >= 1 or os.environ.get("PTLINT_SERVER_BENCH_FILE")


def test_analysis_in_process(benchmark, request):
    from ptlint import engine
    from ptlint.config import Settings

    text = bench_text()
    settings = Settings(root=Path.cwd())
    rules = settings.enabled_rules(Path("train.py"))
    engine.analyze(text, "train.py", rules, settings.rule_options, settings)
    rounds = 3 if quick(request.config) else 20

    def analyze():  # as the server runs it: the cyclic collector paused (see PtlintServer.check)
        gc.disable()
        try:
            return engine.analyze(text, "train.py", rules, settings.rule_options, settings)
        finally:
            gc.collect(1)
            gc.enable()

    result = benchmark.pedantic(analyze, rounds=rounds, iterations=1)
    assert result.findings or os.environ.get("PTLINT_SERVER_BENCH_FILE")
