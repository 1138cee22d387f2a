"""PTL024 cudnn-benchmark-conflict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.callargs import keyword
from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.semantic.flow import is_false, is_true

if TYPE_CHECKING:
    from ptlint.context import Context

BENCHMARK = "torch.backends.cudnn.benchmark"
DETERMINISTIC = "torch.backends.cudnn.deterministic"
USE_DETERMINISTIC = {"torch.use_deterministic_algorithms"}
# Library helpers that request determinism with a `deterministic=True` keyword.
SEED_HELPERS = {"accelerate.utils.set_seed", "accelerate.utils.random.set_seed"}
FULL_DETERMINISM = {"transformers.enable_full_determinism", "transformers.trainer_utils.enable_full_determinism"}
TRAINER_PREFIXES = ("pytorch_lightning.", "lightning.")
# Words in an `if` test that make a flag a run-time choice (`if not args.deterministic:`).
CHOICE_WORDS = ("determin", "benchmark", "reproduc")

Branches = tuple[tuple[int, str], ...]


@dataclass
class Site:
    """A flag setting or request, with where it sits."""

    node: cst.CSTNode
    scope: cst.CSTNode
    branches: Branches
    line_hint: str
    choice: bool = False  # an enclosing `if` tests a determinism or benchmark option


class CudnnBenchmarkConflict(Rule):
    """cuDNN benchmark mode enabled while determinism is requested.

    ## What it does
    Flags `torch.backends.cudnn.benchmark = True` in a function (or at module level) that also
    requests deterministic results: `torch.backends.cudnn.deterministic = True`,
    `torch.use_deterministic_algorithms(True)`, `accelerate.utils.set_seed(..., deterministic=True)`,
    `transformers.enable_full_determinism(...)`, or a call of a function of the same file that does
    one of these. Also flags a Lightning `Trainer(deterministic=True, benchmark=True)`.

    It stays silent when the two settings sit in different branches of one `if`, when either sits
    under an `if` that tests a determinism or benchmark option (`if not args.deterministic:`), and
    when `benchmark = False` follows later in the same block. Seeding alone (`torch.manual_seed`) is
    not a determinism request: seeding with benchmark mode on is a common and deliberate choice.

    ## Why is this bad?
    With benchmark mode on, cuDNN times several convolution algorithms on the first call and keeps
    the fastest; the winner can differ from run to run, and so can the results. A script that asks
    for deterministic algorithms and turns benchmarking on gets neither guarantee: the PyTorch
    reproducibility notes require `benchmark = False` for reproducible runs.

    ## Example
    ```python
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = True
    ```

    ## Use instead
    ```python
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    ```

    ## Fix safety
    Unsafe: `True` becomes `False`, which makes the script reproducible but can make convolutions
    slower. If speed matters more than reproducibility, drop the determinism request instead.

    ## References
    - [Reproducibility: cuDNN](https://pytorch.org/docs/stable/notes/randomness.html#cuda-convolution-benchmarking)
    - [Performance tuning guide](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - dslinter W5507
    """

    code = "PTL024"
    name = "cudnn-benchmark-conflict"
    message = "cuDNN benchmark mode is on although determinism is requested; set `benchmark = False`"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("benchmark",)
    contract = "E1"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._benchmarks: list[Site] = []
        self._requests: list[Site] = []
        self._disables: list[Site] = []
        self._calls: list[tuple[str, Site]] = []

    # --- collecting ---

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            return
        q = self.ctx.qualname(node.targets[0].target)
        if q == BENCHMARK and is_true(node.value):
            self._benchmarks.append(self._site(node.value, "benchmark"))
        elif q == BENCHMARK and is_false(node.value):
            self._disables.append(self._site(node, "benchmark = False"))
        elif q == DETERMINISTIC and is_true(node.value):
            self._requests.append(self._site(node, "`cudnn.deterministic = True`"))

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func) or ""
        if q in USE_DETERMINISTIC and node.args and is_true(node.args[0].value):
            self._requests.append(self._site(node, "`use_deterministic_algorithms(True)`"))
        elif q in SEED_HELPERS and _keyword_true(node, "deterministic"):
            self._requests.append(self._site(node, "`set_seed(..., deterministic=True)`"))
        elif q in FULL_DETERMINISM:
            self._requests.append(self._site(node, "`enable_full_determinism()`"))
        elif q.startswith(TRAINER_PREFIXES) and q.endswith(".Trainer"):
            self._check_trainer(node)
        elif isinstance(node.func, cst.Name):
            self._calls.append((node.func.value, self._site(node, "")))

    def _check_trainer(self, node: cst.Call) -> None:
        if not _keyword_true(node, "deterministic"):
            return
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == "benchmark" and is_true(arg.value):
                fix = Fix("Set `benchmark=False`", FixSafety.UNSAFE, (Replace(arg.value, cst.Name("False")),))
                self.report(arg.value, "`Trainer(benchmark=True)` conflicts with `deterministic=True`; "
                            "set `benchmark=False`", fix)

    def _site(self, node: cst.CSTNode, hint: str) -> Site:
        scope: cst.CSTNode = self.ctx.function() or self.ctx.module
        branches = _branches(self.ctx.stack, scope)
        tests = [outer.test for outer, _ in branches]
        choice = any(w in self.ctx.module.code_for_node(t).lower() for t in tests for w in CHOICE_WORDS)
        return Site(node, scope, tuple((id(outer), side) for outer, side in branches), hint, choice)

    # --- pairing ---

    def leave_Module(self, node: cst.Module) -> None:
        if not self._benchmarks:
            return
        helper_names = {s.scope.name.value for s in self._requests if isinstance(s.scope, cst.FunctionDef)}
        requests = list(self._requests)
        for name, call in self._calls:
            if name in helper_names:
                requests.append(Site(call.node, call.scope, call.branches, f"`{name}()`", call.choice))
        for bench in self._benchmarks:
            if bench.choice:
                continue
            hit = next((r for r in requests if self._conflict(bench, r)), None)
            if hit is None or self._disabled_later(bench):
                continue
            fix = Fix("Set `benchmark = False`", FixSafety.UNSAFE, (Replace(bench.node, cst.Name("False")),))
            self.report(bench.node, f"cuDNN benchmark mode is on although {hit.line_hint} requests determinism; "
                        "set `benchmark = False`", fix)

    def _conflict(self, bench: Site, request: Site) -> bool:
        if bench.scope is not request.scope or request.choice:
            return False
        return not _exclusive(bench.branches, request.branches)

    def _disabled_later(self, bench: Site) -> bool:
        facts = self.ctx.scope_facts(bench.scope)
        start = facts.order_of(bench.node)
        return any(
            d.scope is bench.scope and d.branches == bench.branches and facts.order_of(d.node) > start
            for d in self._disables
        )



def _keyword_true(call: cst.Call, name: str) -> bool:
    arg = keyword(call, name)
    return arg is not None and is_true(arg.value)

def _branches(stack: list[cst.CSTNode], scope: cst.CSTNode) -> list[tuple[cst.If, str]]:
    """(an `if`, "body"/"orelse") for each `if` between `scope` and the current node."""
    start = next((i for i, n in enumerate(stack) if n is scope), 0)
    out = []
    for outer, inner in zip(stack[start:], stack[start + 1:]):
        if isinstance(outer, cst.If) and inner is not outer.test:
            out.append((outer, "body" if inner is outer.body else "orelse"))
    return out


def _exclusive(a: Branches, b: Branches) -> bool:
    """Whether two nodes lie in different branches of the same `if`."""
    other = dict(b)
    return any(key in other and other[key] != side for key, side in a)

