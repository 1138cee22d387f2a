"""PTL001 missing-eval-mode."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import libcst as cst

from ptlint.facts.classes import MODE_LAYER_WORDS, MODULE_BASES, ClassInfo
from ptlint.facts.dataflow import Binding, ScopeFacts
from ptlint.facts.imports import dotted_name
from ptlint.facts.kinds import SELF_RETURNING, is_module_constructor
from ptlint.facts.walk import child_fields, children, iter_nodes
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, InsertBefore, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

EVAL, TRAIN, UNKNOWN = "eval", "train", "unknown"
# The first word of a validation-like function name: `validate`, `eval_epoch`, `testModel`, `_predict`.
VAL_NAME_RE = re.compile(
    r"^_*(?i:val|valid|validate|validation|validating|eval|evaluate|evaluation|evaluating|"
    r"test|testing|predict|prediction|inference)(?=$|[_\dA-Z])"
)
PYTEST_FILE_RE = re.compile(r"^(test_.*|.*_test)\.py$")
# Helpers that switch a module (or its norm layers) to eval mode: `set_eval_mode(m)`, `m.apply(set_bn_eval)`.
EVAL_HELPER_RE = re.compile(r"eval_?mode|_eval$|(?:^|_)(?:set|to|switch_to|enter)_eval(?:_|$)")
WRAPPER_SUFFIXES = ("DataParallel", "convert_sync_batchnorm", "unwrap_model")
# Factories whose result keeps an unknown mode (a copy, or a scripted module saved in some mode).
UNKNOWN_FACTORIES = {"copy.deepcopy", "torch.jit.load", "torch.jit.script", "torch.jit.trace", "torch.jit.freeze"}
# Layers with mode-dependent behaviour (Transformer layers have dropout by default, which the class facts miss),
# and layers that depend on the mode only when given a `dropout` argument.
MODE_WORDS = (*MODE_LAYER_WORDS, "Transformer")
OPTIONAL_DROPOUT = ("RNN", "LSTM", "GRU", "MultiheadAttention")
WEIGHT_KWARGS = {"pretrained", "weights", "pretrained_backbone", "checkpoint"}
PRESET_METHODS = {"__init__", "__post_init__", "setup"}
BACKWARD_ATTRS = {"backward", "manual_backward"}
# Nodes whose parts may not run, except the fields evaluated first (an `if` test, a loop's iterable...).
GUARDS = (
    cst.If, cst.For, cst.While, cst.Try, cst.TryStar, cst.Match, cst.IfExp, cst.BooleanOperation,
    cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp,
)
UNGUARDED_FIELDS = {"test", "iter", "target", "left", "subject"}
SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
SAVED = "was_training"

Chain = tuple[cst.CSTNode, ...]
# A node, the ids of the guarded branches around it, its enclosing block statements, its innermost loop (0: none).
ScanItem = tuple[cst.CSTNode, frozenset[int], Chain, int]


@dataclass(frozen=True)
class _Event:
    """A mode change of the module `root` at `order`, inside the guarded branches `conds`."""

    order: int
    root: str
    kind: str
    stmt: cst.CSTNode | None
    conds: frozenset[int]


@dataclass
class _ScopeInfo:
    """Mode events and calls of one scope, with their guarded branches, statement chains and loops."""

    facts: ScopeFacts
    events: list[_Event] = field(default_factory=list)
    calls: dict[int, tuple[cst.Call, frozenset[int], Chain]] = field(default_factory=dict)
    chains: dict[int, Chain] = field(default_factory=dict)
    loop_of: dict[int, int] = field(default_factory=dict)
    backward_loops: set[int] = field(default_factory=set)
    outer_loop: dict[int, int] = field(default_factory=dict)

    def in_backward_loop(self, call: cst.Call) -> bool:
        """Whether the call's loop, or a loop around it, also calls `.backward()`."""
        loop = self.loop_of[id(call)]
        if loop in self.backward_loops:
            return True
        while loop:
            loop = self.outer_loop.get(loop, 0)
            if loop and loop in self.backward_loops:
                return True
        return False


@dataclass(frozen=True)
class _Verdict:
    """Whether training mode reaches a call, whether an `.eval()` was undone, and the last `.train()`."""

    offending: bool
    retrained: bool
    last_train: _Event | None


class MissingEvalMode(Rule):
    """A module is run for inference while it is still in training mode.

    ## What it does
    Flags an `nn.Module` called for inference while it is still in training mode: no `.eval()`
    reaches the call, or `.train()` was the last mode call.

    Inference means a call such as `model(x)`, `self.net(x)` or `model.module(x)` inside
    `torch.no_grad()`, `torch.inference_mode()`, `set_grad_enabled(False)`, a function decorated with
    one of them, or a function whose name starts with a validation word (`val`, `valid`, `validate`,
    `eval`, `evaluate`, `test`, `predict`, `inference`, as a whole word: `value` is not one).
    `model.eval()`, `model.train(False)` and `model.train(mode=False)` count when they come earlier in
    the function, in enclosing loop bodies too. One forgotten `.eval()` gives one finding per module
    and block (the outermost `no_grad` block, or the whole validation-named or decorated function).

    It stays silent when the mode is set elsewhere in a way it can follow: `.eval()` on an alias
    (`model.module`, `torch.compile(model)`, a DDP wrapper), a conditional `.eval()`, an in-file
    helper that sets the mode, a helper or closure whose every in-file caller has already called
    `.eval()` (or only passes on a model that a `*_step` hook or a caller-less method received),
    a closure over a model that its enclosing function set to eval mode, copied or traced,
    `self.teacher.eval()` in `__init__` (also `model.eval()` then `self.model = model`),
    module-level `.eval()` of a global model,
    `from_pretrained` models (loaded in eval mode), copies and scripted modules.
    It also skips Lightning modules, `*_step` functions and `forward` methods (the caller owns the
    mode), submodules (`self.backbone`) called in any method of an `nn.Module` that does not train
    itself (they share their parent's mode, which its caller sets), forward passes in a loop body,
    an enclosing loop's body or a function that also calls `.backward()` (GAN fakes,
    target networks, pseudo-labels are training steps), pytest `test*` functions (in `test_*.py` or
    `*_test.py`), calls whose result is discarded (batch-norm recalibration, warm-up), models built
    in the function that are only called (shape smoke tests), and in-file models built only from
    layers without dropout or normalization.

    ## Why is this bad?
    `no_grad` only turns off autograd. Dropout keeps dropping activations and batch norm keeps
    normalizing with batch statistics and updating its running averages from validation data, so
    metrics are noisy, predictions are not repeatable and the trained statistics drift.

    ## Example
    ```python
    def validate(model, loader):
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum().item()
    ```

    ## Use instead
    ```python
    def validate(model, loader):
        model.eval()
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum().item()
    ```

    ## Fix safety
    Unsafe: it changes what the code computes. Before the outermost `no_grad` block it inserts
    `was_training = model.training` and `model.eval()`, and after the block
    `model.train(was_training)`. In a decorated or validation-named function the two
    statements go at the start of the body and the restore goes at the end (before a final `return`
    that does not use the model). Where the block or function can leave early (`return`, `yield`,
    `break`, `continue`), or the model is built or put in training mode inside it, only
    `model.eval()` is inserted, just before the statement holding the call, and the model stays in
    eval mode afterwards. MC-dropout inference that wants training mode needs `# noqa: PTL001`.

    ## References
    - [Autograd mechanics: evaluation mode](https://pytorch.org/docs/stable/notes/autograd.html#evaluation-mode-nn-module-eval)
    - [nn.Module.eval](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval)
    - Karpathy, "A Recipe for Training Neural Networks" (common mistakes: forgetting train/eval mode)
    """

    code = "PTL001"
    name = "missing-eval-mode"
    message = "Module called for inference in training mode: no `.eval()` reaches this call"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("no_grad", "inference_mode", "set_grad_enabled", "val", "Val", "test", "Test", "predict",
                "Predict", "inference", "Inference")
    contract = "E2"

    def __init__(self, ctx: "Context", options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._infos: dict[tuple[int, bool], _ScopeInfo] = {}
        self._reported: set[tuple[int, str]] = set()
        self._vars: dict[int, set[str]] = {}
        self._functions: dict[str, cst.FunctionDef] | None = None
        self._methods: dict[int, ClassInfo] | None = None
        self._sites: list[tuple[cst.Call, cst.CSTNode]] | None = None
        self._outer: dict[int, cst.FunctionDef] | None = None
        self._torch = False  # imports only grow during the walk: once torch is imported it stays so

    def visit_Call(self, node: cst.Call) -> None:
        kind = type(node.func)
        if kind is not cst.Name and kind is not cst.Attribute:
            return
        if not self._torch:
            self._torch = self.ctx.imports.imports_torch()
            if not self._torch:
                return
        scope = self._scope()
        block = self._block(scope) if scope is not None else None
        if scope is None or block is None or _result_unused(self.ctx.parent()) or self._framework_managed(scope):
            return
        if not self.ctx.is_module_expr(node.func) or self._is_function_ref(node.func, scope):
            return
        info = self._info(scope, deep=True)
        if id(node) not in info.calls or info.in_backward_loop(node):
            return
        resolved = self._resolve(node.func, info.facts)
        if resolved is not None and (id(block), resolved[0]) not in self._reported:
            self._check(node, scope, block, *resolved)

    # --- where a call runs in inference context ---

    def _scope(self) -> cst.CSTNode | None:
        """The innermost function, or the module; None inside a class body or a lambda."""
        stack = self.ctx.stack
        for i in range(len(stack) - 2, -1, -1):
            kind = type(stack[i])
            if kind is cst.FunctionDef:
                return stack[i]
            if kind is cst.ClassDef or kind is cst.Lambda:
                return None
        return self.ctx.module

    def _block(self, scope: cst.CSTNode) -> cst.CSTNode | None:
        """The validation-like function, else the outermost no-grad `with` around the call, else None."""
        if type(scope) is cst.FunctionDef:
            name = scope.name.value  # type: ignore[attr-defined]
            if name.startswith("test") and PYTEST_FILE_RE.match(os.path.basename(self.ctx.path)):
                return None
            if VAL_NAME_RE.match(name) or any(self.ctx.is_no_grad(d.decorator) for d in scope.decorators):
                return scope
        inside = self.ctx.stack[self.ctx.stack.index(scope) + 1:] if scope is not self.ctx.module else self.ctx.stack
        for node in inside:
            if type(node) is cst.With and any(self.ctx.is_no_grad(item.item) for item in node.items):
                return node
        return None

    def _framework_managed(self, scope: cst.CSTNode) -> bool:
        """Lightning and HF Trainer classes, `*_step` functions and `forward` methods leave the mode to callers."""
        cls = self.ctx.class_info()
        if cls is not None and (cls.is_lightning or any(_is_hf_trainer(b) or b.endswith("TestCase") for b in cls.bases)):
            return True
        if not isinstance(scope, cst.FunctionDef):
            return False
        name = scope.name.value
        if cls is not None and name.startswith("test_"):
            return True  # a unit test method: a smoke test of the model, not a validation loop
        return name.endswith("_step") or (cls is not None and name.lstrip("_").startswith("forward"))

    def _is_function_ref(self, func: cst.BaseExpression, scope: cst.CSTNode) -> bool:
        """A method (`self.model_predictions`), a def or import (`validate_network`), `net, loss = linreg, mse`."""
        if _is_self_attr(func):
            cls = self.ctx.class_info()
            return cls is not None and func.attr.value in cls.methods
        if not isinstance(func, cst.Name):
            return False
        binding = self.ctx.reaching(func) or self._free_binding(func.value, scope)
        if binding is None or binding.kind in ("def", "import"):
            return binding is not None
        value = _unpacked_value(binding)
        if not isinstance(value, cst.Name):
            return False
        kinds = {b.kind for b in self.ctx.module_facts().bindings_of(value.value)}
        return bool(kinds) and kinds <= {"def", "import"}

    # --- the finding ---

    def _check(
        self, node: cst.Call, scope: cst.CSTNode, block: cst.CSTNode, key: str, binding: Binding | None
    ) -> None:
        verdict = self._analyze(key, node, scope)
        if not verdict.offending or self._untrained(binding, scope) or self._mode_free(key, binding, scope):
            return
        if self._submodule_of_module(key, scope):
            return
        if self._covered_by_callers(key, binding, scope) or self._mode_set_elsewhere(key):
            return
        spelling = dotted_name(_strip_module(node.func)) or ""
        barrier = self._barrier(verdict.last_train, binding, node, scope)
        self._reported.add((id(block), key))
        why = "`.train()` was the last mode call" if verdict.retrained else f"no `{spelling}.eval()` reaches this call"
        message = f"`{spelling}` is called for inference in training mode: {why}"
        self.report(node, message=message, fix=self._fix(node, scope, block, spelling, barrier))

    def _analyze(self, key: str, call: cst.Call, scope: cst.CSTNode) -> _Verdict:
        """Whether training mode reaches `call` for the module `key`."""
        info = self._info(scope, deep=True)
        _, conds, _ = info.calls[id(call)]
        pos = info.facts.order_of(call)
        roots = self._roots_for(key, scope)
        events = [e for e in info.events if e.root in roots and 0 <= e.order < pos]
        if self._preset_eval(key, roots, scope):
            events.append(_Event(0, key, EVAL, None, frozenset()))
        evals = [e.order for e in events if e.kind != TRAIN]
        trains = [e for e in events if e.kind == TRAIN]
        last_train = max(trains, key=lambda e: e.order, default=None)
        if not evals:
            return _Verdict(True, False, last_train)
        last = max(evals)
        retrained = any(e.order > last and e.conds <= conds for e in trains)
        return _Verdict(retrained, retrained, last_train)

    def _roots_for(self, key: str, scope: cst.CSTNode) -> set[str]:
        """`key`, plus `self` when `key` is a submodule of the module class the method belongs to."""
        cls = self._class_of(scope)
        if key.startswith("self.") and cls is not None and cls.is_module:
            return {key, "self"}
        return {key}

    def _preset_eval(self, key: str, roots: set[str], scope: cst.CSTNode) -> bool:
        """Eval mode set before the function runs: at module level, or in `__init__` and never undone."""
        if key.endswith("@global") and isinstance(scope, cst.FunctionDef):
            name = key.split("@")[0]
            outer = self._enclosing().get(id(scope))
            while outer is not None:  # a closure's free model: the mode its enclosing function left
                binds = self.ctx.scope_facts(outer).bindings_of(name)
                if binds:
                    info = self._info(outer, deep=True)
                    keys = {self._resolve_binding(b, info.facts, 0)[0] for b in binds}
                    return _last_kind(e for e in info.events if e.root in keys) in (EVAL, UNKNOWN)
                outer = self._enclosing().get(id(outer))
            events = [e for e in self._info(self.ctx.module, deep=True).events if e.root.split("@")[0] == name]
            return _last_kind(events) in (EVAL, UNKNOWN)
        cls = self._class_of(scope)
        if not key.startswith("self.") or cls is None:
            return False
        kinds = {
            (e.kind, name in PRESET_METHODS)
            for name, method in cls.methods.items() if method is not scope
            for e in self._info(method, deep=False).events if e.root in roots
        }
        return any(k != TRAIN and preset for k, preset in kinds) and not any(k == TRAIN for k, _ in kinds)

    # --- exemptions ---

    def _untrained(self, binding: Binding | None, scope: cst.CSTNode) -> bool:
        """A model freshly built in this function, never trained, loaded or passed on: a shape smoke test."""
        if not isinstance(scope, cst.FunctionDef) or binding is None or binding.value is None:
            return False
        if binding.kind != "assign":
            return False
        base = self._base(binding.value)
        if not isinstance(base, cst.Call) or not is_module_constructor(self.ctx, base):
            return False
        if (dotted_name(base.func) or "").endswith("from_pretrained") or any(
            a.keyword is not None and a.keyword.value in WEIGHT_KWARGS for a in base.args
        ):
            return False
        info = self._info(scope, deep=True)
        harmless = {id(call.func) for call, _, _ in info.calls.values()}
        harmless.update(id(a.value) for call, _, _ in info.calls.values() if _is_print(call) for a in call.args)
        uses = info.facts.uses_after(binding.name, binding.stmt)
        only_called = all(id(u.node) in harmless or info.facts.parent_attr(u.node) in SELF_RETURNING for u in uses)
        return only_called and not info.backward_loops

    def _mode_free(self, key: str, binding: Binding | None, scope: cst.CSTNode) -> bool:
        """Whether the module is known to be built only from layers without dropout or normalization."""
        ctors = self._constructors(key, binding, scope)
        return bool(ctors) and all(self._ctor_mode_free(c) for c in ctors)

    def _constructors(self, key: str, binding: Binding | None, scope: cst.CSTNode) -> list[cst.CSTNode]:
        if binding is not None and binding.kind == "assign" and binding.value is not None:
            return [self._base(binding.value)]
        if binding is not None and binding.kind == "param" and isinstance(scope, cst.FunctionDef):
            params = [p for p in scope.params.params if p.name.value == binding.name]
            return [p.annotation.annotation for p in params if p.annotation is not None]
        cls = self._class_of(scope)
        if key.startswith("self.") and cls is not None and "__init__" in cls.methods:
            return [self._base(v) for v in self.ctx.self_assignments(cls.methods["__init__"], key[len("self."):])]
        free = self._free_binding(key.split("@")[0], scope) if key.endswith("@global") else None
        value = _unpacked_value(free) if free is not None and free.kind == "assign" else None
        return [self._base(value)] if value is not None else []

    def _free_binding(self, name: str, scope: cst.CSTNode) -> Binding | None:
        """The last binding of the free name `name` in an enclosing function, else at module level."""
        outer = self._enclosing().get(id(scope))
        while outer is not None:
            binds = self.ctx.scope_facts(outer).bindings_of(name)
            if binds:
                return binds[-1]
            outer = self._enclosing().get(id(outer))
        binds = self.ctx.module_facts().bindings_of(name) if scope is not self.ctx.module else []
        return binds[-1] if binds else None

    def _ctor_mode_free(self, expr: cst.CSTNode) -> bool:
        if isinstance(expr, cst.Name):
            info = self.ctx.classes.get(expr.value)
            return info is not None and _class_mode_free(info)
        if not isinstance(expr, cst.Call):
            return False
        info = self.ctx.classes.get(dotted_name(expr.func) or "")
        if info is not None:
            return _class_mode_free(info)
        q = self.ctx.qualname(expr.func) or ""
        if not q.startswith("torch.nn.") or not q.rsplit(".", 1)[-1][:1].isupper() or _mode_layer(q, expr):
            return False
        if any(a.star for a in expr.args):
            return False
        return all(self._ctor_mode_free(a.value) for a in expr.args if isinstance(a.value, cst.Call))

    def _submodule_of_module(self, key: str, scope: cst.CSTNode) -> bool:
        """`self.encoder` in a method of an nn.Module that does not train itself: it shares the mode
        of its parent, which the parent's caller sets (`model.eval()`), as for `forward`."""
        cls = self._class_of(scope)
        if not key.startswith("self.") or cls is None or not cls.is_module:
            return False
        return not any(
            isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value in BACKWARD_ATTRS
            for method in cls.methods.values() for n in iter_nodes(method.body)
        )

    def _mode_set_elsewhere(self, key: str) -> bool:
        """`self.model` in a class with a base defined in another file, which may set the mode."""
        cls = self.ctx.class_info()
        if cls is None or not key.startswith("self."):
            return False
        known = MODULE_BASES | {"object", ""}
        return any(b not in known and b not in self.ctx.classes for b in cls.bases)

    def _covered_by_callers(self, key: str, binding: Binding | None, scope: cst.CSTNode) -> bool:
        """A helper or closure whose every in-file caller already has the module in eval mode."""
        if not isinstance(scope, cst.FunctionDef):
            return False
        is_param = binding is not None and binding.kind == "param"
        if not (is_param or key.startswith("self.") or key.endswith("@global")):
            return False
        cls = self._class_of(scope)
        sites = [(c, s) for c, s in self._all_calls() if s is not scope and self._calls_function(c, s, scope, cls)]
        sites = [(c, s) for c, s in sites if id(c) in self._info(s, deep=True).calls]
        if not sites:
            # A method that takes the model from its caller is library API: the caller owns the mode.
            return is_param and cls is not None
        for call, site_scope in sites:
            site_key = self._key_at_site(key, binding if is_param else None, scope, call, site_scope)
            if site_key is None:
                return False
            if self._analyze(site_key, call, site_scope).offending and not self._passed_on(site_key, site_scope):
                return False
        return True

    def _passed_on(self, key: str, site: cst.CSTNode) -> bool:
        """The caller only passes on a model it received itself, and its own caller owns the mode:
        a `*_step` hook, or a method with no caller in the file (library API)."""
        if not isinstance(site, cst.FunctionDef):
            return False
        name, _, order = key.partition("@")
        params = [b for b in self.ctx.scope_facts(site).bindings_of(name) if b.kind == "param"]
        if not params or str(params[0].order) != order:
            return False
        cls = self._class_of(site)
        if site.name.value.endswith("_step"):
            return True
        return cls is not None and not any(
            s is not site and self._calls_function(c, s, site, cls) for c, s in self._all_calls()
        )

    def _key_at_site(
        self, key: str, param: Binding | None, func: cst.FunctionDef, call: cst.Call, site: cst.CSTNode
    ) -> str | None:
        """The key, in the caller's scope, of the module that the helper sees as `key`."""
        facts = self._info(site, deep=True).facts
        if param is not None:
            params = _param_names(func)[1 if self._class_of(func) is not None else 0:]
            arg = _arg_for(call, params, param.name)
            resolved = self._resolve(arg, facts) if arg is not None else None
            return resolved[0] if resolved is not None else None
        if key.startswith("self."):
            return key
        name = key.split("@")[0]
        binding = facts.reaching(name, call)
        return self._resolve_binding(binding, facts, 0)[0] if binding is not None else key

    def _calls_function(
        self, call: cst.Call, site: cst.CSTNode, func: cst.FunctionDef, cls: ClassInfo | None
    ) -> bool:
        name = func.name.value
        if cls is None:
            return isinstance(call.func, cst.Name) and call.func.value == name
        return _is_self_attr(call.func) and call.func.attr.value == name and self._class_of(site) is cls

    # --- the fix ---

    def _barrier(
        self, last_train: _Event | None, binding: Binding | None, call: cst.Call, scope: cst.CSTNode
    ) -> Chain | None:
        """The statement chain of the last `.train()` or local binding of the module: eval must come after it."""
        info = self._info(scope, deep=True)
        marks = [(e.order, e.stmt) for e in [last_train] if e is not None]
        if binding is not None and binding.kind != "param" and binding.stmt is not scope:
            marks.append((binding.order, binding.stmt))
        if not marks:
            return None
        stmt = max(marks, key=lambda m: m[0])[1]
        chain = info.chains.get(id(stmt)) if stmt is not None else None
        return chain if chain is not None else info.calls[id(call)][2]

    def _fix(
        self, call: cst.Call, scope: cst.CSTNode, block: cst.CSTNode, spelling: str, barrier: Chain | None
    ) -> Fix | None:
        if isinstance(block, cst.With) and (barrier is None or not any(s is block for s in barrier)):
            return self._wrap_fix(block, scope, spelling)
        if isinstance(block, cst.FunctionDef) and barrier is None:
            return self._function_fix(block, spelling)
        anchor = _divergence(self._info(scope, deep=True).calls[id(call)][2], barrier or ())
        if anchor is None:
            return None
        return _fix(spelling, (InsertBefore(anchor, (_stmt(f"{spelling}.eval()"),)),))

    def _wrap_fix(self, block: cst.With, scope: cst.CSTNode, spelling: str) -> Fix:
        """Save the mode and switch to eval before the block; restore after it unless it can leave early."""
        if _escapes(block):
            return _fix(spelling, (InsertBefore(block, (_stmt(f"{spelling}.eval()"),)),))
        var = self._var(block, scope)
        before = (_stmt(f"{var} = {spelling}.training"), _stmt(f"{spelling}.eval()"))
        return _fix(spelling, (InsertBefore(block, before), InsertAfter(block, (_stmt(f"{spelling}.train({var})"),))))

    def _function_fix(self, func: cst.FunctionDef, spelling: str) -> Fix | None:
        """Switch to eval at the start of the body; restore at its end when the function has one exit."""
        if not isinstance(func.body, cst.IndentedBlock):
            return None
        stmts = list(func.body.body)
        first = stmts[1] if _is_docstring(stmts[0]) and len(stmts) > 1 else stmts[0]
        exit_edit = _restore_anchor(func, stmts[-1], spelling)
        if exit_edit is None:
            return _fix(spelling, (InsertBefore(first, (_stmt(f"{spelling}.eval()"),)),))
        var = self._var(func, func)
        before = (_stmt(f"{var} = {spelling}.training"), _stmt(f"{spelling}.eval()"))
        restore = (_stmt(f"{spelling}.train({var})"),)
        return _fix(spelling, (InsertBefore(first, before), exit_edit(stmts[-1], restore)))

    def _var(self, block: cst.CSTNode, scope: cst.CSTNode) -> str:
        """`was_training`, numbered when the block already saves the mode of another module or the
        scope already uses that name."""
        taken = self._vars.setdefault(id(block), set())
        facts = self._info(scope, deep=True).facts
        code = self.ctx.module.code_for_node(scope)
        name, n = SAVED, 1
        while name in taken or facts.bindings_of(name) or re.search(rf"\b{name}\b", code):
            n += 1
            name = f"{SAVED}_{n}"
        taken.add(name)
        return name

    # --- mode events per scope ---

    def _info(self, scope: cst.CSTNode, deep: bool) -> _ScopeInfo:
        """The scope's mode events; `deep` adds those of in-file helpers it calls (one level)."""
        cached = self._infos.get((id(scope), deep))
        if cached is not None:
            return cached
        info = self._infos[(id(scope), deep)] = _ScopeInfo(self.ctx.scope_facts(scope))
        items: list[ScanItem] = []
        _scan(scope.body if isinstance(scope, cst.FunctionDef) else scope, frozenset(), (), 0, items)
        cls = self._class_of(scope)
        for node, conds, chain, loop in items:
            stmt = chain[-1] if chain else None
            if stmt is node:
                info.chains[id(node)] = chain
            if isinstance(node, (cst.For, cst.While)):
                info.outer_loop[id(node)] = loop
            if isinstance(node, cst.Call):
                info.calls[id(node)] = (node, conds, chain)
                info.loop_of[id(node)] = loop
                if isinstance(node.func, cst.Attribute) and node.func.attr.value in BACKWARD_ATTRS:
                    info.backward_loops.add(loop)
                modes = self._call_modes(node, info.facts, cls, deep)
                info.events.extend(_Event(info.facts.order_of(node), r, k, stmt, conds) for r, k in modes)
            elif isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
                modes = self._assign_modes(node, info.facts) or _alias_modes(node, info, self._resolve)
                info.events.extend(_Event(info.facts.end_of(node), r, k, stmt, conds) for r, k in modes)
        return info

    def _call_modes(
        self, call: cst.Call, facts: ScopeFacts, cls: ClassInfo | None, deep: bool
    ) -> list[tuple[str, str]]:
        out = []
        kind = _mode_kind(call)
        if kind is not None and isinstance(call.func, cst.Attribute):
            resolved = self._resolve(call.func.value, facts)
            if resolved is not None:
                out.append((resolved[0], kind))
        if deep:
            out.extend(self._callee_modes(call, facts, cls))
        return out

    def _callee_modes(self, call: cst.Call, facts: ScopeFacts, cls: ClassInfo | None) -> list[tuple[str, str]]:
        """Modes set by a called helper: an in-file function or method, or one named like `set_eval_mode`."""
        callee, offset = self._callee(call.func, cls)
        if callee is None:
            name = (dotted_name(call.func) or "").rsplit(".", 1)[-1].lower()
            if not EVAL_HELPER_RE.search(name):
                return []
            targets = [a.value for a in call.args] + ([call.func.value] if isinstance(call.func, cst.Attribute) else [])
            return [(r[0], UNKNOWN) for t in targets if (r := self._resolve(t, facts)) is not None]
        sub = self._info(callee, deep=False)
        out = []
        for param in _param_names(callee)[offset:]:
            arg = _arg_for(call, _param_names(callee)[offset:], param)
            kind = _last_kind(e for e in sub.events if e.root == self._param_key(callee, param))
            resolved = self._resolve(arg, facts) if arg is not None else None
            if kind is not None and resolved is not None:
                out.append((resolved[0], kind))
        if offset:
            for root in {e.root for e in sub.events if e.root.startswith("self")}:
                out.append((root, _last_kind(e for e in sub.events if e.root == root) or UNKNOWN))
        return out

    def _callee(self, func: cst.BaseExpression, cls: ClassInfo | None) -> tuple[cst.FunctionDef | None, int]:
        if isinstance(func, cst.Name):
            return self._module_functions().get(func.value), 0
        if _is_self_attr(func) and cls is not None:
            return cls.methods.get(func.attr.value), 1
        return None, 0

    def _param_key(self, func: cst.FunctionDef, name: str) -> str:
        binds = [b for b in self.ctx.scope_facts(func).bindings_of(name) if b.kind == "param"]
        return f"{name}@{binds[0].order}" if binds else ""

    def _assign_modes(self, node: cst.Assign | cst.AnnAssign, facts: ScopeFacts) -> list[tuple[str, str]]:
        """`model = Net().eval()`, `self.teacher = t.eval()`, `model = X.from_pretrained(...)`."""
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        kind = self._value_kind(node.value) if node.value is not None else None
        if kind is None or len(targets) != 1:
            return []
        target = targets[0]
        if _is_self_attr(target):
            return [(f"self.{target.attr.value}", kind)]
        if isinstance(target, cst.Name):
            binding = next((b for b in facts.bindings_of(target.value) if b.value is node.value), None)
            if binding is not None:
                return [(self._resolve_binding(binding, facts, 0)[0], kind)]
        return []

    def _value_kind(self, value: cst.BaseExpression) -> str | None:
        """The mode of an assigned module: the outermost mode call of its chain, else what its factory sets."""
        base: cst.CSTNode = value
        while True:
            kind = _mode_kind(base) if isinstance(base, cst.Call) else None
            if kind is not None:
                return kind
            inner = self._strip_once(base)
            if inner is None:
                break
            base = inner
        if not isinstance(base, cst.Call):
            return None
        q = self.ctx.qualname(base.func) or dotted_name(base.func) or ""
        if q.endswith("from_pretrained"):
            return EVAL
        factory = self._module_functions().get(q)
        if q in UNKNOWN_FACTORIES or (factory is not None and _sets_eval(factory)):
            return UNKNOWN
        return None

    # --- module identity ---

    def _resolve(self, expr: cst.CSTNode, facts: ScopeFacts, depth: int = 0) -> tuple[str, Binding | None] | None:
        """A key naming the module object behind `expr` (through aliases and wrappers), and its binding."""
        expr = self._base(expr)
        if _is_self_attr(expr):
            return f"self.{expr.attr.value}", None
        if not isinstance(expr, cst.Name):
            return None
        if expr.value == "self":
            return "self", None
        binding = facts.reaching(expr.value, expr)
        if binding is None:
            return f"{expr.value}@global", None
        return self._resolve_binding(binding, facts, depth)

    def _resolve_binding(self, binding: Binding, facts: ScopeFacts, depth: int) -> tuple[str, Binding | None]:
        if binding.kind == "assign" and binding.value is not None and depth < 6:
            inner = _transformed(self._base(binding.value), binding.name)
            if isinstance(inner, cst.Name) or _is_self_attr(inner):
                resolved = self._resolve(inner, facts, depth + 1)
                if resolved is not None:
                    return resolved
        return f"{binding.name}@{binding.order}", binding

    def _base(self, expr: cst.CSTNode) -> cst.CSTNode:
        """`expr` without `.module`, `.to(...)`-style chains and DDP/compile wrappers."""
        while (inner := self._strip_once(expr)) is not None:
            expr = inner
        return expr

    def _strip_once(self, expr: cst.CSTNode) -> cst.CSTNode | None:
        """One wrapper less: `m.module`, `m.to(d)`, `DDP(m)`, `getattr(m, "module", m)`, `m.module if c else m`."""
        if isinstance(expr, cst.Attribute) and expr.attr.value == "module":
            return expr.value
        if isinstance(expr, cst.IfExp):
            body, orelse = self._base(expr.body), self._base(expr.orelse)
            same = dotted_name(body) is not None and dotted_name(body) == dotted_name(orelse)
            return body if same else None
        if not isinstance(expr, cst.Call):
            return None
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in SELF_RETURNING:
            return expr.func.value
        if not expr.args or expr.args[0].keyword:
            return None
        q = self.ctx.qualname(expr.func) or dotted_name(expr.func) or ""
        if q == "torch.compile" or q.endswith(WRAPPER_SUFFIXES) or (q == "getattr" and len(expr.args) == 3):
            return expr.args[0].value
        return None

    # --- file-level indexes ---

    def _module_functions(self) -> dict[str, cst.FunctionDef]:
        if self._functions is None:
            self._functions = {s.name.value: s for s in self.ctx.module.body if isinstance(s, cst.FunctionDef)}
        return self._functions

    def _enclosing(self) -> dict[int, cst.FunctionDef]:
        """Nested function -> the function it is defined in."""
        if self._outer is None:
            self._outer = {}
            for func in iter_nodes(self.ctx.module, enter_scopes=True):
                if isinstance(func, cst.FunctionDef):
                    for inner in iter_nodes(func.body, enter_scopes=True):
                        if isinstance(inner, cst.FunctionDef):
                            self._outer[id(inner)] = func
        return self._outer

    def _class_of(self, scope: cst.CSTNode) -> ClassInfo | None:
        """The class whose method `scope` is."""
        if self._methods is None:
            self._methods = {id(m): info for info in self.ctx.classes.values() for m in info.methods.values()}
        return self._methods.get(id(scope))

    def _all_calls(self) -> list[tuple[cst.Call, cst.CSTNode]]:
        """Every call of a name or `self.name` in the file, with its scope."""
        if self._sites is None:
            funcs = (n for n in iter_nodes(self.ctx.module, True) if isinstance(n, cst.FunctionDef))
            self._sites = [
                (n, scope)
                for scope in (self.ctx.module, *funcs)
                for n in iter_nodes(scope.body if isinstance(scope, cst.FunctionDef) else scope)
                if isinstance(n, cst.Call) and (isinstance(n.func, cst.Name) or _is_self_attr(n.func))
            ]
        return self._sites


def _alias_modes(node: cst.Assign | cst.AnnAssign, info: _ScopeInfo, resolve: Any) -> list[tuple[str, str]]:
    """`self.model = model` after `model.eval()`: the attribute takes the local module's last mode."""
    target = node.targets[0].target if isinstance(node, cst.Assign) and len(node.targets) == 1 else None
    if isinstance(node, cst.AnnAssign):
        target = node.target
    if not _is_self_attr(target) or not isinstance(node.value, cst.Name):
        return []
    resolved = resolve(node.value, info.facts)
    kind = _last_kind(e for e in info.events if resolved is not None and e.root == resolved[0])
    return [(f"self.{target.attr.value}", kind)] if kind is not None else []


def _scan(node: cst.CSTNode, conds: frozenset[int], chain: Chain, loop: int, out: list[ScanItem]) -> None:
    """Collect the nodes below `node` in source order with their context, nested scopes excluded."""
    in_block = isinstance(node, (cst.IndentedBlock, cst.Module))
    if isinstance(node, (cst.For, cst.While)):
        loop = id(node)
    for name in child_fields(type(node)):
        value = getattr(node, name)
        guarded = isinstance(node, GUARDS) and name not in UNGUARDED_FIELDS
        for child in value if isinstance(value, (tuple, list)) else (value,):
            if not isinstance(child, cst.CSTNode) or isinstance(child, SCOPES):
                continue
            child_conds = conds | {id(child)} if guarded else conds
            child_chain = chain + (child,) if in_block and isinstance(child, cst.BaseStatement) else chain
            out.append((child, child_conds, child_chain, loop))
            _scan(child, child_conds, child_chain, loop, out)


def _mode_kind(call: cst.Call) -> str | None:
    """EVAL for `.eval()`/`.train(False)`, TRAIN for `.train()`, UNKNOWN for `.train(flag)` or an eval `apply`."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return None
    attr = func.attr.value
    if attr == "eval":
        return EVAL if not call.args else None
    if attr == "apply":
        names = ((dotted_name(a.value) or "").lower() for a in call.args)
        return UNKNOWN if any(EVAL_HELPER_RE.search(n) for n in names) else None
    if attr != "train":
        return None
    if not call.args:
        return TRAIN
    arg = call.args[0]
    if arg.keyword is not None and arg.keyword.value != "mode":
        return None
    if isinstance(arg.value, cst.Name) and arg.value.value in ("True", "False"):
        return TRAIN if arg.value.value == "True" else EVAL
    return UNKNOWN


def _last_kind(events: Iterable[_Event]) -> str | None:
    last = max(events, key=lambda e: e.order, default=None)
    return last.kind if last is not None else None


def _sets_eval(func: cst.FunctionDef) -> bool:
    return any(isinstance(n, cst.Call) and _mode_kind(n) == EVAL for n in iter_nodes(func.body))


def _class_mode_free(info: ClassInfo) -> bool:
    if not info.is_module or info.mode_dependent:
        return False
    calls = (n for n in iter_nodes(info.node, enter_scopes=True) if isinstance(n, cst.Call))
    return not any(_mode_layer(dotted_name(c.func) or "", c) for c in calls)


def _mode_layer(name: str, call: cst.Call) -> bool:
    """Whether the layer `name` built by `call` behaves differently in training mode."""
    if any(w in name for w in MODE_WORDS):
        return True
    if not any(w in name for w in OPTIONAL_DROPOUT):
        return False
    positional = [a for a in call.args if a.keyword is None]
    return len(positional) >= 6 or any(a.keyword is not None and a.keyword.value == "dropout" for a in call.args)


def _is_self_attr(expr: cst.CSTNode | None) -> bool:
    return isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self"


def _is_hf_trainer(base: str) -> bool:
    return base.startswith("transformers") and base.endswith("Trainer")


def _transformed(value: cst.CSTNode, name: str) -> cst.CSTNode:
    """`model` for `model = fuse(model, ...)`: a call that transforms the same object keeps its identity."""
    if isinstance(value, cst.Call):
        for arg in value.args:
            if arg.keyword is None and isinstance(arg.value, cst.Name) and arg.value.value == name:
                return arg.value
    return value


def _unpacked_value(binding: Binding) -> cst.CSTNode | None:
    """The bound value, also for `a, b = x, y` (the dataflow facts keep no value for tuple targets)."""
    if binding.value is not None or not isinstance(binding.stmt, cst.SimpleStatementLine):
        return binding.value
    for small in binding.stmt.body:
        if not isinstance(small, cst.Assign) or not isinstance(small.value, (cst.Tuple, cst.List)):
            continue
        values = small.value.elements
        for target in small.targets:
            names = target.target.elements if isinstance(target.target, (cst.Tuple, cst.List)) else ()
            for el, val in zip(names, values) if len(names) == len(values) else ():
                named = isinstance(el.value, cst.Name) and el.value.value == binding.name
                if named and not isinstance(val, cst.StarredElement):
                    return val.value
    return None


def _is_print(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Name) and call.func.value == "print"


def _strip_module(expr: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(expr, cst.Attribute) and expr.attr.value == "module":
        expr = expr.value
    return expr


def _result_unused(parent: cst.CSTNode | None) -> bool:
    """`model(x)` as a statement or assigned to `_`: warm-up or batch-norm recalibration."""
    if isinstance(parent, cst.Expr):
        return True
    if isinstance(parent, cst.Assign):
        return all(isinstance(t.target, cst.Name) and t.target.value == "_" for t in parent.targets)
    return False


def _param_names(func: cst.FunctionDef) -> list[str]:
    return [p.name.value for p in (*func.params.posonly_params, *func.params.params)]


def _arg_for(call: cst.Call, params: list[str], name: str) -> cst.BaseExpression | None:
    """The argument that `call` passes for the parameter `name`."""
    for i, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg.value
        elif i < len(params) and params[i] == name:
            return arg.value
    return None


def _escapes(node: cst.CSTNode, loops: int = 0) -> bool:
    """Whether `return`, `yield`, or a `break`/`continue` of an outer loop can leave `node`."""
    for child in children(node):
        if isinstance(child, SCOPES):
            continue
        if isinstance(child, (cst.Return, cst.Yield)) or (isinstance(child, (cst.Break, cst.Continue)) and not loops):
            return True
        if _escapes(child, loops + isinstance(child, (cst.For, cst.While))):
            return True
    return False


def _restore_anchor(
    func: cst.FunctionDef, last: cst.BaseStatement, spelling: str
) -> type[InsertBefore] | type[InsertAfter] | None:
    """How to place the restore: before a final `return` that does not use the module, or after the body."""
    exits = [n for n in iter_nodes(func.body) if isinstance(n, (cst.Return, cst.Yield))]
    if not exits:
        return InsertAfter
    final = last.body[0] if isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1 else None
    if exits != [final] or not isinstance(final, cst.Return):
        return None
    if final.value is not None and any(dotted_name(n) == spelling for n in (final.value, *iter_nodes(final.value))):
        return None
    return InsertBefore


def _divergence(call_chain: Chain, barrier: Chain) -> cst.CSTNode | None:
    """The statement around the call that follows the barrier statement in their innermost common block."""
    for i, stmt in enumerate(call_chain):
        if i >= len(barrier) or barrier[i] is not stmt:
            return stmt
    return None


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _stmt(code: str) -> cst.BaseStatement:
    return cst.parse_statement(code)


def _fix(spelling: str, edits: tuple[Edit, ...]) -> Fix:
    return Fix(f"Put `{spelling}` in eval mode before the inference call", FixSafety.UNSAFE, edits)
