"""The per-file Context: shared facts that rules query while the engine walks the tree."""

from __future__ import annotations

from typing import Any

import libcst as cst

from ptlint.facts import guards, loops, versions
from ptlint.facts.classes import ClassInfo
from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.semantic import Model

LOOP_TYPES = (cst.For, cst.While)


class Context:
    """The walk position (the ancestor stack of the node being visited) and the file's semantic model.

    Every fact lives in `self.model` (see ptlint.semantic), addressed by node; the methods here
    answer for the node the walk is at and delegate.
    """

    def __init__(self, module: cst.Module, path: str, source: str, settings: Any = None) -> None:
        self.module = module
        self.path = path
        self.source = source
        self.settings = settings
        self.imports = ImportMap()
        self.stack: list[cst.CSTNode] = []
        for stmt in _top_level_imports(module):
            self.imports.add(stmt)
        self.model = Model(module, self.imports.snapshot())

    # --- names ---

    def qualname(self, expr: cst.CSTNode) -> str | None:
        """The fully qualified dotted name of an imported Name/Attribute chain (None when shadowed)."""
        return self.model.qualified_name(expr)

    def dotted(self, expr: cst.CSTNode) -> str | None:
        return dotted_name(expr)

    def torch_name(self, qualified: str) -> str:
        """How to spell `qualified` (e.g. `torch.device`) in this file."""
        for local in self.model.names.local_names_for(qualified):
            if "." in local or local == qualified.split(".")[-1]:
                return local
        return qualified

    # --- ancestry ---

    @property
    def node(self) -> cst.CSTNode:
        return self.stack[-1]

    def parent(self, levels: int = 1) -> cst.CSTNode | None:
        idx = len(self.stack) - 1 - levels
        return self.stack[idx] if idx >= 0 else None

    def statement(self) -> cst.CSTNode | None:
        """The innermost statement around the current node."""
        for node in reversed(self.stack):
            if isinstance(node, cst.BaseStatement):
                return node
        return None

    def function(self) -> cst.FunctionDef | None:
        for node in reversed(self.stack):
            if isinstance(node, cst.FunctionDef):
                return node
        return None

    def functions(self) -> list[cst.FunctionDef]:
        return [n for n in self.stack if isinstance(n, cst.FunctionDef)]

    def class_def(self) -> cst.ClassDef | None:
        for node in reversed(self.stack):
            if isinstance(node, cst.ClassDef):
                return node
        return None

    def class_info(self) -> ClassInfo | None:
        cls = self.class_def()
        if cls is None:
            return None
        info = self.classes.get(cls.name.value)
        return info if info is not None and info.node is cls else None

    def method_name(self) -> str | None:
        """The name of the innermost function when it is a method of the innermost class."""
        func = cls = None
        for node in reversed(self.stack):
            if func is None and isinstance(node, cst.FunctionDef):
                func = node
            elif func is not None:
                if isinstance(node, cst.ClassDef):
                    cls = node
                    break
                if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                    return None
        return func.name.value if func is not None and cls is not None else None

    def _since_function(self) -> list[cst.CSTNode]:
        for i in range(len(self.stack) - 1, -1, -1):
            if isinstance(self.stack[i], (cst.FunctionDef, cst.Lambda)):
                return self.stack[i + 1:]
        return self.stack

    def loops(self) -> list[cst.CSTNode]:
        """Enclosing for/while loops inside the current function, outermost first."""
        return [n for n in self._since_function() if isinstance(n, LOOP_TYPES)]

    def withs(self) -> list[cst.With]:
        return [n for n in self._since_function() if isinstance(n, cst.With)]

    def in_no_grad(self) -> bool:
        """Whether the current node runs with gradients disabled (see `Model.grad_disabled`)."""
        return self.model.grad_disabled(self.stack[-1])

    def is_no_grad(self, expr: cst.CSTNode) -> bool:
        """`torch.no_grad()`, `torch.inference_mode()`, `set_grad_enabled(False)`, bare decorators and
        a project's own no-grad wrappers."""
        return self.model.torch.is_no_grad(expr)

    # --- classes and types ---

    @property
    def classes(self) -> dict[str, ClassInfo]:
        return self.model.classes

    def is_module_expr(self, expr: cst.CSTNode) -> bool:
        return self.model.is_module(expr)

    def self_assignments(self, func: cst.FunctionDef, attr: str) -> list[cst.CSTNode]:
        """Values assigned to `self.<attr>` in `func`."""
        return self.model.self_assignments(func, attr)

    # --- def-use ---

    def scope_facts(self, scope: cst.CSTNode | None = None) -> ScopeFacts:
        """Def-use facts of `scope`, by default the innermost function (or the module)."""
        if scope is None:
            scope = self.function() or self.module
        return self.model.facts(scope)

    def module_facts(self) -> ScopeFacts:
        return self.scope_facts(self.module)

    # --- loops ---

    def local_function(self, name: str) -> cst.FunctionDef | None:
        """The module-level function `name` (its first definition): a local helper a loop may call."""
        return self.model.program.function(name)

    def loop_kind(self, loop: cst.For | cst.While) -> loops.LoopKind:
        """TRAIN / EVAL / EPOCH / DATA flags of `loop` (see facts/loops.py)."""
        return self.model.loop_kind(loop)

    def per_step_loop(self) -> cst.For | cst.While | None:
        """The outermost enclosing loop that runs once per step (TRAIN, EVAL or DATA, not EPOCH)."""
        for loop in self.loops():
            kind = self.loop_kind(loop)  # type: ignore[arg-type]
            if kind & loops.PER_STEP and not kind & loops.LoopKind.EPOCH:
                return loop  # type: ignore[return-value]
        return None

    def train_loop(self, skip: cst.CSTNode | None = None) -> cst.For | cst.While | None:
        """The innermost enclosing loop (other than `skip`) when it is a TRAIN loop and not an EPOCH loop."""
        enclosing = [loop for loop in self.loops() if loop is not skip]
        if not enclosing:
            return None
        kind = self.loop_kind(enclosing[-1])  # type: ignore[arg-type]
        return enclosing[-1] if kind & loops.LoopKind.TRAIN and not kind & loops.LoopKind.EPOCH else None  # type: ignore[return-value]

    def in_step_guard(self) -> bool:
        """Whether the current node runs only every k-th step (`if step % k == 0:`) in its loop."""
        return loops.in_step_guard(self.stack)

    # --- compatibility and versions ---

    def compat_guard(self) -> str | None:
        """Why the current node is version-compatibility code (try/except ImportError, version checks), or None."""
        return guards.compat_guard(self.stack)

    def target_torch(self) -> tuple[tuple[int, int], str]:
        """The torch (major, minor) the project targets, and where that came from."""
        configured = getattr(self.settings, "target_torch_version", "") or ""
        known = self.path not in ("", "-", "<string>") and not self.path.startswith("<")
        return versions.target_torch(configured, self.path if known else None)

    def assigned_value(self, name: cst.Name) -> cst.CSTNode | None:
        """The value assigned to `name`: its reaching binding, or a module global's only binding."""
        binding = self.model.binding(name) or self.model.names.free_binding(name)
        if binding is None or binding.kind != "assign":
            return None
        return binding.value

    def reaching(self, name: cst.Name) -> Binding | None:
        """The binding of `name` that reaches it in its own scope, wherever the walk is."""
        return self.model.binding(name)


def _top_level_imports(module: cst.Module) -> list[cst.Import | cst.ImportFrom]:
    """Imports at module level, also inside top-level if/try blocks, in source order."""
    out: list[cst.Import | cst.ImportFrom] = []
    todo: list[Any] = list(reversed(module.body))  # a stack, not a recursive closure (no reference cycle)
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, cst.SimpleStatementLine):
            out.extend(s for s in stmt.body if isinstance(s, (cst.Import, cst.ImportFrom)))
        elif isinstance(stmt, (cst.If, cst.Try, cst.TryStar, cst.Else, cst.ExceptHandler, cst.ExceptStarHandler, cst.Finally)):
            nested: list[Any] = []
            body = stmt.body
            if isinstance(body, cst.IndentedBlock):
                nested.extend(body.body)
            for attr in ("handlers", "orelse", "finalbody"):
                extra = getattr(stmt, attr, None)
                if isinstance(extra, (tuple, list)):
                    nested.extend(extra)
                elif extra is not None:
                    nested.append(extra)
            todo.extend(reversed(nested))
    return out
