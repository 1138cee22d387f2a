"""PTL023 unseeded-entrypoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import libcst as cst

from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.rule import Edit, Fix, FixSafety, InsertAfter, InsertBefore, Rule
from ptlint.semantic.flow import is_true

if TYPE_CHECKING:
    from ptlint.context import Context

RANDOM_FACTORIES = {
    f"torch.{n}" for n in (
        "rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
        "bernoulli", "multinomial", "poisson",
    )
}
RANDOM_CALLS = RANDOM_FACTORIES | {
    "torch.utils.data.random_split", "torch.utils.data.RandomSampler", "torch.utils.data.sampler.RandomSampler",
    "torch.nn.functional.dropout",
}
INIT_PREFIX = "torch.nn.init."
DETERMINISTIC_INITS = {"constant_", "zeros_", "ones_", "eye_", "dirac_", "calculate_gain"}
RANDOM_METHODS = {"normal_", "uniform_", "random_", "bernoulli_", "exponential_", "geometric_", "cauchy_", "log_normal_"}
SEED_RE = re.compile(r"seed", re.IGNORECASE)
# A string that names a seed option or key: "--seed", "seed", "manualSeed", "random-seed".
OPTION_RE = re.compile(r"^-{0,2}[\w.-]*seed[\w.-]*$", re.IGNORECASE)
MAIN = "__main__"
# File names of scripts, also inside packages: `train.py`, `main_finetune.py`, `run_glue.py`.
SCRIPT_NAME_RE = re.compile(r"^(train|main|run|finetune|pretrain|fit|launch)", re.IGNORECASE)


class UnseededEntrypoint(Rule):
    """A training script that draws random numbers without seeding torch.

    ## What it does
    Flags the entry point of a training script that draws random numbers from torch and never
    seeds the generator.

    The entry point is an `if __name__ == "__main__":` block or, in a file without one, a
    module-level loop that calls `.backward()`. The code counted is the module-level statements
    plus the functions of the same file that they call, directly or through other functions; it
    must train (`.backward()` or `trainer.fit(...)`). Entry points that do not train (shape smoke
    tests, demos, sampling scripts that should draw fresh samples) are not flagged, and neither
    are the `__main__` demos of library modules: files in a package (a folder with `__init__.py`)
    unless their name says they are scripts (`train*`, `main*`, `run*`, `finetune*`, `pretrain*`,
    `fit*`, `launch*`).

    Random use is a call of `torch.rand`/`randn`/`randint`/`randperm`/`normal`/`bernoulli`/
    `multinomial`, a random `torch.nn.init` initializer, `.normal_()`/`.uniform_()`-style in-place
    sampling, `random_split`, `RandomSampler`, `F.dropout`, a `DataLoader(shuffle=True)`, or training
    (`.backward()`) a freshly built model, whose weights are random.

    The rule stays silent as soon as the file mentions seeding in any way: a call or name that
    contains `seed` (`torch.manual_seed`, `seed_everything`, `transformers.set_seed`,
    `init_seeds(...)`, `args.seed`, `np.random.seed`) or an option string that does (`"--seed"`), because a seed passed to a helper of another
    module is as good as a direct call. Library modules without an entry point are never flagged.
    The option `seeding-functions` names further helpers that seed (for example `fix_randomness`).

    ## Why is this bad?
    Every run starts from different weights, batches and dropout masks, so results cannot be
    reproduced, compared between two code changes, or debugged by rerunning. Seeding the generators
    at the start of the program is the first step of the PyTorch reproducibility notes.

    ## Example
    ```python
    if __name__ == "__main__":
        model = Net()
        for x, y in loader:
            loss_fn(model(x), y).backward()
    ```

    ## Use instead
    ```python
    if __name__ == "__main__":
        torch.manual_seed(0)
        model = Net()
        for x, y in loader:
            loss_fn(model(x), y).backward()
    ```

    ## Fix safety
    Unsafe: the fix inserts `torch.manual_seed(0)`, plus `random.seed(0)` and `np.random.seed(0)` when
    the file imports `random` or numpy, at the start of the `__main__` block (or after the imports
    when random numbers are drawn at module level). The program then produces one fixed sequence
    of random numbers instead of a new one each run, which changes its results and defeats runs that
    rely on fresh randomness, such as a sweep over restarts.

    ## References
    - [Reproducibility](https://pytorch.org/docs/stable/notes/randomness.html)
    - [torch.manual_seed](https://pytorch.org/docs/stable/generated/torch.manual_seed.html)
    - dslinter W5511
    """

    code = "PTL023"
    name = "unseeded-entrypoint"
    message = "The entry point uses torch's random number generator without seeding it"
    fix_safety = FixSafety.UNSAFE
    severity = "info"
    triggers = ("torch",)
    options = {"seeding-functions": []}
    contract = "E2"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._extra = {str(n) for n in self.opts["seeding-functions"]}

    def leave_Module(self, node: cst.Module) -> None:
        if _library_module(self.ctx.path) or self._mentions_seed():
            return
        main = _main_block(node)
        top = [s for s in node.body if s is not main and not isinstance(s, (cst.FunctionDef, cst.ClassDef))]
        top_calls = self._calls(top)
        reach_top = top_calls + self._called(top_calls)
        if main is not None:
            main_calls = self._calls([main.body])
            anchor: cst.CSTNode = main.test
            reached = reach_top + main_calls + self._called(main_calls)
        else:
            loop = next((s for s in self._top_loops(top) if _trains(self._calls([s]) + self._called(self._calls([s])))), None)
            if loop is None:
                return
            anchor, reached = loop, reach_top
        if not _trains(reached):
            return  # smoke tests, demos and sampling scripts: fresh randomness is fine there
        evidence = self._evidence(reached)
        if evidence is None:
            return
        what, call = evidence
        at_top = main is None or any(n is call for n in top_calls)
        fix = self._fix(node, main if not at_top else None, call)
        self.report(anchor, f"{self.message}: {what}; seed it (`torch.manual_seed(...)`) at the start", fix)

    # --- facts ---

    def _mentions_seed(self) -> bool:
        tree = self.ctx.model.tree
        if any(SEED_RE.search(word) or word in self._extra for word in tree.identifiers()):
            return True
        # `parser.add_argument("--seed")`, `cfg["seed"]`: the seed is handed on.
        return any(OPTION_RE.match(n.value.strip("\"'")) for n in tree.of_type(cst.SimpleString))  # type: ignore[attr-defined]

    def _calls(self, roots: list[cst.CSTNode]) -> list[cst.Call]:
        """The calls below `roots` in source order, not those in nested functions or classes."""
        return [c for root in roots for c in self.ctx.model.tree.below(root, cst.Call, scopes=False)]  # type: ignore[misc]

    def _called(self, calls: list[cst.Call]) -> list[cst.Call]:
        """The calls in the bodies of in-file functions that `calls` call, transitively."""
        program = self.ctx.model.program
        seen: set[str] = set()
        todo = list(calls)
        out: list[cst.Call] = []
        while todo:
            func = todo.pop().func
            if isinstance(func, cst.Name) and func.value not in seen:
                called = program.function(func.value)
                if called is not None:
                    seen.add(func.value)
                    body = self._calls([called.body])
                    todo.extend(body)
                    out.extend(body)
        return out

    def _top_loops(self, top: list[cst.CSTNode]) -> Iterator[cst.CSTNode]:
        """Loops at module level, also inside the bodies of top-level if/with/try blocks."""
        tree = self.ctx.model.tree
        starts = {id(s) for s in top}
        for loop in tree.below(tree.module, (cst.For, cst.While), scopes=False):
            child: cst.CSTNode = loop
            for anc in tree.ancestors(loop):
                if isinstance(anc, cst.Module) and id(child) in starts:
                    yield loop
                if isinstance(anc, cst.IndentedBlock) or (isinstance(anc, (cst.If, cst.With, cst.Try)) and anc.body is child):
                    child = anc
                    continue
                break

    def _evidence(self, calls: list[cst.Call]) -> tuple[str, cst.Call] | None:
        trains = _trains(calls)
        for n in calls:
            q = self.ctx.qualname(n.func) or ""
            if q in RANDOM_CALLS:
                return f"`{q}` draws random numbers", n
            if q.startswith(INIT_PREFIX) and q[len(INIT_PREFIX):] not in DETERMINISTIC_INITS:
                return f"`{q}` initializes weights randomly", n
            func = n.func
            if isinstance(func, cst.Attribute) and func.attr.value in RANDOM_METHODS and q == "":
                return f"`.{func.attr.value}()` samples random numbers", n
            if q.endswith("DataLoader") and any(
                a.keyword is not None and a.keyword.value == "shuffle" and is_true(a.value) for a in n.args
            ):
                return "`DataLoader(shuffle=True)` shuffles randomly", n
            if trains and self.ctx.model.is_module_constructor(n):
                return "a freshly built model is trained from random weights", n
        return None

    # --- the fix ---

    def _fix(self, module: cst.Module, main: cst.If | None, evidence: cst.CSTNode) -> Fix | None:
        """Seeds at the start of the `__main__` block, or after the imports that precede the first draw."""
        stop = main if main is not None else self.ctx.model.tree.path(evidence)[1]
        imports = ImportMap()
        anchor = None
        for stmt in module.body[: next(i for i, s in enumerate(module.body) if s is stop)]:
            if isinstance(stmt, cst.SimpleStatementLine) and all(
                isinstance(x, (cst.Import, cst.ImportFrom)) for x in stmt.body
            ):
                anchor = stmt
                for x in stmt.body:
                    imports.add(x)  # type: ignore[arg-type]
        stmts = tuple(cst.parse_statement(x) for x in _seed_lines(imports))
        if main is not None:
            body = main.body
            if not isinstance(body, cst.IndentedBlock) or not body.body:
                return None
            edit: Edit = InsertBefore(body.body[0], stmts)
        elif anchor is not None:
            edit = InsertAfter(anchor, stmts)
        else:
            return None
        return Fix("Seed torch (and random, numpy) at the start", FixSafety.UNSAFE, (edit,))


def _seed_lines(imports: ImportMap) -> list[str]:
    """`torch.manual_seed(0)` as this file spells it, plus `random` and numpy seeds when imported."""
    lines = []
    torch = next((k for k, v in imports.aliases.items() if v == "torch"), None)
    if torch is None:
        lines.append("import torch")
        torch = "torch"
    lines.append(f"{torch}.manual_seed(0)")
    if imports.aliases.get("random") == "random":
        lines.append("random.seed(0)")
    numpy = next((k for k, v in imports.aliases.items() if v == "numpy"), None)
    if numpy is not None:
        lines.append(f"{numpy}.random.seed(0)")
    return lines


def _library_module(path: str) -> bool:
    """A module of a package (its folder has `__init__.py`) whose name does not say it is a script."""
    file = Path(path)
    if file.name == "__main__.py" or SCRIPT_NAME_RE.match(file.stem):
        return False
    try:
        return (file.parent / "__init__.py").is_file()
    except OSError:
        return False


def _main_block(module: cst.Module) -> cst.If | None:
    for stmt in module.body:
        if isinstance(stmt, cst.If) and isinstance(stmt.test, cst.Comparison):
            test = stmt.test
            parts = [test.left, *(c.comparator for c in test.comparisons)]
            names = {p.value for p in parts if isinstance(p, cst.Name)}
            strings = {p.evaluated_value for p in parts if isinstance(p, cst.SimpleString)}
            if "__name__" in names and MAIN in strings:
                return stmt
    return None


def _trains(calls: list[cst.Call]) -> bool:
    """A `.backward()` call, or `trainer.fit(...)`."""
    for n in calls:
        if isinstance(n.func, cst.Attribute):
            attr = n.func.attr.value
            if attr == "backward":
                return True
            if attr == "fit" and "trainer" in (dotted_name(n.func.value) or "").lower():
                return True
    return False
