"""PTL020 checkpoint-reentrant-implicit."""

from __future__ import annotations

import libcst as cst

from ptlint.callargs import append_keyword, deliberate_fallback, has_star_kwargs, keyword
from ptlint.rule import Fix, FixSafety, Replace, Rule

# Each checkpoint function and the first torch that takes `use_reentrant` there.
CHECKPOINTS = {
    "torch.utils.checkpoint.checkpoint": (1, 11),
    "torch.utils.checkpoint.checkpoint_sequential": (2, 0),
}


class CheckpointReentrantImplicit(Rule):
    """Activation checkpointing without an explicit `use_reentrant`.

    ## What it does
    Flags `torch.utils.checkpoint.checkpoint` and `checkpoint_sequential` calls that do not
    pass `use_reentrant`. Calls that pass `**kwargs` are not reported, and neither is the
    old-torch branch of a version check or `try`/`except TypeError` whose other branch
    passes `use_reentrant`.

    ## Why is this bad?
    Without the argument, torch warns on every call and falls back to the reentrant variant,
    which PyTorch recommends against: it gives the checkpointed parameters no gradient when
    no input requires grad, does not support `torch.autograd.grad` or keyword inputs, and
    ignores `torch.no_grad` subtleties that the non-reentrant variant handles. PyTorch has
    announced that omitting the argument will become an error.

    ## Example
    ```python
    from torch.utils.checkpoint import checkpoint

    def forward(self, x):
        for block in self.blocks:
            x = checkpoint(block, x)
        return x
    ```

    ## Use instead
    ```python
    from torch.utils.checkpoint import checkpoint

    def forward(self, x):
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False)
        return x
    ```

    ## Fix safety
    Unsafe: adds `use_reentrant=False`, the variant PyTorch recommends. Gradients agree with
    the reentrant variant when an input requires grad, but differ where the reentrant one was
    wrong (no input requiring grad: parameters inside then get gradients for the first time),
    and hooks and random-state handling run differently. The fix is withheld inside
    compatibility code and when the targeted torch predates the argument (1.11 for
    `checkpoint`, 2.0 for `checkpoint_sequential`).

    ## References
    - [torch.utils.checkpoint](https://pytorch.org/docs/stable/checkpoint.html)
    """

    code = "PTL020"
    name = "checkpoint-reentrant-implicit"
    message = "Activation checkpoint without `use_reentrant`; pass `use_reentrant=False` explicitly"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("checkpoint",)
    contract = "E1"

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func)
        if qual not in CHECKPOINTS:
            return
        if keyword(node, "use_reentrant") is not None or has_star_kwargs(node):
            return
        guard = self.ctx.compat_guard()
        if guard is not None and deliberate_fallback(self.ctx, CHECKPOINTS, "use_reentrant"):
            return
        since = CHECKPOINTS[qual]
        version, source = self.ctx.target_torch()
        short = qual.rsplit(".", 1)[-1]
        if version < since:
            needed, target = f"{since[0]}.{since[1]}", f"{version[0]}.{version[1]}"
            reason = f"`{short}(use_reentrant=...)` needs torch {needed}, {source} is {target}"
        else:
            reason = guard
        if reason is not None:
            self.report(node, f"{self.message}; fix withheld: {reason}")
            return
        new = append_keyword(node, "use_reentrant", cst.Name("False"))
        self.report(node, fix=Fix("Pass `use_reentrant=False`", FixSafety.UNSAFE, (Replace(node, new),)))
