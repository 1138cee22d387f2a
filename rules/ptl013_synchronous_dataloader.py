"""PTL013 synchronous-dataloader."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.paths import is_test_path
from ptlint.callargs import append_keyword
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule

LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
ITERABLE = re.compile(r"Iterable|IterDataPipe|Stream|Buffer|Replay", re.I)
IN_MEMORY = {"TensorDataset", "torch.utils.data.TensorDataset", "range"}


class SynchronousDataLoader(Rule):
    """A DataLoader that loads every batch in the training process.

    ## What it does
    Flags `torch.utils.data.DataLoader(...)` without `num_workers`, or with `num_workers=0`.

    It stays silent when the arguments are passed through `**kwargs` (the workers may come from
    there), for in-memory datasets (`TensorDataset`, `range`, list literals, in-file datasets whose
    `__getitem__` only indexes what they hold and calls nothing), in test files and
    notebooks, and for `IterableDataset`s, replay buffers and streams, which are reported without a
    fix: more workers would repeat their samples unless the dataset shards itself.

    ## Why is this bad?
    With `num_workers=0` the training loop stops at every step to read, decode and collate the
    next batch while the GPU waits. Worker processes prepare batches in parallel with the step,
    and `pin_memory=True` lets the host-to-device copy run asynchronously.

    ## Example
    ```python
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    ```

    ## Use instead
    ```python
    loader = DataLoader(
        dataset, batch_size=64, shuffle=True,
        num_workers=4, pin_memory=torch.cuda.is_available(), persistent_workers=True,
    )
    ```

    ## Fix safety
    Unsafe. The fix sets `num_workers` (option `num-workers`, default 4), adds
    `persistent_workers=True`, and in files that use CUDA adds `pin_memory=torch.cuda.is_available()`.
    The batches are the same, because sampling stays in the main process, but the dataset must then
    be picklable, its per-sample code runs in other processes (a dataset that opens files or seeds
    random generators in `__init__` may behave differently), and Windows and notebooks need a
    `__main__` guard for workers.

    ## References
    - [Performance tuning guide: enable asynchronous data loading](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [torch.utils.data: multi-process data loading](https://pytorch.org/docs/stable/data.html#multi-process-data-loading)
    """

    code = "PTL013"
    name = "synchronous-dataloader"
    message = "DataLoader loads batches in the training process; set `num_workers` (and `pin_memory` for CUDA)"
    fix_safety = FixSafety.UNSAFE
    severity = "info"
    triggers = ("DataLoader",)
    options = {"num-workers": 4}
    contract = "E0"

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in LOADERS:
            return
        if is_test_path(self.ctx.path) or self.ctx.path.endswith(".ipynb"):
            return
        if any(a.star for a in node.args) or len([a for a in node.args if a.keyword is None]) >= 6:
            return  # workers through **kwargs, or as the sixth positional argument
        workers = next((a for a in node.args if a.keyword is not None and a.keyword.value == "num_workers"), None)
        if workers is not None and not (isinstance(workers.value, cst.Integer) and workers.value.value == "0"):
            return
        dataset = self._dataset(node)
        if dataset is None or self._in_memory(dataset):
            return
        if self._iterable(dataset):
            self.report(node, "DataLoader loads batches in the training process; give this iterable dataset "
                              "workers only if it shards itself across them (no fix)")
            return
        self.report(node, fix=self._fix(node, workers))

    def _dataset(self, call: cst.Call) -> cst.BaseExpression | None:
        for arg in call.args:
            if (arg.keyword is None and arg is call.args[0]) or (arg.keyword is not None and arg.keyword.value == "dataset"):
                return arg.value
        return None

    def _resolve(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        value = self.ctx.model.value(expr) if isinstance(expr, cst.Name) else None
        return value if isinstance(value, cst.BaseExpression) else expr

    def _in_memory(self, dataset: cst.BaseExpression) -> bool:
        value = self._resolve(dataset)
        if isinstance(value, (cst.List, cst.Tuple, cst.ListComp)):
            return True
        if isinstance(value, cst.Call):
            name = dotted_name(value.func) or ""
            return name in IN_MEMORY or (self.ctx.qualname(value.func) or "") in IN_MEMORY or self._lookup_only(name)
        return False

    def _lookup_only(self, name: str) -> bool:
        """An in-file dataset class whose `__getitem__` calls nothing: it only indexes data it holds."""
        cls = self.ctx.classes.get(name)
        getitem = cls.methods.get("__getitem__") if cls is not None else None
        if getitem is None:
            return False
        nodes = self.ctx.model.tree.below(getitem.body, (cst.Return, cst.Call), scopes=False)
        returns = any(isinstance(n, cst.Return) and n.value is not None for n in nodes)
        return returns and not any(isinstance(n, cst.Call) for n in nodes)

    def _iterable(self, dataset: cst.BaseExpression) -> bool:
        value = self._resolve(dataset)
        names = [dotted_name(dataset) or ""]
        if isinstance(value, cst.Call):
            names.append(dotted_name(value.func) or "")
            if any(a.keyword is not None and a.keyword.value == "streaming" for a in value.args):
                return True
            cls = self.ctx.classes.get(names[-1])
            if cls is not None and any(ITERABLE.search(dotted_name(b.value) or "") for b in cls.node.bases):
                return True
        return any(ITERABLE.search(n) for n in names if n)

    def _fix(self, call: cst.Call, workers: cst.Arg | None) -> Fix:
        count = cst.Integer(str(int(self.opts["num-workers"])))
        edits: list[Edit] = []
        new = call
        if workers is not None:
            new = new.with_changes(args=[a.with_changes(value=count) if a is workers else a for a in new.args])
        else:
            new = append_keyword(new, "num_workers", count)
        keywords = {a.keyword.value for a in call.args if a.keyword is not None}
        if "pin_memory" not in keywords and "cuda" in self.ctx.source:
            available = self.ctx.torch_name("torch.cuda.is_available")
            new = append_keyword(new, "pin_memory", cst.parse_expression(f"{available}()"))
            if available.split(".")[0] not in self.ctx.imports.aliases:
                edits.extend(add_import(self.ctx, "import torch"))
        if "persistent_workers" not in keywords:
            new = append_keyword(new, "persistent_workers", cst.Name("True"))
        edits.insert(0, Replace(call, new))
        return Fix("Load batches in worker processes", FixSafety.UNSAFE, tuple(edits))
