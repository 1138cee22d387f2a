"""PTL004 graph-tensor-stored-on-self."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

import libcst as cst

from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.walk import children, iter_nodes
from ptlint.rule import Fix, FixSafety, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

# Lightning runs these hooks under inference mode, so nothing they store has a graph.
LIGHTNING_NO_GRAD_STEPS = {"validation_step", "test_step", "predict_step"}
# Attributes and methods whose result carries no autograd graph.
NON_GRAPH_ATTRS = {
    "shape", "dtype", "device", "ndim", "requires_grad", "is_leaf", "is_cuda", "layout", "data", "grad",
    "names", "is_sparse", "itemsize", "nbytes",
}
NON_GRAPH_METHODS = {
    "detach", "detach_", "item", "tolist", "numpy", "size", "dim", "numel", "nelement", "element_size", "stride",
    "data_ptr", "is_contiguous", "get_device", "argmax", "argmin", "argsort", "long", "int", "bool", "short",
    "byte", "nonzero", "count_nonzero", "eq", "ne", "gt", "lt", "ge", "le", "isnan", "isinf", "isfinite",
    "equal", "allclose", "is_floating_point", "register_hook",
}
NON_GRAPH_BUILTINS = {
    "len", "int", "float", "bool", "str", "repr", "format", "isinstance", "type", "id", "hash", "range",
    "print", "hasattr", "callable",
}
NON_GRAPH_TORCH = {
    "torch.tensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter", "torch.argmax", "torch.argmin",
    "torch.argsort", "torch.isnan", "torch.isinf", "torch.isfinite", "torch.numel", "torch.is_tensor",
    "torch.count_nonzero", "torch.nonzero", "torch.equal", "torch.allclose", "torch.randint", "torch.randperm",
    "torch.bucketize", "torch.searchsorted", "torch.eq", "torch.ne", "torch.gt", "torch.lt", "torch.ge", "torch.le",
}
# Methods of a module that do not run it.
MODULE_NON_GRAPH = {
    "parameters", "named_parameters", "modules", "named_modules", "children", "named_children", "buffers",
    "named_buffers", "state_dict", "eval", "train", "to", "cpu", "cuda", "half", "float", "zero_grad", "apply",
    "requires_grad_", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_buffer", "get_submodule", "get_parameter",
}
# Builtins whose result may not be one tensor (a container, or a Python number from max/min/sum).
NON_TENSOR_BUILTINS = {
    "dict", "list", "tuple", "set", "zip", "map", "filter", "sorted", "reversed", "enumerate", "max", "min", "sum",
}
# Fields of structured model outputs (Hugging Face `ModelOutput`, named tuples), which have no `.detach()`.
MODEL_OUTPUT_FIELDS = {
    "loss", "logits", "last_hidden_state", "hidden_states", "attentions", "pooler_output", "past_key_values",
}
# Layers that return a tuple: `.detach()` on their whole output would fail.
TUPLE_LAYERS = {"LSTM", "GRU", "RNN", "MultiheadAttention"}
BACKWARD_CALLS = {"backward", "manual_backward"}
AUTOGRAD_CALLS = {"torch.autograd.grad", "torch.autograd.backward"}
GRADIENT_USES = {"grad", "register_hook", "retain_grad"}
MUTATORS = {"append", "extend", "insert", "add", "update", "appendleft", "clear"}
NON_TENSOR_PARAM_RE = re.compile(
    r"(^|_)(mask|masks|ids|id|idx|index|indices|len|lens|lengths?|labels?|targets?|positions?|steps?|epoch|"
    r"timesteps?)(_|$)"
)
NON_TENSOR_ANNOTATIONS = {"int", "float", "bool", "str", "bytes", "Optional", "Union", "Literal", "None"}
# Auxiliary losses that a forward stores for the training loop to add (MoE balance loss, VAE KL).
AUX_LOSS_ATTR_RE = re.compile(r"loss|(^|_)(kl|kld|elbo|aux|penalty|reg)(_|\d|$)")
LOSS_FUNC_RE = re.compile(r"loss|_step$|^step$|closure|objective|criterion|elbo|train")
MODEL_HELPER_RE = re.compile(r"loss|criterion|objective|forward")
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
        self._parents: dict[int, cst.CSTNode] | None = None
        self._reads: dict[str, list[cst.CSTNode]] = {}
        self._no_grad_withs: dict[int, list[cst.With]] = {}
        self._runs_model_memo: dict[str, bool] = {}

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
        if mode is None or "cache" in attr or not self._graph(value, mode, set()):
            return
        if kind == "assign" and mode == "forward" and AUX_LOSS_ATTR_RE.search(attr):
            return
        if kind == "assign" and self._memoized(attr):
            return
        if self._read_elsewhere(attr):
            return
        new = None if kind == "unpack" or self._read_back(attr) else self._detached(value, mode)
        fix = Fix("Store a detached tensor", FixSafety.UNSAFE, (Replace(value, new),)) if new is not None else None
        self.report(value, message=_message(attr, kind), fix=fix)

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
        """Inside `if not self.training:` (or the `else` of `if self.training:`), or the grad-enabled twins."""
        stack = self.ctx.stack
        for node, child in zip(stack, stack[1:]):
            if not isinstance(node, cst.If):
                continue
            negated, flag = _training_test(node.test)
            if flag and ((child is node.body and negated) or (child is node.orelse and not negated)):
                return True
        return False

    # --- does the value carry a graph? ---

    def _graph(self, expr: cst.CSTNode, mode: str, seen: set[int]) -> bool:
        if isinstance(expr, cst.Name):
            return self._name_graph(expr, mode, seen)
        if isinstance(expr, cst.Attribute):
            if expr.attr.value in NON_GRAPH_ATTRS or _is_self(expr.value):
                return False
            return self._graph(expr.value, mode, seen)
        if isinstance(expr, cst.Call):
            return self._call_graph(expr, mode, seen)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not):
            return False
        return any(self._graph(part, mode, seen) for part in _value_parts(expr))

    def _name_graph(self, name: cst.Name, mode: str, seen: set[int]) -> bool:
        if name.value == "self":
            return False
        facts = self.ctx.scope_facts()
        binding = facts.reaching(name.value, name)
        if binding is None or id(binding) in seen or self._under_no_grad(facts, binding):
            return False
        seen.add(id(binding))
        if binding.kind == "param":
            return mode == "forward" and self._tensor_param(name.value)
        if binding.kind == "augassign" and isinstance(binding.value, cst.AugAssign):
            aug = binding.value
            return self._graph(aug.value, mode, seen) or self._graph(aug.target, mode, seen)
        if binding.kind in ("assign", "for", "comp"):
            source = binding.value if binding.value is not None else _unpacked_source(binding)
            return source is not None and self._graph(source, mode, seen)
        return False

    def _call_graph(self, call: cst.Call, mode: str, seen: set[int]) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in NON_GRAPH_METHODS:
            return False
        if isinstance(func, cst.Name) and func.value in NON_GRAPH_BUILTINS:
            return False
        qual = self.ctx.qualname(func) or ""
        if qual in NON_GRAPH_TORCH or (qual.startswith("torch.") and qual.endswith("_like")):
            return False
        if self._runs_model(call):
            return True
        if mode == "step" and _runs_given_model(call) and any(self._is_model_ref(a.value) for a in call.args):
            return True
        if isinstance(func, cst.Attribute) and self._graph(func.value, mode, seen):
            return True
        return any(self._graph(a.value, mode, seen) for a in call.args)

    def _runs_model(self, call: cst.Call, seen: set[str] | None = None) -> bool:
        """`self(x)`, a call of a submodule (or a method of one), or an in-class method that does so."""
        if _is_self(call.func):
            return True
        chain = _self_chain(call.func)
        if len(chain) > 1:
            return chain[1].attr.value not in MODULE_NON_GRAPH and self._is_model_ref(chain[0])
        if not chain:
            return False
        info = self.ctx.class_info()
        if info is not None and chain[0].attr.value in info.methods:
            return self._method_runs_model(chain[0].attr.value, set() if seen is None else seen)
        return self._is_model_ref(chain[0])

    def _method_runs_model(self, name: str, seen: set[str]) -> bool:
        """Whether the in-class method `name` runs the model (`self(...)`, a submodule, or such a method)."""
        if name in self._runs_model_memo:
            return self._runs_model_memo[name]
        info = self.ctx.class_info()
        method = info.methods.get(name) if info is not None else None
        if method is None or name in seen:
            return False
        seen.add(name)
        result = name == "forward" or any(
            isinstance(n, cst.Call) and self._runs_model(n, seen) for n in iter_nodes(method.body)
        )
        self._runs_model_memo[name] = result
        return result

    def _is_model_ref(self, expr: cst.CSTNode) -> bool:
        """`self`, or `self.<attr>` that holds a submodule."""
        if _is_self(expr):
            return True
        return isinstance(expr, cst.Attribute) and _is_self(expr.value) and self.ctx.is_module_expr(expr)

    def _tensor_param(self, name: str) -> bool:
        """Whether a parameter of the current method may hold a tensor with a graph (not a flag or mask)."""
        func = self.ctx.function()
        if func is None or NON_TENSOR_PARAM_RE.search(name):
            return False
        params = func.params
        param = next((p for p in (*params.posonly_params, *params.params, *params.kwonly_params)
                      if p.name.value == name), None)
        if param is None or (param.default is not None and _is_scalar_literal(param.default)):
            return False
        if param.annotation is None:
            return True
        annotation = param.annotation.annotation
        names = {n.value for n in (annotation, *iter_nodes(annotation)) if isinstance(n, cst.Name)}
        return not (names and names <= NON_TENSOR_ANNOTATIONS)

    def _under_no_grad(self, facts: ScopeFacts, binding: Binding) -> bool:
        func = self.ctx.function()
        if func is None:
            return False
        withs = self._no_grad_withs.get(id(func))
        if withs is None:
            withs = [n for n in iter_nodes(func.body) if isinstance(n, cst.With)
                     and any(self.ctx.is_no_grad(i.item) for i in n.items)]
            self._no_grad_withs[id(func)] = withs
        return any(facts.contains(w, binding.stmt) for w in withs)

    # --- the fix ---

    def _detached(self, value: cst.BaseExpression, mode: str) -> cst.BaseExpression | None:
        """`value` with its graph-carrying tensors detached; None when that cannot be done safely."""
        if isinstance(value, (cst.Tuple, cst.List, cst.Set)):
            return self._detached_elements(value, mode)
        if isinstance(value, cst.Dict):
            return self._detached_dict(value, mode)
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            elt = self._detached(value.elt, mode)
            return value.with_changes(elt=elt) if elt is not None else None
        if isinstance(value, cst.DictComp):
            inner = self._detached(value.value, mode)
            return value.with_changes(value=inner) if inner is not None else None
        if isinstance(value, cst.IfExp):
            body, orelse = self._detached_part(value.body, mode), self._detached_part(value.orelse, mode)
            return value.with_changes(body=body, orelse=orelse) if body is not None and orelse is not None else None
        if self._maybe_not_tensor(value, set()):
            return None
        return _detach_call(value)

    def _detached_part(self, value: cst.BaseExpression, mode: str) -> cst.BaseExpression | None:
        return self._detached(value, mode) if self._graph(value, mode, set()) else value

    def _detached_elements(self, value: cst.Tuple | cst.List | cst.Set, mode: str) -> cst.BaseExpression | None:
        elements = []
        for el in value.elements:
            if not self._graph(el.value, mode, set()):
                elements.append(el)
                continue
            new = None if isinstance(el, cst.StarredElement) else self._detached(el.value, mode)
            if new is None:
                return None
            elements.append(el.with_changes(value=new))
        return value.with_changes(elements=elements)

    def _detached_dict(self, value: cst.Dict, mode: str) -> cst.BaseExpression | None:
        elements = []
        for el in value.elements:
            if not self._graph(el.value, mode, set()):
                elements.append(el)
                continue
            new = self._detached(el.value, mode) if isinstance(el, cst.DictElement) else None
            if new is None:
                return None
            elements.append(el.with_changes(value=new))
        return value.with_changes(elements=elements)

    def _maybe_not_tensor(self, value: cst.CSTNode, seen: set[int]) -> bool:
        """Evidence that `value` is a container, a tuple, a model output or a number rather than one tensor."""
        if isinstance(value, (cst.BooleanOperation, cst.Tuple, cst.List, cst.Set, cst.Dict, cst.ListComp,
                              cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            return True
        if isinstance(value, cst.Call):
            if isinstance(value.func, cst.Name) and value.func.value in NON_TENSOR_BUILTINS:
                return True
            return self._layer_kind(value) in TUPLE_LAYERS
        if not isinstance(value, cst.Name):
            return False
        facts = self.ctx.scope_facts()
        if facts.attrs_used(value.value) & MODEL_OUTPUT_FIELDS:
            return True
        binding = facts.reaching(value.value, value)
        if binding is None or id(binding) in seen or binding.kind != "assign":
            return False
        seen.add(id(binding))
        if binding.value is not None:
            return self._maybe_not_tensor(binding.value, seen)
        return self._unpacked_tuple(binding)

    def _unpacked_tuple(self, binding: Binding) -> bool:
        """A name unpacked from an LSTM's `(output, (h, c))` at the position of the `(h, c)` tuple."""
        assign = _assign_in(binding.stmt)
        if assign is None or not isinstance(assign.value, cst.Call) or self._layer_kind(assign.value) != "LSTM":
            return False
        for target in assign.targets:
            if isinstance(target.target, (cst.Tuple, cst.List)):
                for i, el in enumerate(target.target.elements):
                    if isinstance(el.value, cst.Name) and el.value.value == binding.name:
                        return i > 0
        return False

    def _layer_kind(self, call: cst.Call) -> str:
        """The class name of the `torch.nn` layer that `self.<attr>(...)` calls, from `__init__`."""
        chain = _self_chain(call.func)
        init = self._init_method()
        if len(chain) != 1 or init is None:
            return ""
        for value in self.ctx.self_assignments(init, chain[0].attr.value):
            if isinstance(value, cst.Call):
                name = self.ctx.qualname(value.func) or self.ctx.dotted(value.func) or ""
                return name.split(".")[-1]
        return ""

    def _init_method(self) -> cst.FunctionDef | None:
        """`__init__` of the current class or of its nearest in-file base class that defines one."""
        info, seen = self.ctx.class_info(), set()
        while info is not None and info.name not in seen:
            seen.add(info.name)
            if "__init__" in info.methods:
                return info.methods["__init__"]
            info = next((self.ctx.classes[b] for b in info.bases if b in self.ctx.classes), None)
        return None

    # --- reads of the attribute elsewhere in the file ---

    def _read_elsewhere(self, attr: str) -> bool:
        """Whether another statement reads `<obj>.attr` in a loss, for its gradient, or detaches it itself."""
        here = self.ctx.statement()
        for read in self._reads_of(attr):
            if here is not None and self._inside(read, here):
                continue
            if self._gradient_use(read) or self._detached_elsewhere(read, attr) or self._feeds_loss(read, 0):
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
        for read in self._reads_of(attr):
            own = isinstance(read, cst.Attribute) and _is_self(read.value) and self._inside(read, func)
            if not own or self._other_branch(read):
                continue
            later = facts.order_of(read) > facts.end_of(stmt)
            if (later or any(facts.contains(loop, read) for loop in loops)) and self._feeds_loss(read, 0, True):
                return True
        return False

    def _other_branch(self, read: cst.CSTNode) -> bool:
        """Whether `read` sits in the other branch of an `if` whose one branch holds the store."""
        stack = self.ctx.stack
        for node, child in zip(stack, stack[1:]):
            if isinstance(node, cst.If):
                other = node.orelse if child is node.body else node.body if child is node.orelse else None
                if other is not None and self._inside(read, other):
                    return True
        return False

    def _reads_of(self, attr: str) -> list[cst.CSTNode]:
        """Every value read of `<obj>.attr` in the file."""
        reads = self._index().get(attr, [])
        return [r for r in reads if not self._is_target(r) and not self._is_mutation(r)]

    def _index(self) -> dict[str, list[cst.CSTNode]]:
        """Attribute reads by name, and the parent of every node; built once per file."""
        if self._parents is None:
            self._parents = {}
            for parent, node in _walk_pairs(self.ctx.module):
                self._parents[id(node)] = parent
                key = _read_key(node)
                if key is not None:
                    self._reads.setdefault(key, []).append(node)
        return self._reads

    def _is_mutation(self, node: cst.CSTNode) -> bool:
        """`obj.attr.append(...)` and the like: the container is changed, not read."""
        parent = self._parent(node)
        return isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in MUTATORS

    def _parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        self._index()
        return self._parents.get(id(node)) if self._parents is not None else None

    def _path(self, node: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
        """(child, parent) pairs from `node` up to its statement."""
        parent = self._parent(node)
        while parent is not None:
            yield node, parent
            if isinstance(parent, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                return
            node, parent = parent, self._parent(parent)

    def _statement_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        last = None
        for _, parent in self._path(node):
            last = parent
        return last if isinstance(last, (cst.BaseSmallStatement, cst.BaseCompoundStatement)) else None

    def _inside(self, node: cst.CSTNode, outer: cst.CSTNode) -> bool:
        current: cst.CSTNode | None = node
        while current is not None and current is not outer:
            current = self._parent(current)
        return current is outer

    def _is_target(self, node: cst.CSTNode) -> bool:
        child, parent = node, self._parent(node)
        while isinstance(parent, (cst.Element, cst.StarredElement, cst.Tuple, cst.List)):
            child, parent = parent, self._parent(parent)
        if isinstance(parent, cst.AssignTarget):
            return True
        return isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is child

    def _gradient_use(self, read: cst.CSTNode) -> bool:
        parent = self._parent(read)
        return isinstance(parent, cst.Attribute) and parent.attr.value in GRADIENT_USES

    def _detached_elsewhere(self, read: cst.CSTNode, attr: str) -> bool:
        """`obj.attr.detach_()`, or `obj.attr = <detach or repackage>(obj.attr)` (truncated BPTT)."""
        parent = self._parent(read)
        if isinstance(parent, cst.Attribute) and parent.attr.value == "detach_":
            return True
        stmt = self._statement_of(read)
        if not isinstance(stmt, cst.Assign) or not any(_attr_name(t.target) == attr for t in stmt.targets):
            return False
        calls = (n for n in (stmt.value, *iter_nodes(stmt.value)) if isinstance(n, cst.Call))
        return any(_detaching_name(c.func) for c in calls)

    def _feeds_loss(self, node: cst.CSTNode, depth: int, any_return: bool = False) -> bool:
        """Whether `node` flows, undetached, into a backward call or a returned loss (any return value
        with `any_return`)."""
        stmt = None
        for child, parent in self._path(node):
            if _stops_graph(child, parent):
                return False
            if isinstance(parent, cst.Call) and self._is_backward(parent):
                return True
            stmt = parent
        if isinstance(stmt, cst.Return):
            return any_return or self._returns_loss(stmt)
        scope = self._scope_of(stmt) if stmt is not None and depth < 4 else None
        if scope is None:
            return False
        facts = self.ctx.scope_facts(scope)
        start = facts.end_of(stmt.target) if isinstance(stmt, cst.For) else facts.end_of(stmt)
        return any(self._feeds_loss(use.node, depth + 1, any_return)
                   for name in _bound_names(stmt) for use in facts.uses.get(name, ()) if use.order > start)

    def _is_backward(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in BACKWARD_CALLS:
            return True
        return (self.ctx.qualname(func) or "") in AUTOGRAD_CALLS

    def _returns_loss(self, stmt: cst.Return) -> bool:
        scope = self._scope_of(stmt)
        return isinstance(scope, cst.FunctionDef) and LOSS_FUNC_RE.search(scope.name.value) is not None

    def _scope_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        current = self._parent(node)
        while current is not None and not isinstance(current, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            current = self._parent(current)
        if current is None:
            return self.ctx.module
        return current if isinstance(current, cst.FunctionDef) else None


def _message(attr: str, kind: str) -> str:
    if kind == "append":
        return f"Appending to `self.{attr}` keeps every step's autograd graph alive; append a detached tensor"
    if kind == "accumulate":
        return f"Accumulating into `self.{attr}` chains the autograd graphs of every step; add a detached tensor"
    return f"`self.{attr}` keeps this tensor's autograd graph alive; store a detached tensor"


def _runs_given_model(call: cst.Call) -> bool:
    """A loss helper such as `compute_loss(self, batch)` that runs the module it is given."""
    name = call.func.attr.value if isinstance(call.func, cst.Attribute) else getattr(call.func, "value", "")
    return isinstance(name, str) and MODEL_HELPER_RE.search(name) is not None


def _is_self(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "self"


def _self_attr(expr: cst.CSTNode) -> str | None:
    """`attr` for `self.attr`."""
    return expr.attr.value if isinstance(expr, cst.Attribute) and _is_self(expr.value) else None


def _attr_name(expr: cst.CSTNode) -> str | None:
    return expr.attr.value if isinstance(expr, cst.Attribute) else None


def _self_chain(func: cst.CSTNode) -> list[cst.Attribute]:
    """For `self.a.b`: the Attribute nodes `self.a`, `self.a.b`; empty when not rooted at self."""
    chain: list[cst.Attribute] = []
    node = func
    while isinstance(node, cst.Attribute):
        chain.append(node)
        node = node.value
    return list(reversed(chain)) if _is_self(node) else []


def _value_parts(expr: cst.CSTNode) -> list[cst.CSTNode]:
    """The sub-expressions whose graph the value of `expr` carries."""
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation)):
        return [expr.left, expr.right]
    if isinstance(expr, cst.UnaryOperation):
        return [expr.expression]
    if isinstance(expr, cst.IfExp):
        return [expr.body, expr.orelse]
    if isinstance(expr, (cst.Subscript, cst.StarredElement, cst.NamedExpr, cst.Await)):
        return [expr.value]
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        return [el.value for el in expr.elements]
    if isinstance(expr, cst.Dict):
        return [el.value for el in expr.elements]
    if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
        return [expr.elt]
    if isinstance(expr, cst.DictComp):
        return [expr.value]
    return []


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
    """(negated, whether it tests `self.training` or `torch.is_grad_enabled()`)."""
    negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
    inner = test.expression if isinstance(test, cst.UnaryOperation) and negated else test
    if isinstance(inner, cst.Attribute) and inner.attr.value == "training":
        return negated, _is_self(inner.value)
    is_grad = isinstance(inner, cst.Call) and _attr_name(inner.func) == "is_grad_enabled"
    return negated, is_grad


def _unpacked_source(binding: Binding) -> cst.CSTNode | None:
    """The right-hand side a name was unpacked from (`a, b = <rhs>`, `for a, b in <rhs>`)."""
    if isinstance(binding.stmt, cst.For):
        return binding.stmt.iter
    assign = _assign_in(binding.stmt)
    return assign.value if assign is not None and binding.kind == "assign" else None


def _assign_in(stmt: cst.CSTNode) -> cst.Assign | None:
    if isinstance(stmt, cst.SimpleStatementLine):
        return next((s for s in stmt.body if isinstance(s, cst.Assign)), None)
    return None


def _is_scalar_literal(expr: cst.CSTNode) -> bool:
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    return isinstance(expr, (cst.Integer, cst.Float, cst.BaseString)) or (
        isinstance(expr, cst.Name) and expr.value in ("True", "False")
    )


def _detach_call(expr: cst.BaseExpression) -> cst.Call:
    inner = expr
    if not isinstance(expr, ATOMS) and not expr.lpar:
        inner = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=inner, attr=cst.Name("detach")))


def _walk_pairs(root: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
    """(parent, child) for every node below `root`."""
    stack = [root]
    while stack:
        parent = stack.pop()
        for child in children(parent):
            yield parent, child
            stack.append(child)


def _read_key(node: cst.CSTNode) -> str | None:
    """The attribute name that `obj.attr` or `getattr(obj, "attr", ...)` reads."""
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1].value, cst.SimpleString)):
        value = node.args[1].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _stops_graph(child: cst.CSTNode, parent: cst.CSTNode) -> bool:
    """Whether `parent` turns its operand `child` into something without a graph."""
    if isinstance(parent, cst.Attribute) and parent.value is child:
        return parent.attr.value in NON_GRAPH_ATTRS or parent.attr.value in NON_GRAPH_METHODS
    if isinstance(parent, (cst.Comparison, cst.FormattedStringExpression)):
        return True
    func = parent.func if isinstance(parent, cst.Call) else None
    return isinstance(func, cst.Name) and func.value in NON_GRAPH_BUILTINS


def _detaching_name(func: cst.CSTNode) -> bool:
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return "detach" in name or "repackage" in name


def _bound_names(stmt: cst.CSTNode) -> set[str]:
    """Local names that `stmt` binds or mutates: `x = ...`, `x += ...`, `x[k] = ...`, `x.append(...)`."""
    targets: list[cst.CSTNode] = []
    if isinstance(stmt, cst.Assign):
        targets = [t.target for t in stmt.targets]
    elif isinstance(stmt, (cst.AugAssign, cst.AnnAssign, cst.For)):
        targets = [stmt.target]
    elif isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call):
        func = stmt.value.func
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATORS:
            targets = [func.value]
    names: set[str] = set()
    for target in targets:
        names.update(_target_roots(target))
    return names


def _target_roots(target: cst.CSTNode) -> Iterator[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            yield from _target_roots(el.value)
        return
    root = _root_name(target)
    if root is not None and root != "self":
        yield root


def _root_name(node: cst.CSTNode) -> str | None:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None
