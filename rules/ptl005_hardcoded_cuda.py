"""PTL005 hardcoded-cuda."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, TypeGuard

import libcst as cst

from ptlint.facts.dataflow import Binding
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.facts.walk import iter_nodes
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, Replace, Rule
from ptlint.semantic.program import param_names

if TYPE_CHECKING:
    from ptlint.context import Context

DEVICE = "device"
DEVICE_RE = re.compile(r"^cuda(:\d+)?$")
# Call keywords whose value is a device.
DEVICE_KEYWORDS = {"device", "map_location"}
# Keywords of `.cuda()` that `.to()` takes unchanged.
MOVE_KEYWORDS = {"non_blocking", "memory_format"}
LEGACY_TYPES = {
    f"torch.cuda.{t}Tensor"
    for t in ("Float", "Double", "Half", "BFloat16", "Byte", "Char", "Short", "Int", "Long", "Bool")
}
# APIs and libraries that only exist for CUDA: code that uses them is CUDA-only by design.
CUDA_ONLY_NAMES = (
    "torch.cuda.CUDAGraph", "torch.cuda.graph", "torch.cuda.graphs", "torch.cuda.make_graphed_callables",
    "torch.cuda.Stream", "torch.cuda.stream", "torch.cuda.Event", "torch.cuda.device", "torch.cuda.nvtx",
    "torch.cuda.jiterator", "torch.utils.cpp_extension", "triton", "cupy", "pycuda", "numba.cuda",
)
# Identifier parts and string prefixes that make a test device-aware.
GUARD_WORDS = ("cuda", "gpu", "cpu", "is_available", "device_count")
GUARD_STRINGS = ("cuda", "gpu", "cpu", "mps", "xpu")
# Last parts of the CUDA-only names: a cheap test before resolving an attribute.
CUDA_ONLY_LAST = frozenset(n.rsplit(".", 1)[-1] for n in CUDA_ONLY_NAMES)

Target = tuple[cst.BaseExpression, FixSafety, tuple[Edit, ...]]
Plan = tuple[cst.SimpleStatementLine, str]


class HardcodedCuda(Rule):
    """Hard-coded CUDA device placement.

    ## What it does
    Flags code that places tensors or modules on the GPU unconditionally: `.cuda()` calls,
    `device="cuda"` / `map_location="cuda:0"` arguments, `.to("cuda")`, `torch.device("cuda")`,
    `device = "cuda"` assignments and the legacy `torch.cuda.FloatTensor`-style types.

    It stays silent where the device is chosen at run time: inside `if torch.cuda.is_available():`,
    `if args.cuda:`, `if device.type == "cuda":` and similar guards (both branches), in
    `"cuda" if ... else "cpu"` expressions, after an early `if not torch.cuda.is_available(): return`
    (or `raise`, `sys.exit`, `pytest.skip`), under `skipif`-style decorators that test for CUDA,
    in classes that define their own `cuda()` method, and in code that is CUDA-only by design
    (CUDA graphs, streams, events, custom kernels with `triton`, `cupy` or `cpp_extension`).
    `torch.cuda.*` calls such as `torch.cuda.synchronize()` are not reported.

    ## Why is this bad?
    The script crashes on machines without an NVIDIA GPU (CPU-only CI, laptops, Apple MPS,
    Intel XPU) and cannot be moved to another device without editing every call. Device-agnostic
    code picks the device once and passes it around with `.to(device)` and `device=device`.

    ## Example
    ```python
    model = Net().cuda()
    for x, y in loader:
        x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
        noise = torch.randn(x.shape, device="cuda")
    ```

    ## Use instead
    ```python
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Net().to(device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        noise = torch.randn(x.shape, device=device)
    ```

    ## Fix safety
    `.cuda()` becomes `.to(device)` and a `"cuda"` argument becomes `device`. The fix is safe when a
    variable `device` (a parameter, a local, a closure or a module global) or `self.device` (assigned
    in `__init__`, or a LightningModule) is in scope; it then trusts that variable to name the
    intended device. Otherwise it is unsafe: it inserts
    `device = torch.device("cuda" if torch.cuda.is_available() else "cpu")` after the top-level
    imports, which changes where the code runs on hosts without CUDA. `torch.device("cuda")` and
    `device = "cuda"` get a safe CPU fallback: `"cuda" if torch.cuda.is_available() else "cpu"`, and so
    does a device string with an index (`.to("cuda:1")`), which keeps its GPU.
    `.cuda(i)` with a device index, `torch.device("cuda", i)` and the legacy tensor types have no fix.

    ## References
    - [Device-agnostic code](https://pytorch.org/docs/stable/notes/cuda.html#device-agnostic-code)
    - [torch.Tensor.to](https://pytorch.org/docs/stable/generated/torch.Tensor.to.html)
    - [Legacy tensor types](https://pytorch.org/docs/stable/tensors.html#data-types)
    """

    code = "PTL005"
    name = "hardcoded-cuda"
    message = "Hard-coded CUDA device; use a device-agnostic `device` variable"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ("cuda",)
    contract = "E0"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._plan: Plan | None | bool = False  # computed when a fix first needs it
        self._line: cst.BaseStatement | None = None
        self._custom: set[str] | None = None
        self._cuda_tests: dict[int, bool] = {}
        self._marks: dict[int, cst.CSTNode] = {}  # block -> its first `pytestmark = skipif(<cuda test>)` line
        self._cuda_only: set[int] = set()  # top-level defs that use CUDA-only APIs; the module for other code

    # --- visitors ---

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "cuda":
            self._check_cuda_call(node, func)
            return
        qual = self.ctx.qualname(func) or ""
        if qual == "torch.device":
            self._check_torch_device(node)
        elif not qual.startswith("torch.cuda."):
            self._check_device_args(node, func)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        attr = node.attr.value
        if attr in CUDA_ONLY_LAST and _matches(self.ctx.qualname(node) or "", CUDA_ONLY_NAMES):
            self._mark_cuda_only()
        if attr.endswith("Tensor") and self.ctx.qualname(node) in LEGACY_TYPES:
            self._check_legacy_type(node)

    def visit_Name(self, node: cst.Name) -> None:
        names = self.ctx.model.names
        full = names.imports.aliases.get(node.value) or names.all_imports.aliases.get(node.value) or ""
        if not (_matches(full, CUDA_ONLY_NAMES) or node.value.endswith("Tensor")):
            return  # cheaper than `qualname`, which can only agree
        qual = self.ctx.qualname(node) or ""
        if _matches(qual, CUDA_ONLY_NAMES):
            self._mark_cuda_only()
        parent = self.ctx.parent()
        in_import = any(isinstance(n, (cst.Import, cst.ImportFrom)) for n in self.ctx.stack)
        if qual in LEGACY_TYPES and not in_import and not (isinstance(parent, cst.Attribute) and parent.attr is node):
            self._check_legacy_type(node)

    def visit_Import(self, node: cst.Import | cst.ImportFrom) -> None:
        if any(_matches(name, CUDA_ONLY_NAMES) for name in _imported_names(node)):
            self._mark_cuda_only()

    visit_ImportFrom = visit_Import

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(_is_device_target(t.target) for t in node.targets):
            self._check_device_assignment(node.value)
        marked = any(isinstance(t.target, cst.Name) and t.target.value == "pytestmark" for t in node.targets)
        if marked and self._cuda_test(node.value):
            self._marks.setdefault(id(self.ctx.parent(2)), self.ctx.parent())  # type: ignore[arg-type]

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and _is_device_target(node.target):
            self._check_device_assignment(node.value)

    def leave_Module(self, node: cst.Module) -> None:
        """A top-level def or class (or a file) that uses CUDA-only APIs is CUDA-only by design: drop its findings."""
        if id(node) in self._cuda_only:
            self.reports = []
        elif self._cuda_only:
            path = self.ctx.model.tree.path
            self.reports = [r for r in self.reports if id(path(r.node)[1]) not in self._cuda_only]

    # --- checks ---

    def _check_cuda_call(self, node: cst.Call, func: cst.Attribute) -> None:
        receiver = func.value
        if self.ctx.qualname(receiver) is not None or self._custom_cuda(receiver) or self._silenced(node):
            return
        fix = None
        if all(a.keyword is not None and a.keyword.value in MOVE_KEYWORDS and not a.star for a in node.args):
            fix = self._device_fix(node, lambda dev: _to_call(node, func, dev), "Use `.to(device)`")
        self.report(node, "`.cuda()` hard-codes the CUDA device; use `.to(device)`", fix)

    def _check_device_args(self, node: cst.Call, func: cst.BaseExpression) -> None:
        literals = [a.value for a in node.args if a.keyword is not None and a.keyword.value in DEVICE_KEYWORDS]
        if isinstance(func, cst.Attribute) and func.attr.value == "to" and node.args and node.args[0].keyword is None:
            literals.insert(0, node.args[0].value)
        for value in literals:
            if _is_cuda_string(value) and not self._silenced(node):
                if ":" in _string_value(value):  # "cuda:1": a generic `device` would change the GPU; keep it
                    fix = self._fallback_fix(value, self._torch_module(None))
                else:
                    fix = self._device_fix(value, lambda dev: dev, "Use the `device` variable")
                self.report(value, f"Hard-coded device {value.value}; use a device-agnostic `device`", fix)

    def _check_torch_device(self, node: cst.Call) -> None:
        value = next((a.value for a in node.args if a.keyword is None or a.keyword.value == "type"), None)
        if value is None or not _is_cuda_string(value) or self._silenced(node):
            return
        if _is_test_file(self.ctx.path):
            return  # tests build device objects as keys and fixtures; they allocate nothing
        fix = self._fallback_fix(value, self._torch_module(node.func)) if len(node.args) == 1 else None
        self.report(value, f"`torch.device({value.value})` hard-codes CUDA; fall back to the CPU without it", fix)

    def _check_device_assignment(self, value: cst.BaseExpression) -> None:
        node = self.ctx.node
        if not _is_cuda_string(value) or self._in_class_body(node) or self._silenced(node):
            return
        fix = self._fallback_fix(value, self._torch_module(None))
        self.report(value, f"Hard-coded device {value.value}; fall back to the CPU without CUDA", fix)

    def _check_legacy_type(self, node: cst.BaseExpression) -> None:
        tests = ("isinstance", "issubclass")
        if any(isinstance(f, cst.Name) and f.value in tests for f in _calls_around(self.ctx.stack)):
            return  # a type test allocates nothing
        if self._silenced(node):
            return
        name = self.ctx.qualname(node)
        self.report(node, f"`{name}` only exists with CUDA; create tensors with `device=device`")

    # --- silence ---

    def _silenced(self, node: cst.CSTNode) -> bool:
        """Whether `node` is device-aware or not torch code (CUDA-only code is dropped in `leave_Module`)."""
        stack = self.ctx.stack
        return (
            not self.ctx.imports.imports_torch()
            or any(isinstance(n, cst.FunctionDef) and n.name.value == "cuda" for n in stack)
            or any((self.ctx.qualname(f) or "").startswith("torch.cuda.") for f in _calls_around(stack))
            or any(isinstance(n, cst.Param) for n in stack)  # a default such as `device="cuda"`: the caller's choice
            or self._guarded(node)
        )

    def _guarded(self, node: cst.CSTNode) -> bool:
        """In a branch or under a decorator that tests for CUDA, or after a guard that stops without it."""
        tree = self.ctx.model.tree
        child = node
        for anc in tree.ancestors(node):
            if isinstance(anc, cst.If) and child is not anc.test and self._cuda_test(anc.test):
                return True
            if isinstance(anc, cst.IfExp) and child is not anc.test:
                other = anc.orelse if child is anc.body else anc.body
                if self._cuda_test(anc.test) or self._cuda_test(other):
                    return True
            if isinstance(anc, (cst.FunctionDef, cst.ClassDef)):
                if any(self._cuda_test(d.decorator) for d in anc.decorators):
                    return True
            mark = self._marks.get(id(anc))
            if mark is not None and tree.precedes(mark, child):
                return True
            child = anc
        return any(self._cuda_test(guard.test) for guard in self.ctx.model.flow.early_exits(node))

    def _cuda_test(self, expr: cst.CSTNode) -> bool:
        """Whether an expression looks at CUDA availability, a GPU flag or a device type (once per node)."""
        known = self._cuda_tests.get(id(expr))
        if known is None:
            known = self._cuda_tests[id(expr)] = _is_cuda_test(expr)
        return known

    def _mark_cuda_only(self) -> None:
        top = self.ctx.stack[1] if len(self.ctx.stack) > 1 else None
        self._cuda_only.add(id(top if isinstance(top, (cst.FunctionDef, cst.ClassDef)) else self.ctx.module))

    def _in_class_body(self, node: cst.CSTNode) -> bool:
        scope = self.ctx.model.tree.enclosing(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef))
        return isinstance(scope, cst.ClassDef)

    def _custom_cuda(self, receiver: cst.BaseExpression) -> bool:
        """Whether the receiver may be an instance of an in-file class with its own `cuda()`."""
        if self._custom is None:
            self._custom = {name for name, info in self.ctx.classes.items() if "cuda" in info.methods}
        if not self._custom:
            return False
        if _is_self(receiver):
            cls = self.ctx.class_def()
            return cls is not None and cls.name.value in self._custom
        return not self._is_torch_value(receiver, self._custom, 0)

    def _is_torch_value(self, expr: cst.BaseExpression, custom: set[str], depth: int) -> bool:
        """A tensor or module by construction: a torch call, an nn.Module, or a method chain on one."""
        if depth > 4:
            return False
        if isinstance(expr, cst.Call):
            if isinstance(expr.func, cst.Name) and expr.func.value in custom:
                return False
            if (self.ctx.qualname(expr.func) or "").startswith("torch.") or self.ctx.model.is_module(expr):
                return True
            return isinstance(expr.func, cst.Attribute) and self._is_torch_value(expr.func.value, custom, depth + 1)
        if isinstance(expr, cst.Name):
            b = self.ctx.model.binding(expr)
            value = b.value if b is not None and b.kind == "assign" else None
            return isinstance(value, cst.BaseExpression) and self._is_torch_value(value, custom, depth + 1)
        return False

    # --- fixes ---

    def _device_fix(
        self, old: cst.CSTNode, build: Callable[[cst.BaseExpression], cst.CSTNode], title: str
    ) -> Fix | None:
        target = self._device_target(self.ctx.node)
        if target is None:
            return None
        device, safety, extra = target
        return Fix(title, safety, (Replace(old, build(device)), *extra))

    def _device_target(self, node: cst.CSTNode) -> Target | None:
        """The device expression to use at `node`: an existing variable (safe) or a new global (unsafe)."""
        status = self._name_status(node)
        if status == "usable":
            return cst.Name(DEVICE), FixSafety.SAFE, ()
        self_device = self._self_device(node)
        if self_device is not None:
            return self_device, FixSafety.SAFE, ()
        return self._insertion(node) if status == "absent" else None

    def _name_status(self, node: cst.CSTNode) -> str:
        """'usable', 'blocked' or 'absent': what the name `device` means at `node`."""
        if self._in_class_body(node):
            return "blocked"
        model = self.ctx.model
        funcs = [n for n in model.tree.ancestors(node) if isinstance(n, cst.FunctionDef)]  # innermost first
        for func in funcs:
            if model.facts(func).bindings_of(DEVICE):
                b = model.names.reaching_at(DEVICE, node, func)
                return "usable" if b is not None and _usable(b, func) else "blocked"
        binds = model.facts(model.module).bindings_of(DEVICE)
        if not binds:
            return "absent"
        if funcs:
            return "usable" if all(_usable(b, None) for b in binds) else "blocked"
        b = model.names.reaching_at(DEVICE, node, model.module)
        return "usable" if b is not None and _usable(b, None) else "blocked"

    def _self_device(self, node: cst.CSTNode) -> cst.BaseExpression | None:
        """`self.device` inside a method when the class is a LightningModule or sets it in `__init__`."""
        method, info, func = self.ctx.method_name(), self.ctx.class_info(), self.ctx.function()
        if method is None or info is None or func is None or param_names(func)[:1] != ["self"]:
            return None
        attr = cst.Attribute(value=cst.Name("self"), attr=cst.Name(DEVICE))
        if info.is_lightning and method != "__init__":
            return attr
        init = info.methods.get("__init__")
        values = self.ctx.self_assignments(init, DEVICE) if init is not None else []
        if not values or any(_maybe_none(v, init) for v in values):
            return None
        order = self.ctx.model.tree.order
        if method == "__init__" and not any(order(v) < order(node) for v in values):
            return None  # used before `__init__` sets it
        return attr

    def _insertion(self, node: cst.CSTNode) -> Target | None:
        """A new module-level `device` after the last top-level import, when torch is imported there."""
        if self._plan is False:
            self._plan = _plan_insertion(self.ctx.module)
        if not self._plan:
            return None
        anchor, torch_name = self._plan  # type: ignore[misc]
        tree = self.ctx.model.tree
        deferred = tree.enclosing(node, (cst.FunctionDef, cst.Lambda)) is not None
        if not deferred and not tree.precedes(anchor, tree.path(node)[1]):
            return None  # module-level code that runs before the new line
        return cst.Name(DEVICE), FixSafety.UNSAFE, (InsertAfter(anchor, (self._new_line(torch_name),)),)

    def _new_line(self, torch_name: str) -> cst.BaseStatement:
        """`device = torch.device(...)`, parsed once per file (a node can sit in many fixes)."""
        if self._line is None:
            code = f'{DEVICE} = {torch_name}.device("cuda" if {torch_name}.cuda.is_available() else "cpu")'
            self._line = cst.parse_statement(code).with_changes(leading_lines=[cst.EmptyLine()])
        return self._line

    def _fallback_fix(self, value: cst.SimpleString, torch_module: str | None) -> Fix | None:
        """`"cuda"` -> `"cuda" if torch.cuda.is_available() else "cpu"`, spelled as the file imports torch."""
        if torch_module is None:
            return None
        quote = value.quote if len(value.quote) == 1 else '"'
        new = cst.parse_expression(f"{value.value} if {torch_module}.cuda.is_available() else {quote}cpu{quote}")
        return Fix("Fall back to the CPU without CUDA", FixSafety.SAFE, (Replace(value, new),))

    def _torch_module(self, func: cst.BaseExpression | None) -> str | None:
        """How to spell the torch module here: the receiver of `torch.device`, else an import of torch."""
        if isinstance(func, cst.Attribute) and self.ctx.qualname(func.value) == "torch":
            return dotted_name(func.value)
        spelled = self.ctx.torch_name("torch.cuda.is_available")
        if not spelled.endswith(".cuda.is_available"):
            return None
        module = spelled[: -len(".cuda.is_available")]
        return module if self.ctx.qualname(cst.parse_expression(module)) == "torch" else None


# --- helpers ---


def _is_cuda_string(node: cst.CSTNode) -> TypeGuard[cst.SimpleString]:
    return isinstance(node, cst.SimpleString) and DEVICE_RE.match(_string_value(node)) is not None


def _string_value(node: cst.SimpleString) -> str:
    value = node.evaluated_value
    return value if isinstance(value, str) else ""


def _is_cuda_test(expr: cst.CSTNode) -> bool:
    """Whether an expression looks at CUDA availability, a GPU flag or a device type."""
    for node in (expr, *iter_nodes(expr, enter_scopes=True)):
        if isinstance(node, cst.Name) and any(w in node.value.lower() for w in GUARD_WORDS):
            return True
        if isinstance(node, cst.SimpleString) and _string_value(node).lower().startswith(GUARD_STRINGS):
            return True
    return False


def _calls_around(stack: list[cst.CSTNode]) -> list[cst.BaseExpression]:
    """The callees of the calls that the node is an argument of."""
    return [n.func for n, child in zip(stack, stack[1:]) if isinstance(n, cst.Call) and isinstance(child, cst.Arg)]


def _is_test_file(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _is_device_target(target: cst.BaseExpression) -> bool:
    """`device`, `DEVICE`, `self.device`, `args.device`, `train_device`..."""
    name = target.attr.value if isinstance(target, cst.Attribute) else getattr(target, "value", "")
    name = name.lower() if isinstance(name, str) else ""
    return name == DEVICE or name.endswith("_" + DEVICE)


def _is_self(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Name):
        return expr.value == "self"
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "super"


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imported_names(node: cst.Import | cst.ImportFrom) -> list[str]:
    if isinstance(node, cst.Import):
        return [dotted_name(a.name) or "" for a in node.names]
    base = dotted_name(node.module) if node.module is not None else ""
    if isinstance(node.names, cst.ImportStar):
        return [base or ""]
    return [f"{base}.{dotted_name(a.name)}" for a in node.names]


def _param_default(func: cst.FunctionDef | None, name: str) -> cst.BaseExpression | None:
    params = (*func.params.posonly_params, *func.params.params, *func.params.kwonly_params) if func else ()
    return next((p.default for p in params if p.name.value == name), None)


def _is_none(expr: cst.CSTNode | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _usable(b: Binding, func: cst.FunctionDef | None) -> bool:
    """Whether a binding of `device` holds a device (not None, not the `torch.device` class)."""
    if b.kind == "param":
        return not _is_none(_param_default(func, DEVICE))
    if b.kind == "assign":
        return not _is_none(b.value)
    if b.kind == "import":
        return not (isinstance(b.value, cst.ImportFrom) and (dotted_name(b.value.module) or "").startswith("torch"))
    return b.kind in ("for", "with", "comp")


def _maybe_none(value: cst.CSTNode, init: cst.FunctionDef | None) -> bool:
    """`None`, or a parameter of `__init__` that defaults to None."""
    if isinstance(value, cst.Name) and value.value != "None":
        return _is_none(_param_default(init, value.value))
    return _is_none(value)


def _plan_insertion(module: cst.Module) -> Plan | None:
    """(last top-level import line, the name that binds torch there), or None."""
    imports = ImportMap()
    anchor = None
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            found = [s for s in stmt.body if isinstance(s, (cst.Import, cst.ImportFrom))]
            for s in found:
                imports.add(s)
            if found:
                anchor = stmt
    torch_name = next((local for local, full in imports.aliases.items() if full == "torch"), None)
    if anchor is None or torch_name is None:
        return None
    return anchor, torch_name


def _to_call(call: cst.Call, func: cst.Attribute, device: cst.BaseExpression) -> cst.Call:
    """`x.cuda(**kw)` -> `x.to(device, **kw)`."""
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if call.args else cst.MaybeSentinel.DEFAULT
    first = cst.Arg(value=device, comma=comma)
    return call.with_changes(func=func.with_changes(attr=cst.Name("to")), args=(first, *call.args))
