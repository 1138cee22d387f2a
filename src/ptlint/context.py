"""The per-file Context: shared facts that rules query while the engine walks the tree."""

from __future__ import annotations

from typing import Any

import libcst as cst

from ptlint.facts import guards, kinds, loops, versions
from ptlint.facts.classes import ClassInfo, collect_classes
from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.facts.walk import iter_nodes

NO_GRAD_CONTEXTS = {
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autograd.no_grad",
    "torch.autograd.grad_mode.no_grad",
    "torch.autograd.inference_mode",
    "torch.autograd.grad_mode.inference_mode",
}
SET_GRAD_ENABLED = {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled", "torch.autograd.grad_mode.set_grad_enabled"}
LOOP_TYPES = (cst.For, cst.While)


class Context:
    """Facts about one file, plus the ancestor stack of the node being visited."""

    def __init__(self, module: cst.Module, path: str, source: str, settings: Any = None) -> None:
        self.module = module
        self.path = path
        self.source = source
        self.settings = settings
        self.imports = ImportMap()
        self.stack: list[cst.CSTNode] = []
        self._classes: dict[str, ClassInfo] | None = None
        self._scopes: dict[int, ScopeFacts] = {}
        self._self_assigns: dict[int, dict[str, list[cst.CSTNode]]] = {}
        self._loops: loops.LoopClassifier | None = None
        self._functions: dict[str, cst.FunctionDef] | None = None
        for stmt in _top_level_imports(module):
            self.imports.add(stmt)

    # --- names ---

    def qualname(self, expr: cst.CSTNode) -> str | None:
        """The fully qualified dotted name of an imported Name/Attribute chain."""
        return self.imports.resolve(expr)

    def dotted(self, expr: cst.CSTNode) -> str | None:
        return dotted_name(expr)

    def torch_name(self, qualified: str) -> str:
        """How to spell `qualified` (e.g. `torch.device`) in this file."""
        for local in self.imports.local_names_for(qualified):
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
        """Whether the current node runs with gradients disabled."""
        for node in self.stack:
            if isinstance(node, cst.With) and any(self.is_no_grad(i.item) for i in node.items):
                return True
            if isinstance(node, cst.FunctionDef) and any(self.is_no_grad(d.decorator) for d in node.decorators):
                return True
        return False

    def is_no_grad(self, expr: cst.CSTNode) -> bool:
        """`torch.no_grad()`, `torch.inference_mode()`, `set_grad_enabled(False)`, bare decorators too."""
        target = expr.func if isinstance(expr, cst.Call) else expr
        q = self.qualname(target) or ""
        if q in NO_GRAD_CONTEXTS:
            if q.endswith("inference_mode") and isinstance(expr, cst.Call) and expr.args:
                return not _is_false(expr.args[0].value)
            return True
        if q in SET_GRAD_ENABLED and isinstance(expr, cst.Call) and expr.args:
            return _is_false(expr.args[0].value)
        return False

    # --- classes and types ---

    @property
    def classes(self) -> dict[str, ClassInfo]:
        if self._classes is None:
            self._classes = collect_classes(self.module, self.imports)
        return self._classes

    def is_module_expr(self, expr: cst.CSTNode) -> bool:
        return kinds.is_module_expr(self, expr)

    def self_assignments(self, func: cst.FunctionDef, attr: str) -> list[cst.CSTNode]:
        """Values assigned to `self.<attr>` in `func`."""
        table = self._self_assigns.get(id(func))
        if table is None:
            table = {}
            for node in iter_nodes(func.body):
                if isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
                    targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == "self":
                            table.setdefault(t.attr.value, []).append(node.value)
            self._self_assigns[id(func)] = table
        return table.get(attr, [])

    # --- def-use ---

    def scope_facts(self, scope: cst.CSTNode | None = None) -> ScopeFacts:
        """Def-use facts of `scope`, by default the innermost function (or the module)."""
        if scope is None:
            scope = self.function() or self.module
        facts = self._scopes.get(id(scope))
        if facts is None:
            facts = self._scopes[id(scope)] = ScopeFacts(scope)
        return facts

    def module_facts(self) -> ScopeFacts:
        return self.scope_facts(self.module)

    # --- loops ---

    def local_function(self, name: str) -> cst.FunctionDef | None:
        """The module-level function `name` (its first definition): a local helper a loop may call."""
        if self._functions is None:
            self._functions = {}
            for stmt in self.module.body:
                if isinstance(stmt, cst.FunctionDef):
                    self._functions.setdefault(stmt.name.value, stmt)
        return self._functions.get(name)

    def loop_kind(self, loop: cst.For | cst.While) -> loops.LoopKind:
        """TRAIN / EVAL / EPOCH / DATA flags of `loop` (see facts/loops.py); `loop` must be on the stack."""
        if self._loops is None:
            self._loops = loops.LoopClassifier(self)
        index = next((i for i, n in enumerate(self.stack) if n is loop), len(self.stack))
        return self._loops.kind(loop, self.stack[:index])

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
        binding = self.reaching(name)
        if binding is None and self.function() is not None and not self.scope_facts().bindings_of(name.value):
            module = self.module_facts().bindings_of(name.value)
            binding = module[0] if len(module) == 1 else None
        if binding is None or binding.kind != "assign":
            return None
        return binding.value

    def reaching(self, name: cst.Name) -> Binding | None:
        """The binding of `name` that reaches it in the current scope."""
        return self.scope_facts().reaching(name.value, name)


def _is_false(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


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
