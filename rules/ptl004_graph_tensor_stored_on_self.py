"""PTL004 graph-tensor-stored-on-self."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.semantic import Carry

if TYPE_CHECKING:
    from ptlint.context import Context

# Lightning runs these hooks under inference mode, so nothing they store has a graph.
LIGHTNING_NO_GRAD_STEPS = {"validation_step", "test_step", "predict_step"}
GRADIENT_USES = {"grad", "register_hook", "retain_grad"}
MUTATORS = {"append", "extend", "insert", "add", "update", "appendleft", "clear"}
# Auxiliary losses that a forward stores for the training loop to add (MoE balance loss, VAE KL).
AUX_LOSS_ATTR_RE = re.compile(r"loss|(^|_)(kl|kld|elbo|aux|penalty|reg)(_|\d|$)")
LOSS_FUNC_RE = re.compile(r"loss|_step$|^step$|closure|objective|criterion|elbo|train")
ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


class GraphTensorStoredOnSelf(Rule):
    """A tensor with an autograd graph stored on `self` in `forward` or a `*_step` method.

    ## What it does
    Flags, in `forward` and in `*_step` methods (`training_step`, ...) of an `nn.Module` or
    `LightningModule` subclass, a tensor computed from the inputs or by a submodule that is
    stored on `self` without `.detach()`: `self.attn = weights`, `self.total += loss`,
    `self.outputs.append(logits)`.

    In `*_step` methods the raw batch is not a graph tensor; only what the model computes from
    it is. Not flagged: values computed under `torch.no_grad()` or in `if not self.training:`;
    detached or converted values (`.item()`, `.detach().cpu()`, `.argmax()`); shapes, counters
    and constants; auxiliary losses (a `forward` storing `self.aux_loss`/`self.kl`, or any
    attribute that a loss read elsewhere in the file backpropagates); attributes whose gradient
    is read (`.grad`, `register_hook`) or that the file detaches itself (truncated BPTT);
    `*cache*` attributes and slice writes into buffers (KV caches); values computed once under
    `if self.x is None:` or `if not hasattr(self, "x"):` and reused by later calls; and Lightning's
    `validation_step`/`test_step`/`predict_step`, which run under inference mode.

    ## Why is this bad?
    A tensor that is kept on the module keeps its whole autograd graph, with the activations
    it saved, alive until the attribute is overwritten. Peak memory then holds two steps'
    activations, and a list that is appended to every step grows without bound. A recurrent
    state carried across steps this way also makes the next `backward()` walk into the
    previous step's freed graph.

    ## Example
    ```python
    class Attention(nn.Module):
        def forward(self, q, k, v):
            weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
            self.last_weights = weights
            return weights @ v
    ```

    ## Use instead
    ```python
    class Attention(nn.Module):
        def forward(self, q, k, v):
            weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
            self.last_weights = weights.detach()
            return weights @ v
    ```

    ## Fix safety
    Unsafe: code that backpropagates through the stored tensor (a loss term read from the
    module in another file, or truncated BPTT that relies on the graph) gets no gradient
    through it after the fix. There is no fix when the method reads the attribute back into its
    result (the step needs those gradients), or when the value may not be one tensor (an
    LSTM's `(h, c)` state, a model output object, a container built by `dict(...)`).

    ## References
    - [PyTorch FAQ: out of memory](https://pytorch.org/docs/stable/notes/faq.html)
    - [Autograd mechanics: saved tensors](https://pytorch.org/docs/stable/notes/autograd.html)
    - [Lightning: on_train_epoch_end](https://lightning.ai/docs/pytorch/stable/common/lightning_module.html)
    """

    code = "PTL004"
    name = "graph-tensor-stored-on-self"
    message = "A tensor stored on `self` keeps its autograd graph alive; store `.detach()` of it"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("forward", "_step")
    contract = "E0"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._reads: dict[str, list[cst.CSTNode]] = {}

    # --- stores ---

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            attr = _self_attr(target.target)
            if attr is not None:
                self._check(node.value, attr, "assign")
                return
        for target in node.targets:
            if isinstance(target.target, (cst.Tuple, cst.List)):
                attrs = [a for el in target.target.elements if (a := _self_attr(el.value))]
                if attrs:
                    self._check(node.value, attrs[0], "unpack")
                    return

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        attr = _self_attr(node.target)
        if attr is not None and node.value is not None:
            self._check(node.value, attr, "assign")

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        attr = _self_attr(node.target)
        if attr is not None:
            self._check(node.value, attr, "accumulate")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "append" and len(node.args) == 1):
            return
        attr = _self_attr(func.value)
        arg = node.args[0]
        if attr is not None and arg.keyword is None and not arg.star:
            self._check(arg.value, attr, "append")

    def _check(self, value: cst.BaseExpression, attr: str, kind: str) -> None:
        mode = self._mode()
        if mode is None or "cache" in attr or not self._graph(value):
            return
        if kind == "assign" and mode == "forward" and AUX_LOSS_ATTR_RE.search(attr):
            return
        if kind == "assign" and self._memoized(attr):
            return
        if self._read_elsewhere(attr):
            return
        new = None if kind == "unpack" or self._read_back(attr) else self._detached(value)
        fix = Fix("Store a detached tensor", FixSafety.UNSAFE, (Replace(value, new),)) if new is not None else None
        self.report(value, message=_message(attr, kind), fix=fix)

    def _graph(self, value: cst.CSTNode) -> bool:
        """The value may carry a graph: YES or MAYBE (see semantic/graph.py)."""
        return self.ctx.model.graph.carries(value) is not Carry.NO

    def _mode(self) -> str | None:
        """`forward` or `step` when the current node is a store site this rule checks, else None."""
        info = self.ctx.class_info()
        method = self.ctx.method_name()
        if info is None or not info.is_module or method is None:
            return None
        if any(isinstance(n, cst.Lambda) for n in self.ctx.stack):
            return None
        if self.ctx.in_no_grad() or self._eval_only():
            return None
        if method == "forward":
            return "forward"
        if method.endswith("_step") and not (info.is_lightning and method in LIGHTNING_NO_GRAD_STEPS):
            return "step"
        return None

    def _memoized(self, attr: str) -> bool:
        """Inside `if self.attr is None:` or `if not hasattr(self, "attr"):`: a value computed once and
        reused by later calls (a per-sequence projection, a cached inverse), reset by its owner."""
        stack = self.ctx.stack
        for node, child in zip(stack, stack[1:]):
            if isinstance(node, cst.If) and child is node.body and _tests_unset(node.test, attr):
                return True
        return False

    def _eval_only(self) -> bool:
        """Inside `if not self.training:`, or the `else` of `if self.training:`."""
        stack = self.ctx.stack
        for node, child in zip(stack, stack[1:]):
            if not isinstance(node, cst.If):
                continue
            negated, flag = _training_test(node.test)
            if flag and ((child is node.body and negated) or (child is node.orelse and not negated)):
                return True
        return False

    # --- the fix ---

    def _detached(self, value: cst.BaseExpression) -> cst.BaseExpression | None:
        """`value` with its graph-carrying tensors detached; None when that cannot be done safely."""
        if isinstance(value, (cst.Tuple, cst.List, cst.Set)):
            return self._detached_elements(value)
        if isinstance(value, cst.Dict):
            return self._detached_dict(value)
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            elt = self._detached(value.elt)
            return value.with_changes(elt=elt) if elt is not None else None
        if isinstance(value, cst.DictComp):
            inner = self._detached(value.value)
            return value.with_changes(value=inner) if inner is not None else None
        if isinstance(value, cst.IfExp):
            body, orelse = self._detached_part(value.body), self._detached_part(value.orelse)
            return value.with_changes(body=body, orelse=orelse) if body is not None and orelse is not None else None
        if self.ctx.model.torch.one_tensor(value) is False:
            return None
        return _detach_call(value)

    def _detached_part(self, value: cst.BaseExpression) -> cst.BaseExpression | None:
        return self._detached(value) if self._graph(value) else value

    def _detached_elements(self, value: cst.Tuple | cst.List | cst.Set) -> cst.BaseExpression | None:
        elements = []
        for el in value.elements:
            if not self._graph(el.value):
                elements.append(el)
                continue
            new = None if isinstance(el, cst.StarredElement) else self._detached(el.value)
            if new is None:
                return None
            elements.append(el.with_changes(value=new))
        return value.with_changes(elements=elements)

    def _detached_dict(self, value: cst.Dict) -> cst.BaseExpression | None:
        elements = []
        for el in value.elements:
            if not self._graph(el.value):
                elements.append(el)
                continue
            new = self._detached(el.value) if isinstance(el, cst.DictElement) else None
            if new is None:
                return None
            elements.append(el.with_changes(value=new))
        return value.with_changes(elements=elements)

    # --- reads of the attribute elsewhere in the file ---

    def _read_elsewhere(self, attr: str) -> bool:
        """Whether another statement reads `<obj>.attr` in a loss, for its gradient, or detaches it itself."""
        here = self.ctx.statement()
        tree = self.ctx.model.tree
        for read in self._reads_of(attr):
            if here is not None and tree.contains(here, read):
                continue
            if self._gradient_use(read) or self._detached_elsewhere(read, attr) or self._feeds_loss(read):
                return True
        return False

    def _read_back(self, attr: str) -> bool:
        """Whether this method reads `self.attr` again (later, or in the loop around the store) into
        its result or a loss: detaching the stored value would cut gradients this step needs."""
        func, stmt = self.ctx.function(), self.ctx.statement()
        if func is None or stmt is None:
            return False
        facts = self.ctx.scope_facts()
        loops = self.ctx.loops()
        tree = self.ctx.model.tree
        for read in self._reads_of(attr):
            own = isinstance(read, cst.Attribute) and _is_self(read.value) and tree.contains(func, read)
            if not own or self._other_branch(read):
                continue
            later = facts.order_of(read) > facts.end_of(stmt)
            if (later or any(facts.contains(loop, read) for loop in loops)) and self._feeds_loss(read, True):
                return True
        return False

    def _other_branch(self, read: cst.CSTNode) -> bool:
        """Whether `read` sits in the other branch of an `if` whose one branch holds the store."""
        stack = self.ctx.stack
        tree = self.ctx.model.tree
        for node, child in zip(stack, stack[1:]):
            if isinstance(node, cst.If):
                other = node.orelse if child is node.body else node.body if child is node.orelse else None
                if other is not None and tree.contains(other, read):
                    return True
        return False

    def _reads_of(self, attr: str) -> list[cst.CSTNode]:
        """Every value read of `<obj>.attr` or `getattr(obj, "attr")` in the file."""
        found = self._reads.get(attr)
        if found is None:
            tree = self.ctx.model.tree
            found = []
            for name in tree.names(attr):
                parent = tree.parent(name)
                if isinstance(parent, cst.Attribute) and parent.attr is name:
                    found.append(parent)
            for name in tree.names("getattr"):
                call = tree.parent(name)
                if isinstance(call, cst.Call) and call.func is name and _getattr_key(call) == attr:
                    found.append(call)
            found.sort(key=tree.order)
            found = self._reads[attr] = [r for r in found if not self._is_target(r) and not self._is_mutation(r)]
        return found

    def _is_mutation(self, node: cst.CSTNode) -> bool:
        """`obj.attr.append(...)` and the like: the container is changed, not read."""
        parent = self.ctx.model.tree.parent(node)
        return isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in MUTATORS

    def _is_target(self, node: cst.CSTNode) -> bool:
        parent_of = self.ctx.model.tree.parent
        child, parent = node, parent_of(node)
        while isinstance(parent, (cst.Element, cst.StarredElement, cst.Tuple, cst.List)):
            child, parent = parent, parent_of(parent)
        if isinstance(parent, cst.AssignTarget):
            return True
        return isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is child

    def _gradient_use(self, read: cst.CSTNode) -> bool:
        parent = self.ctx.model.tree.parent(read)
        return isinstance(parent, cst.Attribute) and parent.attr.value in GRADIENT_USES

    def _detached_elsewhere(self, read: cst.CSTNode, attr: str) -> bool:
        """`obj.attr.detach_()`, or `obj.attr = <detach or repackage>(obj.attr)` (truncated BPTT)."""
        tree = self.ctx.model.tree
        parent = tree.parent(read)
        if isinstance(parent, cst.Attribute) and parent.attr.value == "detach_":
            return True
        stmt = tree.enclosing(read, (cst.BaseSmallStatement, cst.BaseCompoundStatement))
        if not isinstance(stmt, cst.Assign) or not any(_attr_name(t.target) == attr for t in stmt.targets):
            return False
        calls = [stmt.value] if isinstance(stmt.value, cst.Call) else []
        return any(_detaching_name(c.func) for c in (*calls, *tree.below(stmt.value, cst.Call)))  # type: ignore[attr-defined]

    def _feeds_loss(self, node: cst.CSTNode, any_return: bool = False) -> bool:
        """Whether `node` flows, undetached, into a backward call or a returned loss (any return value
        with `any_return`)."""
        return self.ctx.model.graph.flows_into_backward(node, lambda ret: any_return or self._returns_loss(ret))

    def _returns_loss(self, stmt: cst.Return) -> bool:
        scope = self.ctx.model.tree.enclosing(stmt, (cst.FunctionDef, cst.Lambda, cst.ClassDef))
        return isinstance(scope, cst.FunctionDef) and LOSS_FUNC_RE.search(scope.name.value) is not None


def _message(attr: str, kind: str) -> str:
    if kind == "append":
        return f"Appending to `self.{attr}` keeps every step's autograd graph alive; append a detached tensor"
    if kind == "accumulate":
        return f"Accumulating into `self.{attr}` chains the autograd graphs of every step; add a detached tensor"
    return f"`self.{attr}` keeps this tensor's autograd graph alive; store a detached tensor"


def _is_self(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "self"


def _self_attr(expr: cst.CSTNode) -> str | None:
    """`attr` for `self.attr`."""
    return expr.attr.value if isinstance(expr, cst.Attribute) and _is_self(expr.value) else None


def _attr_name(expr: cst.CSTNode) -> str | None:
    return expr.attr.value if isinstance(expr, cst.Attribute) else None


def _getattr_key(call: cst.Call) -> str | None:
    """`"attr"` of `getattr(obj, "attr", ...)`."""
    if len(call.args) >= 2 and isinstance(call.args[1].value, cst.SimpleString):
        value = call.args[1].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _tests_unset(test: cst.BaseExpression, attr: str) -> bool:
    """`self.attr is None` or `not hasattr(self, "attr")`, alone or as one operand of an `or`."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        return _tests_unset(test.left, attr) or _tests_unset(test.right, attr)
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        is_none = isinstance(target.operator, cst.Is) and isinstance(target.comparator, cst.Name)
        return is_none and target.comparator.value == "None" and _self_attr(test.left) == attr
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        call = test.expression
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value == "hasattr":
            args = [a.value for a in call.args]
            return (
                len(args) == 2 and _is_self(args[0]) and isinstance(args[1], cst.SimpleString)
                and args[1].evaluated_value == attr
            )
    return False


def _training_test(test: cst.BaseExpression) -> tuple[bool, bool]:
    """(negated, whether it tests `self.training`)."""
    negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
    inner = test.expression if isinstance(test, cst.UnaryOperation) and negated else test
    return negated, isinstance(inner, cst.Attribute) and inner.attr.value == "training" and _is_self(inner.value)


def _detach_call(expr: cst.BaseExpression) -> cst.Call:
    inner = expr
    if not isinstance(expr, ATOMS) and not expr.lpar:
        inner = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=inner, attr=cst.Name("detach")))


def _detaching_name(func: cst.CSTNode) -> bool:
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return "detach" in name or "repackage" in name
