"""PTL006 save-whole-model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.rule import Fix, FixSafety, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context


class SaveWholeModel(Rule):
    """Pickling a whole nn.Module with torch.save.

    ## What it does
    Flags `torch.save` of an `nn.Module` object: `torch.save(model, path)`, `model.module`
    of a DataParallel/DDP wrapper, model-zoo constructors, and modules nested in a checkpoint
    dict or list such as `{"model": model, "epoch": epoch}`.

    A module is recognized by evidence (`torch.nn` layers, in-file subclasses, `torchvision.models`,
    `timm.create_model`, parameter annotations) or by a conventional name such as `model` or `net`.
    A checkpoint dict built in a variable first (`ckpt = {...}; ckpt["ema"] = ema`) is checked too.
    State dicts, tensors, optimizers, ScriptModules and exported programs are not flagged.

    ## Why is this bad?
    Saving a module pickles the object, so the file is bound to the exact classes and
    directory layout that existed at save time and breaks when the code moves or changes.
    It cannot be loaded with `torch.load(..., weights_only=True)`, the default since
    torch 2.6, and loading pickles from untrusted sources can execute arbitrary code.
    Save the `state_dict()` instead and load it into a freshly built model.

    ## Example
    ```python
    torch.save(model, "model.pt")
    torch.save({"model": model.module, "epoch": epoch}, "ckpt.pt")
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    torch.save({"model": model.module.state_dict(), "epoch": epoch}, "ckpt.pt")
    ```

    ## Fix safety
    Unsafe: the file format changes, so code that loads the checkpoint must build the model
    and call `load_state_dict` on what `torch.load` returns. Saving a DDP or `torch.compile`
    wrapper's `state_dict()` also prefixes the keys (`module.`, `_orig_mod.`).

    ## References
    - [Saving and loading models](https://pytorch.org/tutorials/beginner/saving_loading_models.html)
    - [torch.load weights_only](https://pytorch.org/docs/stable/generated/torch.load.html)
    - Bandit B614
    """

    code = "PTL006"
    name = "save-whole-model"
    message = "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    fix_safety = FixSafety.UNSAFE
    severity = "warning"
    triggers = ("save",)
    contract = "E3"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._reported: set[int] = set()  # a checkpoint dict saved twice holds the same modules

    def visit_Call(self, node: cst.Call) -> None:
        for target, leaves in self.ctx.model.checkpoints.saved_modules(node):
            if id(target) in self._reported:
                continue
            self._reported.add(id(target))
            edits = tuple(Replace(leaf, _state_dict_of(leaf)) for leaf in leaves)
            self.report(target, fix=Fix("Save the module's `state_dict()`", FixSafety.UNSAFE, edits))


def _state_dict_of(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`expr.state_dict()`, keeping the parentheses around `expr` outside."""
    call = cst.Call(func=cst.Attribute(value=expr.with_changes(lpar=[], rpar=[]), attr=cst.Name("state_dict")))
    return call.with_changes(lpar=expr.lpar, rpar=expr.rpar)
