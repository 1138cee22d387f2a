"""The semantic model of one file: tree, names, control flow, program and torch facts.

Built lazily, once per file, without libcst metadata providers. Every query is addressed by node
and gives the same answer wherever the engine's walk is. Rules reach it as `self.ctx.model`.
"""

from __future__ import annotations

import weakref
from typing import Any

import libcst as cst

from ptlint.facts.classes import ClassInfo, collect_classes
from ptlint.facts.dataflow import Binding, ScopeFacts, Use
from ptlint.facts.imports import ImportMap
from ptlint.facts.walk import iter_nodes
from ptlint.semantic.checkpoints import Checkpoints
from ptlint.semantic.dtypes import Dtype, Dtypes
from ptlint.semantic.flow import Flow
from ptlint.semantic.graph import Carry, Graph
from ptlint.semantic.modes import Modes
from ptlint.semantic.names import Names
from ptlint.semantic.program import Program
from ptlint.semantic.torch import Kind, TorchFacts
from ptlint.semantic.tree import Tree

__all__ = ["Model", "Kind", "Carry", "Binding", "Use", "ScopeFacts", "Dtype"]


class Model:
    """Every fact about one file that more than one rule needs.

    Its parts hold it through a weak proxy: no reference cycle keeps a tree alive once a file is done
    (automatic GC is off while files are checked).
    """

    def __init__(self, module: cst.Module, imports: ImportMap) -> None:
        self.module = module
        self.imports = imports
        self._tree: Tree | None = None
        self._names: Names | None = None
        self._flow: Flow | None = None
        self._program: Program | None = None
        self._torch: TorchFacts | None = None
        self._modes: Modes | None = None
        self._graph: Graph | None = None
        self._checkpoints: Checkpoints | None = None
        self._dtypes: Dtypes | None = None
        self._classes: dict[str, ClassInfo] | None = None
        self._self_assigns: dict[int, dict[str, list[cst.CSTNode]]] = {}
        self._loops: Any = None
        self._module_busy: set[int] = set()

    # --- parts, built when first asked ---

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            self._tree = Tree(self.module)
        return self._tree

    @property
    def names(self) -> Names:
        if self._names is None:
            every = ImportMap()
            for stmt in self.tree.of_type((cst.Import, cst.ImportFrom)):
                every.add(stmt)  # type: ignore[arg-type]
            self._names = Names(self.tree, self.imports, every)
        return self._names

    @property
    def flow(self) -> Flow:
        if self._flow is None:
            self._flow = Flow(self.tree)
        return self._flow

    @property
    def program(self) -> Program:
        if self._program is None:
            model = weakref.proxy(self)
            self._program = Program(self.tree, lambda: model.names)
        return self._program

    @property
    def torch(self) -> TorchFacts:
        if self._torch is None:
            self._torch = TorchFacts(weakref.proxy(self))
        return self._torch

    @property
    def graph(self) -> Graph:
        """Which values carry an autograd graph (see semantic/graph.py)."""
        if self._graph is None:
            self._graph = Graph(weakref.proxy(self))
        return self._graph

    @property
    def modes(self) -> Modes:
        """Train/eval mode of modules: mode calls, the object behind an expression, mode changes (semantic/modes.py)."""
        if self._modes is None:
            self._modes = Modes(weakref.proxy(self))
        return self._modes

    @property
    def checkpoints(self) -> Checkpoints:
        """The nn.Modules that `torch.save` calls pickle (see semantic/checkpoints.py)."""
        if self._checkpoints is None:
            self._checkpoints = Checkpoints(weakref.proxy(self))
        return self._checkpoints

    @property
    def dtypes(self) -> Dtypes:
        """Statically known dtypes of tensor expressions, and autocast regions (see semantic/dtypes.py)."""
        if self._dtypes is None:
            self._dtypes = Dtypes(weakref.proxy(self))
        return self._dtypes

    @property
    def classes(self) -> dict[str, ClassInfo]:
        if self._classes is None:
            self._classes = collect_classes(self.module, self.imports)
        return self._classes

    # --- shortcuts for the most common questions ---

    def qualified_name(self, expr: cst.CSTNode) -> str | None:
        return self.names.qualified_name(expr)

    def binding(self, name: cst.Name) -> Binding | None:
        return self.names.binding(name)

    def value(self, name: cst.Name) -> cst.CSTNode | None:
        return self.names.value(name)

    def facts(self, scope: cst.CSTNode) -> ScopeFacts:
        return self.names.facts(scope)

    def facts_at(self, node: cst.CSTNode) -> ScopeFacts:
        return self.names.facts_at(node)

    def kind(self, expr: cst.CSTNode) -> Kind:
        return self.torch.kind(expr)

    def dtype(self, expr: cst.CSTNode) -> Dtype | None:
        return self.dtypes.dtype(expr)

    def is_tensor(self, expr: cst.CSTNode) -> bool:
        return self.torch.kind(expr) is Kind.TENSOR

    def grad_disabled(self, node: cst.CSTNode) -> bool:
        return self.torch.grad_disabled(node)

    def class_info(self, node: cst.CSTNode) -> ClassInfo | None:
        """The facts of the class around `node` (`node` itself when it is a class)."""
        cls = node if isinstance(node, cst.ClassDef) else self.tree.class_def(node)
        if cls is None:
            return None
        info = self.classes.get(cls.name.value)
        return info if info is not None and info.node is cls else None

    def in_lightning_class(self, func: cst.FunctionDef) -> bool:
        cls = self.tree.method_of(func)
        info = self.class_info(cls) if cls is not None else None
        return info is not None and info.is_lightning

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

    def self_values(self, attr: cst.Attribute) -> list[cst.CSTNode]:
        """Values assigned to `self.<attr>` in `__init__` of the class around `attr`, or of its nearest
        in-file base class that defines `__init__` when the class itself does not."""
        info, seen = self.class_info(attr), set()
        while info is not None and info.name not in seen:
            seen.add(info.name)
            init = info.methods.get("__init__")
            if init is not None:
                return self.self_assignments(init, attr.attr.value)
            info = next((self.classes[b] for b in info.bases if b in self.classes), None)
        return []

    # --- modules ---

    def is_module(self, expr: cst.CSTNode) -> bool:
        """An nn.Module instance, by evidence or by a conventional name (see facts/kinds.py)."""
        from ptlint.facts import kinds

        return kinds.is_module_expr(self, expr)

    def is_module_constructor(self, call: cst.CSTNode) -> bool:
        from ptlint.facts import kinds

        return kinds.is_module_constructor(self, call)

    def loop_kind(self, loop: cst.For | cst.While) -> Any:
        """TRAIN / EVAL / EPOCH / DATA flags of `loop` (see facts/loops.py)."""
        if self._loops is None:
            from ptlint.facts.loops import LoopClassifier

            self._loops = LoopClassifier(self)
        return self._loops.kind(loop)
