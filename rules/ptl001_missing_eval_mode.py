"""PTL001 missing-eval-mode."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import libcst as cst

from ptlint.facts.classes import MODULE_BASES
from ptlint.facts.dataflow import Binding
from ptlint.facts.imports import dotted_name
from ptlint.facts.kinds import SELF_RETURNING
from ptlint.facts.loops import is_backward
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, InsertBefore, Rule
from ptlint.semantic.modes import Mode, ModeChange, Root

if TYPE_CHECKING:
    from ptlint.context import Context

# The first word of a validation-like function name: `validate`, `eval_epoch`, `testModel`, `_predict`.
VAL_NAME_RE = re.compile(
    r"^_*(?i:val|valid|validate|validation|validating|eval|evaluate|evaluation|evaluating|"
    r"test|testing|predict|prediction|inference)(?=$|[_\dA-Z])"
)
PYTEST_FILE_RE = re.compile(r"^(test_.*|.*_test)\.py$")
WEIGHT_KWARGS = {"pretrained", "weights", "pretrained_backbone", "checkpoint"}
PRESET_METHODS = {"__init__", "__post_init__", "setup"}
SAVED = "was_training"


@dataclass(frozen=True)
class _Verdict:
    """Whether training mode reaches a call, whether an `.eval()` was undone, and the last `.train()`."""

    offending: bool
    retrained: bool
    last_train: ModeChange | None


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
        self.model = ctx.model
        self._reported: set[tuple[int, Root]] = set()
        self._vars: dict[int, set[str]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        kind = type(node.func)
        if kind is not cst.Name and kind is not cst.Attribute:
            return
        model = self.model
        if not model.names.all_imports.imports_torch():
            return
        scope = self.model.tree.body_of(node)
        block = self._block(node, scope) if scope is not None else None
        if scope is None or block is None or _result_unused(model.tree.parent(node)):
            return
        if self._framework_managed(node, scope) or not model.is_module(node.func) or self._is_function_ref(node.func):
            return
        if self._in_training_step(node, scope):
            return
        root = model.modes.root(node.func)
        if root is not None and (id(block), root) not in self._reported:
            self._check(node, scope, block, root)

    # --- where a call runs in inference context ---

    def _block(self, call: cst.Call, scope: cst.CSTNode) -> cst.CSTNode | None:
        """The validation-like function, else the outermost no-grad `with` around the call, else None."""
        no_grad = self.model.torch.is_no_grad
        if isinstance(scope, cst.FunctionDef):
            name = scope.name.value
            if name.startswith("test") and PYTEST_FILE_RE.match(os.path.basename(self.ctx.path)):
                return None
            if VAL_NAME_RE.match(name) or any(no_grad(d.decorator) for d in scope.decorators):
                return scope
        return next((w for w in self.model.tree.withs(call) if any(no_grad(i.item) for i in w.items)), None)

    def _framework_managed(self, call: cst.Call, scope: cst.CSTNode) -> bool:
        """Lightning and HF Trainer classes, `*_step` functions and `forward` methods leave the mode to callers."""
        cls = self.model.class_info(call)
        if cls is not None and (cls.is_lightning or any(_is_hf_trainer(b) or b.endswith("TestCase") for b in cls.bases)):
            return True
        if not isinstance(scope, cst.FunctionDef):
            return False
        name = scope.name.value
        if cls is not None and name.startswith("test_"):
            return True  # a unit test method: a smoke test of the model, not a validation loop
        return name.endswith("_step") or (cls is not None and name.lstrip("_").startswith("forward"))

    def _in_training_step(self, call: cst.Call, scope: cst.CSTNode) -> bool:
        """The call's loop, a loop around it, or (outside loops) its function calls `.backward()`: GAN fakes,
        target networks and pseudo-labels are part of a training step."""
        tree = self.model.tree
        loops = tree.loops(call)
        for backward in (*tree.method_calls("backward"), *tree.method_calls("manual_backward")):
            if self.model.tree.body_of(backward) is scope:
                inner = tree.loops(backward)
                if (inner and any(loop is inner[-1] for loop in loops)) or (not inner and not loops):
                    return True
        return False

    def _is_function_ref(self, func: cst.BaseExpression) -> bool:
        """A method (`self.model_predictions`), a def or import (`validate_network`), `net, loss = linreg, mse`."""
        if _is_self_attr(func):
            cls = self.model.class_info(func)
            return cls is not None and func.attr.value in cls.methods
        if not isinstance(func, cst.Name):
            return False
        binding = self.model.names.lookup(func)
        if binding is None or binding.kind in ("def", "import"):
            return binding is not None
        value = binding.bound_value()
        target = self.model.names.lookup(value) if isinstance(value, cst.Name) else None
        return target is not None and target.kind in ("def", "import")

    # --- the finding ---

    def _check(self, node: cst.Call, scope: cst.CSTNode, block: cst.CSTNode, root: Root) -> None:
        verdict = self._analyze(root, node, scope)
        if not verdict.offending or self._untrained(root.binding, scope) or self._mode_free(root, node, scope):
            return
        if self._submodule_of_module(root, node) or self._mode_set_elsewhere(root, node):
            return
        if self._covered_by_callers(root, scope):
            return
        spelling = dotted_name(_strip_module(node.func)) or ""
        barrier = self._barrier(verdict.last_train, root.binding, scope)
        self._reported.add((id(block), root))
        why = "`.train()` was the last mode call" if verdict.retrained else f"no `{spelling}.eval()` reaches this call"
        message = f"`{spelling}` is called for inference in training mode: {why}"
        self.report(node, message=message, fix=self._fix(node, block, spelling, barrier))

    def _analyze(self, root: Root, call: cst.Call, scope: cst.CSTNode) -> _Verdict:
        """Whether training mode reaches `call` for the module `root`: no eval mode before it, or a `.train()`
        after the last one that runs whenever the call runs."""
        at = self.model.tree.order(call)
        roots = self._roots_for(root, call)
        changes = [c for c in self.model.modes.changes(scope) if c.root in roots and c.order < at]
        evals = [c.order for c in changes if c.mode is not Mode.TRAIN]
        if self._preset_eval(root, roots, scope, call):
            evals.append(0)
        trains = [c for c in changes if c.mode is Mode.TRAIN]
        last_train = max(trains, key=lambda c: c.order, default=None)
        if not evals:
            return _Verdict(True, False, last_train)
        last = max(evals)
        retrained = any(c.order > last and self.model.flow.dominates(c.node, call) for c in trains)
        return _Verdict(retrained, retrained, last_train)

    def _roots_for(self, root: Root, node: cst.CSTNode) -> set[Root]:
        """`root`, plus `self` when `root` is a submodule of the module class around `node`."""
        cls = self.model.class_info(node)
        return {root, Root("self")} if root.attr is not None and cls is not None and cls.is_module else {root}

    def _preset_eval(self, root: Root, roots: set[Root], scope: cst.CSTNode, node: cst.CSTNode) -> bool:
        """Eval mode set before the function runs: by the function a closure is defined in, at module level,
        or in `__init__` and never undone."""
        model = self.model
        if root.free and isinstance(scope, cst.FunctionDef):
            for outer in model.tree.ancestors(scope):  # a closure's free model: the mode its enclosing function left
                binds = model.facts(outer).bindings_of(root.name) if isinstance(outer, cst.FunctionDef) else []
                if binds:
                    keys = {model.modes.binding_root(b) for b in binds}
                    left = _last_mode(c for c in model.modes.changes(outer) if c.root in keys)
                    return left not in (None, Mode.TRAIN)
            module = model.modes.changes(model.tree.module)
            return _last_mode(c for c in module if c.root.name == root.name) not in (None, Mode.TRAIN)
        cls = model.class_info(node)
        if root.attr is None or cls is None:
            return False
        modes = {
            (c.mode, name in PRESET_METHODS)
            for name, method in cls.methods.items() if method is not scope
            for c in model.modes.changes(method, follow_calls=False) if c.root in roots
        }
        trained = any(m is Mode.TRAIN for m, _ in modes)
        return not trained and any(m is not Mode.TRAIN and preset for m, preset in modes)

    # --- exemptions ---

    def _untrained(self, binding: Binding | None, scope: cst.CSTNode) -> bool:
        """A model freshly built in this function, never trained, loaded or passed on: a shape smoke test."""
        if not isinstance(scope, cst.FunctionDef) or binding is None or binding.kind != "assign":
            return False
        if binding.value is None:
            return False
        base = self.model.torch.unwrap(binding.value)
        if not isinstance(base, cst.Call) or not self.model.is_module_constructor(base):
            return False
        if (dotted_name(base.func) or "").endswith("from_pretrained") or any(
            a.keyword is not None and a.keyword.value in WEIGHT_KWARGS for a in base.args
        ):
            return False
        calls = self.model.tree.below(scope.body, cst.Call, scopes=False)
        harmless = {id(call.func) for call in calls}
        harmless.update(id(a.value) for call in calls if _is_print(call) for a in call.args)
        facts = self.model.facts(scope)
        uses = facts.uses_after(binding.name, binding.stmt)
        only_called = all(id(u.node) in harmless or facts.parent_attr(u.node) in SELF_RETURNING for u in uses)
        return only_called and not any(is_backward(call) for call in calls)

    def _mode_free(self, root: Root, call: cst.Call, scope: cst.CSTNode) -> bool:
        """Whether the module is known to be built only from layers without dropout or normalization."""
        ctors = self._constructors(root, call, scope)
        return bool(ctors) and all(self.model.modes.mode_free(c) for c in ctors)

    def _constructors(self, root: Root, call: cst.Call, scope: cst.CSTNode) -> list[cst.CSTNode]:
        """What built the module: its assigned value, a parameter's annotation, `__init__`'s `self.x = ...`."""
        unwrap, binding = self.model.torch.unwrap, root.binding
        if binding is not None and binding.kind == "assign" and binding.value is not None:
            return [unwrap(binding.value)]
        if binding is not None and binding.kind == "param" and isinstance(scope, cst.FunctionDef):
            params = [p for p in scope.params.params if p.name.value == binding.name]
            return [p.annotation.annotation for p in params if p.annotation is not None]
        cls = self.model.class_info(call)
        init = cls.methods.get("__init__") if cls is not None and root.attr is not None else None
        if init is not None:
            return [unwrap(v) for v in self.model.self_assignments(init, root.attr)]
        free = self.model.names.outer_binding(root.name, scope) if root.free else None
        value = free.bound_value() if free is not None and free.kind == "assign" else None
        return [unwrap(value)] if value is not None else []

    def _submodule_of_module(self, root: Root, node: cst.CSTNode) -> bool:
        """`self.encoder` (or `self`) in a method of an nn.Module that does not train itself: it shares the
        mode of its parent, which the parent's caller sets (`model.eval()`), as for `forward`."""
        cls = self.model.class_info(node)
        if not root.on_self or cls is None or not cls.is_module:
            return False
        calls = (c for m in cls.methods.values() for c in self.model.tree.below(m.body, cst.Call, scopes=False))
        return not any(is_backward(c) for c in calls)

    def _mode_set_elsewhere(self, root: Root, node: cst.CSTNode) -> bool:
        """`self.model` in a class with a base defined in another file, which may set the mode."""
        cls = self.model.class_info(node)
        if cls is None or root.attr is None:
            return False
        known = MODULE_BASES | {"object", ""}
        return any(b not in known and b not in self.model.classes for b in cls.bases)

    def _covered_by_callers(self, root: Root, scope: cst.CSTNode) -> bool:
        """A helper or closure whose every in-file caller already has the module in eval mode."""
        if not isinstance(scope, cst.FunctionDef):
            return False
        param = root.binding if root.binding is not None and root.binding.kind == "param" else None
        if param is None and root.attr is None and not root.free:
            return False
        sites = self._callers(scope)
        if not sites:
            # A method that takes the model from its caller is library API: the caller owns the mode.
            return param is not None and self.model.tree.method_of(scope) is not None
        for call, site in sites:
            site_root = self._root_at_site(root, param, scope, call)
            if site_root is None:
                return False
            if self._analyze(site_root, call, site).offending and not self._passed_on(site_root, site):
                return False
        return True

    def _callers(self, func: cst.FunctionDef) -> list[tuple[cst.Call, cst.CSTNode]]:
        """The in-file calls of `func` outside it, each with the function (or module) that makes it."""
        sites = ((call, self.model.tree.body_of(call)) for call in self.model.program.call_sites(func))
        return [(call, site) for call, site in sites if site is not None and site is not func]

    def _passed_on(self, root: Root, site: cst.CSTNode) -> bool:
        """The caller only passes on a model it received itself, and its own caller owns the mode:
        a `*_step` hook, or a method with no caller in the file (library API)."""
        if not isinstance(site, cst.FunctionDef) or root.binding is None:
            return False
        params = [b for b in self.model.facts(site).bindings_of(root.name) if b.kind == "param"]
        if not params or params[0] is not root.binding:
            return False
        if site.name.value.endswith("_step"):
            return True
        return self.model.tree.method_of(site) is not None and not self._callers(site)

    def _root_at_site(self, root: Root, param: Binding | None, func: cst.FunctionDef, call: cst.Call) -> Root | None:
        """The object, in the caller, that the helper `func` sees as `root`."""
        modes = self.model.modes
        if param is not None:
            arg = self.model.program.argument(call, func, param.name)
            return modes.root(arg) if arg is not None else None
        if root.attr is not None:
            return root
        binding = self.model.names.reaching_at(root.name, call)
        return modes.binding_root(binding) if binding is not None else root

    # --- the fix ---

    def _barrier(
        self, last_train: ModeChange | None, binding: Binding | None, scope: cst.CSTNode
    ) -> cst.CSTNode | None:
        """The statement of the last `.train()` or local binding of the module: eval must come after it."""
        tree = self.model.tree
        marks = [tree.statement(last_train.node)] if last_train is not None else []
        if binding is not None and binding.kind != "param" and binding.stmt is not scope:
            marks.append(binding.stmt)
        return max(marks, key=tree.order) if marks else None

    def _fix(self, call: cst.Call, block: cst.CSTNode, spelling: str, barrier: cst.CSTNode | None) -> Fix | None:
        tree = self.model.tree
        if isinstance(block, cst.With) and (barrier is None or not tree.contains(block, barrier)):
            return self._wrap_fix(block, spelling)
        if isinstance(block, cst.FunctionDef) and barrier is None:
            return self._function_fix(block, spelling)
        path = tree.path(call) if barrier is not None else []
        anchor = next((s for s in path if _in_block(tree.parent(s)) and not tree.contains(s, barrier)), None)
        if anchor is None:
            return None
        return _fix(spelling, (InsertBefore(anchor, (_stmt(f"{spelling}.eval()"),)),))

    def _wrap_fix(self, block: cst.With, spelling: str) -> Fix:
        """Save the mode and switch to eval before the block; restore after it unless it can leave early."""
        if self.model.flow.leaves_early(block):
            return _fix(spelling, (InsertBefore(block, (_stmt(f"{spelling}.eval()"),)),))
        var = self._var(block)
        before = (_stmt(f"{var} = {spelling}.training"), _stmt(f"{spelling}.eval()"))
        return _fix(spelling, (InsertBefore(block, before), InsertAfter(block, (_stmt(f"{spelling}.train({var})"),))))

    def _function_fix(self, func: cst.FunctionDef, spelling: str) -> Fix | None:
        """Switch to eval at the start of the body; restore at its end when the function has one exit."""
        if not isinstance(func.body, cst.IndentedBlock):
            return None
        stmts = list(func.body.body)
        first = stmts[1] if _is_docstring(stmts[0]) and len(stmts) > 1 else stmts[0]
        exit_edit = self._restore_anchor(func, stmts[-1], spelling)
        if exit_edit is None:
            return _fix(spelling, (InsertBefore(first, (_stmt(f"{spelling}.eval()"),)),))
        var = self._var(func)
        before = (_stmt(f"{var} = {spelling}.training"), _stmt(f"{spelling}.eval()"))
        restore = (_stmt(f"{spelling}.train({var})"),)
        return _fix(spelling, (InsertBefore(first, before), exit_edit(stmts[-1], restore)))

    def _restore_anchor(
        self, func: cst.FunctionDef, last: cst.BaseStatement, spelling: str
    ) -> type[InsertBefore] | type[InsertAfter] | None:
        """How to place the restore: before a final `return` that does not use the module, or after the body."""
        exits = self.model.flow.exit_points(func)
        if not exits:
            return InsertAfter
        final = last.body[0] if isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1 else None
        if len(exits) != 1 or exits[0] is not final or not isinstance(final, cst.Return):
            return None
        value = final.value
        names = (value, *self.model.tree.below(value, (cst.Name, cst.Attribute))) if value is not None else ()
        if any(dotted_name(n) == spelling for n in names):
            return None
        return InsertBefore

    def _var(self, block: cst.CSTNode) -> str:
        """`was_training`, numbered when the block already saves the mode of another module or the
        file already uses that name."""
        taken = self._vars.setdefault(id(block), set())
        facts = self.model.facts_at(block) if not isinstance(block, cst.FunctionDef) else self.model.facts(block)
        name, n = SAVED, 1
        while name in taken or facts.bindings_of(name) or re.search(rf"\b{name}\b", self.ctx.source):
            n += 1
            name = f"{SAVED}_{n}"
        taken.add(name)
        return name


def _last_mode(changes: Iterable[ModeChange]) -> Mode | None:
    last = max(changes, key=lambda c: c.order, default=None)
    return last.mode if last is not None else None


def _in_block(parent: cst.CSTNode | None) -> bool:
    return isinstance(parent, (cst.IndentedBlock, cst.Module))


def _is_self_attr(expr: cst.CSTNode | None) -> bool:
    return isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self"


def _is_hf_trainer(base: str) -> bool:
    return base.startswith("transformers") and base.endswith("Trainer")


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
