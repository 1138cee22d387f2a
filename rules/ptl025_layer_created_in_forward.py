"""PTL025 layer-created-in-forward."""

from __future__ import annotations

import re
from itertools import takewhile

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.rule import Fix, FixSafety, InsertAfter, Replace, Rule

# torch.nn layers that own parameters; stateless ones (ReLU, Flatten, pooling, losses) are left alone.
PARAMETRIC = re.compile(
    r"(Lazy)?(Linear|Bilinear|Conv[123]d|ConvTranspose[123]d)|(Sync)?BatchNorm[123]?d?|LayerNorm|GroupNorm|RMSNorm"
    r"|Embedding|EmbeddingBag|(RNN|LSTM|GRU)(Cell)?|MultiheadAttention|Transformer(Encoder|Decoder)?(Layer)?|PReLU"
)
LOOPS = (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda)


class LayerCreatedInForward(Rule):
    """A layer with weights built inside `forward`.

    ## What it does
    In the `forward` of an `nn.Module` subclass, flags the construction of a `torch.nn` layer
    that owns parameters (`nn.Linear(...)`, `nn.Conv2d(...)`, `nn.LayerNorm(...)`, ...), an
    `nn.Parameter(...)`, and `self.x = nn.Linear(...)` outside an `if` (a lazy initialisation is
    fine). Stateless layers such as `nn.ReLU()`, `nn.Flatten()` or pooling are not reported.

    ## Why is this bad?
    Every call builds fresh, randomly initialised weights. The optimizer was created before and
    never sees them, so they never train; they are missing from the `state_dict`, are not moved by
    `.to(device)`, and make two forwards of the same input give different outputs. Nothing fails:
    part of the network stays random.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(16, 32)

        def forward(self, x):
            return nn.Linear(32, 10)(torch.relu(self.body(x)))
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(16, 32)
            self.linear = nn.Linear(32, 10)

        def forward(self, x):
            return self.linear(torch.relu(self.body(x)))
    ```

    ## Fix safety
    Unsafe: the layer moves to the end of `__init__` (named after the local it was assigned to or
    after its class, such as `self.linear`, numbered when taken; or under its own `self.` name), so
    it is built once, registered, trained and saved. That changes the parameters, the `state_dict` keys and the random-number stream of the model. The fix applies
    only when the layer's arguments are constants or `self.` attributes and the layer is not
    built in a loop; a layer whose size depends on the input is reported without a fix (consider
    `nn.LazyLinear`).

    ## References
    - [Modules: registering parameters and submodules](https://pytorch.org/docs/stable/notes/modules.html)
    """

    code = "PTL025"
    name = "layer-created-in-forward"
    message = "A layer with weights is built in `forward`; it is re-initialised on every call and never trained"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("forward",)
    contract = "E2"

    def visit_Module(self, node: cst.Module) -> None:
        self._pending: dict[int, tuple[str, Fix | None]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        found = self._pending.pop(id(node), None)
        if found is not None:
            self.report(node, found[0], found[1])

    def _later(self, call: cst.Call, message: str, fix: Fix | None = None) -> None:
        self._pending[id(call)] = (message, fix)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value != "forward":
            return
        info = self.ctx.class_info()
        if info is None or not info.is_module or info.methods.get("forward") is not node:
            return
        # Find the layer calls first: most forwards have none, and then nothing else is built.
        tree = self.ctx.model.tree
        candidates = []
        for call in tree.below(node.body, cst.Call, scopes=False):
            layer = self._layer(call)  # type: ignore[arg-type]
            if layer is not None:
                candidates.append((call, layer))
        if not candidates:
            return
        init = info.methods.get("__init__")
        taken: set[str] | None = None
        for call, layer in candidates:
            chain = list(takewhile(lambda anc: anc is not node.body, tree.ancestors(call)))
            assign = next((a for a in chain if isinstance(a, (cst.Assign, cst.AnnAssign))), None)
            if assign is not None and _self_target(assign) is not None:
                if any(isinstance(a, (cst.If, cst.IfExp, cst.Try)) for a in chain):
                    continue  # lazy initialisation
                if assign.value is call and isinstance(assign, cst.Assign):
                    self._report_self_assign(call, assign, chain, init, layer)
                    continue
            if layer == "Parameter":
                self._later(call, "`nn.Parameter` built in `forward` is a fresh tensor on every call and is never trained")
                continue
            fix = None
            if init is not None and not any(isinstance(a, LOOPS) for a in chain) and self._constant_args(call):
                if taken is None:
                    taken = self._self_attrs(info.node) | set(info.methods) | MODULE_ATTRS
                attr = _attr_name(call, chain, layer, taken)
                taken.add(attr)
                stmt = cst.parse_statement(f"self.{attr} = {cst.Module([]).code_for_node(call)}")
                edits = (Replace(call, cst.parse_expression(f"self.{attr}")), InsertAfter(init.body.body[-1], (stmt,)))  # type: ignore[union-attr]
                fix = Fix(f"Build the layer once in `__init__` as `self.{attr}`", FixSafety.UNSAFE, edits)
            self._later(call, f"`{layer}` is built in `forward`: its weights are re-initialised on every call and never trained", fix)

    def _report_self_assign(
        self, call: cst.Call, assign: cst.Assign, chain: list[cst.CSTNode], init: cst.FunctionDef | None, layer: str
    ) -> None:
        target = _self_target(assign)
        info = self.ctx.class_info()
        fix = None
        line = next((a for a in chain if isinstance(a, cst.SimpleStatementLine)), None)
        if (
            init is not None
            and target is not None
            and line is not None
            and len(line.body) == 1
            and not any(isinstance(a, LOOPS) for a in chain)
            and not self.ctx.self_assignments(init, target)
            and self._constant_args(call)
            and info is not None
        ):
            moved = line.with_changes(leading_lines=())
            edits = (Replace(line, cst.RemovalSentinel.REMOVE), InsertAfter(init.body.body[-1], (moved,)))  # type: ignore[union-attr]
            fix = Fix(f"Build `self.{target}` once in `__init__`", FixSafety.UNSAFE, edits)
        self._later(call, f"`self.{target} = {layer}(...)` in `forward` rebuilds the layer with fresh weights on every call", fix)

    def _layer(self, call: cst.Call) -> str | None:
        qual = self.ctx.qualname(call.func) or ""
        if not qual.startswith("torch.nn.") or qual.count(".") != 2:
            return None
        last = qual.rsplit(".", 1)[-1]
        if last == "Parameter":
            return "Parameter"
        if PARAMETRIC.fullmatch(last):
            return f"nn.{last}"
        return None

    def _constant_args(self, call: cst.Call) -> bool:
        return all(_constant(a.value) for a in call.args if a.star == "")

    def _self_attrs(self, cls: cst.ClassDef) -> set[str]:
        """Names of every `self.<name>` in the class, nested functions included."""
        return {
            n.attr.value  # type: ignore[attr-defined]
            for n in self.ctx.model.tree.below(cls, cst.Attribute)
            if dotted_name(n.value) == "self"  # type: ignore[attr-defined]
        }


# Attributes every nn.Module has: a new layer must not shadow them.
MODULE_ATTRS = {
    "training", "forward", "train", "eval", "to", "cuda", "cpu", "half", "float", "double", "type", "apply",
    "parameters", "named_parameters", "buffers", "named_buffers", "children", "named_children", "modules",
    "named_modules", "state_dict", "load_state_dict", "zero_grad", "register_buffer", "register_parameter",
    "register_module", "add_module", "get_submodule", "requires_grad_", "extra_repr", "dump_patches",
}


def _attr_name(call: cst.Call, chain: list[cst.CSTNode], layer: str, taken: set[str]) -> str:
    """A readable, unused `self.` name for the layer: the local it was assigned to (`head = nn.Linear(...)`),
    else its class in snake case (`linear`, `multihead_attention`), numbered when taken."""
    base = ""
    assign = chain[0] if chain and isinstance(chain[0], cst.Assign) else None
    if assign is not None and assign.value is call and len(assign.targets) == 1:
        target = assign.targets[0].target
        if isinstance(target, cst.Name) and not target.value.startswith("_"):
            base = target.value
    if not base or base in taken:
        name = layer.rsplit(".", 1)[-1]
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    attr, n = base, 1
    while attr in taken:
        n += 1
        attr = f"{base}_{n}"
    return attr


def _constant(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in {"True", "False", "None"}
    if isinstance(node, cst.UnaryOperation):
        return _constant(node.expression)
    if isinstance(node, cst.BinaryOperation):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, (cst.Tuple, cst.List)):
        return all(isinstance(e, cst.Element) and _constant(e.value) for e in node.elements)
    if isinstance(node, cst.Attribute):
        name = dotted_name(node) or ""
        return name.startswith("self.") and name.count(".") == 1
    return False


def _self_target(assign: cst.Assign | cst.AnnAssign) -> str | None:
    if isinstance(assign, cst.AnnAssign):
        target = assign.target
    elif len(assign.targets) != 1:
        return None
    else:
        target = assign.targets[0].target
    if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value == "self":
        return target.attr.value
    return None

