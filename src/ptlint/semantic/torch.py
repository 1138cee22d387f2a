"""The torch layer of the semantic model: what kind of object an expression holds, and grad mode.

Evidence is weighed in this order: a constructor, an annotation, how the object is used, and its
name last. Every answer is addressed by node and computed once.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.semantic.flow import is_false

if TYPE_CHECKING:
    from ptlint.semantic import Model


class Kind(enum.Enum):
    UNKNOWN = "unknown"
    MODULE = "module"
    TENSOR = "tensor"
    NUMBER = "number"
    LOSS = "loss function"
    OPTIMIZER = "optimizer"
    SCHEDULER = "scheduler"
    LOADER = "data loader"
    DATASET = "dataset"
    DEVICE = "device"


NO_GRAD_CONTEXTS = {
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autograd.no_grad",
    "torch.autograd.grad_mode.no_grad",
    "torch.autograd.inference_mode",
    "torch.autograd.grad_mode.inference_mode",
}
SET_GRAD_ENABLED = {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled", "torch.autograd.grad_mode.set_grad_enabled"}
# A project's own wrapper of no_grad/inference_mode (`@smart_inference_mode()`), known only by its name.
NO_GRAD_WRAPPER_NAME = re.compile(r"(no_grad|inference_mode)$")
LIGHTNING_EVAL_HOOKS = {"validation_step", "test_step", "predict_step"}

OPTIMIZER_NAME = re.compile(r"(optim|opt|optimizer|optimiser|solver)s?(_\w+)?$|^opt_|_opt$", re.I)
OPTIMIZER_FACTORIES = ("timm.optim.create_optimizer", "timm.optim.create_optimizer_v2", "transformers.AdamW",
                       "transformers.Adafactor", "transformers.optimization.AdamW", "transformers.optimization.Adafactor")
SCHEDULER_PREFIXES = ("torch.optim.lr_scheduler.", "transformers.get_", "transformers.optimization.get_", "timm.scheduler.")
OPTIMIZER_PREFIXES = ("torch.optim.", "bitsandbytes.optim.", "apex.optimizers.", "torch_optimizer.")
TENSOR_FACTORIES = {
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm",
    "arange", "linspace", "logspace", "eye", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like",
    "randn_like", "randint_like", "stack", "cat", "concat", "where", "matmul", "mm", "bmm", "einsum", "sigmoid",
    "tanh", "relu", "softmax", "log_softmax", "exp", "log", "sqrt", "abs", "sum", "mean", "max", "min", "argmax",
    "argmin", "clamp", "flatten", "reshape", "cumsum", "topk", "sort", "gather", "norm", "outer", "tril", "triu",
}
# Tensor methods whose result is not a tensor.
NON_TENSOR_METHODS = {"item", "tolist", "numpy", "size", "dim", "numel", "data_ptr", "element_size", "is_contiguous",
                      "get_device", "type", "__len__", "stride", "nelement", "ndimension"}
TENSOR_ANNOTATIONS = {"torch.Tensor", "torch.FloatTensor", "torch.LongTensor", "torch.nn.Parameter"}
MODULE_ANNOTATIONS = {"torch.nn.Module", "torch.nn.modules.module.Module"}
LOADER_NAME = re.compile(r"(^|_)(loader|dataloader|dl)s?($|_)", re.I)
LOSS_NAME = re.compile(r"^(criterion\w*|\w*_criterion|crit|loss_?fn|loss_?func|loss_?fct|loss_function|\w+_loss_(fn|func))$")


class TorchFacts:
    """Kinds of expressions and grad mode at nodes of one file."""

    def __init__(self, model: "Model") -> None:
        self.m = model
        self._kinds: dict[int, Kind] = {}
        self._busy: set[int] = set()
        self._wrappers: dict[str, bool] = {}

    # --- kinds ---

    def kind(self, expr: cst.CSTNode) -> Kind:
        """The kind of object `expr` evaluates to, from evidence; UNKNOWN when there is none."""
        key = id(expr)
        found = self._kinds.get(key)
        if found is not None:
            return found
        if key in self._busy:  # a value that refers to itself through its own binding
            return Kind.UNKNOWN
        self._busy.add(key)
        try:
            found = self._kind(expr)
        finally:
            self._busy.discard(key)
        self._kinds[key] = found
        return found

    def _kind(self, expr: cst.CSTNode) -> Kind:
        m = self.m
        if isinstance(expr, cst.Call):
            return self._call_kind(expr)
        if isinstance(expr, cst.Name):
            return self._name_kind(expr)
        if isinstance(expr, cst.Subscript):
            return Kind.TENSOR if self.kind(expr.value) is Kind.TENSOR else Kind.UNKNOWN
        if isinstance(expr, cst.BinaryOperation):
            sides = (self.kind(expr.left), self.kind(expr.right))
            return Kind.TENSOR if Kind.TENSOR in sides else Kind.NUMBER if sides == (Kind.NUMBER, Kind.NUMBER) else Kind.UNKNOWN
        if isinstance(expr, cst.UnaryOperation):
            return self.kind(expr.expression)
        if isinstance(expr, (cst.Integer, cst.Float)):
            return Kind.NUMBER
        if isinstance(expr, cst.Attribute):
            attr = expr.attr.value
            if attr in ("data", "grad", "T", "mT", "real", "imag") and self.kind(expr.value) is Kind.TENSOR:
                return Kind.TENSOR
            if attr == "module":
                inner = self.kind(expr.value)
                return Kind.MODULE if inner is Kind.MODULE else Kind.UNKNOWN
            if isinstance(expr.value, cst.Name) and expr.value.value == "self":
                # `self.x`: what `__init__` assigns to it, when the known values agree.
                assigned = {self.kind(v) for v in m.self_values(expr)} - {Kind.UNKNOWN}
                if len(assigned) == 1:
                    return assigned.pop()
            if m.is_module(expr):
                return Kind.MODULE
        return Kind.UNKNOWN

    def _call_kind(self, call: cst.Call) -> Kind:
        m = self.m
        q = m.qualified_name(call.func) or ""
        last = q.rsplit(".", 1)[-1]
        if q:
            if q.startswith(SCHEDULER_PREFIXES) or q in ("torch.optim.swa_utils.SWALR",):
                return Kind.SCHEDULER
            if q.startswith(OPTIMIZER_PREFIXES) and last[:1].isupper() and "Scheduler" not in last and "LR" not in last:
                return Kind.OPTIMIZER
            if q in OPTIMIZER_FACTORIES:
                return Kind.OPTIMIZER
            if q in ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"):
                return Kind.LOADER
            if q == "torch.device":
                return Kind.DEVICE
            if q.startswith("torch.nn.") and last.endswith("Loss") and last[:1].isupper():
                return Kind.LOSS
            if (q.startswith("torch.") and last in TENSOR_FACTORIES) or q.startswith("torch.nn.functional."):
                return Kind.TENSOR
        if m.is_module_constructor(call):
            return Kind.MODULE
        func = call.func
        if isinstance(func, cst.Attribute):
            owner = self.kind(func.value)
            method = func.attr.value
            if owner is Kind.TENSOR:
                if method in ("item",):
                    return Kind.NUMBER
                return Kind.UNKNOWN if method in NON_TENSOR_METHODS else Kind.TENSOR
            if owner is Kind.MODULE and method in ("forward",):
                return Kind.TENSOR
            return Kind.UNKNOWN
        callee = self.kind(func)
        if callee in (Kind.MODULE, Kind.LOSS):
            return Kind.TENSOR  # model(x), criterion(out, y)
        if isinstance(func, cst.Name) and func.value in ("float", "int", "len", "round"):
            return Kind.NUMBER
        return Kind.UNKNOWN

    def _name_kind(self, name: cst.Name) -> Kind:
        m = self.m
        binding = m.binding(name) or m.names.free_binding(name)
        if binding is not None:
            if binding.kind == "assign":
                value = binding.bound_value()
                if value is not None:
                    found = self.kind(value)
                    if found is not Kind.UNKNOWN:
                        return found
            elif binding.kind == "param":
                found = self._annotated(name.value, binding.stmt)
                if found is not Kind.UNKNOWN:
                    return found
            elif binding.kind == "for" and binding.value is not None and not binding.unpacked:
                if self.kind(binding.value) is Kind.TENSOR:
                    return Kind.TENSOR  # iterating a tensor yields tensors
            elif binding.kind in ("import", "def"):
                return Kind.UNKNOWN
        if m.is_module(name):
            return Kind.MODULE
        if OPTIMIZER_NAME.search(name.value) and "sched" not in name.value.lower():
            return Kind.OPTIMIZER
        if LOADER_NAME.search(name.value):
            return Kind.LOADER
        if LOSS_NAME.match(name.value):
            return Kind.LOSS
        return Kind.UNKNOWN

    def _annotated(self, name: str, func: cst.CSTNode) -> Kind:
        if not isinstance(func, cst.FunctionDef):
            return Kind.UNKNOWN
        params = func.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            if p.name.value == name and p.annotation is not None:
                ann = p.annotation.annotation
                q = self.m.qualified_name(ann) or ""
                if q in TENSOR_ANNOTATIONS:
                    return Kind.TENSOR
                if q in MODULE_ANNOTATIONS:
                    return Kind.MODULE
                if q.startswith("torch.optim.") and q.rsplit(".", 1)[-1] == "Optimizer":
                    return Kind.OPTIMIZER
                if q in ("torch.utils.data.DataLoader",):
                    return Kind.LOADER
        return Kind.UNKNOWN

    def is_optimizer(self, expr: cst.CSTNode) -> bool:
        """An optimizer by its constructor or annotation, `self.opt` by what `__init__` assigns to it,
        else (last) by its name."""
        found = self.kind(expr)
        if found is not Kind.UNKNOWN or isinstance(expr, cst.Name):
            return found is Kind.OPTIMIZER
        last = (dotted_name(expr) or "").rsplit(".", 1)[-1]
        return bool(last) and bool(OPTIMIZER_NAME.search(last)) and "sched" not in last.lower()

    def unwrap(self, expr: cst.CSTNode) -> cst.CSTNode:
        """The model inside `.module`, `.to(...)`/`.cuda()`, DDP/DataParallel wrappers and `torch.compile(...)`."""
        from ptlint.facts.kinds import SELF_RETURNING

        wrappers = ("torch.nn.parallel.DistributedDataParallel", "torch.nn.DataParallel", "torch.compile",
                    "torch.nn.parallel.DataParallel", "torch.distributed.fsdp.FullyShardedDataParallel")
        for _ in range(16):
            if isinstance(expr, cst.Attribute) and expr.attr.value == "module":
                expr = expr.value
            elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in SELF_RETURNING:
                expr = expr.func.value
            elif isinstance(expr, cst.Call) and expr.args and (self.m.qualified_name(expr.func) or "") in wrappers:
                expr = expr.args[0].value
            else:
                return expr
        return expr

    # --- grad mode ---

    def is_no_grad(self, expr: cst.CSTNode) -> bool:
        """`torch.no_grad()`, `inference_mode()`, `set_grad_enabled(False)`, bare decorators, and a project's
        own wrapper (`@smart_inference_mode()`)."""
        target = expr.func if isinstance(expr, cst.Call) else expr
        q = self.m.qualified_name(target) or ""
        if q in NO_GRAD_CONTEXTS:
            if q.endswith("inference_mode") and isinstance(expr, cst.Call) and expr.args:
                return not is_false(expr.args[0].value)
            return True
        if q in SET_GRAD_ENABLED:
            return isinstance(expr, cst.Call) and bool(expr.args) and is_false(expr.args[0].value)
        return self._wrapper(target)

    def _wrapper(self, target: cst.CSTNode) -> bool:
        """A decorator or context of the project's own that disables gradients."""
        name = dotted_name(target)
        if name is None or q_is_torch(self.m.qualified_name(target)):
            return False
        last = name.rsplit(".", 1)[-1]
        known = self._wrappers.get(name)
        if known is None:
            known = self._wrappers[name] = False
            func = self.m.program.function(name) if "." not in name else None
            if func is not None:
                from ptlint.facts.walk import iter_nodes

                known = any(
                    isinstance(n, (cst.Name, cst.Attribute)) and (self.m.qualified_name(n) or "") in NO_GRAD_CONTEXTS
                    for n in iter_nodes(func, enter_scopes=True)
                )
            else:
                known = bool(NO_GRAD_WRAPPER_NAME.search(last))
            self._wrappers[name] = known
        return known

    def grad_disabled(self, node: cst.CSTNode) -> bool:
        """Whether `node` runs with gradients off: inside a no-grad `with` body, a no-grad decorated
        function, or a Lightning evaluation hook."""
        tree = self.m.tree
        child = node
        for anc in tree.ancestors(node):
            if isinstance(anc, cst.With) and child is anc.body and any(self.is_no_grad(i.item) for i in anc.items):
                return True
            if isinstance(anc, cst.FunctionDef):
                if any(self.is_no_grad(d.decorator) for d in anc.decorators):
                    return True
                if anc.name.value in LIGHTNING_EVAL_HOOKS and self.m.in_lightning_class(anc):
                    return True
            child = anc
        return False


def q_is_torch(q: str | None) -> bool:
    return bool(q) and (q == "torch" or q.startswith("torch."))  # type: ignore[union-attr]
