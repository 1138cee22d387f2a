"""PTL031 unregistered-submodule."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.callargs import keyword
from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.semantic.flow import is_true

# torch factories whose result is a fresh tensor.
FACTORIES = {
    "tensor", "zeros", "ones", "empty", "full", "randn", "rand", "randint", "arange", "linspace", "eye",
    "zeros_like", "ones_like", "randn_like", "rand_like", "empty_like", "full_like", "normal",
}
CONTAINER_TYPES = frozenset((cst.List, cst.ListComp, cst.Dict, cst.DictComp))
NOT_MODULES = {"Parameter", "ParameterList", "ParameterDict", "Buffer", "Module"}
# Uses of the attribute in `__init__` that register its contents some other way.
REGISTERING = {"Sequential", "ModuleList", "ModuleDict", "add_module", "register_module", "ParameterList", "ParameterDict"}


class UnregisteredSubmodule(Rule):
    """Modules, parameters or tensors kept on a module in a form that `nn.Module` does not register.

    ## What it does
    In the `__init__` of an `nn.Module` subclass, flags:
    - a list, dict or comprehension of layers (or of `nn.Parameter`s) stored on `self`, including
      an empty list that layers are appended to;
    - `self.w = torch.randn(..., requires_grad=True)`, a trainable tensor that is not a parameter;
    - `self.t = torch.zeros(...)`, a plain state tensor that is not a buffer.

    ## Why is this bad?
    Only `nn.Module`, `nn.Parameter` and registered buffers attributes are seen by the module.
    Layers in a plain list are missing from `parameters()`, so the optimizer never trains them;
    they are not moved by `.to(device)`, not switched by `train()`/`eval()` and not saved in the
    `state_dict`. A plain tensor stays on the CPU when the model moves to the GPU. Nothing fails:
    the model trains part of itself, or saves a checkpoint without the weights.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Linear(8, 8) for _ in range(4)]
            self.scale = torch.ones(8, requires_grad=True)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(4)])
            self.scale = nn.Parameter(torch.ones(8))
    ```

    ## Fix safety
    Wrapping a list in `nn.ModuleList` (or `nn.ParameterList`) and a dict with string keys in
    `nn.ModuleDict` (or `nn.ParameterDict`) is safe: the layers were meant to be part of the model.
    Turning a tensor into `nn.Parameter(...)` or a non-persistent buffer
    (`self.register_buffer("t", ..., persistent=False)`) is unsafe: the optimizer, `parameters()`,
    `buffers()` and dtype casts now see it, and a parameter adds a `state_dict` key.

    ## References
    - [torch.nn.ModuleList](https://pytorch.org/docs/stable/generated/torch.nn.ModuleList.html)
    - [Module.register_buffer](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.register_buffer)
    """

    code = "PTL031"
    name = "unregistered-submodule"
    message = "Layers in a plain container are not registered with the module"
    fix_safety = FixSafety.SAFE
    severity = "error"
    triggers = ("self.",)
    contract = "E2"

    def visit_Module(self, node: cst.Module) -> None:
        self._pending: dict[int, tuple[cst.CSTNode, str, Fix | None]] = {}

    def visit_Assign(self, node: cst.Assign) -> None:
        found = self._pending.pop(id(node.value), None)
        if found is not None:
            self.report(*found)

    def _later(self, node: cst.CSTNode, message: str, fix: Fix | None = None) -> None:
        self._pending[id(node)] = (node, message, fix)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value != "__init__":
            return
        info = self.ctx.class_info()
        if info is None or not (info.is_module or info.is_lightning) or info.methods.get("__init__") is not node:
            return
        registered: set[str] | None = None  # built at the first value `_check` could report
        for stmt in self.ctx.model.tree.below(node.body, cst.Assign, scopes=False):
            if len(stmt.targets) != 1:
                continue
            target = stmt.targets[0].target
            if not (type(target) is cst.Attribute and type(target.value) is cst.Name and target.value.value == "self"):
                continue
            if not self._candidate(stmt.value):
                continue
            if registered is None:
                registered = self._registered_attrs(node)
            attr = target.attr.value
            if attr in registered or "*" in registered or len(self.ctx.self_assignments(node, attr)) != 1:
                continue
            self._check(node, stmt, attr, stmt.value)

    def _candidate(self, value: cst.BaseExpression) -> bool:
        """Whether `_check` can report `value` at all: a list or dict display or comprehension, or a torch factory call."""
        kind = type(value)
        if kind in CONTAINER_TYPES:
            return True
        return kind is cst.Call and self._factory(value) is not None  # type: ignore[arg-type]

    def _check(self, init: cst.FunctionDef, stmt: cst.Assign, attr: str, value: cst.BaseExpression) -> None:
        kind = self._container(value, init, attr)
        if kind is not None:
            container, keys_ok = kind
            spelled = _spell(self.ctx, container)
            fix = None
            if keys_ok:
                new = cst.Call(func=cst.parse_expression(spelled), args=[cst.Arg(value)])
                fix = Fix(f"Wrap in `{spelled}`", FixSafety.SAFE, (Replace(value, new),))
            what = "parameters" if container.startswith("Parameter") else "layers"
            self._later(value, f"`self.{attr}` keeps {what} in a plain container; use `{spelled}`", fix)
            return
        if not isinstance(value, cst.Call) or self._factory(value) is None:
            return
        grad = keyword(value, "requires_grad")
        if grad is not None:
            if not is_true(grad.value):
                return
            spelled = _spell(self.ctx, "Parameter")
            args = [a for a in value.args if a is not grad]
            if args:
                args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            new = cst.Call(func=cst.parse_expression(spelled), args=[cst.Arg(value.with_changes(args=args))])
            fix = Fix(f"Make it an `{spelled}`", FixSafety.UNSAFE, (Replace(value, new),))
            self._later(value, f"`self.{attr}` requires grad but is not a parameter; use `{spelled}`", fix)
            return
        if keyword(value, "device") is not None or not self._used_in_forward(attr):
            return
        info = self.ctx.class_info()
        if info is not None and any(self.ctx.self_assignments(f, attr) for n, f in info.methods.items() if n != "__init__"):
            return
        fix = None
        parent = self.ctx.model.tree.parent(stmt)
        if isinstance(parent, cst.SimpleStatementLine) and len(parent.body) == 1:
            new_stmt = cst.parse_statement(f'self.register_buffer("{attr}", __value__, persistent=False)')
            new_stmt = new_stmt.with_deep_changes(new_stmt.body[0].value.args[1], value=value)  # type: ignore[attr-defined]
            new_stmt = new_stmt.with_changes(leading_lines=parent.leading_lines, trailing_whitespace=parent.trailing_whitespace)
            fix = Fix("Register it as a non-persistent buffer", FixSafety.UNSAFE, (Replace(parent, new_stmt),))
        self._later(value, f"`self.{attr}` is a plain tensor that `.to(device)` does not move; register it as a buffer", fix)

    def _container(self, value: cst.BaseExpression, init: cst.FunctionDef, attr: str) -> tuple[str, bool] | None:
        """("ModuleList"|"ModuleDict"|"ParameterList"|"ParameterDict", keys are strings) or None."""
        if isinstance(value, cst.List):
            items = [e.value for e in value.elements if isinstance(e, cst.Element)]
            if len(items) != len(value.elements):
                return None
            if not items:
                appended = self._appended(init, attr)
                kind = self._all_of(appended)
                return (f"{kind}List", True) if kind else None
            kind = self._all_of(items)
            return (f"{kind}List", True) if kind else None
        if isinstance(value, cst.ListComp):
            kind = self._all_of([value.elt])
            return (f"{kind}List", True) if kind else None
        if isinstance(value, cst.Dict):
            elements = value.elements
            if not elements or not all(isinstance(e, cst.DictElement) for e in elements):
                return None
            kind = self._all_of([e.value for e in elements])  # type: ignore[union-attr]
            keys_ok = all(_string(e.key) for e in elements)  # type: ignore[union-attr]
            return (f"{kind}Dict", keys_ok) if kind else None
        if isinstance(value, cst.DictComp):
            kind = self._all_of([value.value])
            return (f"{kind}Dict", _string(value.key)) if kind else None
        return None

    def _all_of(self, items: list[cst.BaseExpression]) -> str | None:
        """"Module" when every item builds a layer, "Parameter" when every item is an `nn.Parameter`."""
        if not items:
            return None
        kinds = {self._item_kind(i) for i in items}
        return kinds.pop() if len(kinds) == 1 and None not in kinds else None

    def _item_kind(self, item: cst.BaseExpression) -> str | None:
        if not isinstance(item, cst.Call):
            return None
        qual = self.ctx.qualname(item.func) or ""
        if qual == "torch.nn.Parameter":
            return "Parameter"
        if qual.startswith("torch.nn.") and qual.count(".") == 2:
            last = qual.rsplit(".", 1)[-1]
            if last[:1].isupper() and last not in NOT_MODULES:
                return "Module"
            return None
        if isinstance(item.func, cst.Name):
            info = self.ctx.classes.get(item.func.value)
            if info is not None and info.is_module:
                return "Module"
        return None

    def _appended(self, init: cst.FunctionDef, attr: str) -> list[cst.BaseExpression]:
        """Arguments of `self.<attr>.append(...)` in `__init__`; an empty list when anything else happens."""
        found: list[cst.BaseExpression] = []
        for node in self.ctx.model.tree.below(init.body, cst.Call, scopes=False):
            if isinstance(node.func, cst.Attribute) and dotted_name(node.func.value) == f"self.{attr}":  # type: ignore[attr-defined]
                if node.func.attr.value != "append" or len(node.args) != 1:
                    return []
                found.append(node.args[0].value)
        return found

    def _factory(self, call: cst.Call) -> str | None:
        qual = self.ctx.qualname(call.func) or ""
        if qual.startswith("torch.") and qual.count(".") == 1 and qual[6:] in FACTORIES:
            return qual
        return None

    def _used_in_forward(self, attr: str) -> bool:
        info = self.ctx.class_info()
        forward = info.methods.get("forward") if info is not None else None
        if forward is None:
            return False
        return any(dotted_name(n) == f"self.{attr}" for n in self.ctx.model.tree.below(forward.body, cst.Attribute, scopes=False))

    def _registered_attrs(self, init: cst.FunctionDef) -> set[str]:
        """Attributes that `__init__` hands to a registering call (`nn.Sequential(*self.blocks)`, `add_module`)."""
        tree = self.ctx.model.tree
        out: set[str] = set()
        for node in tree.below(init.body, cst.Call, scopes=False):
            name = (dotted_name(node.func) or "").rsplit(".", 1)[-1]  # type: ignore[attr-defined]
            if name in {"add_module", "register_module", "register_parameter", "setattr"}:
                out.add("*")  # registered one by one: any container may hold already registered layers
            for arg in node.args:  # type: ignore[attr-defined]
                for inner in (arg.value, *tree.below(arg.value, cst.Attribute, scopes=False)):
                    dotted = dotted_name(inner) if isinstance(inner, cst.Attribute) else None
                    if dotted and dotted.startswith("self.") and (name in REGISTERING or name[:1].isupper()):
                        out.add(dotted.split(".")[1])
        return out


def _string(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString))


def _spell(ctx: object, name: str) -> str:
    """`nn.<name>` when `nn` is torch.nn in this file, else how the file spells `torch.nn.<name>`."""
    if ctx.qualname(cst.Name("nn")) == "torch.nn":  # type: ignore[attr-defined]
        return f"nn.{name}"
    return ctx.torch_name(f"torch.nn.{name}")  # type: ignore[attr-defined]
