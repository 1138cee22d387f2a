"""PTL036 dataset-rng-shared-across-workers."""

from __future__ import annotations

import libcst as cst

from ptlint.callargs import keyword
from ptlint.facts.classes import ClassInfo
from ptlint.fixes import add_import
from ptlint.rule import Fix, FixSafety, InsertAfter, Replace, Rule

LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
# Generator objects that a worker process copies unchanged; the value says how to reseed them.
GENERATORS = {
    "numpy.random.default_rng": "new",
    "numpy.random.Generator": None,
    "numpy.random.RandomState": "new32",
    "random.Random": "new",
    "torch.Generator": "manual_seed",
    "torch._C.Generator": "manual_seed",
}
FUNC_NAME = "_reseed_worker_rng"


class DatasetRngSharedAcrossWorkers(Rule):
    """A Dataset's own random generator, copied unchanged into every DataLoader worker.

    ## What it does
    Flags a `DataLoader` with `num_workers` other than 0 and no `worker_init_fn`, whose dataset is
    an instance of an in-file class that creates a generator object in `__init__`
    (`np.random.default_rng(...)`, `np.random.RandomState(...)`, `random.Random(...)` or
    `torch.Generator()`), stores it on `self` and uses it in another method such as
    `__getitem__`. Classes that call `get_worker_info()` or assign the generator again outside
    `__init__` (reseeding it themselves) are not reported.

    ## Why is this bad?
    Each worker process starts with a copy of the dataset. PyTorch reseeds the global `random`,
    `numpy` and `torch` generators per worker, but not generator objects stored on the dataset:
    every worker draws the same random numbers. With 4 workers the "random" augmentation of
    sample 0, 1, 2 and 3 is identical, and the model sees a quarter of the intended variety.
    Nothing fails.

    ## Example
    ```python
    class Noisy(Dataset):
        def __init__(self, data):
            self.data = data
            self.rng = np.random.default_rng(0)

        def __getitem__(self, i):
            return self.data[i] + self.rng.normal()

    loader = DataLoader(Noisy(data), batch_size=8, num_workers=4)
    ```

    ## Use instead
    ```python
    def _reseed_worker_rng(worker_id):
        info = torch.utils.data.get_worker_info()
        info.dataset.rng = np.random.default_rng(info.seed)

    loader = DataLoader(Noisy(data), batch_size=8, num_workers=4, worker_init_fn=_reseed_worker_rng)
    ```

    ## Fix safety
    Unsafe: the fix adds a module-level `_reseed_worker_rng` after the dataset class, which
    reseeds each generator from the worker's seed, and passes it as `worker_init_fn`. The random
    stream changes (it now differs per worker), and it stays reproducible when the DataLoader gets
    a seeded `generator=`. Classes defined inside functions, and `np.random.Generator(...)` built
    from an explicit bit generator, get no fix.

    ## References
    - [Randomness in multi-process data loading](https://pytorch.org/docs/stable/data.html#randomness-in-multi-process-data-loading)
    - [Reproducibility: DataLoader](https://pytorch.org/docs/stable/notes/randomness.html#dataloader)
    """

    code = "PTL036"
    name = "dataset-rng-shared-across-workers"
    message = "Every DataLoader worker gets a copy of the dataset's random generator and draws the same numbers"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("DataLoader",)
    contract = "E2"

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in LOADERS:
            return
        if keyword(node, "worker_init_fn") is not None or any(a.star == "**" for a in node.args):
            return
        workers = _value(keyword(node, "num_workers"))
        if workers is None or (isinstance(workers, cst.Integer) and workers.evaluated_value == 0):
            return
        dataset = _value(keyword(node, "dataset"))
        if dataset is None:
            positional = [a.value for a in node.args if a.keyword is None and not a.star]
            dataset = positional[0] if positional else None
        made = dataset if isinstance(dataset, cst.Call) else self.ctx.assigned_value(dataset) if isinstance(dataset, cst.Name) else None
        if not isinstance(made, cst.Call) or not isinstance(made.func, cst.Name):
            return
        info = self.ctx.classes.get(made.func.value)
        if info is None:
            return
        rngs = self._shared_generators(info)
        if not rngs:
            return
        names = ", ".join(f"`self.{attr}`" for attr, _ in rngs)
        message = f"Every DataLoader worker gets a copy of {names} of `{info.name}` and draws the same random numbers"
        fix = self._fix(node, info.node, rngs) if self.ctx.compat_guard() is None else None
        self.report(node, message=message, fix=fix)

    def _shared_generators(self, info: ClassInfo) -> list[tuple[str, cst.Call]]:
        """(attribute, constructor call) of each generator made in `__init__` and used elsewhere."""
        tree = self.ctx.model.tree
        methods = info.methods
        init = methods.get("__init__")
        if init is None or not ({"__getitem__", "__iter__", "__getitems__"} & set(methods)):
            return []
        if any(n.value in ("get_worker_info", "worker_init_fn") for n in tree.below(info.node, cst.Name)):  # type: ignore[attr-defined]
            return []
        found = []
        for stmt in tree.below(init.body, cst.Assign, scopes=False):
            if len(stmt.targets) != 1:  # type: ignore[attr-defined]
                continue
            target = stmt.targets[0].target  # type: ignore[attr-defined]
            if not (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value == "self"):
                continue
            value = stmt.value  # type: ignore[attr-defined]
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "manual_seed":
                value = value.func.value  # torch.Generator().manual_seed(0)
            if not isinstance(value, cst.Call) or self.ctx.qualname(value.func) not in GENERATORS:
                continue
            attr = target.attr.value
            if len(self.ctx.self_assignments(init, attr)) != 1:
                continue
            used = reassigned = False
            for name, method in methods.items():
                if name == "__init__":
                    continue
                if self.ctx.self_assignments(method, attr):
                    reassigned = True
                used = used or any(
                    n.attr.value == attr and isinstance(n.value, cst.Name) and n.value.value == "self"  # type: ignore[attr-defined]
                    for n in tree.below(method, cst.Attribute)
                )
            if used and not reassigned:
                found.append((attr, value))
        return found

    def _fix(self, loader: cst.Call, cls: cst.ClassDef, rngs: list[tuple[str, cst.Call]]) -> Fix | None:
        if not any(stmt is cls for stmt in self.ctx.module.body):
            return None
        lines = []
        for attr, made in rngs:
            how = GENERATORS.get(self.ctx.qualname(made.func) or "")
            func = cst.Module([]).code_for_node(made.func)
            if how == "new":
                lines.append(f"    info.dataset.{attr} = {func}(info.seed)")
            elif how == "new32":
                lines.append(f"    info.dataset.{attr} = {func}(info.seed % 2**32)")
            elif how == "manual_seed":
                lines.append(f"    info.dataset.{attr}.manual_seed(info.seed)")
            else:
                return None
        defined = self.ctx.module_facts().bindings_of(FUNC_NAME)
        edits: list = []
        if not defined:
            info_func = self.ctx.torch_name("torch.utils.data.get_worker_info")
            code = f"def {FUNC_NAME}(worker_id):\n    info = {info_func}()\n" + "\n".join(lines) + "\n"
            func_def = cst.parse_statement(code).with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
            edits.append(InsertAfter(cls, (func_def,)))
            if info_func.startswith("torch.") and self.ctx.imports.aliases.get("torch") != "torch":
                edits.extend(add_import(self.ctx, "import torch"))
        new_arg = cst.Arg(
            keyword=cst.Name("worker_init_fn"),
            value=cst.Name(FUNC_NAME),
            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
        )
        args = list(loader.args)
        last = args[-1]
        trailing = last.comma
        if isinstance(trailing, cst.Comma):
            new_arg = new_arg.with_changes(comma=trailing)
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        if isinstance(trailing, cst.Comma) and isinstance(trailing.whitespace_after, cst.ParenthesizedWhitespace):
            # One argument per line with a trailing comma: the new one goes on its own line.
            between = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else trailing
            args[-1] = last.with_changes(comma=between)
        args.append(new_arg)
        edits.append(Replace(loader, loader.with_changes(args=args)))
        return Fix("Reseed the dataset's generator in each worker", FixSafety.UNSAFE, tuple(edits))



def _value(arg: cst.Arg | None) -> cst.BaseExpression | None:
    return arg.value if arg is not None else None
