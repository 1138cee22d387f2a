"""`ptlint server`: the Language Server Protocol over stdio, built on pygls.

The server keeps libcst and the rules loaded and checks documents in process with the engine's
analysis API, so an edit costs one analysis of the file and no start-up. Diagnostics are pushed
(`textDocument/publishDiagnostics`): on open and save at once, on change after a short debounce,
and cleared on close. Notebooks are synchronised with `notebookDocument/*`; their Python cells are
checked as one program and each diagnostic is published on its cell.

Nothing that goes wrong while checking a document stops the server: a rule that raises loses its
own findings only (the engine isolates it), anything else is logged to the client and the document
gets no diagnostics until its next change.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from ptlint import __version__
from ptlint.config import ConfigError
from ptlint.finding import FixSafety
from ptlint.server import edits as E
from ptlint.server.lint import (
    UNUSED_NOQA_CODE,
    Cell,
    Lint,
    Problem,
    docs_url,
    fix_allowed,
    is_deprecation,
    lines_of,
    lint_notebook,
    lint_plain,
    lint_python,
    rule_of,
    severity_of,
    wants_plain,
)
from ptlint.server.workspace import (
    CELL_SCHEMES,
    REQUEST_FAILED,
    WATCHED_GLOBS,
    Folders,
    Location,
    SettingsStore,
    Unsupported,
    is_settings_file,
    scheme_of,
)

logger = logging.getLogger("ptlint.server")

FIX_ALL_KIND = "source.fixAll.ptlint"
NOTEBOOK_FIX_ALL_KIND = "notebook.source.fixAll.ptlint"
QUICK_FIX_KIND = lsp.CodeActionKind.QuickFix.value
PYTHON_LANGUAGES = ("python", "python3", "ipython")
SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "information": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}
CONTENT_MODIFIED = -32801


@dataclass
class Options:
    """Client settings: `initializationOptions`, or the `ptlint` section of `workspace/didChangeConfiguration`."""

    unsafe_fixes: bool | None = None  # None: offer unsafe fixes where the configuration's `unsafe-fixes` allows
    lint_on_change: bool = True
    debounce_ms: int = 30
    configuration: str | None = None  # one configuration file for every document, like `--config`

    @classmethod
    def parse(cls, raw: Any, log: Callable[[str], None]) -> "Options":
        out = cls()
        if isinstance(raw, dict) and isinstance(raw.get("ptlint"), dict):
            raw = raw["ptlint"]
        if isinstance(raw, dict) and isinstance(raw.get("settings"), dict):
            raw = raw["settings"]
        if not isinstance(raw, dict):
            return out
        known = {"unsafeFixes": ("unsafe_fixes", (bool, type(None))), "lintOnChange": ("lint_on_change", (bool,)),
                 "debounceMs": ("debounce_ms", (int,)), "configuration": ("configuration", (str, type(None)))}
        for key, value in raw.items():
            if key not in known:
                log(f"ptlint: unknown setting {key!r} ignored (known: {', '.join(known)})")
                continue
            attr, kinds = known[key]
            if not isinstance(value, kinds) or (attr == "debounce_ms" and (isinstance(value, bool) or value < 0)):
                log(f"ptlint: setting {key!r} has a value of the wrong type ({value!r}); ignored")
                continue
            setattr(out, attr, value)
        return out


@dataclass
class TextDoc:
    uri: str
    text: str
    version: int | None
    language_id: str = "python"
    notebook: str | None = None  # the notebook's URI for a cell


@dataclass
class NotebookDoc:
    uri: str
    version: int | None
    cells: list[tuple[str, int]] = field(default_factory=list)  # (cell URI, NotebookCellKind)


class PtlintServer(LanguageServer):
    """The server and its state: open documents, their last check, pending checks."""

    def __init__(self) -> None:
        super().__init__(
            "ptlint",
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=lsp.NotebookDocumentSyncOptions(
                notebook_selector=[
                    lsp.NotebookDocumentFilterWithCells(
                        cells=[lsp.NotebookCellLanguage(language="python")], notebook="*"
                    )
                ],
                save=True,
            ),
        )
        self.options = Options()
        self.folders = Folders()
        self.settings = SettingsStore(self.folders)
        self.docs: dict[str, TextDoc] = {}
        self.notebooks: dict[str, NotebookDoc] = {}
        self.lints: dict[str, Lint] = {}  # by file or notebook URI
        self.published: dict[str, set[str]] = {}  # document URIs that got diagnostics, by file or notebook URI
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.reported: dict[str, str] = {}  # the last problem logged per document, to log each once
        self.failures: dict[str, str] = {}  # why the last check of a document failed
        self.encoding = "utf-16"
        self.resolve_edits = False
        self.analyze: Callable[..., Any] | None = None  # tests and benchmarks may wrap engine.analyze

    # --- messages to the client -------------------------------------------------------------------

    def log(self, message: str, kind: lsp.MessageType = lsp.MessageType.Log) -> None:
        try:
            self.window_log_message(lsp.LogMessageParams(type=kind, message=message))
        except Exception:  # no client to tell (tests that drive the server in process)
            logger.log(logging.ERROR if kind == lsp.MessageType.Error else logging.INFO, "%s", message)

    def show(self, message: str, kind: lsp.MessageType = lsp.MessageType.Warning) -> None:
        try:
            self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))
        except Exception:
            logger.warning("%s", message)

    def report_once(self, key: str, message: str, show: bool = False) -> None:
        """Log a problem with a document, unless the same one was logged for it last time."""
        if self.reported.get(key) == message:
            return
        self.reported[key] = message
        self.log(message, lsp.MessageType.Error if show else lsp.MessageType.Warning)
        if show:
            self.show(message.split("\n", 1)[0], lsp.MessageType.Error)

    # --- documents ------------------------------------------------------------------------------

    def owner(self, uri: str) -> str | None:
        """The key of the lint that covers `uri`: itself for a file, its notebook for a cell."""
        doc = self.docs.get(uri)
        if doc is None:
            return uri if uri in self.notebooks else None
        return doc.notebook or uri

    def version_of(self, key: str) -> int | None:
        if key in self.notebooks:
            return self.notebooks[key].version
        doc = self.docs.get(key)
        return doc.version if doc is not None else None

    def schedule(self, key: str, delay_ms: int | None = None) -> None:
        """Check `key` after the debounce (or now with a delay of 0), replacing a pending check."""
        self.cancel(key)
        delay = self.options.debounce_ms if delay_ms is None else delay_ms
        if delay <= 0:
            self.check(key)
            return
        loop = asyncio.get_event_loop()
        self.timers[key] = loop.call_later(delay / 1000, self._fire, key)

    def _fire(self, key: str) -> None:
        self.timers.pop(key, None)
        self.check(key)

    def cancel(self, key: str) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def current(self, key: str) -> Lint | None:
        """The lint of the document as it is now (checked now if an edit or a setting made it stale)."""
        lint = self.lints.get(key)
        stale = lint is None or lint.version != self.version_of(key) or lint.epoch != self.settings.epoch
        if stale or key in self.timers:
            self.cancel(key)
            lint = self.check(key)
        return lint

    def check(self, key: str) -> Lint | None:
        """Check a document (or notebook) and publish its diagnostics. Never raises.

        The cyclic garbage collector is paused meanwhile and run once after publishing (as `ptlint check`
        does per file): a check builds a tree of some hundred thousand objects without cycles, which the
        automatic collector would otherwise walk again and again while it grows (a third of the time).
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._check(key)
        finally:
            gc.collect(1)
            if was_enabled:
                gc.enable()

    def _check(self, key: str) -> Lint | None:
        failure = None
        try:
            lint = self._lint(key)
        except Unsupported as exc:
            lint, failure = None, exc.message
            self.report_once(key, failure)
        except ConfigError as exc:
            lint, failure = None, f"ptlint: configuration error: {exc}"
            self.report_once(key, failure, show=True)
        except Exception:  # a crash outside the rules: logged, the server goes on
            lint, failure = None, f"ptlint: internal error while checking {key}"
            self.report_once(key, f"{failure}:\n{traceback.format_exc()}", show=True)
        if failure is None:
            self.failures.pop(key, None)
        else:
            self.failures[key] = failure
        if lint is None:
            self.lints.pop(key, None)
            self.publish(key, None)
            return None
        self.lints[key] = lint
        if lint.errors:
            self.report_once(key, "\n".join(f"ptlint: {key}: {e}" for e in lint.errors))
        else:
            self.reported.pop(key, None)
        self.publish(key, lint)
        return lint

    def _lint(self, key: str) -> Lint | None:
        notebook = self.notebooks.get(key)
        if notebook is not None:
            location = self.folders.locate(notebook.uri)
            settings = self.settings.for_path(location)
            if settings.is_excluded(location.path):
                return None
            cells = [Cell(uri, self.docs[uri].text) for uri, kind in notebook.cells
                     if kind == lsp.NotebookCellKind.Code and uri in self.docs
                     and self.docs[uri].language_id.lower() in PYTHON_LANGUAGES]
            lint = lint_notebook(key, cells, notebook.version, location.path, location.shown, settings, self.analyze)
        else:
            doc = self.docs.get(key)
            if doc is None:
                return None
            location = self.folders.locate(key)
            settings = self.settings.for_path(location)
            if not location.untitled and settings.is_excluded(location.path):
                return None
            if _is_python(doc, location):
                lint = lint_python(key, doc.text, doc.version, location.path, location.shown, settings, self.analyze)
            elif wants_plain(location.path, settings):
                lint = lint_plain(key, doc.text, doc.version, location.path, location.shown, settings)
            else:
                return None
        lint.epoch = self.settings.epoch
        return lint

    def publish(self, key: str, lint: Lint | None) -> None:
        """Send the diagnostics of every document of `key` (empty lists clear what was sent before)."""
        targets: dict[str, list[lsp.Diagnostic]] = {}
        if key in self.notebooks:
            for uri, kind in self.notebooks[key].cells:
                if kind == lsp.NotebookCellKind.Code:
                    targets[uri] = []
        elif key in self.docs:
            targets[key] = []
        for uri in self.published.get(key, ()):
            targets.setdefault(uri, [])
        if lint is not None:
            for problem in lint.problems:
                if problem.uri in targets:
                    targets[problem.uri].append(self.diagnostic(lint, problem))
        sent = set()
        for uri, diagnostics in targets.items():
            doc = self.docs.get(uri)
            version = doc.version if doc is not None and doc.notebook is None else None
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
            )
            if diagnostics:
                sent.add(uri)
        self.published[key] = sent

    def recheck_all(self) -> None:
        """Check every open document again (after a change of settings)."""
        for key in list(self.notebooks) + [u for u, d in self.docs.items() if d.notebook is None]:
            self.check(key)

    def clear(self, key: str, uris: list[str]) -> None:
        self.cancel(key)
        self.lints.pop(key, None)
        self.reported.pop(key, None)
        self.failures.pop(key, None)
        for uri in set(uris) | self.published.pop(key, set()):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # --- conversions ------------------------------------------------------------------------------

    def lines(self, lint: Lint, uri: str) -> list[str]:
        return lines_of(lint.texts.get(uri, ""))

    def diagnostic(self, lint: Lint, problem: Problem) -> lsp.Diagnostic:
        f = problem.finding
        lines = self.lines(lint, problem.uri)
        start = (max(f.start.line - 1, 0), max(f.start.column - 1, 0))
        end = (max(f.end.line - 1, 0), max(f.end.column - 1, 0))
        if end < start:
            end = start
        if start == end and start[0] < len(lines):  # a point: widen to one character so that it shows
            width = len(E.content(lines[start[0]]))
            if start[1] < width:
                end = (start[0], start[1] + 1)
            elif start[1] > 0:
                start = (start[0], min(start[1], width) - 1) if width else start
                end = (start[0], width)
        rule = rule_of(f.code)
        tags = []
        if is_deprecation(f.code, rule):
            tags.append(lsp.DiagnosticTag.Deprecated)
        if f.code == UNUSED_NOQA_CODE:
            tags.append(lsp.DiagnosticTag.Unnecessary)
        href = docs_url(f.code, rule)
        safety = problem.safety()
        return lsp.Diagnostic(
            range=self.range(lines, start, end),
            message=f.message,
            severity=SEVERITY[severity_of(f.code, rule, getattr(f, "severity", None))],
            code=f.code,
            code_description=lsp.CodeDescription(href=href) if href else None,
            source="ptlint",
            tags=tags or None,
            data={"name": f.name, "fix": safety.value if safety is not None else None},
        )

    def range(self, lines: list[str], start: E.Pos, end: E.Pos) -> lsp.Range:
        s = E.to_client(lines, start, self.encoding)
        e = E.to_client(lines, end, self.encoding)
        return lsp.Range(start=lsp.Position(line=s[0], character=s[1]), end=lsp.Position(line=e[0], character=e[1]))

    def workspace_edit(self, lint: Lint, texts: dict[str, str]) -> lsp.WorkspaceEdit:
        changes: dict[str, list[lsp.TextEdit]] = {}
        for uri, new in texts.items():
            old = lint.texts[uri]
            lines = lines_of(old)
            changes[uri] = [lsp.TextEdit(range=self.range(lines, s, e), new_text=t) for s, e, t in E.diff(old, new)]
        return lsp.WorkspaceEdit(changes=changes)

    # --- requests about one document --------------------------------------------------------------

    def lint_for_request(self, uri: str) -> Lint | None:
        """The current lint covering `uri`; None for a document that ptlint does not check (excluded, not
        Python); an error reply for an unknown scheme, a file outside the workspace, a document that is
        not open, or one whose check failed."""
        scheme = scheme_of(uri)
        key = self.owner(uri)
        if key is None:
            if scheme in CELL_SCHEMES:
                raise JsonRpcException(f"ptlint: {uri} is not a cell of an open notebook", code=REQUEST_FAILED)
            try:
                self.folders.locate(uri)
            except Unsupported as exc:
                raise JsonRpcException(exc.message, code=exc.code) from None
            raise JsonRpcException(f"ptlint: {uri} is not open; open it (textDocument/didOpen) first",
                                   code=REQUEST_FAILED)
        try:
            self.folders.locate(self.notebooks[key].uri if key in self.notebooks else key)
        except Unsupported as exc:
            raise JsonRpcException(exc.message, code=exc.code) from None
        lint = self.current(key)
        if lint is None and key in self.failures:  # the check failed: say why
            raise JsonRpcException(self.failures[key], code=REQUEST_FAILED)
        return lint

    def offer_unsafe(self, lint: Lint) -> bool:
        if self.options.unsafe_fixes is not None:
            return self.options.unsafe_fixes
        return bool(lint.settings is not None and lint.settings.unsafe_fixes)

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        lint = self.lint_for_request(uri)
        if lint is None:
            return []
        only = params.context.only
        lines = self.lines(lint, uri)
        first = E.from_client(lines, params.range.start.line, params.range.start.character, self.encoding)
        last = E.from_client(lines, params.range.end.line, params.range.end.character, self.encoding)
        if last < first:
            first, last = last, first
        actions: list[lsp.CodeAction] = []
        unsafe = self.offer_unsafe(lint)
        if _wanted(only, QUICK_FIX_KIND):
            noqa_done: set[tuple[str, int]] = set()
            for problem in lint.problems:
                if problem.uri != uri or not _touches(problem, first, last):
                    continue
                diagnostic = self.diagnostic(lint, problem)
                fix = problem.finding.fix
                if fix is not None and fix_allowed(problem, unsafe):
                    title = f"{fix.title} ({problem.code})"
                    if fix.safety is FixSafety.UNSAFE:
                        title = f"{fix.title} ({problem.code}, unsafe fix)"
                    actions.append(self.action(lint, title, QUICK_FIX_KIND, "fix", problem, [diagnostic],
                                               preferred=fix.safety is FixSafety.SAFE))
                line = problem.finding.stmt_lines[0] or problem.finding.start.line
                if problem.code not in ("PTL000", UNUSED_NOQA_CODE) and (problem.code, line) not in noqa_done:
                    noqa_done.add((problem.code, line))
                    actions.append(self.action(lint, f"Disable {problem.code} for this line", QUICK_FIX_KIND,
                                               "noqa", problem, [diagnostic]))
        if lint.has_safe_fix():
            if _wanted(only, FIX_ALL_KIND):
                actions.append(self.action(lint, "Fix all safely fixable ptlint problems", FIX_ALL_KIND, "fixAll"))
            if uri != lint.uri and _wanted(only, NOTEBOOK_FIX_ALL_KIND, explicit=True):
                actions.append(self.action(lint, "Fix all safely fixable ptlint problems in the notebook",
                                           NOTEBOOK_FIX_ALL_KIND, "fixAll"))
        return [a for a in actions if a is not None]

    def action(self, lint: Lint, title: str, kind: str, what: str, problem: Problem | None = None,
               diagnostics: list[lsp.Diagnostic] | None = None, preferred: bool = False) -> lsp.CodeAction | None:
        data = {"uri": lint.uri, "version": lint.version, "epoch": lint.epoch, "what": what,
                "key": problem.key if problem is not None else None}
        action = lsp.CodeAction(title=title, kind=kind, diagnostics=diagnostics, is_preferred=preferred or None,
                                data=data)
        if self.resolve_edits:
            return action  # the edit comes with codeAction/resolve
        edit = self.edit_for(lint, what, problem)
        if edit is None:
            return None
        action.edit = edit
        return action

    def edit_for(self, lint: Lint, what: str, problem: Problem | None) -> lsp.WorkspaceEdit | None:
        if what == "fix" and problem is not None:
            texts = lint.fix_texts(problem)
        elif what == "noqa" and problem is not None:
            texts = lint.noqa_texts(problem)
        elif what == "fixAll":
            texts = lint.fix_all_texts()
        else:
            texts = None
        if not texts:
            return None
        return self.workspace_edit(lint, texts)

    def resolve(self, action: lsp.CodeAction) -> lsp.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        key = data.get("uri")
        if not isinstance(key, str) or (key not in self.docs and key not in self.notebooks):
            raise JsonRpcException("ptlint: the document of this code action is no longer open", code=REQUEST_FAILED)
        lint = self.current(key)
        if lint is None or lint.version != data.get("version") or lint.epoch != data.get("epoch"):
            raise JsonRpcException("ptlint: the document changed since this code action was offered",
                                   code=CONTENT_MODIFIED)
        what = data.get("what")
        index = data.get("key")
        problem = lint.problems[index] if isinstance(index, int) and 0 <= index < len(lint.problems) else None
        edit = self.edit_for(lint, str(what), problem)
        if edit is None:
            raise JsonRpcException("ptlint: this fix no longer applies", code=CONTENT_MODIFIED)
        action.edit = edit
        return action

    def hover(self, params: lsp.HoverParams) -> lsp.Hover | None:
        uri = params.text_document.uri
        lint = self.lint_for_request(uri)
        if lint is None:
            return None
        lines = self.lines(lint, uri)
        line, col = E.from_client(lines, params.position.line, params.position.character, self.encoding)
        if line >= len(lines):
            return None
        for code, start, end in noqa_codes(E.content(lines[line])):
            if start <= col <= end:
                rule = rule_of(code)
                if rule is None:
                    return None
                return lsp.Hover(
                    contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=hover_text(code, rule)),
                    range=self.range(lines, (line, start), (line, end)),
                )
        return None


def hover_text(code: str, rule: Any) -> str:
    summary = rule.summary() if hasattr(rule, "summary") else ""
    href = docs_url(code, rule)
    fix = getattr(getattr(rule, "fix_safety", None), "value", "none")
    parts = [f"**{code}** `{rule.name}`", summary or rule.message, f"Fix: {fix}."]
    if href:
        parts[-1] += f" [Documentation]({href})"
    return "\n\n".join(p for p in parts if p)


def noqa_codes(line: str) -> list[tuple[str, int, int]]:
    """(code, start, end) of each code in the `# noqa: ...` or `# ptlint: noqa: ...` lists of a line."""
    import re

    out = []
    for match in re.finditer(r"#\s*(?:ptlint\s*:\s*)?noqa\s*:\s*([A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*)", line,
                             re.IGNORECASE):
        base = match.start(1)
        for code in re.finditer(r"[A-Za-z]+[0-9]+", match.group(1)):
            out.append((code.group().upper(), base + code.start(), base + code.end()))
    return out


def _is_python(doc: TextDoc, location: Location) -> bool:
    if doc.language_id.lower() in PYTHON_LANGUAGES:
        return True
    return location.path.suffix in (".py", ".pyi")


def _wanted(only: list[str] | None, kind: str, explicit: bool = False) -> bool:
    """Whether a code action of `kind` answers a request for the kinds `only` (all when None)."""
    if not only:
        return not explicit
    return any(kind == o or kind.startswith(f"{o}.") for o in only)


def _touches(problem: Problem, first: E.Pos, last: E.Pos) -> bool:
    f = problem.finding
    start = (f.start.line - 1, f.start.column - 1)
    end = (f.end.line - 1, f.end.column - 1)
    return start <= last and first <= end


def create_server() -> PtlintServer:
    """A server with every feature registered (not started)."""
    server = PtlintServer()

    def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
        """Notifications never raise into pygls: a failure is logged and the server goes on."""

        def wrapper(ls: PtlintServer, params: Any) -> Any:
            try:
                return handler(ls, params)
            except Exception:
                message = f"ptlint: internal error in {handler.__name__}:\n{traceback.format_exc()}"
                ls.log(message, lsp.MessageType.Error)
            return None

        wrapper.__name__ = handler.__name__
        return wrapper

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: PtlintServer, params: lsp.InitializeParams) -> None:
        ls.options = Options.parse(params.initialization_options, ls.log)
        uris = [f.uri for f in params.workspace_folders or []]
        if not uris and params.root_uri:
            uris = [params.root_uri]
        elif not uris and params.root_path:
            from pathlib import Path

            uris = [Path(params.root_path).absolute().as_uri()]
        ls.folders.set(uris)
        if ls.folders.paths and ls.folders.paths[0].is_dir():
            import os

            os.chdir(ls.folders.paths[0])  # paths are shown (and rules see them) as from the workspace root
        ls.settings.reset(ls.options.configuration, keep_file=False)
        encoding = ls.workspace.position_encoding
        ls.encoding = str(getattr(encoding, "value", encoding) or "utf-16")
        caps = params.capabilities.text_document
        code_action = caps.code_action if caps is not None else None
        resolve = code_action.resolve_support if code_action is not None else None
        ls.resolve_edits = bool(resolve is not None and "edit" in (resolve.properties or []))

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: PtlintServer, params: lsp.InitializedParams) -> None:
        workspace = ls.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        options = lsp.DidChangeWatchedFilesRegistrationOptions(
            watchers=[lsp.FileSystemWatcher(glob_pattern=g) for g in WATCHED_GLOBS]
        )
        try:
            await ls.client_register_capability_async(
                lsp.RegistrationParams(
                    registrations=[lsp.Registration(id="ptlint-settings-files",
                                                    method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                                    register_options=options)]
                )
            )
        except Exception as exc:
            ls.log(f"ptlint: cannot watch configuration files ({exc}); restart the server after changing them")

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: PtlintServer, params: Any) -> None:
        for key in list(ls.timers):
            ls.cancel(key)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(ls: PtlintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        ls.docs[item.uri] = TextDoc(item.uri, item.text, item.version, item.language_id or "")
        ls.schedule(item.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: PtlintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        doc = ls.docs.get(params.text_document.uri)
        if doc is None:
            return
        apply_changes(ls, doc, params.content_changes)
        doc.version = params.text_document.version
        if ls.options.lint_on_change:
            ls.schedule(doc.notebook or doc.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    @guarded
    def did_save(ls: PtlintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        key = ls.owner(params.text_document.uri)
        if key is not None:
            ls.current(key)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(ls: PtlintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.docs.pop(uri, None)
        ls.clear(uri, [uri])

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    @guarded
    def notebook_open(ls: PtlintServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        nb = params.notebook_document
        for item in params.cell_text_documents:
            ls.docs[item.uri] = TextDoc(item.uri, item.text, item.version, item.language_id or "", nb.uri)
        ls.notebooks[nb.uri] = NotebookDoc(nb.uri, nb.version, [(c.document, c.kind) for c in nb.cells])
        ls.schedule(nb.uri, 0)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    @guarded
    def notebook_change(ls: PtlintServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        nb = ls.notebooks.get(params.notebook_document.uri)
        if nb is None:
            return
        nb.version = params.notebook_document.version
        cells = params.change.cells
        if cells is not None:
            if cells.structure is not None:
                array = cells.structure.array
                new = [(c.document, c.kind) for c in array.cells or []]
                nb.cells[array.start:array.start + array.delete_count] = new
                for item in cells.structure.did_open or []:
                    ls.docs[item.uri] = TextDoc(item.uri, item.text, item.version, item.language_id or "", nb.uri)
                for closed in cells.structure.did_close or []:
                    ls.docs.pop(closed.uri, None)
            for data in cells.data or []:
                nb.cells = [(uri, data.kind if uri == data.document else kind) for uri, kind in nb.cells]
            for change in cells.text_content or []:
                doc = ls.docs.get(change.document.uri)
                if doc is not None:
                    apply_changes(ls, doc, change.changes)
                    doc.version = change.document.version
        if ls.options.lint_on_change or (cells is not None and cells.structure is not None):
            ls.schedule(nb.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    @guarded
    def notebook_save(ls: PtlintServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        if params.notebook_document.uri in ls.notebooks:
            ls.current(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    @guarded
    def notebook_close(ls: PtlintServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        uri = params.notebook_document.uri
        nb = ls.notebooks.pop(uri, None)
        cells = [c.uri for c in params.cell_text_documents] + [u for u, _ in (nb.cells if nb else [])]
        for cell in cells:
            ls.docs.pop(cell, None)
        ls.clear(uri, cells)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @guarded
    def watched_files(ls: PtlintServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        if any(is_settings_file(change.uri) for change in params.changes):
            ls.settings.reset()
            ls.reported.clear()
            ls.recheck_all()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded
    def configuration(ls: PtlintServer, params: lsp.DidChangeConfigurationParams) -> None:
        settings = params.settings
        keys = ("ptlint", "unsafeFixes", "lintOnChange", "debounceMs", "configuration")
        if isinstance(settings, dict) and any(k in settings for k in keys):
            ls.options = Options.parse(settings, ls.log)
            ls.settings.reset(ls.options.configuration, keep_file=False)
            ls.recheck_all()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    @guarded
    def folders_changed(ls: PtlintServer, params: lsp.DidChangeWorkspaceFoldersParams) -> None:
        for folder in params.event.removed:
            ls.folders.remove(folder.uri)
        for folder in params.event.added:
            ls.folders.add(folder.uri)
        ls.settings.reset()
        ls.recheck_all()

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, FIX_ALL_KIND,  # type: ignore[list-item]
                               NOTEBOOK_FIX_ALL_KIND],
            resolve_provider=True,
        ),
    )
    def code_action(ls: PtlintServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
        return ls.code_actions(params) or None

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    def code_action_resolve(ls: PtlintServer, params: lsp.CodeAction) -> lsp.CodeAction:
        return ls.resolve(params)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: PtlintServer, params: lsp.HoverParams) -> lsp.Hover | None:
        return ls.hover(params)

    return server


def apply_changes(ls: PtlintServer, doc: TextDoc, changes: list[Any]) -> None:
    for change in changes:
        rng = getattr(change, "range", None)
        if rng is None:
            doc.text = change.text
            continue
        lines = lines_of(doc.text)
        start = E.from_client(lines, rng.start.line, rng.start.character, ls.encoding)
        end = E.from_client(lines, rng.end.line, rng.end.character, ls.encoding)
        doc.text = E.apply_change(doc.text, start, end, change.text)


def serve() -> None:
    """Run the server on stdin/stdout until the client says `exit`."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must not corrupt the protocol stream
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="ptlint server: %(levelname)s: %(message)s")
    warm_up()
    gc.collect()
    gc.freeze()  # libcst, the rules and pygls: never garbage, never walked by the collector again
    create_server().start_io(stdin, stdout)


WARM_UP = '''import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def train(model, loader, optimizer):
    model.train()
    total = 0
    for x, y in loader:
        x = x.cuda()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss
    torch.save(model, "model.pt")
    return total  # noqa: PTL001
'''


def warm_up() -> None:
    """Import libcst and every rule, and run each rule once, before the first document arrives."""
    try:
        from pathlib import Path

        from ptlint import engine
        from ptlint.config import Settings
        from ptlint.registry import all_rules

        rules = list(all_rules())
        triggers = " ".join(t for r in rules for t in getattr(r, "triggers", ()))
        text = WARM_UP + f"# {triggers}\n"
        settings = Settings(root=Path.cwd())
        engine.analyze(text, "warm_up.py", rules, {}, settings)
    except Exception:  # only a warm-up: the first real check reports whatever is wrong
        logger.debug("warm-up failed", exc_info=True)
