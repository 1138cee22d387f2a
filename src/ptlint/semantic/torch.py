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
    from ptlint.facts.dataflow import Binding
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
# Calls that return the module they wrap (`DistributedDataParallel(m)`, `accelerator.unwrap_model(m)`).
WRAPPER_SUFFIXES = ("DataParallel", "convert_sync_batchnorm", "unwrap_model")
# What only code that needs gradients does: backward passes, gradient reads and hooks.
NEEDS_GRAD_ATTRS = {"backward", "grad", "requires_grad_", "retain_grad", "step", "zero_grad", "manual_backward",
                    "register_hook"}
NEEDS_GRAD_NAMES = {"requires_grad", "enable_grad", "set_grad_enabled"}
NEEDS_GRAD_CALLS = {"grad", "vjp", "jacobian", "hessian"}

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
# A callee named like a loss function or class (names last: `criterion(out, y)`, `compute_loss(...)`, `FocalLoss(...)`).
LOSS_CALLEE_NAME = re.compile(
    r"^(criterion\w*|\w*_criterion|crit|loss|loss_?fn|loss_?func|loss_?fct|loss_function|\w+_loss(_fn|_func)?|\w*Loss)$"
)
F_LOSS_NAMES = {"cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"}
# Calls that return (values, indices) or several tensors rather than one tensor; the first three only with a dim.
TUPLE_RETURNING = {"max", "min", "median", "topk", "sort", "kthvalue", "mode", "split", "chunk", "unbind", "aminmax"}
TUPLE_LAYERS = {"LSTM", "GRU", "RNN", "MultiheadAttention"}
# Builtins whose result is not one tensor (a container, or a Python number from max/min).
NON_TENSOR_BUILTINS = {"dict", "list", "tuple", "set", "zip", "map", "filter", "sorted", "reversed", "enumerate", "max", "min"}
# Fields of structured model outputs (Hugging Face `ModelOutput`, named tuples): such an object is not one tensor.
MODEL_OUTPUT_FIELDS = {"loss", "logits", "last_hidden_state", "hidden_states", "attentions", "pooler_output", "past_key_values"}
CONFIG_ROOTS = {"args", "cfg", "config", "opt", "opts", "hparams"}


class TorchFacts:
    """Kinds of expressions and grad mode at nodes of one file."""

    def __init__(self, model: "Model") -> None:
        self.m = model
        self._kinds: dict[int, Kind] = {}
        self._busy: set[int] = set()
        self._wrappers: dict[str, bool] = {}
        self._off: dict[int, bool] = {}
        self._switches: list[cst.Expr] | None = None
        self._returns_values: dict[int, bool] = {}

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
            value = expr.value
            if isinstance(value, cst.Attribute) and value.attr.value == "shape" and isinstance(expr.slice[0].slice, cst.Index):
                return Kind.NUMBER  # x.shape[0]
            return Kind.TENSOR if self.kind(value) is Kind.TENSOR else Kind.UNKNOWN
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
        name = last or (dotted_name(call.func) or "").rsplit(".", 1)[-1]
        if name.endswith("Loss") and name[:1].isupper() and not name.endswith("WithLoss"):
            return Kind.LOSS  # an instance of a loss class, the project's own too (`FocalLoss()`)
        if m.is_module_constructor(call):
            return Kind.MODULE
        func = call.func
        if isinstance(func, cst.Attribute):
            owner = self.kind(func.value)
            method = func.attr.value
            if method in ("numel", "nelement", "dim") or (method == "size" and call.args):
                return Kind.NUMBER  # sizes are Python ints, whatever the receiver
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
        """The kind of parameter `name` of `func` from its annotation, or NUMBER for a number default (`beta=4.0`)."""
        if not isinstance(func, cst.FunctionDef):
            return Kind.UNKNOWN
        params = func.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            default = p.default.expression if isinstance(p.default, cst.UnaryOperation) else p.default
            if p.name.value == name and isinstance(default, (cst.Integer, cst.Float)):
                return Kind.NUMBER
            if p.name.value == name and p.annotation is not None:
                ann = p.annotation.annotation
                if isinstance(ann, cst.Name) and ann.value in ("int", "float"):
                    return Kind.NUMBER
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
        """The model inside `.module`, `.to(...)`/`.cuda()`/`.eval()` chains, DDP/DataParallel/FSDP wrappers,
        `torch.compile(m)`, `convert_sync_batchnorm(m)`, `accelerator.unwrap_model(m)`, `getattr(m, "module", m)`
        and `m.module if c else m`."""
        for _ in range(16):
            inner = self.unwrap_once(expr)
            if inner is None:
                return expr
            expr = inner
        return expr

    def unwrap_once(self, expr: cst.CSTNode) -> cst.CSTNode | None:
        """`expr` with one wrapper less (see `unwrap`), or None when it wraps nothing."""
        from ptlint.facts.kinds import SELF_RETURNING

        if isinstance(expr, cst.Attribute) and expr.attr.value == "module":
            return expr.value
        if isinstance(expr, cst.IfExp):
            body, orelse = dotted_name(self.unwrap(expr.body)), dotted_name(self.unwrap(expr.orelse))
            return self.unwrap(expr.body) if body is not None and body == orelse else None
        if not isinstance(expr, cst.Call):
            return None
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in SELF_RETURNING:
            return expr.func.value
        if not expr.args or expr.args[0].keyword is not None:
            return None
        q = self.m.qualified_name(expr.func) or dotted_name(expr.func) or ""
        if q == "torch.compile" or q.endswith(WRAPPER_SUFFIXES) or (q == "getattr" and len(expr.args) == 3):
            return expr.args[0].value
        return None

    # --- losses, tensors, scalars ---

    def definition(self, expr: cst.CSTNode) -> cst.CSTNode | None:
        """What a callee names: the value bound to a name (a function's `def`), or for `self.x` the last value
        `__init__` assigns to it, else the method `x` of the class."""
        if isinstance(expr, cst.Name):
            b = self._visible(expr)
            if b is None:
                return None
            return b.bound_value() if b.kind == "assign" else b.value if b.kind == "def" else None
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            values = self.m.self_values(expr)
            if values:
                return values[-1]
            info = self.m.class_info(expr)
            return info.methods.get(expr.attr.value) if info is not None else None
        return None

    def _visible(self, name: cst.Name) -> Binding | None:
        """The binding `name` means where it stands: its own scope's, else (a closure) the one that reaches
        the nested function in an enclosing scope, else a module global's only binding."""
        m = self.m
        b = m.binding(name)
        scope = m.tree.scope(name)
        while b is None and scope is not m.tree.module:
            scope = m.tree.scope(scope)
            b = m.names.reaching_at(name.value, name, scope)
        return b or m.names.free_binding(name)

    def returns_values(self, func: cst.FunctionDef) -> bool:
        """Every `return` of `func` gives a Python value: a number, `.item()`, `.tolist()`, `.detach()`, `float()`."""
        key = id(func)
        if key not in self._returns_values:
            returns = self.m.tree.below(func.body, cst.Return, scopes=False)
            self._returns_values[key] = bool(returns) and all(_python_value(r.value) for r in returns)  # type: ignore[attr-defined]
        return self._returns_values[key]

    def is_loss_function(self, func: cst.CSTNode) -> bool:
        """Whether calling `func` computes a loss: a loss object (`nn.MSELoss()`, `FocalLoss()`, a `criterion`
        from `__init__`), a functional loss (`F.cross_entropy`), or (names last) a callee named like one
        (`criterion`, `compute_loss`) that is not a function of this file returning Python values."""
        if isinstance(func, cst.Call):
            return self.kind(func) is Kind.LOSS
        q = self.m.qualified_name(func) or ""
        if q.startswith("torch.nn.functional."):
            last = q.rsplit(".", 1)[-1]
            return "loss" in last or last in F_LOSS_NAMES
        if self.kind(func) is Kind.LOSS:
            return True
        definition = self.definition(func)
        if isinstance(definition, cst.FunctionDef) and self.returns_values(definition):
            return False
        last = (dotted_name(func) or "").rsplit(".", 1)[-1]
        return bool(last) and LOSS_CALLEE_NAME.match(last) is not None

    def one_tensor(self, expr: cst.CSTNode) -> bool | None:
        """True when `expr` is surely one tensor (arithmetic, a loss, a tensor method), False when surely not
        (a container, a `(values, indices)` pair, an LSTM's `(out, (h, c))`, an output object with fields such
        as `.logits`), None when unknown (a model call may return any of these)."""
        if isinstance(expr, (cst.BooleanOperation, cst.Tuple, cst.List, cst.Set, cst.Dict, cst.ListComp,
                             cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            return False
        if isinstance(expr, (cst.BinaryOperation, cst.UnaryOperation)):
            return True
        if isinstance(expr, cst.Subscript):  # `t[i]` of one tensor, `x.max(1)[1]` of a (values, indices) pair
            value = expr.value
            func = value.func if isinstance(value, cst.Call) else None
            if isinstance(func, cst.Attribute) and func.attr.value in TUPLE_RETURNING:
                return True
            return True if self.one_tensor(value) is True else None
        if isinstance(expr, cst.Name):
            if self.m.facts_at(expr).attrs_used(expr.value) & MODEL_OUTPUT_FIELDS:
                return False
            b = self.m.binding(expr)
            if b is not None and b.kind == "param":
                return True if self._annotated(expr.value, b.stmt) is Kind.TENSOR else None  # `t: torch.Tensor`
            if b is None or b.kind not in ("assign", "augassign"):
                return None
            if b.kind == "augassign":
                return True
            value = b.bound_value()
            if value is not None:
                return self.one_tensor(value)
            layer = self._layer(b.source) if isinstance(b.source, cst.Call) else ""
            return False if layer == "LSTM" and b.index > 0 else None
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        if isinstance(func, cst.Name) and self.m.names.is_builtin(func):
            return True if func.value == "sum" else False if func.value in NON_TENSOR_BUILTINS else None
        if self._layer(expr) in TUPLE_LAYERS:
            return False
        if self.m.graph.runs_model(expr):
            return None
        if self.is_loss_function(func):
            return True
        name = func.attr.value if isinstance(func, cst.Attribute) else None
        if name in TUPLE_RETURNING:
            return False if expr.args or name not in ("max", "min", "median") else None
        return True if name is not None else None

    def _layer(self, call: cst.Call) -> str:
        """The class name of the layer that `self.<attr>(...)` calls, from what `__init__` assigns to it."""
        func = call.func
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self"):
            return ""
        for value in self.m.self_values(func):
            if isinstance(value, cst.Call):
                return (self.m.qualified_name(value.func) or dotted_name(value.func) or "").rsplit(".", 1)[-1]
        return ""

    def is_scalar(self, expr: cst.CSTNode) -> bool:
        """Whether `expr` is surely a 0-dim tensor: a full reduction (`x.mean()`, `torch.sum(x)`) or a loss with
        its default reduction, also through names, signs and arithmetic with numbers."""
        if isinstance(expr, cst.Name):
            b = self.m.binding(expr)
            value = b.bound_value() if b is not None and b.kind == "assign" else None
            return value is not None and self.is_scalar(value)
        if isinstance(expr, cst.UnaryOperation):
            return self.is_scalar(expr.expression)
        if isinstance(expr, cst.BinaryOperation):
            left, right = expr.left, expr.right
            if self.is_scalar(left):
                return self._number(right) or self.is_scalar(right)
            return self._number(left) and self.is_scalar(right)
        if not isinstance(expr, cst.Call):
            return False
        func = expr.func
        q = self.m.qualified_name(func) or ""
        if q in ("torch.mean", "torch.sum"):
            return len(expr.args) == 1
        if q.startswith("torch.nn.functional.") and self.is_loss_function(func):
            return _default_reduction(expr)
        if isinstance(func, cst.Attribute) and func.attr.value in ("mean", "sum") and not q:
            return not expr.args
        ctor = func if isinstance(func, cst.Call) else self.definition(func)
        if isinstance(ctor, cst.Call) and (self.m.qualified_name(ctor.func) or "").startswith("torch.nn."):
            return self.kind(ctor) is Kind.LOSS and _default_reduction(ctor)
        return False

    def _number(self, expr: cst.CSTNode) -> bool:
        """A number, or a hyperparameter read from a config object (`args.alpha`, `self.cfg.beta`)."""
        if self.kind(expr) is Kind.NUMBER:
            return True
        parts = (dotted_name(expr) or "").split(".") if isinstance(expr, cst.Attribute) else []
        return len(parts) > 1 and (parts[1] if parts[0] == "self" else parts[0]) in CONFIG_ROOTS

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
        """Whether `node` runs with gradients off: inside a no-grad `with` body or the body of
        `if not torch.is_grad_enabled():`, in a no-grad decorated function, a Lightning evaluation hook or a
        function that this file only calls with gradients off, or after a `torch.set_grad_enabled(False)` or
        `stack.enter_context(torch.no_grad())` statement (before `node` in its function, anywhere at module level)."""
        tree = self.m.tree
        child = node
        for anc in tree.ancestors(node):
            if isinstance(anc, cst.With) and child is anc.body and any(self.is_no_grad(i.item) for i in anc.items):
                return True
            if isinstance(anc, cst.If) and _grad_off_branch(anc, child):
                return True
            if isinstance(anc, cst.FunctionDef) and self._function_off(anc):
                return True
            child = anc
        return self._switched_off(node)

    def needs_grad(self, node: cst.CSTNode) -> bool:
        """Whether the code below `node` (nested functions included) needs gradients: a backward pass, an
        optimizer step, `autograd.grad`/`vjp`/`jacobian`/`hessian`, `requires_grad`, `enable_grad`, hooks."""
        for n in self.m.tree.below(node, (cst.Attribute, cst.Name, cst.Arg, cst.Call)):
            if isinstance(n, cst.Attribute) and n.attr.value in NEEDS_GRAD_ATTRS:
                return True
            if isinstance(n, cst.Name) and n.value in NEEDS_GRAD_NAMES:
                return True
            if isinstance(n, cst.Arg) and n.keyword is not None and n.keyword.value == "requires_grad":
                return True
            if isinstance(n, cst.Call) and dotted_name(n.func) in NEEDS_GRAD_CALLS:
                return True
        return False

    def _function_off(self, func: cst.FunctionDef) -> bool:
        key = id(func)
        known = self._off.get(key)
        if known is None:
            self._off[key] = False  # a recursive function answers False while it is being looked at
            known = any(self.is_no_grad(d.decorator) for d in func.decorators) or (
                func.name.value in LIGHTNING_EVAL_HOOKS and self.m.in_lightning_class(func)
            )
            if not known:
                sites = self.m.program.call_sites(func)
                known = bool(sites) and all(self.grad_disabled(site) for site in sites)
            self._off[key] = known
        return known

    def _switched_off(self, node: cst.CSTNode) -> bool:
        tree = self.m.tree
        if self._switches is None:
            self._switches = [
                s for s in tree.of_type(cst.Expr)
                if isinstance(s.value, cst.Call) and self._switches_off(s.value)  # type: ignore[attr-defined]
            ]
        if not self._switches:
            return False
        scope = tree.scope(node)
        return any(
            (tree.scope(s) is scope and tree.precedes(s, node)) or (tree.scope(s) is tree.module and scope is not tree.module)
            for s in self._switches
        )

    def _switches_off(self, call: cst.Call) -> bool:
        """`torch.set_grad_enabled(False)`, or `stack.enter_context(torch.no_grad())` on an `ExitStack`."""
        if (self.m.qualified_name(call.func) or "") in SET_GRAD_ENABLED:
            return self.is_no_grad(call)
        func = call.func
        return (
            isinstance(func, cst.Attribute) and func.attr.value == "enter_context" and len(call.args) == 1
            and self.is_no_grad(call.args[0].value)
        )


def _grad_off_branch(node: cst.If, child: cst.CSTNode) -> bool:
    """`child` is the body of `if not torch.is_grad_enabled():` or the `else` of `if torch.is_grad_enabled():`."""
    test = node.test
    negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
    inner = test.expression if isinstance(test, cst.UnaryOperation) and negated else test
    if not (isinstance(inner, cst.Call) and (dotted_name(inner.func) or "").endswith("is_grad_enabled")):
        return False
    return child is node.body if negated else child is node.orelse


def _python_value(expr: cst.CSTNode | None) -> bool:
    """A number literal, `x.item()`/`x.tolist()`/`x.detach()`, or `float(...)`/`int(...)`."""
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    if isinstance(expr, (cst.Integer, cst.Float)):
        return True
    if not isinstance(expr, cst.Call):
        return False
    if isinstance(expr.func, cst.Attribute):
        return expr.func.attr.value in ("item", "tolist", "detach")
    return isinstance(expr.func, cst.Name) and expr.func.value in ("float", "int")


def _default_reduction(call: cst.Call) -> bool:
    """No `reduction`, or a reducing one, and none of the legacy `size_average`/`reduce` flags."""
    for arg in call.args:
        key = arg.keyword.value if arg.keyword is not None else None
        if key in ("size_average", "reduce"):
            return False
        if key == "reduction":
            return isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value in ("mean", "sum")
    return True


def q_is_torch(q: str | None) -> bool:
    return bool(q) and (q == "torch" or q.startswith("torch."))  # type: ignore[union-attr]
