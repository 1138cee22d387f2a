"""Line/column ranges of nodes, computed by one code generation pass.

The same ranges as libcst's `PositionProvider`, without its metadata machinery: no extra tree
visit, one tuple per node instead of two position objects, and tokens without newlines (nearly
all) update the column without a regex.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodePosition, CodeRange

_NEWLINE = re.compile(r"\r\n?|\n")
Span = tuple[int, int, int, int]  # start line, start column, end line, end column


class Positions:
    """A read-only map from a node of the module to its `CodeRange`."""

    def __init__(self, spans: dict[int, Span], module: cst.Module) -> None:
        self._spans = spans
        self._module = module  # keeps the nodes (and so their ids) alive

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        line, col, end_line, end_col = self._spans[id(node)]
        return CodeRange(CodePosition(line, col), CodePosition(end_line, end_col))

    def __contains__(self, node: object) -> bool:
        return id(node) in self._spans


class _State(CodegenState):
    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1
        self.column = 0
        self.starts: list[tuple[int, int]] = []
        self.spans: dict[int, Span] = {}

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        if "\n" in value or "\r" in value:
            parts = _NEWLINE.split(value)
            self.line += len(parts) - 1
            self.column = len(parts[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.starts.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        line, col = self.starts.pop()
        key = id(node)
        if key not in self.spans:  # a syntactic range recorded inside wins
            self.spans[key] = (line, col, self.line, self.column)

    @contextmanager
    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> Iterator[None]:
        line, col = self.line, self.column
        try:
            yield
        finally:
            end_line, end_col = self.line, self.column
            if start_node is not None:
                line, col = self.spans[id(start_node)][:2]
            if end_node is not None:
                end_line, end_col = self.spans[id(end_node)][2:]
            self.spans[id(node)] = (line, col, end_line, end_col)


def positions_of(module: cst.Module) -> Positions:
    """The range of every node of `module` (as `PositionProvider` gives it)."""
    state = _State(module)
    module._codegen(state)
    return Positions(state.spans, module)
