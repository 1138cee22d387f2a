"""PTL026 factory-then-move."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.callargs import append_keyword
from ptlint.rule import Fix, FixSafety, Replace, Rule

DETERMINISTIC = {"zeros", "ones", "full", "empty", "arange", "eye", "tensor", "as_tensor", "linspace", "logspace"}
RANDOM = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial"}
# Names and attributes that hold a device: `device`, `dev`, `self.device`, `args.device`, `x.device`.
DEVICE_NAME = re.compile(r"(^|_)(device|dev)s?$|^device", re.I)
DEVICE_STRING = re.compile(r"""^[rbuRBU]?['"](cuda(:\d+)?|cpu|mps|xpu(:\d+)?)['"]$""")
DTYPE_NAME = re.compile(r"dtype$|(^|\.)(float|half|double|bfloat16|int|long|bool|uint8|int8|int16|int32|int64|float16|float32|float64|complex\d*)$")


class FactoryThenMove(Rule):
    """A tensor created on the CPU and then moved: `torch.zeros(n).to(device)`.

    ## What it does
    Flags a torch factory (`zeros`, `ones`, `full`, `empty`, `arange`, `eye`, `tensor`, `as_tensor`,
    `linspace`, `logspace` and the random `rand*`/`randn`/`randint`/`randperm`) whose result is moved
    straight away with `.to(device)` or `.cuda()`.

    It stays silent when the factory already names a device, writes to `out=`, takes `**kwargs`,
    or when `.to(...)` converts to a dtype rather than a device (`.to(torch.float16)`, `.to(x)`), and
    inside lambdas and `torch.jit` calls, where code that is traced is kept as written.

    ## Why is this bad?
    The tensor is first allocated and filled on the CPU, then copied to the accelerator: two
    allocations and a host-to-device copy, on every call. Passing `device=` creates it in place,
    and the copy disappears. Inside a training step this adds up to one needless transfer per call.

    ## Example
    ```python
    mask = torch.ones(batch, seq_len).to(device)
    idx = torch.arange(n).cuda()
    ```

    ## Use instead
    ```python
    mask = torch.ones(batch, seq_len, device=device)
    idx = torch.arange(n, device="cuda")
    ```

    ## Fix safety
    Safe for deterministic factories: the values are the same wherever they are made. A `dtype`
    given to `.to()` moves into the factory. For random factories the fix is unsafe, because the
    CPU and CUDA generators produce different numbers from the same seed.

    ## References
    - [Performance tuning guide: create tensors directly on the target device](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [Tensor creation ops](https://pytorch.org/docs/stable/torch.html#creation-ops)
    """

    code = "PTL026"
    name = "factory-then-move"
    message = "Tensor is created on the CPU and then copied to the device; pass `device=` to the factory"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = (".to(", ".cuda(")
    contract = "E0"

    def visit_Call(self, node: cst.Call) -> None:
        move = node.func
        if not isinstance(move, cst.Attribute) or move.attr.value not in {"to", "cuda"}:
            return
        factory = move.value
        if not isinstance(factory, cst.Call):
            return
        name = self._factory_name(factory)
        if name is None or not _plain_factory(factory) or self._traced():
            return
        target = _target(node) if move.attr.value == "to" else _cuda_target(node)
        if target is None:
            return
        device, dtype = target
        if dtype is not None and any(a.keyword and a.keyword.value == "dtype" for a in factory.args):
            return
        new = append_keyword(factory, "device", device)
        if dtype is not None:
            new = append_keyword(new, "dtype", dtype)
        safety = FixSafety.UNSAFE if name in RANDOM else FixSafety.SAFE
        message = self.message
        if safety is FixSafety.UNSAFE:
            message += " (the fix is unsafe: random numbers differ between CPU and device generators)"
        self.report(node, message, Fix("Create the tensor on the device", safety, (Replace(node, new),)))

    def _traced(self) -> bool:
        """Inside a `lambda` or a `torch.jit` call, where the graph itself is what matters."""
        for node in self.ctx.stack:
            if isinstance(node, cst.Lambda):
                return True
            if isinstance(node, cst.Call) and (self.ctx.qualname(node.func) or "").startswith("torch.jit."):
                return True
        return False

    def _factory_name(self, call: cst.Call) -> str | None:
        qualified = self.ctx.qualname(call.func) or ""
        module, _, name = qualified.rpartition(".")
        if module != "torch" or name not in DETERMINISTIC | RANDOM:
            return None
        return name


def _plain_factory(call: cst.Call) -> bool:
    """No device, `out=`, `*args` or `**kwargs` already."""
    for arg in call.args:
        if arg.star:
            return False
        if arg.keyword is not None and arg.keyword.value in {"device", "out", "pin_memory", "layout"}:
            return False
    return True


def _is_device(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.SimpleString):
        return bool(DEVICE_STRING.match(expr.value))
    if isinstance(expr, cst.Call):
        return (dotted_name(expr.func) or "").endswith("device")
    name = dotted_name(expr)
    return name is not None and bool(DEVICE_NAME.search(name.rsplit(".", 1)[-1]))


def _is_dtype(expr: cst.BaseExpression) -> bool:
    name = dotted_name(expr)
    return name is not None and bool(DTYPE_NAME.search(name))


def _target(move: cst.Call) -> tuple[cst.BaseExpression, cst.BaseExpression | None] | None:
    """(device, dtype) of `.to(device)`, `.to(device, dtype)`, `.to(device=d, dtype=t)`, else None."""
    device = dtype = None
    positional = [a for a in move.args if a.keyword is None]
    if any(a.star for a in move.args) or len(positional) > 2:
        return None
    for arg in move.args:
        key = arg.keyword.value if arg.keyword is not None else None
        if key == "device" or (key is None and arg is positional[0]):
            device = arg.value
        elif key == "dtype" or (key is None and len(positional) == 2 and arg is positional[1]):
            dtype = arg.value
        elif key not in {"non_blocking", "copy"}:
            return None
    if device is None or not _is_device(device) or (dtype is not None and not _is_dtype(dtype)):
        return None
    return device, dtype


def _cuda_target(move: cst.Call) -> tuple[cst.BaseExpression, None] | None:
    """The device of `.cuda()`, `.cuda(0)` and `.cuda(device)`."""
    positional = [a.value for a in move.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in move.args if a.keyword is not None}
    if any(a.star for a in move.args) or set(keywords) - {"device", "non_blocking"} or len(positional) > 1:
        return None
    index = positional[0] if positional else keywords.get("device")
    if index is None:
        return cst.SimpleString('"cuda"'), None
    if isinstance(index, cst.Integer):
        return cst.SimpleString(f'"cuda:{index.value}"'), None
    return (index, None) if _is_device(index) else None
