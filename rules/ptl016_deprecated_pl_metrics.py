"""PTL016 deprecated-pl-metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.fixes import add_import, remove_unused_import
from ptlint.facts.imports import dotted_name
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, InsertBefore, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

PL_METRICS = "pytorch_lightning.metrics"
# Old module -> new module.
MODULES = {
    PL_METRICS: "torchmetrics",
    f"{PL_METRICS}.classification": "torchmetrics",
    f"{PL_METRICS}.regression": "torchmetrics",
    f"{PL_METRICS}.metric": "torchmetrics",
    f"{PL_METRICS}.functional": "torchmetrics.functional",
    f"{PL_METRICS}.functional.classification": "torchmetrics.functional",
    f"{PL_METRICS}.functional.regression": "torchmetrics.functional",
}
SAME, TASK = "same", "task"
# Old name -> (new name, kind). SAME: a rename with unchanged arguments. TASK: a classification metric
# that TorchMetrics >= 0.11 builds only with `task=`.
CLASSES = {
    "Metric": ("Metric", SAME), "MetricCollection": ("MetricCollection", SAME),
    "MeanSquaredError": ("MeanSquaredError", SAME), "MeanAbsoluteError": ("MeanAbsoluteError", SAME),
    "MeanSquaredLogError": ("MeanSquaredLogError", SAME), "ExplainedVariance": ("ExplainedVariance", SAME),
    "R2Score": ("R2Score", SAME),
    "Accuracy": ("Accuracy", TASK), "Precision": ("Precision", TASK), "Recall": ("Recall", TASK),
    "F1": ("F1Score", TASK), "FBeta": ("FBetaScore", TASK),
}
FUNCTIONS = {
    "mean_squared_error": ("mean_squared_error", SAME), "mean_absolute_error": ("mean_absolute_error", SAME),
    "mean_squared_log_error": ("mean_squared_log_error", SAME), "explained_variance": ("explained_variance", SAME),
    "r2score": ("r2_score", SAME),
    "accuracy": ("accuracy", TASK), "precision": ("precision", TASK), "recall": ("recall", TASK),
    "f1": ("f1_score", TASK), "fbeta": ("fbeta_score", TASK),
}
# Keywords that mean the same for a multiclass TorchMetrics metric as for the old one.
TASK_KEYWORDS = {
    "num_classes", "average", "ignore_index", "top_k", "threshold", "beta",
    "dist_sync_on_step", "process_group", "dist_sync_fn",
}
AVERAGES = {"micro", "macro", "weighted", "none"}
NO_FIX = "no automatic fix"


class DeprecatedPlMetrics(Rule):
    """`pytorch_lightning.metrics`, removed in Lightning 1.5.

    ## What it does
    Flags imports from `pytorch_lightning.metrics` (and its `functional`, `classification` and
    `regression` submodules) and uses of `pl.metrics.<Metric>` through `import pytorch_lightning as pl`.

    Imports inside `try`/`except ImportError` compatibility blocks are left alone.

    ## Why is this bad?
    The metrics package of PyTorch Lightning was deprecated in 1.3 and removed in 1.5: it moved to
    the TorchMetrics library. On any current Lightning the import fails, so the script does not start.

    ## Example
    ```python
    import pytorch_lightning as pl
    from pytorch_lightning.metrics.functional import mean_squared_error

    acc = pl.metrics.Accuracy(num_classes=10)
    ```

    ## Use instead
    ```python
    import pytorch_lightning as pl
    import torchmetrics
    from torchmetrics.functional import mean_squared_error

    acc = torchmetrics.Accuracy(task="multiclass", num_classes=10)
    ```

    ## Fix safety
    Unsafe. The fix moves the import to `torchmetrics`, keeping local names (`F1` becomes
    `F1Score as F1`). TorchMetrics 0.11 and later build `Accuracy`, `Precision`, `Recall`, `F1Score`
    and `FBetaScore` (and their functions) only with a `task=`; the fix adds `task="multiclass"`
    when the call passes `num_classes` and only keywords that keep their meaning (`average`,
    `top_k`, `threshold`, `ignore_index`, ...). Old versions inferred binary, multiclass or
    multilabel input from the data, so binary or multilabel predictions then need another task.
    Regression metrics, `Metric` and `MetricCollection` are renamed only. Other metrics (`AUROC`,
    `IoU`, `ConfusionMatrix`, `PSNR`, ...), calls without `num_classes`, and imports of a name that
    any such call uses get no fix.

    ## References
    - [Lightning 1.5 changelog: removed `pytorch_lightning.metrics`](https://lightning.ai/docs/pytorch/stable/generated/CHANGELOG.html)
    - [TorchMetrics](https://lightning.ai/docs/torchmetrics/stable/)
    - [TorchMetrics 0.11: the `task` argument](https://lightning.ai/docs/torchmetrics/stable/classification/accuracy.html)
    """

    code = "PTL016"
    name = "deprecated-pl-metrics"
    message = "`pytorch_lightning.metrics` was removed in Lightning 1.5; use `torchmetrics`"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("metrics",)
    contract = "E2"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._imports: list[cst.ImportFrom] = []
        self._other_imports: list[cst.CSTNode] = []
        self._chains: list[tuple[cst.Attribute, str]] = []

    # --- collecting ---

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_name(node.module) if node.module is not None and not node.relative else None
        if module is None or self.ctx.compat_guard() is not None:
            return
        if module == PL_METRICS or module.startswith(PL_METRICS + "."):
            self._imports.append(node)
        elif module == "pytorch_lightning" and not isinstance(node.names, cst.ImportStar):
            if any(dotted_name(a.name) == "metrics" for a in node.names):
                self._other_imports.append(node)

    def visit_Import(self, node: cst.Import) -> None:
        if self.ctx.compat_guard() is None and any(
            (dotted_name(a.name) or "").startswith(PL_METRICS) for a in node.names
        ):
            self._other_imports.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        parent = self.ctx.parent()
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return  # only the whole chain
        if any(isinstance(n, (cst.Import, cst.ImportFrom)) for n in self.ctx.stack):
            return
        head = node
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name) or self.ctx.imports.aliases.get(head.value) != "pytorch_lightning":
            return
        q = self.ctx.qualname(node) or ""
        if q.startswith(PL_METRICS + ".") and self.ctx.compat_guard() is None:
            self._chains.append((node, q))

    # --- reporting ---

    def leave_Module(self, node: cst.Module) -> None:
        for stmt in self._other_imports:
            self.report(stmt, f"{self.message} ({NO_FIX} for this import form)")
        chain_fixes = [(attr, self._chain_fix(attr, q)) for attr, q in self._chains]
        rewritten: list[cst.CSTNode] = [attr for attr, f in chain_fixes if f is not None]
        pl_local = next((k for k, v in self.ctx.imports.aliases.items() if v == "pytorch_lightning"), None)
        removal = remove_unused_import(self.ctx, pl_local, rewritten) if pl_local and rewritten else ()
        for imp in self._imports:
            edits, why = self._import_fix(imp)
            if edits is None:
                self.report(imp, f"{self.message} ({NO_FIX}: {why})")
            else:
                self.report(imp, fix=Fix("Import from `torchmetrics`", FixSafety.UNSAFE, edits))
        for attr, edits in chain_fixes:
            if edits is None:
                self.report(attr, f"{self.message} ({NO_FIX} for this metric or call)")
            else:
                all_edits = (*edits, *_merge(add_import(self.ctx, "import torchmetrics"), removal))
                self.report(attr, fix=Fix("Use `torchmetrics`", FixSafety.UNSAFE, all_edits))

    # --- fixes ---

    def _chain_fix(self, attr: cst.Attribute, q: str) -> tuple[Edit, ...] | None:
        rest = q[len(PL_METRICS) + 1:]
        parts = rest.split(".")
        if len(parts) == 1 and parts[0] in CLASSES:
            new, kind = CLASSES[parts[0]]
            target = f"torchmetrics.{new}"
        elif len(parts) == 2 and parts[0] == "functional" and parts[1] in FUNCTIONS:
            new, kind = FUNCTIONS[parts[1]]
            target = f"torchmetrics.functional.{new}"
        else:
            return None
        replacement = cst.parse_expression(target).with_changes(lpar=attr.lpar, rpar=attr.rpar)
        edits: list[Edit] = [Replace(attr, replacement)]
        if kind == TASK:
            call = self._call_of(attr)
            task = _task_edit(call, functional=parts[0] == "functional") if call is not None else None
            if task is None:
                return None
            # The call's func is replaced with the chain; rebuild the call as a whole instead.
            assert call is not None
            new_call = task.with_changes(func=replacement)
            return (Replace(call, new_call),)
        return tuple(edits)

    def _import_fix(self, imp: cst.ImportFrom) -> tuple[tuple[Edit, ...] | None, str]:
        old_module = dotted_name(imp.module) if imp.module is not None else None
        new_module = MODULES.get(old_module or "")
        if new_module is None or isinstance(imp.names, cst.ImportStar):
            return None, f"`{old_module}` has no direct TorchMetrics counterpart"
        table = FUNCTIONS if new_module.endswith("functional") else CLASSES
        aliases = []
        edits: list[Edit] = []
        for alias in imp.names:
            old = dotted_name(alias.name) or ""
            if old not in table:
                return None, f"`{old}` has no direct TorchMetrics counterpart"
            new, kind = table[old]
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else old
            if kind == TASK:
                for use in self.ctx.model.names.references(local):
                    call = self._call_of(use)
                    task = _task_edit(call, functional=table is FUNCTIONS) if call is not None else None
                    if task is None:
                        return None, f"a use of `{local}` does not pass `num_classes` and known keywords only"
                    edits.append(Replace(call, task))  # type: ignore[arg-type]
            asname = alias.asname
            if new != old and asname is None:
                asname = cst.AsName(name=cst.Name(local))
            aliases.append(alias.with_changes(name=cst.Name(new), asname=asname))
        new_imp = imp.with_changes(module=cst.parse_expression(new_module), names=aliases)
        return (Replace(imp, new_imp), *edits), ""

    def _call_of(self, func: cst.CSTNode) -> cst.Call | None:
        """The call whose `func` is `func`, or None."""
        call = self.ctx.model.tree.parent(func)
        return call if isinstance(call, cst.Call) and call.func is func else None


def _merge(inserts: tuple[Edit, ...], removals: tuple[Edit, ...]) -> tuple[Edit, ...]:
    """Insert and removal edits; an insert anchored on a removed line replaces that line instead."""
    out: list[Edit] = []
    for rem in removals:
        anchored = [
            e for e in inserts
            if isinstance(e, (InsertAfter, InsertBefore)) and isinstance(rem, Replace) and e.anchor is rem.old
        ]
        if anchored and isinstance(rem, Replace) and rem.new is cst.RemovalSentinel.REMOVE:
            out.append(Replace(rem.old, anchored[0].statements[0]))
            inserts = tuple(e for e in inserts if e is not anchored[0])
        else:
            out.append(rem)
    return (*inserts, *out)


def _task_edit(call: cst.Call, functional: bool) -> cst.Call | None:
    """`call` with `task="multiclass"` added, when its arguments allow it."""
    positional = 2 if functional else 0
    args = list(call.args)
    if any(a.star for a in args):
        return None
    if sum(1 for a in args if a.keyword is None) != positional or any(a.keyword is None for a in args[positional:]):
        return None
    keywords = {a.keyword.value: a.value for a in args if a.keyword is not None}
    if "num_classes" not in keywords or not set(keywords) <= TASK_KEYWORDS:
        return None
    classes = keywords["num_classes"]
    if isinstance(classes, cst.Integer) and classes.evaluated_value < 2:
        return None
    average = keywords.get("average")
    if average is not None and not (isinstance(average, cst.SimpleString) and average.evaluated_value in AVERAGES):
        return None
    task = cst.Arg(
        keyword=cst.Name("task"),
        value=cst.SimpleString('"multiclass"'),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if positional:
        before = args[positional - 1]
        if before.comma == cst.MaybeSentinel.DEFAULT:
            args[positional - 1] = before.with_changes(comma=comma)
        args.insert(positional, task.with_changes(comma=comma) if len(args) > positional else task)
    else:
        args.insert(0, task.with_changes(comma=comma) if args else task)
    return call.with_changes(args=args)
