"""PTL005 hardcoded-cuda."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, TypeGuard

import libcst as cst

from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.facts.walk import iter_nodes
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, Replace, Rule

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
TERMINAL_CALLS = {"exit", "_exit", "quit", "abort", "skip", "skipTest", "fail"}

Target = tuple[cst.BaseExpression, FixSafety, tuple[Edit, ...]]
Plan = tuple[cst.SimpleStatementLine, int, str]


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
    `device = "cuda"` get a safe CPU fallback: `"cuda" if torch.cuda.is_available() else "cpu"`.
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
        self._cuda_only: tuple[bool, set[int]] | None = None
        self._plan: Plan | None = _plan_insertion(ctx.module)

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
        if node.attr.value.endswith("Tensor") and self.ctx.qualname(node) in LEGACY_TYPES:
            self._check_legacy_type(node)

    def visit_Name(self, node: cst.Name) -> None:
        if not node.value.endswith("Tensor") or self.ctx.qualname(node) not in LEGACY_TYPES:
            return
        parent = self.ctx.parent()
        if not (isinstance(parent, cst.Attribute) and parent.attr is node) and not _in_import(self.ctx.stack):
            self._check_legacy_type(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(_is_device_target(t.target) for t in node.targets):
            self._check_device_assignment(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and _is_device_target(node.target):
            self._check_device_assignment(node.value)

    # --- checks ---

    def _check_cuda_call(self, node: cst.Call, func: cst.Attribute) -> None:
        receiver = func.value
        if self.ctx.qualname(receiver) is not None or self._custom_cuda(receiver) or self._silenced():
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
            if _is_cuda_string(value) and not self._silenced():
                fix = self._device_fix(value, lambda dev: dev, "Use the `device` variable")
                self.report(value, f"Hard-coded device {value.value}; use a device-agnostic `device`", fix)

    def _check_torch_device(self, node: cst.Call) -> None:
        value = next((a.value for a in node.args if a.keyword is None or a.keyword.value == "type"), None)
        if value is None or not _is_cuda_string(value) or self._silenced():
            return
        if _is_test_file(self.ctx.path):
            return  # tests build device objects as keys and fixtures; they allocate nothing
        fix = self._fallback_fix(value, self._torch_module(node.func)) if len(node.args) == 1 else None
        self.report(value, f"`torch.device({value.value})` hard-codes CUDA; fall back to the CPU without it", fix)

    def _check_device_assignment(self, value: cst.BaseExpression) -> None:
        if not _is_cuda_string(value) or _in_class_body(self.ctx.stack) or self._silenced():
            return
        fix = self._fallback_fix(value, self._torch_module(None))
        self.report(value, f"Hard-coded device {value.value}; fall back to the CPU without CUDA", fix)

    def _check_legacy_type(self, node: cst.BaseExpression) -> None:
        if _in_type_test(self.ctx.stack) or self._silenced():
            return
        name = self.ctx.qualname(node)
        self.report(node, f"`{name}` only exists with CUDA; create tensors with `device=device`")

    # --- silence ---

    def _silenced(self) -> bool:
        """Whether the current node is device-aware, CUDA-only by design, or not torch code."""
        stack = self.ctx.stack
        return (
            not self.ctx.imports.imports_torch()
            or any(isinstance(n, cst.FunctionDef) and n.name.value == "cuda" for n in stack)
            or _in_torch_cuda_call(self.ctx, stack)
            or _in_param_default(stack)
            or self._guarded(stack)
            or self._in_cuda_only_code(stack)
        )

    def _guarded(self, stack: list[cst.CSTNode]) -> bool:
        for i, node in enumerate(stack[:-1]):
            child = stack[i + 1]
            if isinstance(node, cst.If) and child is not node.test and _is_cuda_test(node.test):
                return True
            if isinstance(node, cst.IfExp) and child is not node.test:
                other = node.orelse if child is node.body else node.body
                if _is_cuda_test(node.test) or _is_cuda_test(other):
                    return True
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                if any(_is_cuda_test(d.decorator) for d in node.decorators):
                    return True
            if isinstance(node, (cst.Module, cst.IndentedBlock)) and _after_guard(node.body, child):
                return True
        return False

    def _in_cuda_only_code(self, stack: list[cst.CSTNode]) -> bool:
        if self._cuda_only is None:
            self._cuda_only = self._find_cuda_only()
        whole_file, scopes = self._cuda_only
        return whole_file or (len(stack) > 1 and id(stack[1]) in scopes)

    def _find_cuda_only(self) -> tuple[bool, set[int]]:
        """(whole file, top-level defs/classes) that use CUDA-only APIs."""
        scopes: set[int] = set()
        whole_file = False
        for stmt in self.ctx.module.body:
            if any(self._is_cuda_only_node(n) for n in iter_nodes(stmt, enter_scopes=True)):
                if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                    scopes.add(id(stmt))
                else:
                    whole_file = True
        return whole_file, scopes

    def _is_cuda_only_node(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            return any(_matches(name, CUDA_ONLY_NAMES) for name in _imported_names(node))
        if isinstance(node, (cst.Attribute, cst.Name)):
            return _matches(self.ctx.qualname(node) or "", CUDA_ONLY_NAMES)
        return False

    def _custom_cuda(self, receiver: cst.BaseExpression) -> bool:
        """Whether the receiver may be an instance of an in-file class with its own `cuda()`."""
        custom = {name for name, info in self.ctx.classes.items() if "cuda" in info.methods}
        if not custom:
            return False
        if _is_self(receiver):
            cls = self.ctx.class_def()
            return cls is not None and cls.name.value in custom
        return not self._is_torch_value(receiver, custom, 0)

    def _is_torch_value(self, expr: cst.BaseExpression, custom: set[str], depth: int) -> bool:
        """A tensor or module by construction: a torch call, an nn.Module, or a method chain on one."""
        if depth > 4:
            return False
        if isinstance(expr, cst.Call):
            if isinstance(expr.func, cst.Name) and expr.func.value in custom:
                return False
            if (self.ctx.qualname(expr.func) or "").startswith("torch.") or self.ctx.is_module_expr(expr):
                return True
            return isinstance(expr.func, cst.Attribute) and self._is_torch_value(expr.func.value, custom, depth + 1)
        if isinstance(expr, cst.Name):
            b = self.ctx.reaching(expr)
            value = b.value if b is not None and b.kind == "assign" else None
            return isinstance(value, cst.BaseExpression) and self._is_torch_value(value, custom, depth + 1)
        return False

    # --- fixes ---

    def _device_fix(
        self, old: cst.CSTNode, build: Callable[[cst.BaseExpression], cst.CSTNode], title: str
    ) -> Fix | None:
        target = self._device_target()
        if target is None:
            return None
        device, safety, extra = target
        return Fix(title, safety, (Replace(old, build(device)), *extra))

    def _device_target(self) -> Target | None:
        """The device expression to use here: an existing variable (safe) or a new global (unsafe)."""
        status = self._name_status()
        if status == "usable":
            return cst.Name(DEVICE), FixSafety.SAFE, ()
        self_device = self._self_device()
        if self_device is not None:
            return self_device, FixSafety.SAFE, ()
        return self._insertion() if status == "absent" else None

    def _name_status(self) -> str:
        """'usable', 'blocked' or 'absent': what the name `device` means at the current node."""
        stack = self.ctx.stack
        if _in_class_body(stack):
            return "blocked"
        funcs = [n for n in stack if isinstance(n, cst.FunctionDef)]
        for func in reversed(funcs):
            facts = self.ctx.scope_facts(func)
            if facts.bindings_of(DEVICE):
                b = facts.reaching(DEVICE, _ordered(facts, stack))
                return "usable" if b is not None and _usable(b, func) else "blocked"
        facts = self.ctx.module_facts()
        binds = facts.bindings_of(DEVICE)
        if not binds:
            return "absent"
        if funcs:
            return "usable" if all(_usable(b, None) for b in binds) else "blocked"
        b = facts.reaching(DEVICE, _ordered(facts, stack))
        return "usable" if b is not None and _usable(b, None) else "blocked"

    def _self_device(self) -> cst.BaseExpression | None:
        """`self.device` inside a method when the class is a LightningModule or sets it in `__init__`."""
        method, info, func = self.ctx.method_name(), self.ctx.class_info(), self.ctx.function()
        if method is None or info is None or func is None or not _first_param_is_self(func):
            return None
        attr = cst.Attribute(value=cst.Name("self"), attr=cst.Name(DEVICE))
        if info.is_lightning and method != "__init__":
            return attr
        init = info.methods.get("__init__")
        values = self.ctx.self_assignments(init, DEVICE) if init is not None else []
        if not values or any(_maybe_none(v, init) for v in values):
            return None
        if method == "__init__":
            facts = self.ctx.scope_facts(init)
            at = facts.order_of(_ordered(facts, self.ctx.stack))
            if not any(facts.order_of(v) < at for v in values):
                return None
        return attr

    def _insertion(self) -> Target | None:
        """A new module-level `device` after the last top-level import, when torch is imported there."""
        if self._plan is None:
            return None
        anchor, index, torch_name = self._plan
        stack = self.ctx.stack
        deferred = any(isinstance(n, (cst.FunctionDef, cst.Lambda)) for n in stack)
        if not deferred and _body_index(self.ctx.module, stack[1]) <= index:
            return None
        stmt = cst.parse_statement(
            f'{DEVICE} = {torch_name}.device("cuda" if {torch_name}.cuda.is_available() else "cpu")'
        ).with_changes(leading_lines=[cst.EmptyLine()])
        return cst.Name(DEVICE), FixSafety.UNSAFE, (InsertAfter(anchor, (stmt,)),)

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


def _after_guard(body: tuple[cst.CSTNode, ...] | list[cst.CSTNode], child: cst.CSTNode) -> bool:
    """Whether a statement before `child` in `body` exits early or asserts when CUDA is missing."""
    for stmt in body:
        if stmt is child:
            return False
        if isinstance(stmt, cst.If) and _is_cuda_test(stmt.test) and _exits(stmt.body):
            return True
        if isinstance(stmt, cst.SimpleStatementLine) and any(_is_guard_line(s) for s in stmt.body):
            return True
    return False


def _is_guard_line(stmt: cst.BaseSmallStatement) -> bool:
    """`assert torch.cuda.is_available()` or `pytestmark = pytest.mark.skipif(...)`."""
    if isinstance(stmt, cst.Assert):
        return _is_cuda_test(stmt.test)
    if isinstance(stmt, cst.Assign):
        named = any(isinstance(t.target, cst.Name) and t.target.value == "pytestmark" for t in stmt.targets)
        return named and _is_cuda_test(stmt.value)
    return False


def _exits(block: cst.BaseSuite) -> bool:
    last = block.body[-1] if block.body else None
    if isinstance(last, cst.SimpleStatementLine):
        last = last.body[-1]
    if isinstance(last, (cst.Raise, cst.Return, cst.Continue, cst.Break)):
        return True
    if isinstance(last, cst.Expr) and isinstance(last.value, cst.Call):
        name = dotted_name(last.value.func) or ""
        return name.split(".")[-1] in TERMINAL_CALLS
    return False


def _in_torch_cuda_call(ctx: Context, stack: list[cst.CSTNode]) -> bool:
    """Whether the node is an argument of a `torch.cuda.*` call."""
    for node, child in zip(stack, stack[1:]):
        if isinstance(node, cst.Call) and isinstance(child, cst.Arg):
            if (ctx.qualname(node.func) or "").startswith("torch.cuda."):
                return True
    return False


def _in_type_test(stack: list[cst.CSTNode]) -> bool:
    """Whether the node is an argument of `isinstance` / `issubclass`."""
    for node, child in zip(stack, stack[1:]):
        if isinstance(node, cst.Call) and isinstance(child, cst.Arg) and isinstance(node.func, cst.Name):
            if node.func.value in ("isinstance", "issubclass"):
                return True
    return False


def _in_param_default(stack: list[cst.CSTNode]) -> bool:
    """A parameter default such as `device=torch.device("cuda")` is configuration the caller overrides."""
    return any(isinstance(n, cst.Param) for n in stack)


def _is_test_file(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _in_import(stack: list[cst.CSTNode]) -> bool:
    return any(isinstance(n, (cst.Import, cst.ImportFrom)) for n in stack)


def _in_class_body(stack: list[cst.CSTNode]) -> bool:
    """Whether the innermost scope around the node is a class body."""
    for node in reversed(stack):
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return False
        if isinstance(node, cst.ClassDef):
            return True
    return False


def _is_device_target(target: cst.BaseExpression) -> bool:
    """`device`, `DEVICE`, `self.device`, `args.device`, `train_device`..."""
    if isinstance(target, cst.Attribute):
        name = target.attr.value.lower()
    elif isinstance(target, cst.Name):
        name = target.value.lower()
    else:
        return False
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


def _ordered(facts: ScopeFacts, stack: list[cst.CSTNode]) -> cst.CSTNode:
    """The innermost node of the stack that the scope's def-use facts number."""
    for node in reversed(stack):
        if facts.order_of(node) != -1:
            return node
    return stack[-1]


def _param_default(func: cst.FunctionDef | None, name: str) -> cst.BaseExpression | None:
    if func is None:
        return None
    params = func.params
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        if p.name.value == name:
            return p.default
    return None


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


def _first_param_is_self(func: cst.FunctionDef) -> bool:
    params = (*func.params.posonly_params, *func.params.params)
    return bool(params) and params[0].name.value == "self"


def _body_index(module: cst.Module, stmt: cst.CSTNode) -> int:
    return next((i for i, s in enumerate(module.body) if s is stmt), -1)


def _plan_insertion(module: cst.Module) -> Plan | None:
    """(last top-level import line, its index, the name that binds torch there), or None."""
    imports = ImportMap()
    anchor, index = None, -1
    for i, stmt in enumerate(module.body):
        if isinstance(stmt, cst.SimpleStatementLine):
            found = [s for s in stmt.body if isinstance(s, (cst.Import, cst.ImportFrom))]
            for s in found:
                imports.add(s)
            if found:
                anchor, index = stmt, i
    torch_name = next((local for local, full in imports.aliases.items() if full == "torch"), None)
    if anchor is None or torch_name is None:
        return None
    return anchor, index, torch_name


def _to_call(call: cst.Call, func: cst.Attribute, device: cst.BaseExpression) -> cst.Call:
    """`x.cuda(**kw)` -> `x.to(device, **kw)`."""
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if call.args else cst.MaybeSentinel.DEFAULT
    first = cst.Arg(value=device, comma=comma)
    return call.with_changes(func=func.with_changes(attr=cst.Name("to")), args=(first, *call.args))
