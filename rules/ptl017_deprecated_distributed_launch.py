"""PTL017 deprecated-distributed-launch."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.fixes import add_import
from ptlint.semantic.tree import SCOPE_TYPES
from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.textfiles import TextHit, lines_of

if TYPE_CHECKING:
    from ptlint.context import Context

OPTIONS = {"--local_rank", "--local-rank"}
ATTR = "local_rank"
# Names that conventionally hold the parsed command line.
NAMESPACE_NAMES = {"args", "opt", "opts", "cfg", "config", "flags", "FLAGS", "hparams", "arguments", "params"}
PARSE_METHODS = {"parse_args", "parse_known_args", "parse_intermixed_args"}
# `python -m torch.distributed.launch` (also `python3`, `python3.10`), for the launcher half.
LAUNCH_RE = re.compile(r"\bpython[\d.]*\s+(?:-u\s+)?-m\s+torch\.distributed\.launch\b(?:\s+--use[-_]env)?")
LAUNCH_MESSAGE = "`python -m torch.distributed.launch` is deprecated; use `torchrun`"
USE_ENV_RE = re.compile(r"(?<![\w-])--use[-_]env\b")
TEXT_GLOBS = ("*.sh", "*.bash", "Makefile", "*.mk", "*.yml", "*.yaml", "Dockerfile", "*.Dockerfile", "*.md")


class DeprecatedDistributedLaunch(Rule):
    """`torch.distributed.launch` and the `--local_rank` argument it passes.

    ## What it does
    Flags the deprecated `torch.distributed.launch` launcher: `python -m torch.distributed.launch`
    in shell scripts, Makefiles, YAML, Dockerfiles and Markdown code blocks, and reads of
    `args.local_rank` in a script that declares an argparse `--local_rank` (or `--local-rank`)
    option, the way that launcher hands each process its rank.

    The Python half stays silent when the file assigns `args.local_rank` itself or already reads
    the `LOCAL_RANK` environment variable, and for scripts that only declare the option (kept so
    that old launch commands still parse). The launcher half skips commented-out commands and
    Markdown prose outside code blocks.

    ## Why is this bad?
    `torch.distributed.launch` is deprecated in favour of `torchrun`, and prints a FutureWarning
    saying so. `torchrun` does not pass `--local-rank` on the command line: it sets the
    `LOCAL_RANK` environment variable. A script that reads `args.local_rank` keeps the argparse
    default under `torchrun`, so every process uses device 0.

    ## Example
    ```python
    parser.add_argument("--local_rank", type=int, default=0)
    args = parser.parse_args()
    torch.cuda.set_device(args.local_rank)
    ```
    ```bash
    python -m torch.distributed.launch --nproc_per_node=8 train.py
    ```

    ## Use instead
    ```python
    parser.add_argument("--local_rank", type=int, default=0)
    args = parser.parse_args()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    ```
    ```bash
    torchrun --nproc_per_node=8 train.py
    ```

    ## Fix safety
    Unsafe, and the two halves belong together: `args.local_rank` becomes
    `int(os.environ.get("LOCAL_RANK", <default>))` with the option's own default (`import os` is
    added when missing), and `python -m torch.distributed.launch` becomes `torchrun`, whose
    options (`--nproc_per_node`, `--nnodes`, `--master_port`, ...) are the same. A script fixed
    without its launcher still works under `torch.distributed.launch --use-env`; a launcher fixed
    without its script makes every process read the default rank. Reads inside compatibility
    code are reported without a fix, and so are options whose default is not a literal.

    ## References
    - [torchrun (Elastic Launch)](https://pytorch.org/docs/stable/elastic/run.html)
    - [torch.distributed.launch deprecation](https://pytorch.org/docs/stable/distributed.html#launch-utility)
    """

    code = "PTL017"
    name = "deprecated-distributed-launch"
    message = "`args.local_rank` comes from the deprecated `torch.distributed.launch`; read `LOCAL_RANK` instead"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("local_rank", "local-rank")
    contract = "E2"
    text_globs = TEXT_GLOBS

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._default: cst.BaseExpression | None | bool = False  # False: no option declared
        self._namespaces: set[str] = set(NAMESPACE_NAMES)
        self._reads: list[tuple[cst.Attribute, str | None]] = []
        self._assigned = False
        self._assigned_calls: list[tuple[str, cst.Call]] = []
        self._reads_env = False
        self._parsers: set[str] = set()  # in-file functions that call `parse_args()` (and return the namespace)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if node.value.strip("\"'") == "LOCAL_RANK":
            self._reads_env = True

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute):
            return
        if func.attr.value == "add_argument" and self._default is False and _declares_option(node):
            self._default = _default_of(node)
        if func.attr.value in PARSE_METHODS:
            scope = self.ctx.model.tree.enclosing(node, SCOPE_TYPES)
            if isinstance(scope, cst.FunctionDef):
                self._parsers.add(scope.name.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if isinstance(value, cst.Subscript):
            value = value.value
        if isinstance(value, cst.Call):
            for t in node.targets:
                names = [t.target] if isinstance(t.target, cst.Name) else self.ctx.model.tree.below(t.target, cst.Name, scopes=False)
                self._assigned_calls.extend((n.value, value) for n in names if isinstance(n, cst.Name))
        for t in node.targets:
            if _is_local_rank(t.target):
                self._assigned = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if _is_local_rank(node.target):
            self._assigned = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if not _is_local_rank(node):
            return
        parent = self.ctx.parent()
        if isinstance(parent, cst.AssignTarget) or (isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is node):
            return
        self._reads.append((node, self.ctx.compat_guard()))

    def leave_Module(self, node: cst.Module) -> None:
        if self._default is False or self._assigned or not self._reads or self._reads_env:
            return
        default = self._default
        for name, call in self._assigned_calls:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in PARSE_METHODS:
                self._namespaces.add(name)
            elif isinstance(func, cst.Name) and func.value in self._parsers:
                self._namespaces.add(name)
        for read, guard in self._reads:
            head = read.value
            if not isinstance(head, cst.Name) or head.value not in self._namespaces:
                continue
            if guard is not None:
                self.report(read, f"{self.message} (no fix: {guard})")
                continue
            new = _env_read(default)  # type: ignore[arg-type]
            if new is None:
                self.report(read, f"{self.message} (no fix: the option's default is not a literal)")
                continue
            lpar, rpar = read.lpar, read.rpar
            if isinstance(new, cst.IfExp) and not lpar:
                lpar, rpar = [cst.LeftParen()], [cst.RightParen()]
            edits = (Replace(read, new.with_changes(lpar=lpar, rpar=rpar)), *add_import(self.ctx, "import os"))
            self.report(read, fix=Fix("Read `LOCAL_RANK` from the environment", FixSafety.UNSAFE, edits))

    # --- the launcher half: shell scripts, Makefiles, YAML, Dockerfiles, Markdown ---

    @classmethod
    def check_text(cls, text: str, path: str) -> list[TextHit]:
        """`python -m torch.distributed.launch` commands; in Markdown only inside code blocks."""
        markdown = path.lower().endswith(".md")
        hits = []
        fence: str | None = None
        lines = lines_of(text)
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if markdown:
                marker = stripped[:3]
                if marker in ("```", "~~~"):
                    fence = None if fence == marker else (fence or marker)
                    continue
                if fence is None and not line.startswith(("    ", "\t")):
                    continue
            for m in LAUNCH_RE.finditer(line):
                if "#" in line[: m.start()] and not markdown:
                    continue  # a comment: documentation, not a command that runs
                if USE_ENV_RE.search(_command_rest(lines, number - 1, m.end())):
                    message = f"{LAUNCH_MESSAGE} (no fix: `torchrun` has no `--use_env` option; drop it)"
                    hits.append(TextHit(number, m.start() + 1, m.end() + 1, message, None))
                else:
                    hits.append(TextHit(number, m.start() + 1, m.end() + 1, LAUNCH_MESSAGE, "torchrun"))
        return hits


def _command_rest(lines: list[str], index: int, column: int) -> str:
    """The rest of a command after `column`, with its backslash-continued lines."""
    rest = lines[index][column:]
    while rest.rstrip().endswith("\\") and index + 1 < len(lines):
        index += 1
        rest += lines[index]
    return rest


def _is_local_rank(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == ATTR and isinstance(node.value, cst.Name)


def _declares_option(call: cst.Call) -> bool:
    for arg in call.args:
        if arg.keyword is None and isinstance(arg.value, cst.SimpleString):
            if arg.value.evaluated_value in OPTIONS:
                return True
    return False


def _default_of(call: cst.Call) -> cst.BaseExpression | None:
    """The option's default as a literal expression; `None` (the name) when it has none."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "default":
            value = arg.value
            if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus):
                return value if isinstance(value.expression, cst.Integer) else None
            return value if isinstance(value, cst.Integer) or _is_none(value) else None
    return cst.Name("None")


def _is_none(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _env_read(default: cst.BaseExpression | None) -> cst.BaseExpression | None:
    if default is None:
        return None
    if _is_none(default):
        return cst.parse_expression('int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else None')
    expr = cst.parse_expression('int(os.environ.get("LOCAL_RANK", 0))')
    assert isinstance(expr, cst.Call)
    inner = expr.args[0].value
    assert isinstance(inner, cst.Call)
    arg = inner.args[1].with_changes(value=default.deep_clone())
    return expr.with_changes(args=[expr.args[0].with_changes(value=inner.with_changes(args=[inner.args[0], arg]))])
