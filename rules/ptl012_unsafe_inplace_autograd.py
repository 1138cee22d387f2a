"""PTL012 unsafe-inplace-autograd."""

from __future__ import annotations

import libcst as cst

from ptlint.callargs import keyword
from ptlint.rule import Fix, FixSafety, InsertBefore, Replace, Rule
from ptlint.semantic.flow import is_true

F = "torch.nn.functional."
NN = "torch.nn."
# Ops whose backward reads their own output: changing that output in place fails at backward().
SAVES_OUTPUT_FUNCS = {
    "torch.sigmoid", F + "sigmoid", "torch.special.expit",
    "torch.tanh", F + "tanh",
    "torch.exp", "torch.expm1", "torch.sqrt", "torch.rsqrt", "torch.reciprocal",
    "torch.softmax", F + "softmax", "torch.log_softmax", F + "log_softmax",
    "torch.relu", F + "relu",
}
SAVES_OUTPUT_METHODS = {
    "sigmoid", "tanh", "exp", "expm1", "sqrt", "rsqrt", "reciprocal", "softmax", "log_softmax", "relu",
}
SAVES_OUTPUT_MODULES = {NN + "Sigmoid", NN + "Tanh", NN + "Softmax", NN + "LogSoftmax", NN + "ReLU"}
# In-place methods whose out-of-place twin is the name without the underscore.
OUT_OF_PLACE = {
    "add_", "sub_", "mul_", "div_", "pow_", "clamp_", "clamp_min_", "clamp_max_", "clip_", "masked_fill_",
    "exp_", "sigmoid_", "tanh_", "relu_", "neg_", "abs_", "sqrt_", "log_", "addcmul_", "addcdiv_", "floor_",
    "round_", "scatter_", "scatter_add_", "index_fill_", "index_add_", "index_copy_", "lerp_", "sign_",
}
FUNCTIONAL_INPLACE = ("relu", "relu6", "elu", "leaky_relu", "hardtanh", "dropout", "dropout2d", "dropout3d",
                      "alpha_dropout", "selu", "celu", "silu", "hardswish", "hardsigmoid", "mish", "threshold", "rrelu")
GRAD_WORDS = {"training", "is_grad_enabled", "requires_grad", "is_inference_mode_enabled", "inference"}
# `_`-suffixed methods that do not change the tensor's values.
NOT_MUTATING = {"requires_grad_", "share_memory_", "detach_", "retain_grad_", "record_stream_"}
OPERATORS = {
    "AddAssign": "+", "SubtractAssign": "-", "MultiplyAssign": "*", "DivideAssign": "/", "FloorDivideAssign": "//",
    "ModuloAssign": "%", "PowerAssign": "**", "MatrixMultiplyAssign": "@",
}
TEMPLATE = "In-place change of a tensor that `{op}` saved for backward: backward() will fail"
ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.SimpleString)


class UnsafeInplaceAutograd(Rule):
    """An in-place change to a tensor that autograd needs for the backward pass.

    ## What it does
    In the `forward` of an `nn.Module` subclass, flags an in-place change (`y += ...`, `y *= ...`,
    `y[i] = ...`, `y.add_(...)` and other `_`-suffixed methods, `F.relu(y, inplace=True)`, or a
    module built with `inplace=True`) of a tensor that was produced by an op whose backward reads
    its own output: `sigmoid`, `tanh`, `exp`, `expm1`, `sqrt`, `rsqrt`, `reciprocal`, `softmax`,
    `log_softmax` and `relu`, as functions, methods or `nn.Sigmoid`-style modules assigned in
    `__init__`. The producing op is the one whose value reaches the change, so `y = torch.sigmoid(x)`,
    `y = y * 2`, `y += 1` is fine.

    Outside `forward` (a plain training step, a script), the same change is reported when a
    `backward()` in the same function runs on a value computed from the changed tensor:
    `y = torch.sigmoid(x @ w)`, `y += 1`, `y.sum().backward()`.

    In-place changes to other tensors stay silent: `nn.ReLU(inplace=True)` after a conv or batch
    norm, and `out += identity` in residual blocks, save memory and are safe. Code under
    `torch.no_grad()`, or in an `if` that tests `self.training` or whether grad is enabled, is
    not reported. In-place changes of `forward`'s own arguments are not reported either: whether
    they fail depends on the caller.

    ptlint deliberately disagrees with `pytorch-patterns-skill.md`, which calls
    `F.relu(x, inplace=True)` and `x += residual` harmful: right after a convolution or batch norm
    (which do not save their output) both run backward fine, and torchvision's ResNet uses both.
    Only their combination, `x = F.relu(x)` then `x += residual`, changes an output that `relu`
    saved, and that is reported.

    ## Why is this bad?
    The op saved its output for the backward pass. Changing that tensor in place bumps its
    version, and `backward()` stops with "one of the variables needed for gradient computation
    has been modified by an inplace operation". The forward pass and evaluation run fine, so the
    error only shows up once training starts.

    ## Example
    ```python
    def forward(self, x):
        gate = torch.sigmoid(self.proj(x))
        gate *= self.scale
        return x * gate
    ```

    ## Use instead
    ```python
    def forward(self, x):
        gate = torch.sigmoid(self.proj(x))
        gate = gate * self.scale
        return x * gate
    ```

    ## Fix safety
    Unsafe: the fix writes the change out of place (`y += v` becomes `y = y + v`, `y.add_(v)`
    becomes `y = y.add(v)`), drops `inplace=True` from a functional call, and inserts
    `y = y.clone()` before `y[i] = v`. Values are the same, but memory use grows a little, and
    another name that aliases the old tensor no longer sees the change. Modules built with
    `inplace=True` get no fix, since other calls may use them safely.

    ## References
    - [Autograd mechanics: in-place operations](https://pytorch.org/docs/stable/notes/autograd.html#in-place-operations-with-autograd)
    """

    code = "PTL012"
    name = "unsafe-inplace-autograd"
    message = "In-place change of a tensor that its producing op saved for backward: backward() will fail"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("forward", "backward")
    contract = "E2"

    def _active(self) -> bool:
        if self.ctx.method_name() != "forward":
            return False
        info = self.ctx.class_info()
        if info is None or not info.is_module or self.ctx.in_no_grad():
            return False
        # Branches on the mode or on grad being enabled may only run where nothing calls backward.
        tree = self.ctx.model.tree
        for node in self.ctx.stack:
            if isinstance(node, cst.If) and any(
                (isinstance(n, cst.Attribute) and n.attr.value in GRAD_WORDS) or (isinstance(n, cst.Name) and n.value in GRAD_WORDS)
                for n in (node.test, *tree.below(node.test, (cst.Attribute, cst.Name), scopes=False))
            ):
                return False
        return True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if not isinstance(node.target, cst.Name):
            return
        op = self._producer(node.target)
        if op is None or not self._applies(node.target):
            return
        symbol = OPERATORS.get(type(node.operator).__name__)
        fix = None
        if symbol is not None:
            value = node.value
            if not isinstance(value, ATOMS):
                value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            expr = cst.parse_expression(f"{node.target.value} {symbol} x").with_changes(right=value)
            new = cst.Assign(targets=[cst.AssignTarget(cst.Name(node.target.value))], value=expr)
            fix = Fix("Write the change out of place", FixSafety.UNSAFE, (Replace(node, new),))
        self.report(node, message=TEMPLATE.format(op=op), fix=fix)

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = [t.target for t in node.targets if isinstance(t.target, cst.Subscript)]
        if not targets:
            return
        for target in targets:
            if not isinstance(target.value, cst.Name):
                continue
            op = self._producer(target.value)
            if op is None or not self._applies(target.value):
                continue
            stmt = self.ctx.statement()
            fix = None
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                name = target.value.value
                clone = cst.parse_statement(f"{name} = {name}.clone()")
                fix = Fix("Clone before the item assignment", FixSafety.UNSAFE, (InsertBefore(stmt, (clone,)),))
            self.report(node, message=TEMPLATE.format(op=op), fix=fix)
            return

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and _is_inplace_method(func.attr.value):
            if self.ctx.qualname(func) is not None:
                return
            op = self._tensor_op(func.value)
            if op is not None and self._applies(func.value):
                self.report(node, message=TEMPLATE.format(op=op), fix=self._method_fix(node))
            return
        target = _first_positional(node)
        if target is None:
            return
        q = self.ctx.qualname(func) or ""
        if q.startswith(F) and q[len(F):] in FUNCTIONAL_INPLACE and _kwarg_true(node, "inplace"):
            op = self._tensor_op(target)
            if op is not None and self._applies(target if isinstance(target, cst.Name) else node):
                fix = Fix("Drop `inplace=True`", FixSafety.UNSAFE, (Replace(node, _without_kwarg(node, "inplace")),))
                self.report(node, message=TEMPLATE.format(op=op), fix=fix)
            return
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            made = self._self_module(func.attr.value)
            if made is None or not _module_inplace(made, self.ctx.qualname(made.func) or "") or not self._active():
                return
            op = self._tensor_op(target)
            if op is not None:
                self.report(node, message=TEMPLATE.format(op=op))

    def _applies(self, changed: cst.CSTNode) -> bool:
        """In `forward` (see `_active`), or elsewhere when a `backward()` in the same function runs on a value
        computed from the changed tensor: `y = torch.sigmoid(x @ w); y += 1; y.sum().backward()`."""
        if self._active():
            return True
        if self.ctx.method_name() == "forward" or self.ctx.in_no_grad():
            return False
        model = self.ctx.model
        if not isinstance(changed, cst.Name):
            return model.graph.flows_into_backward(changed, _no_return)
        facts = model.facts_at(changed)
        stmt = model.tree.statement(changed)
        start, end = (facts.order_of(stmt), facts.end_of(stmt)) if stmt is not None else (-1, -1)
        # The changed tensor's bindings: the one that reaches the change, and `y += ...` itself.
        live = {b.order for b in facts.bindings_of(changed.value) if start <= b.order <= end}
        live |= {b.order for b in (model.binding(changed),) if b is not None}
        return any(
            u.order > end and getattr(model.binding(u.node), "order", None) in live
            and model.graph.flows_into_backward(u.node, _no_return)
            for u in facts.uses.get(changed.value, ())
        )

    # --- what produced the tensor ---

    def _tensor_op(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Name):
            return self._producer(expr)
        if isinstance(expr, cst.Call):
            return self._saving_op(expr)
        return None

    def _producer(self, name: cst.Name) -> str | None:
        binding = self.ctx.reaching(name)
        if binding is None or binding.kind != "assign" or not isinstance(binding.value, cst.Call):
            return None
        return self._saving_op(binding.value)

    def _saving_op(self, call: cst.Call) -> str | None:
        """The name of the op when `call` saves its output for backward."""
        func = call.func
        q = self.ctx.qualname(func)
        if q in SAVES_OUTPUT_FUNCS:
            return q.rsplit(".", 1)[-1]
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            made = self._self_module(func.attr.value)
            if made is not None:
                mq = self.ctx.qualname(made.func) or ""
                return mq.rsplit(".", 1)[-1] if mq in SAVES_OUTPUT_MODULES else None
            return None
        if q is None and isinstance(func, cst.Attribute) and func.attr.value in SAVES_OUTPUT_METHODS:
            if not (isinstance(func.value, cst.Name) and func.value.value in ("F", "torch", "nn")):
                return func.attr.value
        return None

    def _self_module(self, attr: str) -> cst.Call | None:
        info = self.ctx.class_info()
        init = info.methods.get("__init__") if info is not None else None
        if init is None:
            return None
        values = self.ctx.self_assignments(init, attr)
        return values[0] if len(values) == 1 and isinstance(values[0], cst.Call) else None

    # --- fixes ---

    def _method_fix(self, call: cst.Call) -> Fix | None:
        func = call.func
        assert isinstance(func, cst.Attribute)
        if func.attr.value not in OUT_OF_PLACE or not isinstance(func.value, cst.Name):
            return None
        expr = self.ctx.parent()
        if not isinstance(expr, cst.Expr):
            return None
        new_call = call.with_changes(func=func.with_changes(attr=cst.Name(func.attr.value[:-1])))
        new = cst.Assign(targets=[cst.AssignTarget(cst.Name(func.value.value))], value=new_call)
        return Fix("Write the change out of place", FixSafety.UNSAFE, (Replace(expr, new),))


def _no_return(_: cst.Return) -> bool:
    return False


def _is_inplace_method(name: str) -> bool:
    return len(name) > 2 and name.endswith("_") and not name.startswith("_") and name not in NOT_MUTATING


def _first_positional(call: cst.Call) -> cst.BaseExpression | None:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[0].value if positional else None


def _kwarg_true(call: cst.Call, name: str) -> bool:
    arg = keyword(call, name)
    return arg is not None and is_true(arg.value)


def _module_inplace(made: cst.Call, q: str) -> bool:
    if _kwarg_true(made, "inplace"):
        return True
    positional = [a.value for a in made.args if a.keyword is None]
    return q in (NN + "ReLU", NN + "ReLU6", NN + "SELU", NN + "SiLU") and bool(positional) and is_true(positional[0])


def _without_kwarg(call: cst.Call, keyword: str) -> cst.Call:
    args = [a for a in call.args if a.keyword is None or a.keyword.value != keyword]
    if args and len(args) < len(call.args):
        last = args[-1]
        original_last = call.args[-1]
        args[-1] = last.with_changes(comma=original_last.comma if original_last is not last else last.comma)
        if call.args[-1].keyword is not None and call.args[-1].keyword.value == keyword:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)
