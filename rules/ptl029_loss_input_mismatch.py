"""PTL029 loss-input-mismatch."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.classes import ClassInfo
from ptlint.rule import Fix, FixSafety, Replace, Rule

F = "torch.nn.functional."
NN = "torch.nn."
# What each loss expects as its input.
FUNCTIONAL_LOSSES = {
    F + "cross_entropy": "ce",
    F + "nll_loss": "nll",
    F + "binary_cross_entropy": "bce",
    F + "binary_cross_entropy_with_logits": "bcel",
}
LOSS_CLASSES = {
    NN + "CrossEntropyLoss": "ce",
    NN + "NLLLoss": "nll",
    NN + "BCELoss": "bce",
    NN + "BCEWithLogitsLoss": "bcel",
}
# What an activation produces.
ACTIVATION_FUNCS = {
    "torch.softmax": "prob",
    F + "softmax": "prob",
    "torch.special.softmax": "prob",
    "torch.log_softmax": "logprob",
    F + "log_softmax": "logprob",
    "torch.special.log_softmax": "logprob",
    "torch.sigmoid": "sigmoid",
    F + "sigmoid": "sigmoid",
    "torch.special.expit": "sigmoid",
}
ACTIVATION_METHODS = {"softmax": "prob", "log_softmax": "logprob", "sigmoid": "sigmoid"}
ACTIVATION_CLASSES = {NN + "Softmax": "prob", NN + "LogSoftmax": "logprob", NN + "Sigmoid": "sigmoid"}

MESSAGES = {
    ("ce", "prob"): "cross_entropy gets softmax probabilities; it expects raw logits and applies log_softmax itself",
    ("nll", "prob"): "nll_loss gets softmax probabilities; it expects log-probabilities (log_softmax)",
    ("nll", "sigmoid"): "nll_loss gets sigmoid outputs; it expects log-probabilities (log_softmax)",
    ("bce", "logits"): "binary_cross_entropy gets logits; it expects probabilities (use the with-logits loss)",
    ("bcel", "sigmoid"): "binary_cross_entropy_with_logits gets sigmoid outputs; it applies the sigmoid itself",
}


class LossInputMismatch(Rule):
    """A loss that gets the wrong kind of input: probabilities for logits, or the reverse.

    ## What it does
    Flags these calls, for functional losses, inline loss modules and loss objects bound to a
    name or to `self.<attr>` in `__init__`:
    - `cross_entropy` / `CrossEntropyLoss` on the output of `softmax`;
    - `nll_loss` / `NLLLoss` on the output of `softmax` or `sigmoid` (not `log_softmax`);
    - `binary_cross_entropy` / `BCELoss` on a value named `logits`;
    - `binary_cross_entropy_with_logits` / `BCEWithLogitsLoss` on the output of `sigmoid`.

    The input is followed through one local assignment, through a model call whose in-file
    module class returns such an activation from `forward`, and through an `nn.Sequential` that
    ends with `nn.Softmax`/`nn.Sigmoid`. Only the input (first argument) is checked, so soft
    targets such as `cross_entropy(logits, teacher_probs)` and distillation with `kl_div` on
    probabilities stay silent. `cross_entropy` on `log_softmax` output is not reported: it is
    redundant but gives the same loss.

    ## Why is this bad?
    Nothing fails, but the loss is not the one intended. Cross-entropy on softmax outputs applies
    softmax twice: the gradients shrink, training stalls at a higher loss, and confident
    predictions are barely rewarded. NLL on probabilities is not a log-likelihood at all, and
    BCE-with-logits on sigmoid outputs squashes the input twice.

    ## Example
    ```python
    probs = F.softmax(model(x), dim=1)
    loss = F.cross_entropy(probs, y)
    ```

    ## Use instead
    ```python
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    ```

    ## Fix safety
    Unsafe, because the loss value changes (that is the point). When the activation is written
    in the loss call itself, or in a local assignment whose argument is a name bound once, the
    fix removes the extra softmax or sigmoid, turns `softmax` into `log_softmax` for NLL, and
    turns an inline or functional BCE into its with-logits form. Activations inside a model's
    `forward` and loss objects bound to names get no fix.

    ## References
    - [CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html)
    - [NLLLoss](https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html)
    - [BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html)
    """

    code = "PTL029"
    name = "loss-input-mismatch"
    message = "The loss gets the wrong kind of input (probabilities vs logits)"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("cross_entropy", "CrossEntropyLoss", "nll_loss", "NLLLoss", "binary_cross_entropy", "BCELoss", "BCEWithLogitsLoss")
    contract = "E2"

    def visit_Call(self, node: cst.Call) -> None:
        kind = self._loss_kind(node)
        if kind is None:
            return
        arg = _input_arg(node)
        if arg is None:
            return
        produced, activation, direct = self._producer(arg.value)
        message = MESSAGES.get((kind, produced or ""))
        if message is None:
            return
        fix = None
        if self.ctx.compat_guard() is None:
            fix = self._fix(node, kind, arg, produced or "", activation, direct)
        self.report(node, message=message, fix=fix)

    # --- what the loss is ---

    def _loss_kind(self, call: cst.Call) -> str | None:
        q = self.ctx.qualname(call.func)
        if q in FUNCTIONAL_LOSSES:
            return FUNCTIONAL_LOSSES[q]
        made = self._constructor(call.func)
        if made is not None:
            return LOSS_CLASSES.get(self.ctx.qualname(made.func) or "")
        return None

    def _constructor(self, func: cst.BaseExpression) -> cst.Call | None:
        """The call that built the object `func` names: inline, a local/module name, or `self.<attr>`."""
        if isinstance(func, cst.Call):
            return func
        value: cst.CSTNode | None = None
        if isinstance(func, cst.Name):
            value = self.ctx.assigned_value(func)
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            value = self._self_attr(func.attr.value)
        return value if isinstance(value, cst.Call) else None

    def _self_attr(self, attr: str) -> cst.CSTNode | None:
        info = self.ctx.class_info()
        init = info.methods.get("__init__") if info is not None else None
        if init is None:
            return None
        values = self.ctx.self_assignments(init, attr)
        return values[0] if len(values) == 1 else None

    # --- what the input is ---

    def _producer(self, expr: cst.BaseExpression) -> tuple[str | None, cst.Call | None, bool]:
        """(kind of value, the activation call when visible, whether it sits in the loss call itself)."""
        if isinstance(expr, cst.Call):
            kind = self._activation(expr)
            if kind is not None:
                return kind, expr, True
            return self._model_output(expr), None, False
        if isinstance(expr, cst.Name):
            value = self.ctx.assigned_value(expr)
            if isinstance(value, cst.Call):
                kind = self._activation(value)
                if kind is not None:
                    return kind, value, False
                produced = self._model_output(value)
                if produced is not None:
                    return produced, None, False
            if "logit" in expr.value.lower():
                return "logits", None, False
            return None, None, False
        if isinstance(expr, cst.Attribute) and "logit" in expr.attr.value.lower():
            return "logits", None, False
        return None, None, False

    def _activation(self, call: cst.Call) -> str | None:
        q = self.ctx.qualname(call.func)
        if q in ACTIVATION_FUNCS:
            return ACTIVATION_FUNCS[q]
        if q is None and isinstance(call.func, cst.Attribute) and call.func.attr.value in ACTIVATION_METHODS:
            if not (isinstance(call.func.value, cst.Name) and call.func.value.value in ("F", "torch", "nn", "self")):
                return ACTIVATION_METHODS[call.func.attr.value]
        made = self._constructor(call.func)
        if made is not None:
            return ACTIVATION_CLASSES.get(self.ctx.qualname(made.func) or "")
        return None

    def _model_output(self, call: cst.Call) -> str | None:
        """The activation a model call ends with: an in-file module class or an nn.Sequential."""
        made = self._constructor(call.func)
        if made is None:
            return None
        q = self.ctx.qualname(made.func)
        if q == NN + "Sequential":
            layers = [a.value for a in made.args if a.keyword is None]
            if layers and isinstance(layers[-1], cst.Call) and not any(isinstance(a.value, cst.StarredElement) for a in made.args):
                return ACTIVATION_CLASSES.get(self.ctx.qualname(layers[-1].func) or "")
            return None
        if not isinstance(made.func, cst.Name):
            return None
        info = self.ctx.classes.get(made.func.value)
        forward = info.methods.get("forward") if info is not None and info.is_module else None
        if forward is None:
            return None
        returns = self.ctx.model.tree.below(forward.body, cst.Return, scopes=False)
        if not returns:
            return None
        kinds = set()
        for ret in returns:
            value = ret.value
            kinds.add(self._return_kind(value, info) if value is not None else None)  # type: ignore[attr-defined]
        return kinds.pop() if len(kinds) == 1 else None

    def _return_kind(self, value: cst.BaseExpression, cls: ClassInfo) -> str | None:
        if not isinstance(value, cst.Call):
            return None
        q = self.ctx.qualname(value.func)
        if q in ACTIVATION_FUNCS:
            return ACTIVATION_FUNCS[q]
        if q is None and isinstance(value.func, cst.Attribute) and value.func.attr.value in ACTIVATION_METHODS:
            owner = value.func.value
            if isinstance(owner, cst.Name) and owner.value == "self":
                init = cls.methods.get("__init__")
                if init is None:
                    return None
                made = self.ctx.self_assignments(init, value.func.attr.value)
                if len(made) == 1 and isinstance(made[0], cst.Call):
                    return ACTIVATION_CLASSES.get(self.ctx.qualname(made[0].func) or "")
                return None
            if not (isinstance(owner, cst.Name) and owner.value in ("F", "torch", "nn")):
                return ACTIVATION_METHODS[value.func.attr.value]
        return None

    # --- fixes ---

    def _fix(self, loss: cst.Call, kind: str, arg: cst.Arg, produced: str, activation: cst.Call | None, direct: bool) -> Fix | None:
        if kind == "bce":
            return self._with_logits(loss)
        if activation is None:
            return None
        q = self.ctx.qualname(activation.func)
        form = "func" if q in ACTIVATION_FUNCS else "module" if self._constructor(activation.func) is not None else "method"
        inner = _activation_input(activation, form)
        if inner is None:
            return None
        if not direct:
            # Through a local name: only when the activation's input is a name bound once.
            if not isinstance(inner, cst.Name):
                return None
            bindings = self.ctx.scope_facts().bindings_of(inner.value)
            if len(bindings) > 1 or (not bindings and self.ctx.function() is not None):
                return None
        if kind == "nll":
            if produced != "prob" or not direct:
                return None
            func = activation.func
            if form == "module" or not isinstance(func, cst.Attribute) or q not in (None, F + "softmax", "torch.softmax"):
                return None
            new_func = func.with_changes(attr=cst.Name("log_softmax"))
            return Fix("Use log_softmax for nll_loss", FixSafety.UNSAFE, (Replace(activation.func, new_func),))
        new_arg = arg.with_changes(value=inner.deep_clone() if not direct else inner)
        title = "Remove the softmax before cross_entropy" if kind == "ce" else "Remove the sigmoid before the with-logits loss"
        return Fix(title, FixSafety.UNSAFE, (Replace(arg, new_arg),))

    def _with_logits(self, loss: cst.Call) -> Fix | None:
        func = loss.func
        q = self.ctx.qualname(func)
        if q == F + "binary_cross_entropy" and isinstance(func, cst.Attribute):
            return Fix("Use binary_cross_entropy_with_logits", FixSafety.UNSAFE,
                       (Replace(func.attr, cst.Name("binary_cross_entropy_with_logits")),))
        if isinstance(func, cst.Call) and isinstance(func.func, cst.Attribute) and func.func.attr.value == "BCELoss":
            return Fix("Use BCEWithLogitsLoss", FixSafety.UNSAFE, (Replace(func.func.attr, cst.Name("BCEWithLogitsLoss")),))
        return None


def _input_arg(call: cst.Call) -> cst.Arg | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "input":
            return a
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[0] if positional else None


def _activation_input(call: cst.Call, form: str) -> cst.BaseExpression | None:
    """The tensor an activation call works on: `F.softmax(x, ...)`, `x.softmax(...)`, `sm(x)` -> x."""
    if form == "method":
        return call.func.value  # type: ignore[attr-defined]
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "input":
            return a.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[0].value if positional else None

