"""Light type evidence: is an expression an nn.Module, a tensor, an optimizer...?"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.facts.imports import dotted_name

if TYPE_CHECKING:
    from ptlint.semantic import Model

MODEL_NAME_RE = re.compile(
    r"^(model|net|network|module|teacher|student|classifier|backbone|encoder|decoder|generator|"
    r"discriminator|critic|actor|policy|ema_model|model_ema|netG|netD|G|D|"
    r"[a-z0-9_]*_(model|net|network|classifier|encoder|decoder)|(model|net)_[a-z0-9_]+|(model|net)\d+)$"
)
# Methods that only nn.Module instances (among the usual training objects) have.
MODULE_ONLY_METHODS = {
    "parameters", "named_parameters", "modules", "named_modules", "children", "named_children",
    "buffers", "named_buffers", "eval", "register_forward_hook", "register_buffer",
}
# Words that mark a model-like name as data about a model (`model_state_dict`, `net_out`, `model_path`).
DATA_WORDS = re.compile(r"(state|dict|sd|path|dir|file|name|cfg|config|out|output|outputs|args|kwargs|type|fn|id|ckpt|weights?|url)$")
# The same, as any word of the name (`model_preds`, `net_features`, `model_class`).
DATA_WORD_SET = {
    "state", "states", "dict", "sd", "weights", "weight", "params", "param", "parameters", "ckpt", "checkpoint",
    "path", "file", "filename", "dir", "name", "names", "cfg", "config", "args", "kwargs", "hparams", "out",
    "outs", "output", "outputs", "pred", "preds", "logits", "feats", "features", "emb", "embeds", "embeddings",
    "loss", "losses", "data", "info", "meta", "type", "id", "url", "tensor", "tensors", "scores", "grads",
    "stats", "results", "cache", "cp", "class", "cls", "device",
}
# First words of function and method names that act on a model (`build_model`, `print_network`).
ACTION_WORDS = {
    "print", "load", "save", "get", "build", "create", "init", "make", "set", "define", "prepare", "wrap",
    "unwrap", "compute", "update", "setup", "show", "log", "reset", "freeze", "export", "convert",
}
# Calls on a module that return the module itself.
SELF_RETURNING = {"to", "cuda", "cpu", "eval", "train", "half", "float", "double", "bfloat16", "requires_grad_", "to_empty"}
NON_MODULE_NN = {"Parameter", "parameter", "functional", "init", "utils", "grad", "Buffer"}
SCRIPT_FACTORIES = {
    "torch.jit.script", "torch.jit.trace", "torch.jit.load", "torch.jit.freeze", "torch.export.export",
    "torch.export.load",
}


def _model(owner: Any) -> "Model":
    """The semantic model, also when a rule passes its context."""
    return getattr(owner, "model", owner)


def is_module_constructor(owner: Any, call: cst.CSTNode) -> bool:
    """Whether `call` builds an nn.Module: torch.nn layers, in-file subclasses, model zoos."""
    if not isinstance(call, cst.Call):
        return False
    ctx = _model(owner)
    q = ctx.qualified_name(call.func) or ""
    if q.startswith("torch.nn."):
        parts = q.split(".")
        if any(p in NON_MODULE_NN for p in parts[2:]):
            return False
        return parts[-1][:1].isupper()
    if q.startswith("torchvision.models."):
        parts = q.split(".")[2:]
        if any(p[:1].isupper() for p in parts) or any(w in q for w in ("state_dict", "weight", "builder")):
            return False
        return parts[-1][:1].islower() and parts[-1] not in ("list_models",)
    if q in ("timm.create_model", "timm.models.create_model", "torch.compile", "copy.deepcopy"):
        if q in ("torch.compile", "copy.deepcopy"):
            return bool(call.args) and is_module_expr(ctx, call.args[0].value)
        return True
    if q.startswith("transformers.") and q.endswith(".from_pretrained"):
        return "Model" in q or "For" in q
    name = dotted_name(call.func)
    if name is not None and "." not in name:
        info = ctx.classes.get(name)
        if info is not None and info.is_module:
            return True
    # model.to(device), Net().cuda(), model.eval()
    if isinstance(call.func, cst.Attribute) and call.func.attr.value in SELF_RETURNING:
        # `Encoder(...).eval()`: only a module has an eval mode, whatever builds it.
        return (call.func.attr.value == "eval" and not call.args) or is_module_expr(ctx, call.func.value)
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "unwrap_model"  # accelerate, transformers


def is_script_module(owner: Any, expr: cst.CSTNode) -> bool:
    """Whether `expr` was produced by torch.jit/torch.export (not pickled by torch.save)."""
    ctx = _model(owner)
    if isinstance(expr, cst.Call):
        return (ctx.qualified_name(expr.func) or "") in SCRIPT_FACTORIES
    if isinstance(expr, cst.Name):
        b = ctx.binding(expr)
        return b is not None and b.value is not None and is_script_module(ctx, b.value)
    return False


def is_module_expr(owner: Any, expr: cst.CSTNode, _depth: int = 0) -> bool:
    """Whether `expr` is (by evidence or by a conventional name) an nn.Module instance."""
    if _depth > 4:
        return False
    ctx = _model(owner)
    key = id(expr)
    if key in ctx._module_busy:  # `G = G.cuda()` seen through a global: never recurse without end
        return False
    ctx._module_busy.add(key)
    try:
        return _is_module_expr(ctx, expr, _depth)
    finally:
        ctx._module_busy.discard(key)


def _is_module_expr(ctx: "Model", expr: cst.CSTNode, _depth: int) -> bool:
    if isinstance(expr, cst.Call):
        return is_module_constructor(ctx, expr)
    if isinstance(expr, cst.Attribute):
        attr = expr.attr.value
        if attr == "module":
            return is_module_expr(ctx, expr.value, _depth + 1)
        if isinstance(expr.value, cst.Name) and expr.value.value == "self":
            return _self_attr_is_module(ctx, expr)
        return False
    if isinstance(expr, cst.Name):
        return _name_is_module(ctx, expr, _depth)
    return False


def _name_is_module(ctx: "Model", expr: cst.Name, depth: int) -> bool:
    facts = ctx.facts_at(expr)
    b = ctx.binding(expr)
    if b is not None and b.kind == "param":
        verdict = annotation_is_module(ctx, b.stmt, expr.value)
        if verdict is not None:
            return verdict
    if b is not None and b.value is not None and b.kind == "assign":
        value = b.value
        if is_module_constructor(ctx, value):
            return not is_script_module(ctx, value)
        if isinstance(value, (cst.Name, cst.Attribute)):
            return is_module_expr(ctx, value, depth + 1)
        if _is_literal(value):
            return False
        if isinstance(value, cst.Call):
            # Unknown factory: trust a conventional name only with module-only usage.
            return conventional_model_name(expr.value) and _used_as_module(facts, expr.value)
        return False
    if b is not None and b.kind in ("for", "comp", "import", "def", "with"):
        return False
    if b is None and facts.scope is not ctx.module:
        # A module-level global read inside a function.
        mod = ctx.facts(ctx.module)
        if any(x.kind in ("def", "import") for x in mod.bindings_of(expr.value)):
            return False
        binds = [x for x in mod.bindings_of(expr.value) if x.kind == "assign"]
        if binds:
            v = binds[-1].value
            if v is not None and is_module_constructor(ctx, v):
                return not is_script_module(ctx, v)
            if isinstance(v, (cst.Name, cst.Attribute)):
                return is_module_expr(ctx, v, depth + 1)
            # An unknown factory: a conventional name used as a module where it is bound, or here.
            used = _used_as_module(mod, expr.value) or _used_as_module(facts, expr.value)
            return isinstance(v, cst.Call) and conventional_model_name(expr.value) and used
    return conventional_model_name(expr.value) or _used_as_module(facts, expr.value)


def conventional_model_name(name: str) -> bool:
    """`model`, `net`, `encoder`, `*_model`... but not data about a model (`model_state_dict`, `model_preds`)."""
    if MODEL_NAME_RE.match(name) is None:
        return False
    tail = name.rsplit("_", 1)[-1] if "_" in name else ""
    if tail and DATA_WORDS.match(tail) and not MODEL_NAME_RE.match(tail):
        return False
    words = [w.lower() for w in re.findall(r"[a-z]+|[A-Z][a-z]*", name)]
    if len(words) > 1 and words[0] in ACTION_WORDS:
        return False  # `print_network`, `load_model`: a function or method that acts on a model
    return not set(words) & DATA_WORD_SET


def annotation_is_module(owner: Any, func: cst.CSTNode, name: str) -> bool | None:
    """What the annotation of parameter `name` of `func` says: a module class (`nn.Module`, an in-file
    subclass, `Optional[X]` of one), another type, or nothing (None)."""
    if not isinstance(func, cst.FunctionDef):
        return None
    params = func.params
    ann = next((p.annotation.annotation for p in (*params.posonly_params, *params.params, *params.kwonly_params)
                if p.name.value == name and p.annotation is not None), None)
    if ann is None:
        return None
    if isinstance(ann, cst.BinaryOperation) and isinstance(ann.operator, cst.BitOr) and _is_literal(ann.right):
        ann = ann.left  # `X | None`
    if isinstance(ann, cst.Subscript):
        inner = ann.slice[0].slice if ann.slice else None
        optional = (dotted_name(ann.value) or "").endswith("Optional")
        ann = inner.value if optional and isinstance(inner, cst.Index) else ann.value
    ctx = _model(owner)
    q = ctx.qualified_name(ann) or dotted_name(ann)
    if q is None:
        return None
    info = ctx.classes.get(q)
    if info is not None:
        return info.is_module
    from ptlint.facts.classes import LIGHTNING_BASES, MODULE_BASES

    parts = q.split(".")
    in_nn = q.startswith("torch.nn.") and not NON_MODULE_NN.intersection(parts) and parts[-1][:1].isupper()
    return q in MODULE_BASES or q in LIGHTNING_BASES or in_nn


def _used_as_module(facts, name: str) -> bool:
    for use in facts.uses.get(name, ()):
        parent = facts.parent_attr(use.node)
        if parent in MODULE_ONLY_METHODS:
            return True
    return False


_BUSY: set[tuple[int, str]] = set()


def _self_attr_is_module(ctx: "Model", node: cst.Attribute) -> bool:
    attr = node.attr.value
    cls = ctx.class_info(node)
    if cls is not None and attr in cls.methods:
        return False
    key = (id(cls), attr)
    if cls is not None and key not in _BUSY:
        init = cls.methods.get("__init__")
        if init is not None:
            # `self.net = self.net.to(device)` refers to itself: the guard stops the cycle.
            _BUSY.add(key)
            try:
                for value in ctx.self_assignments(init, attr):
                    if is_module_constructor(ctx, value):
                        return True
                    if _is_literal(value):
                        return False
            finally:
                _BUSY.discard(key)
    return conventional_model_name(attr)


def _is_literal(value: cst.CSTNode) -> bool:
    return isinstance(
        value,
        (cst.BaseString, cst.Integer, cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Tuple, cst.Set,
         cst.ListComp, cst.DictComp, cst.SetComp),
    ) or (isinstance(value, cst.Name) and value.value in ("None", "True", "False"))
