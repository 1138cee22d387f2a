"""What one file tells the rest of the project, read with the standard library's `ast`.

A summary is plain data (it is pickled into the cache and sent to worker processes): the file's
imports, its top-level names, its classes with the layers their `__init__` builds, its functions with
the calls they make, and its `torch.save`/`torch.load` sites. Building one never runs user code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# Layers whose forward pass is the same in train and eval mode.
MODE_FREE_LAYERS = {
    "Linear", "Bilinear", "LazyLinear", "Identity", "Flatten", "Unflatten",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConv2d",
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid",
    "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Tanhshrink", "Softmax", "LogSoftmax",
    "Softmax2d", "GLU", "Threshold",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
    "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "ZeroPad2d", "ConstantPad1d",
    "ConstantPad2d", "Embedding", "EmbeddingBag", "LayerNorm", "GroupNorm", "LocalResponseNorm", "RMSNorm",
    "Sequential", "ModuleList", "ModuleDict", "Parameter", "CosineSimilarity", "PairwiseDistance",
}
# Layers whose behaviour depends on the mode unless their arguments say otherwise.
MODE_LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "RReLU",
               "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm2d",
               "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
               "TransformerDecoderLayer"}
INSTANCE_NORMS = {"InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"}  # mode-free unless they track statistics
RNNS = {"LSTM", "GRU", "RNN"}  # mode-free unless dropout > 0
MODULE_USES = {"eval", "train", "parameters", "state_dict", "to", "cuda", "cpu", "named_parameters", "modules",
               "children", "apply", "forward", "half", "float"}


@dataclass
class ClassSummary:
    name: str
    line: int
    bases: list[str]  # qualified where imported, else as written
    layers: list[str]  # the callees that `__init__` (and class-level code) calls, qualified where imported
    layer_modes: list[str]  # per layer: "free", "dependent" or "unknown" (a class this file cannot see into)
    uses_mode: bool  # the class reads `self.training` or calls functional dropout itself

    @property
    def mode(self) -> str:
        """"free" (every layer known and mode-free), "dependent", or "unknown", from this file alone."""
        modes = set(self.layer_modes)
        if self.uses_mode or "dependent" in modes:
            return "dependent"
        return "unknown" if "unknown" in modes else "free"


@dataclass
class CallSite:
    callee: str  # qualified where imported, else as written (`helper`, `utils.helper`, `self.helper`)
    line: int
    function: str  # the enclosing top-level function or `Class.method`, "" at module level
    args: list[str | None]  # positional arguments that are plain names
    keywords: dict[str, str | None]
    eval_names: list[str]  # names that are in eval mode at the call (`.eval()` earlier, no `.train()` since)


@dataclass
class FunctionSummary:
    name: str  # `f` or `Class.method`
    line: int
    params: list[str]
    eval_params: list[str]  # parameters it puts in eval mode before anything else uses them


@dataclass
class SaveSite:
    line: int
    saved: str  # "module", "state_dict", "container" (holds modules), "unknown"
    path: str | None  # a literal, an f-string pattern with {} holes, or `name:<var>`


@dataclass
class LoadSite:
    line: int
    path: str | None
    use: str  # "module", "subscript-module", "state_dict", "unknown"


@dataclass
class FileSummary:
    path: str  # relative to the project root, with /
    module: str  # dotted module name
    imports: list[tuple[str, str, bool, int]] = field(default_factory=list)  # (local, target, star, level)
    names: dict[str, str] = field(default_factory=dict)  # top-level name -> "class" | "function" | "import" | "value"
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    calls: list[CallSite] = field(default_factory=list)
    saves: list[SaveSite] = field(default_factory=list)
    loads: list[LoadSite] = field(default_factory=list)
    error: str | None = None  # why the file contributes nothing (a syntax error, an unreadable file)


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Imports:
    """Local name -> qualified target, from every import of the file (first binding wins)."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.map: dict[str, str] = {}
        self.rows: list[tuple[str, str, bool, int]] = []

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                self._add(local, alias.name if alias.asname else alias.name.split(".")[0], node.level if False else 0)
            return
        base = _absolute(node.module or "", node.level, self.package)
        for alias in node.names:
            if alias.name == "*":
                self.rows.append(("*", base, True, node.level))
            else:
                self._add(alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name, node.level)

    def _add(self, local: str, target: str, level: int) -> None:
        self.rows.append((local, target, False, level))
        self.map.setdefault(local, target)

    def resolve(self, node: ast.AST) -> str | None:
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self.map.get(head)
        if target is None:
            return name
        return f"{target}.{rest}" if rest else target


def _absolute(module: str, level: int, package: str) -> str:
    """`from ..a import b` in package `p.q.r` -> `p.a`."""
    if not level:
        return module
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    return ".".join([*base, module] if module else base)


def layer_mode(callee: str, call: ast.Call | None) -> str:
    """"free", "dependent" or "unknown" for one layer constructor (its last name decides)."""
    last = callee.rsplit(".", 1)[-1]
    keywords = {k.arg: k.value for k in call.keywords} if call is not None else {}
    if last in INSTANCE_NORMS:
        track = keywords.get("track_running_stats")
        return "dependent" if isinstance(track, ast.Constant) and track.value is True else "free"
    if last in RNNS:
        drop = keywords.get("dropout")
        return "free" if drop is None or (isinstance(drop, ast.Constant) and not drop.value) else "dependent"
    if last in MODE_LAYERS:
        return "dependent"
    if last in MODE_FREE_LAYERS and (callee.startswith("torch.nn.") or "." not in callee or callee.startswith("nn.")):
        return "free"
    return "unknown"


def summarize(text: str, path: str, module: str) -> FileSummary:
    """The summary of one file's source; a file that does not parse gets only its error."""
    summary = FileSummary(path, module)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        summary.error = f"{type(exc).__name__}: {exc}"
        return summary
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    imports = _Imports(package)
    for node in _imports_first(tree):
        imports.add(node)
    summary.imports = imports.rows
    for stmt in tree.body:
        _top_level(stmt, summary)
    _Collector(imports, summary).run(tree)
    return summary


def _imports_first(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, found without entering expressions."""
    out: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = list(reversed(tree.body))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.stmt):
            for name in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(reversed(getattr(node, name, ())))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(reversed(node.body))
    return out


class _Collector:
    """One pass over the tree: classes and their layers, functions, calls, saves and loads."""

    def __init__(self, imports: _Imports, summary: FileSummary) -> None:
        self.imports = imports
        self.summary = summary

    def run(self, tree: ast.Module) -> None:
        self._block(tree.body, "", None)

    def _block(self, body: list[ast.stmt], function: str, params: list[str] | None) -> None:
        """The statements of one function (or the module) in order, tracking which names are in eval mode."""
        modes: dict[str, str] = {}
        evals: list[str] = []
        for stmt in body:
            self._statement(stmt, body, function, params, modes, evals)
        if params is not None and function in self.summary.functions:
            self.summary.functions[function].eval_params = evals

    def _statement(self, stmt: ast.stmt, body: list[ast.stmt], function: str, params: list[str] | None,
                   modes: dict[str, str], evals: list[str]) -> None:
        summary = self.summary
        if isinstance(stmt, ast.ClassDef):
            if not function:
                summary.classes[stmt.name] = self._class(stmt)
                for item in stmt.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._function(item, f"{stmt.name}.{item.name}")
            return
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not function:
                self._function(stmt, stmt.name)
            return
        calls = []
        todo: list[ast.AST] = [stmt]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.Call):
                calls.append(node)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                todo.append(child)
        calls.sort(key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            self._call(call, stmt, body, function, params, modes, evals)

    def _call(self, call: ast.Call, stmt: ast.stmt, body: list[ast.stmt], function: str, params: list[str] | None,
              modes: dict[str, str], evals: list[str]) -> None:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in ("eval", "train"):
            owner = dotted(func.value)
            if owner is not None:
                off = func.attr == "eval" or (call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is False)
                modes[owner] = "eval" if off else "train"
                if off and params is not None and owner in params and owner not in evals:
                    evals.append(owner)
            return
        callee = self.imports.resolve(func)
        if callee is None:
            return
        summary = self.summary
        if callee == "torch.save" and call.args:
            target = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "f"), None)
            summary.saves.append(SaveSite(call.lineno, _saved(call.args[0], stmt), _path(target)))
        elif callee == "torch.load" and call.args:
            summary.loads.append(LoadSite(call.lineno, _path(call.args[0]), _load_use(call, stmt, body)))
        names = [dotted(a) for a in call.args]
        keywords = {k.arg: dotted(k.value) for k in call.keywords if k.arg}
        summary.calls.append(CallSite(callee, call.lineno, function, names, keywords, [n for n, m in modes.items() if m == "eval"]))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> None:
        args = node.args
        params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        self.summary.functions[name] = FunctionSummary(name, node.lineno, params, [])
        self._block(node.body, name, params)

    def _class(self, node: ast.ClassDef) -> ClassSummary:
        imports = self.imports
        bases = [imports.resolve(b) or "" for b in node.bases]
        layers: list[str] = []
        modes: list[str] = []
        uses_mode = False
        init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
        scan: list[ast.AST] = [s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        scan += [init] if init is not None else []
        for sub in _all(scan):
            if isinstance(sub, ast.Call):
                callee = imports.resolve(sub.func)
                last = (callee or "").rsplit(".", 1)[-1]
                if callee and last[:1].isupper() and last != "super":
                    layers.append(callee)
                    modes.append(layer_mode(callee, sub))
        for sub in _all(node.body):
            if isinstance(sub, ast.Attribute) and sub.attr == "training":
                uses_mode = True  # `if self.training:` branches on the mode itself
            elif isinstance(sub, ast.Call) and (imports.resolve(sub.func) or "").endswith(("functional.dropout", "F.dropout")):
                uses_mode = True
        return ClassSummary(node.name, node.lineno, bases, layers, modes, uses_mode)


def _all(roots: list[ast.AST]) -> list[ast.AST]:
    out: list[ast.AST] = []
    todo = list(roots)
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _top_level(stmt: ast.stmt, summary: FileSummary) -> None:
    if isinstance(stmt, ast.ClassDef):
        summary.names[stmt.name] = "class"
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        summary.names[stmt.name] = "function"
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            if alias.name != "*":
                summary.names.setdefault(alias.asname or alias.name.split(".")[0], "import")
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    summary.names.setdefault(node.id, "value")
    elif isinstance(stmt, (ast.If, ast.Try)):
        for inner in [*stmt.body, *getattr(stmt, "orelse", []), *getattr(stmt, "finalbody", []),
                      *(s for h in getattr(stmt, "handlers", []) for s in h.body)]:
            _top_level(inner, summary)


def _path(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)  # type: ignore[misc]
    name = dotted(node) if node is not None else None
    return f"name:{name}" if name else None


def _saved(node: ast.AST, stmt: ast.stmt) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "state_dict":
        return "state_dict"
    if isinstance(node, (ast.Dict, ast.List, ast.Tuple)):
        values = node.values if isinstance(node, ast.Dict) else node.elts
        kinds = {_saved(v, stmt) for v in values}
        return "container" if "module" in kinds or "container" in kinds else "state_dict" if kinds <= {"state_dict", "unknown"} else "unknown"
    name = dotted(node) or ""
    last = name.rsplit(".", 1)[-1].lower()
    if last in ("model", "net", "module", "generator", "discriminator") or last.endswith(("_model", "_net")):
        return "module"
    return "unknown"


def _load_use(call: ast.Call, stmt: ast.stmt, body: list[ast.stmt]) -> str:
    """How the result of `torch.load` is used: as a module, subscripted then used as a module, or as weights."""
    target = None
    if isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        target = stmt.targets[0].id
    elif isinstance(stmt, ast.Expr):
        return "unknown"
    if target is None:
        parent_call = next((n for n in ast.walk(stmt) if isinstance(n, ast.Call) and call in n.args), None)
        if parent_call is not None and isinstance(parent_call.func, ast.Attribute) and parent_call.func.attr == "load_state_dict":
            return "state_dict"
        return "unknown"
    derived: set[str] = set()
    after = False
    for other in body:
        if other is stmt:
            after = True
            continue
        if not after:
            continue
        for node in ast.walk(other):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript) and dotted(node.value.value) == target:
                derived.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if isinstance(node, ast.Attribute) and node.attr in MODULE_USES:
                owner = dotted(node.value)
                if owner == target:
                    return "module"
                if owner in derived:
                    return "subscript-module"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load_state_dict":
                if any(dotted(a) == target for a in node.args):
                    return "state_dict"
    return "unknown"
