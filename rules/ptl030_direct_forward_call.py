"""PTL030 direct-forward-call."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.rule import Fix, FixSafety, Replace, Rule


class DirectForwardCall(Rule):
    """Calling `model.forward(x)` instead of `model(x)`.

    ## What it does
    Flags `<module>.forward(...)` where the receiver is an `nn.Module` (by evidence such as an
    `nn` constructor or an in-file subclass, or by a conventional name such as `model` or `net`).
    `self.forward(...)`, `super().forward(...)` and unbound calls such as
    `nn.Module.forward(self, x)` or `Base.forward(self, x)` are not reported, nor are calls without
    arguments (OpenCV's `net.forward()`), nor `self.<attr>.forward(...)` unless `__init__` assigns
    that attribute an `nn.Module`.

    ## Why is this bad?
    `Module.__call__` runs the registered forward pre-hooks and hooks around `forward`, and
    wrappers such as FSDP, DDP, quantization observers and parametrizations rely on it. Calling
    `forward` directly silently skips them: hooks that collect activations see nothing, and a
    wrapped module may run with unsharded or stale parameters.

    ## Example
    ```python
    logits = model.forward(images)
    ```

    ## Use instead
    ```python
    logits = model(images)
    ```

    ## Fix safety
    Safe: the call keeps every argument and comment; it now runs through `__call__`, which is the
    same `forward` plus the hooks that the module has registered.

    ## References
    - [torch.nn.Module.forward](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.forward)
    """

    code = "PTL030"
    name = "direct-forward-call"
    message = "Calling `.forward()` directly skips the module's hooks; call the module instead"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = (".forward(",)
    contract = "E2"

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "forward":
            return
        receiver = func.value
        if isinstance(receiver, cst.Call) or dotted_name(receiver) is None:
            return  # super().forward(...), factory().forward(...)
        name = dotted_name(receiver) or ""
        head, last = name.split(".")[0], name.rsplit(".", 1)[-1]
        if name in {"self", "cls"} or last[:1].isupper() or head in self.ctx.classes:
            return
        if (self.ctx.qualname(receiver) or "").startswith(("torch.", "nn.")):
            return
        if not node.args or not self.ctx.is_module_expr(receiver):
            return  # `net.forward()` with no input is OpenCV's or another library's API
        if head == "self" and not self._constructed_on_self(last):
            return
        new = node.with_changes(func=receiver)
        self.report(node, fix=Fix("Call the module", FixSafety.SAFE, (Replace(node, new),)))

    def _constructed_on_self(self, attr: str) -> bool:
        """`self.<attr>` is assigned an nn.Module constructor in `__init__` (a name alone is not enough)."""
        info = self.ctx.class_info()
        init = info.methods.get("__init__") if info is not None else None
        return init is not None and any(self.ctx.model.is_module_constructor(v) for v in self.ctx.self_assignments(init, attr))
