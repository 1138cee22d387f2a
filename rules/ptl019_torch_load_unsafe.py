"""PTL019 torch-load-unsafe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.callargs import append_keyword, deliberate_fallback, has_star_args, has_star_kwargs, keyword, positional
from ptlint.facts.kinds import MODULE_ONLY_METHODS, conventional_model_name
from ptlint.rule import Fix, FixSafety, RawFinding, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

LOAD_NAMES = ("torch.load", "torch.serialization.load")
SAVE_NAMES = ("torch.save", "torch.serialization.save")
WEIGHTS_ONLY_SINCE = (1, 13)  # the first torch with `weights_only`
SAFE_DEFAULT_SINCE = (2, 6)  # the first torch whose default is `weights_only=True`
DEFAULT_SOURCE = "the default target"
# `torch.load` keywords that work the same with `weights_only=True`; others are pickle options.
LOAD_KEYWORDS = {"f", "map_location", "mmap", "pickle_module", "weights_only"}
# Calls that build a plain dict, which `weights_only=True` loads.
DICT_CALLS = {"dict", "vars", "asdict", "OrderedDict"}
# Saved objects that only a full unpickler loads: argparse namespaces, configs, optimizers.
PICKLED_NAMES = {"args", "opt", "opts", "options", "config", "cfg", "hparams", "namespace", "optimizer", "scheduler"}


@dataclass
class _Load:
    call: cst.Call
    stmt: cst.CSTNode | None
    guard: str | None
    pickle_module: bool
    withheld: str | None


class TorchLoadUnsafe(Rule):
    """`torch.load` that may unpickle arbitrary objects.

    ## What it does
    Flags `torch.load` calls that do not pass `weights_only`: on torch older than 2.6, and with
    `pickle_module=` on any version, they load the file with the full pickle machinery.

    The rule reads the torch version the project targets (`target-torch-version`, else the
    project's own torch pin). When that version is 2.6 or newer, a plain `torch.load(path)`
    already defaults to `weights_only=True` and is not reported; without a declared version it
    is. Calls that pass `weights_only` (any value, on any line of the call) or `**kwargs` are
    never reported, and neither is the old-torch fallback of a `try`/`except TypeError` or
    version check whose other branch passes `weights_only`.

    ## Why is this bad?
    Unpickling runs code chosen by whoever wrote the file (CWE-502): a downloaded checkpoint
    can execute commands on your machine. `weights_only=True` restricts loading to tensors,
    primitive types and dicts, lists and tuples of them, which is all a `state_dict`
    checkpoint needs. The default changed in torch 2.6, so the same call is safe on one
    install and unsafe on another.

    ## Example
    ```python
    state = torch.load("checkpoint.pt", map_location="cpu")
    model.load_state_dict(state["model"])
    ```

    ## Use instead
    ```python
    state = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    ```

    ## Fix safety
    Unsafe: adds `weights_only=True`, so files that hold anything beyond tensors and plain
    containers (whole modules, argparse namespaces, numpy scalars, custom classes) no longer load.
    The fix is withheld, and the message says why, when the same file saves whole modules or
    other pickled objects with `torch.save` (see PTL006), when the result is used as a module
    (`model = torch.load(path)`), with `pickle_module=`, `encoding=` or other pickle options,
    inside compatibility code, and when the targeted torch is older than 1.13, which lacks
    `weights_only`. Files saved by other files of the project are not checked.

    ## References
    - [torch.load](https://pytorch.org/docs/stable/generated/torch.load.html)
    - [weights_only serialization](https://pytorch.org/docs/stable/notes/serialization.html#weights-only)
    - [CWE-502: Deserialization of untrusted data](https://cwe.mitre.org/data/definitions/502.html)
    - Bandit B614
    """

    code = "PTL019"
    name = "torch-load-unsafe"
    message = "`torch.load` without `weights_only=True` unpickles arbitrary objects on torch < 2.6"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("load",)
    contract = "E3"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._pickled_saves = 0  # torch.save calls of whole modules or other pickled objects
        self._loads: list[_Load] = []

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func)
        if qual in SAVE_NAMES:
            if _saves_pickled_object(node) or self.ctx.model.checkpoints.saved_modules(node):
                self._pickled_saves += 1
        elif qual in LOAD_NAMES:
            self._check_load(node)

    def visit_Dict(self, node: cst.Dict) -> None:
        values = [e.value for e in node.elements if isinstance(e, cst.DictElement)]
        if any(_is_state_dict_call(v) for v in values) and any(self._pickled(v) for v in values):
            self._pickled_saves += 1  # a checkpoint dict that also holds an argparse namespace or optimizer

    def leave_Module(self, node: cst.Module) -> None:
        saves_objects = self._pickled_saves > 0
        for load in self._loads:
            message, fix = self._verdict(load, saves_objects)
            self.reports.append(RawFinding(self, load.call, message, fix, load.stmt))

    # --- checks ---

    def _check_load(self, call: cst.Call) -> None:
        if keyword(call, "weights_only") is not None or has_star_kwargs(call):
            return
        pickle_module = keyword(call, "pickle_module") is not None or len(positional(call)) >= 3
        version, source = self.ctx.target_torch()
        if not pickle_module and source != DEFAULT_SOURCE and version >= SAFE_DEFAULT_SINCE:
            return  # the targeted torch already defaults to weights_only=True
        guard = self.ctx.compat_guard()
        if guard is not None and deliberate_fallback(self.ctx, LOAD_NAMES, "weights_only"):
            return
        withheld = None
        if self._result_is_module(call):
            withheld = "the result is used as a module, which `weights_only=True` cannot load"
        self._loads.append(_Load(call, self.ctx.statement(), guard, pickle_module, withheld))

    def _verdict(self, load: _Load, saves_objects: bool) -> tuple[str, Fix | None]:
        call = load.call
        version, source = self.ctx.target_torch()
        if load.pickle_module:
            message = "`torch.load` with `pickle_module=` unpickles arbitrary objects on every torch version"
            return message + "; no fix: `weights_only=True` cannot be combined with `pickle_module`", None
        if source == DEFAULT_SOURCE:
            message = self.message
        else:
            spelled = f"{version[0]}.{version[1]}"
            message = f"`torch.load` without `weights_only=True` unpickles arbitrary objects ({source} is {spelled})"
        reason = self._withheld(load, saves_objects, version, source)
        if reason is not None:
            return f"{message}; fix withheld: {reason}", None
        new = append_keyword(call, "weights_only", cst.Name("True"))
        return message, Fix("Pass `weights_only=True`", FixSafety.UNSAFE, (Replace(call, new),))

    def _withheld(self, load: _Load, saves_objects: bool, version: tuple[int, int], source: str) -> str | None:
        call = load.call
        if version < WEIGHTS_ONLY_SINCE:
            return f"`weights_only` needs torch 1.13, {source} is {version[0]}.{version[1]}"
        if load.guard is not None:
            return load.guard
        if saves_objects:
            return (
                "this file saves whole modules or other pickled objects (see PTL006), "
                "which `weights_only=True` cannot load"
            )
        if load.withheld is not None:
            return load.withheld
        given = [a.keyword.value for a in call.args if a.keyword is not None]
        extra = sorted(k for k in given if k not in LOAD_KEYWORDS)
        if extra:
            return f"`{extra[0]}=` only works with `weights_only=False`"
        if has_star_args(call):
            return "`*args` may pass `pickle_module`"
        return None

    def _pickled(self, value: cst.BaseExpression) -> bool:
        """A namespace-like name (`args`, `config`) unless every binding of it in scope builds a dict."""
        if not _pickled_name(value):
            return False
        if not isinstance(value, cst.Name):
            return True
        name = value.value
        bindings = [*self.ctx.scope_facts().bindings_of(name), *self.ctx.module_facts().bindings_of(name)]
        return not bindings or not all(b.kind == "assign" and _builds_dict(b.value) for b in bindings)

    def _result_is_module(self, call: cst.Call) -> bool:
        """`model = torch.load(p)`, or a name bound to the load that is used like a module or called."""
        stmt = self.ctx.statement()
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return False
        small = stmt.body[0]
        model = self.ctx.model
        if not isinstance(small, cst.Assign) or len(small.targets) != 1 or model.torch.unwrap(small.value) is not call:
            return False
        target = small.targets[0].target
        if isinstance(target, cst.Attribute):
            return conventional_model_name(target.attr.value)
        if not isinstance(target, cst.Name):
            return False
        facts = model.facts_at(call)
        if conventional_model_name(target.value) or facts.attrs_used(target.value) & MODULE_ONLY_METHODS:
            return True
        # A loaded dict or tensor is never called, a loaded module is (here or in a nested function).
        scope = model.tree.scope(call)
        reads = (n for n in model.tree.names(target.value) if model.tree.contains(scope, n))
        return any(_called(model.tree.parent(n), n) for n in reads)

def _saves_pickled_object(call: cst.Call) -> bool:
    """`torch.save(args, p)` or a checkpoint dict/list that holds an argparse namespace, config or optimizer."""
    if not call.args or call.args[0].keyword is not None or call.args[0].star:
        return False
    value = call.args[0].value
    if isinstance(value, cst.Dict):
        values = [e.value for e in value.elements if isinstance(e, cst.DictElement)]
    elif isinstance(value, (cst.List, cst.Tuple)):
        values = [e.value for e in value.elements if isinstance(e, cst.Element)]
    else:
        values = [value]
    return any(_pickled_name(v) for v in values)


def _builds_dict(value: cst.CSTNode | None) -> bool:
    """`{...}`, a dict comprehension, `dict(...)`, `vars(...)` or `asdict(...)`."""
    if isinstance(value, (cst.Dict, cst.DictComp)):
        return True
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in DICT_CALLS


def _is_state_dict_call(value: cst.BaseExpression) -> bool:
    func = value.func if isinstance(value, cst.Call) else None
    return isinstance(func, cst.Attribute) and func.attr.value == "state_dict"


def _pickled_name(value: cst.BaseExpression) -> bool:
    name = value.attr.value if isinstance(value, cst.Attribute) else value.value if isinstance(value, cst.Name) else ""
    return name in PICKLED_NAMES or name.endswith(("_class", "_cls"))  # a class or its config: pickled


def _called(parent: cst.CSTNode | None, node: cst.CSTNode) -> bool:
    return isinstance(parent, cst.Call) and parent.func is node
