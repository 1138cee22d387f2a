"""PTL006 save-whole-model."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator, TypeGuard

import libcst as cst

from ptlint.facts.classes import LIGHTNING_BASES, MODULE_BASES
from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.imports import dotted_name
from ptlint.facts.kinds import MODEL_NAME_RE, NON_MODULE_NN, SELF_RETURNING, is_module_constructor
from ptlint.facts.walk import iter_nodes
from ptlint.rule import Fix, FixSafety, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

SAVE_NAMES = {"torch.save", "torch.serialization.save"}
# Producers of ScriptModules and exported programs: not pickled modules.
NOT_PICKLED = {
    "torch.jit.script", "torch.jit.trace", "torch.jit.trace_module", "torch.jit.load", "torch.jit.freeze",
    "torch.jit.optimize_for_inference", "torch.export.export", "torch.export.load", "torch.export.export_for_training",
}
# Calls that return their module argument (or a copy of it).
MODULE_WRAPPERS = {"copy.deepcopy", "torch.compile"}
# Calls whose last name says they return weights, not a module.
WEIGHTS_CALL_RE = re.compile(r"state_dict|weight|builder")
# Methods that tensors, optimizers and dicts lack (kinds.MODULE_ONLY_METHODS less `requires_grad_`).
MODULE_METHODS = {
    "parameters", "named_parameters", "modules", "named_modules", "children", "named_children",
    "buffers", "named_buffers", "eval", "register_forward_hook", "register_buffer",
}
# Words that mark a model-like name as data: `model_state`, `net_out`, `model_path`.
DATA_WORDS = {
    "state", "states", "dict", "sd", "weights", "weight", "params", "param", "parameters", "ckpt", "checkpoint",
    "path", "file", "filename", "dir", "name", "names", "cfg", "config", "args", "kwargs", "hparams", "out",
    "outs", "output", "outputs", "pred", "preds", "logits", "feats", "features", "emb", "embeds", "embeddings",
    "loss", "losses", "data", "info", "meta", "type", "id", "url", "tensor", "tensors", "scores", "grads",
    "stats", "results", "cache", "cp", "class", "cls",
}
CONTAINER_CALLS = {"dict", "OrderedDict", "collections.OrderedDict"}
LITERALS = (
    cst.BaseString, cst.Integer, cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Tuple, cst.Set,
    cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp,
)
ModuleHit = tuple[cst.CSTNode, list[cst.BaseExpression]]


class SaveWholeModel(Rule):
    """Pickling a whole nn.Module with torch.save.

    ## What it does
    Flags `torch.save` of an `nn.Module` object: `torch.save(model, path)`, `model.module`
    of a DataParallel/DDP wrapper, model-zoo constructors, and modules nested in a checkpoint
    dict or list such as `{"model": model, "epoch": epoch}`.

    A module is recognized by evidence (`torch.nn` layers, in-file subclasses, `torchvision.models`,
    `timm.create_model`, parameter annotations) or by a conventional name such as `model` or `net`.
    A checkpoint dict built in a variable first (`ckpt = {...}; ckpt["ema"] = ema`) is checked too.
    State dicts, tensors, optimizers, ScriptModules and exported programs are not flagged.

    ## Why is this bad?
    Saving a module pickles the object, so the file is bound to the exact classes and
    directory layout that existed at save time and breaks when the code moves or changes.
    It cannot be loaded with `torch.load(..., weights_only=True)`, the default since
    torch 2.6, and loading pickles from untrusted sources can execute arbitrary code.
    Save the `state_dict()` instead and load it into a freshly built model.

    ## Example
    ```python
    torch.save(model, "model.pt")
    torch.save({"model": model.module, "epoch": epoch}, "ckpt.pt")
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    torch.save({"model": model.module.state_dict(), "epoch": epoch}, "ckpt.pt")
    ```

    ## Fix safety
    Unsafe: the file format changes, so code that loads the checkpoint must build the model
    and call `load_state_dict` on what `torch.load` returns. Saving a DDP or `torch.compile`
    wrapper's `state_dict()` also prefixes the keys (`module.`, `_orig_mod.`).

    ## References
    - [Saving and loading models](https://pytorch.org/tutorials/beginner/saving_loading_models.html)
    - [torch.load weights_only](https://pytorch.org/docs/stable/generated/torch.load.html)
    - Bandit B614
    """

    code = "PTL006"
    name = "save-whole-model"
    message = "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("save",)
    contract = "E3"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._reported: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in SAVE_NAMES:
            return
        saved = _saved_value(node)
        if saved is None:
            return
        for value in self._checkpoint_values(saved):
            for target, leaves in self._hits(value):
                if id(target) not in self._reported:
                    self._reported.add(id(target))
                    edits = tuple(Replace(leaf, _state_dict_of(leaf)) for leaf in leaves)
                    self.report(target, fix=Fix("Save the module's `state_dict()`", FixSafety.UNSAFE, edits))

    # --- what is saved ---

    def _checkpoint_values(self, saved: cst.BaseExpression) -> list[cst.CSTNode]:
        """The saved expression, or for a name assigned a dict/list: its literal and `name[k] = v` values."""
        if not isinstance(saved, cst.Name):
            return [saved]
        facts = self.ctx.scope_facts()
        binding = facts.reaching(saved.value, saved)
        if binding is None or binding.kind != "assign" or binding.value is None or not _is_container(binding.value):
            return [saved]
        values = [binding.value]
        for node in iter_nodes(facts.scope):
            if _is_item_assign(node, saved.value) and binding.order < facts.order_of(node) < facts.order_of(saved):
                values.append(node.value)
        return values

    def _hits(self, value: cst.CSTNode) -> Iterator[ModuleHit]:
        """(where to report, module expressions to fix) for each module in the saved object."""
        if isinstance(value, cst.Dict):
            for el in value.elements:
                if isinstance(el, cst.DictElement):
                    yield from self._hits(el.value)
        elif isinstance(value, (cst.List, cst.Tuple)):
            for el in value.elements:
                if isinstance(el, cst.Element):
                    yield from self._hits(el.value)
        elif isinstance(value, cst.Call) and _is_container(value):
            for arg in value.args:
                if arg.keyword is not None:
                    yield from self._hits(arg.value)
        elif isinstance(value, cst.IfExp):
            yield from self._ifexp_hits(value)
        elif isinstance(value, cst.BaseExpression) and self._is_module(value):
            yield value, [value]

    def _ifexp_hits(self, node: cst.IfExp) -> Iterator[ModuleHit]:
        """One hit for `a.module if ddp else a`, else the hits of each branch."""
        branches = (node.body, node.orelse)
        found = [list(self._hits(b)) for b in branches]
        if all(len(f) == 1 and f[0][0] is b for f, b in zip(found, branches)):
            yield node, [leaf for f in found for leaf in f[0][1]]
        else:
            for f in found:
                yield from f

    # --- is it a module? ---

    def _is_module(self, expr: cst.CSTNode) -> bool:
        if isinstance(expr, cst.Call):
            return self._call_is_module(expr)
        if isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name) and expr.value.value == "self":
                return self._self_attr_is_module(expr.attr.value)
            return expr.attr.value == "module" and self._is_module(expr.value)
        if isinstance(expr, cst.Name):
            return self._name_is_module(expr)
        return False

    def _call_is_module(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in SELF_RETURNING:
            return self._is_module(func.value)
        if isinstance(func, cst.Attribute) and func.attr.value == "unwrap_model":
            return True
        if self._not_pickled(call):
            return False
        if self.ctx.qualname(func) in MODULE_WRAPPERS:
            return bool(call.args) and self._is_module(call.args[0].value)
        return is_module_constructor(self.ctx, call)

    def _not_pickled(self, value: cst.CSTNode) -> bool:
        """A literal, a ScriptModule or exported program, or a call that returns weights."""
        value = _strip_self_returning(value)
        if isinstance(value, LITERALS) or _is_constant(value):
            return True
        if not isinstance(value, cst.Call):
            return False
        q = self.ctx.qualname(value.func) or self.ctx.dotted(value.func) or ""
        return q in NOT_PICKLED or bool(WEIGHTS_CALL_RE.search(q.rsplit(".", 1)[-1]))

    def _name_is_module(self, name: cst.Name) -> bool:
        if name.value == "self":
            info = self.ctx.class_info()
            return info is not None and info.is_module and self.ctx.function() is not None
        facts, binding = self._lookup(name)
        if binding is None or facts is None:
            return _conventional(name.value)
        if binding.kind == "param":
            verdict = self._param_verdict(binding.stmt, name.value)
            return verdict if verdict is not None else _conventional(name.value) or _used_as_module(facts, name.value)
        if binding.kind != "assign":
            return False
        if binding.value is None:  # tuple unpacking: `model, opt = accelerator.prepare(model, opt)`
            return _conventional(name.value)
        return self._value_is_module(binding.value, facts, name.value)

    def _value_is_module(self, value: cst.CSTNode, facts: ScopeFacts, name: str) -> bool:
        if self._not_pickled(value):
            return False
        if self._is_module(value):
            return True
        # An unknown factory: trust a conventional name only with module-only usage.
        return isinstance(value, cst.Call) and _conventional(name) and _used_as_module(facts, name)

    def _self_attr_is_module(self, attr: str) -> bool:
        """`self.attr`, by what the methods of the class assign to it, else by its name."""
        info = self.ctx.class_info()
        methods = info.methods.values() if info is not None else ()
        values = [v for m in methods for v in self.ctx.self_assignments(m, attr) if not _is_constant(v)]
        if any(self._is_module(v) for v in values):
            return True
        if any(self._not_pickled(v) for v in values):
            return False
        return _conventional(attr)

    def _lookup(self, name: cst.Name) -> tuple[ScopeFacts | None, Binding | None]:
        """The binding that reaches `name` in its scope, else the last one of an enclosing function or module."""
        anchor_found = False
        for scope in reversed([self.ctx.module, *self.ctx.functions()]):
            facts = self.ctx.scope_facts(scope)
            if not anchor_found:
                if facts.order_of(name) == -1:
                    continue
                anchor_found = True
                if facts.bindings_of(name.value):
                    return facts, facts.reaching(name.value, name)
            elif facts.bindings_of(name.value):
                return facts, facts.bindings_of(name.value)[-1]
        return None, None

    def _param_verdict(self, func: cst.CSTNode, name: str) -> bool | None:
        """What a parameter's annotation says: a module class, another type, or nothing."""
        if not isinstance(func, cst.FunctionDef):
            return None
        params = func.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            if p.name.value == name and p.annotation is not None:
                return self._is_module_class(p.annotation.annotation)
        return None

    def _is_module_class(self, ann: cst.BaseExpression) -> bool | None:
        """Whether an annotation names a module class; `Optional[X]` and `X | None` count as `X`."""
        if isinstance(ann, cst.BinaryOperation) and isinstance(ann.operator, cst.BitOr) and _is_constant(ann.right):
            ann = ann.left
        if isinstance(ann, cst.Subscript):
            inner = ann.slice[0].slice if ann.slice else None
            optional = (self.ctx.dotted(ann.value) or "").endswith("Optional")
            ann = inner.value if optional and isinstance(inner, cst.Index) else ann.value
        q = self.ctx.qualname(ann) or self.ctx.dotted(ann)
        if q is None:
            return None
        info = self.ctx.classes.get(q)
        if info is not None:
            return info.is_module
        parts = q.split(".")
        in_nn = q.startswith("torch.nn.") and not NON_MODULE_NN.intersection(parts) and parts[-1][:1].isupper()
        return q in MODULE_BASES or q in LIGHTNING_BASES or in_nn


def _saved_value(call: cst.Call) -> cst.BaseExpression | None:
    """The `obj` argument of a `torch.save` call: the first positional one or `obj=`."""
    if call.args and not call.args[0].star and call.args[0].keyword is None:
        return call.args[0].value
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "obj"), None)


def _is_container(value: cst.CSTNode) -> bool:
    """A dict/list/tuple literal, or a `dict(...)`/`OrderedDict(...)` call."""
    if isinstance(value, (cst.Dict, cst.List, cst.Tuple)):
        return True
    return isinstance(value, cst.Call) and (dotted_name(value.func) or "") in CONTAINER_CALLS


def _is_item_assign(node: cst.CSTNode, name: str) -> TypeGuard[cst.Assign]:
    """`name[key] = value`."""
    if not isinstance(node, cst.Assign) or len(node.targets) != 1:
        return False
    target = node.targets[0].target
    return isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and target.value.value == name


def _strip_self_returning(value: cst.CSTNode) -> cst.CSTNode:
    """`x` for `x.to(device).eval()`."""
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        if value.func.attr.value not in SELF_RETURNING:
            break
        value = value.func.value
    return value


def _is_constant(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Name) and node.value in ("None", "True", "False")


def _conventional(name: str) -> bool:
    """A conventional module name (`model`, `net`, `*_model`) that no data word qualifies."""
    words = {w.lower() for w in re.findall(r"[a-z]+|[A-Z][a-z]*", name)}
    return MODEL_NAME_RE.match(name) is not None and not words & DATA_WORDS


def _used_as_module(facts: ScopeFacts, name: str) -> bool:
    return bool(facts.attrs_used(name) & MODULE_METHODS)


def _state_dict_of(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`expr.state_dict()`, keeping the parentheses around `expr` outside."""
    call = cst.Call(func=cst.Attribute(value=expr.with_changes(lpar=[], rpar=[]), attr=cst.Name("state_dict")))
    return call.with_changes(lpar=expr.lpar, rpar=expr.rpar)
