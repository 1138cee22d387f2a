"""PTL034 debug-api-in-training."""

from __future__ import annotations

import re

import libcst as cst

from ptlint.facts.loops import LoopKind
from ptlint.facts.paths import is_test_path
from ptlint.fixes import add_import
from ptlint.rule import Fix, FixSafety, Replace, Rule

ANOMALY_SET = {"torch.autograd.set_detect_anomaly", "torch.autograd.anomaly_mode.set_detect_anomaly"}
ANOMALY_CTX = {"torch.autograd.detect_anomaly", "torch.autograd.anomaly_mode.detect_anomaly"}
OTHERS = {
    "torch.autograd.profiler.profile": "`torch.autograd.profiler.profile`",
    "torch.autograd.profiler.emit_nvtx": "`torch.autograd.profiler.emit_nvtx`",
    "torch.autograd.gradcheck": "`gradcheck`",
    "torch.autograd.gradgradcheck": "`gradgradcheck`",
    "torch.autograd.gradcheck.gradcheck": "`gradcheck`",
}
DEBUG_FUNCTION = re.compile(r"debug|profil|test|check|bench|anomal", re.I)
FLAG = 'os.environ.get("DETECT_ANOMALY") == "1"'


class DebugApiInTraining(Rule):
    """Autograd debugging APIs left switched on in a training program.

    ## What it does
    Flags `torch.autograd.set_detect_anomaly(True)`, `torch.autograd.detect_anomaly()`,
    `torch.autograd.profiler.profile`, `torch.autograd.profiler.emit_nvtx` and `gradcheck` in a
    file that has a training loop, unless they sit under an `if` (a debug flag), get an explicit
    `enabled=` argument, or live in a test file or a function named for debugging or profiling.

    ## Why is this bad?
    These tools are for finding a bug, not for training. Anomaly detection records a stack trace
    for every autograd node and checks every backward result, which slows each step severalfold;
    the autograd profiler records every operator. Left on, they make every run slower and give no
    hint why.

    ## Example
    ```python
    torch.autograd.set_detect_anomaly(True)
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    torch.autograd.set_detect_anomaly(os.environ.get("DETECT_ANOMALY") == "1")
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    ```

    ## Fix safety
    Unsafe: anomaly detection is switched on only when the `DETECT_ANOMALY=1` environment variable
    is set, so a run that relied on it to raise at the first NaN no longer does by default. The
    profiler and `gradcheck` are reported without a fix.

    ## References
    - [Performance tuning guide: disable debugging APIs](https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html)
    - [torch.autograd.detect_anomaly](https://pytorch.org/docs/stable/autograd.html#anomaly-detection)
    """

    code = "PTL034"
    name = "debug-api-in-training"
    message = "A debugging API is left on in a training program and slows every step"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("anomaly", "profiler", "gradcheck")
    contract = "E0"

    def visit_Module(self, node: cst.Module) -> None:
        self._trains: bool | None = None

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func) or ""
        if qual in ANOMALY_SET:
            first = node.args[0] if node.args else None
            if first is None or not (isinstance(first.value, cst.Name) and first.value.value == "True"):
                return
        elif qual not in ANOMALY_CTX and qual not in OTHERS:
            return
        if any(a.keyword is not None and a.keyword.value == "enabled" for a in node.args):
            return
        if not self._applies():
            return
        if qual in OTHERS:
            self.report(node, f"{OTHERS[qual]} is left on in a training program; guard it with a debug flag")
            return
        self.report(node, "Anomaly detection is left on in a training program and slows every step", self._fix(node, qual))

    def _applies(self) -> bool:
        conftest = self.ctx.path.replace("\\", "/").rsplit("/", 1)[-1] == "conftest.py"
        if is_test_path(self.ctx.path) or conftest or self.ctx.compat_guard():
            return False
        for anc in self.ctx.stack[:-1]:
            if isinstance(anc, (cst.If, cst.IfExp)):
                return False
            if isinstance(anc, cst.FunctionDef) and DEBUG_FUNCTION.search(anc.name.value):
                return False
        if self._trains is None:
            model = self.ctx.model
            self._trains = any(model.loop_kind(n) & LoopKind.TRAIN for n in model.tree.of_type((cst.For, cst.While)))  # type: ignore[arg-type]
        return self._trains

    def _fix(self, call: cst.Call, qual: str) -> Fix | None:
        flag = cst.parse_expression(FLAG)
        if qual in ANOMALY_SET:
            args = list(call.args)
            args[0] = args[0].with_changes(value=flag)
            new = call.with_changes(args=args)
        else:
            if not isinstance(call.func, cst.Attribute) or isinstance(self.ctx.parent(), cst.Decorator):
                return None
            rest = []
            for arg in call.args:
                if arg.keyword is None:
                    arg = arg.with_changes(
                        keyword=cst.Name("check_nan"),
                        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
                    )
                rest.append(arg)
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if rest else cst.MaybeSentinel.DEFAULT
            func = call.func.with_changes(attr=cst.Name("set_detect_anomaly"))
            new = call.with_changes(func=func, args=[cst.Arg(flag, comma=comma), *rest])
        edits = (Replace(call, new), *add_import(self.ctx, "import os"))
        return Fix("Switch anomaly detection on only with DETECT_ANOMALY=1", FixSafety.UNSAFE, edits)
