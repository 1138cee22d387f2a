"""PTL006 save-whole-model."""

from __future__ import annotations

import libcst as cst

from ptlint.rule import Fix, FixSafety, Replace, Rule

SAVE_NAMES = {"torch.save"}


class SaveWholeModel(Rule):
    """Pickling a whole nn.Module with torch.save.

    ## What it does
    Flags `torch.save` of an `nn.Module` object: `torch.save(model, path)`, `model.module`
    of a DataParallel/DDP wrapper, model-zoo constructors, and modules nested in a checkpoint
    dict or list such as `{"model": model, "epoch": epoch}`.

    ## Why is this bad?
    Saving a module pickles the object, so the file is bound to the exact classes and
    directory layout that existed at save time and breaks when the code moves or changes.
    It cannot be loaded with `torch.load(..., weights_only=True)`, the default since
    torch 2.6, and loading pickles from untrusted sources can execute arbitrary code.
    Save the `state_dict()` instead and load it into a freshly built model.

    ## Example
    ```python
    torch.save(model, "model.pt")
    torch.save({"model": model, "epoch": epoch}, "ckpt.pt")
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    torch.save({"model": model.state_dict(), "epoch": epoch}, "ckpt.pt")
    ```

    ## Fix safety
    Unsafe: the file format changes, so code that loads the checkpoint must build the model
    and call `load_state_dict` on what `torch.load` returns.

    ## References
    - [Saving and loading models](https://pytorch.org/tutorials/beginner/saving_loading_models.html)
    - [torch.load weights_only](https://pytorch.org/docs/stable/generated/torch.load.html)
    - Bandit B614
    """

    code = "PTL006"
    name = "save-whole-model"
    message = "`torch.save` pickles a whole nn.Module; save its `state_dict()` instead"
    fix_safety = FixSafety.UNSAFE
    triggers = ("save",)
    contract = "E3"

    def visit_Call(self, node: cst.Call) -> None:
        if not node.args or self.ctx.qualname(node.func) not in SAVE_NAMES:
            return
        obj = node.args[0]
        if obj.keyword is not None and obj.keyword.value != "obj":
            obj = next((a for a in node.args if a.keyword is not None and a.keyword.value == "obj"), None)
            if obj is None:
                return
        targets = list(self._modules_in(obj.value))
        if not targets:
            return
        edits = tuple(Replace(t, _state_dict_of(t)) for t in targets)
        fix = Fix("Save the module's `state_dict()`", FixSafety.UNSAFE, edits)
        self.report(targets[0], fix=fix)

    def _modules_in(self, value: cst.BaseExpression):
        """The module-valued expressions in the saved object: itself, or dict/list members."""
        if isinstance(value, cst.Dict):
            for el in value.elements:
                if isinstance(el, cst.DictElement):
                    yield from self._modules_in(el.value)
        elif isinstance(value, (cst.List, cst.Tuple)):
            for el in value.elements:
                if isinstance(el, cst.Element):
                    yield from self._modules_in(el.value)
        elif isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "dict":
            for arg in value.args:
                if arg.keyword is not None:
                    yield from self._modules_in(arg.value)
        elif self.ctx.is_module_expr(value) and not _is_state_dict(value):
            yield value


def _is_state_dict(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "state_dict"


def _state_dict_of(expr: cst.BaseExpression) -> cst.BaseExpression:
    call = cst.Call(func=cst.Attribute(value=expr.with_changes(lpar=[], rpar=[]), attr=cst.Name("state_dict")))
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        return call.with_changes(lpar=expr.lpar, rpar=expr.rpar) if expr.lpar else call
    return call
