"""PTL042 mixed-dtype-operands."""

from __future__ import annotations

import libcst as cst

from ptlint.rule import Fix, FixSafety, Replace, Rule
from ptlint.semantic.dtypes import Dtype, precision

# Ops that need all their tensor operands in one dtype: they raise instead of promoting.
SAME_DTYPE_FUNCS = {
    "torch.matmul", "torch.mm", "torch.bmm", "torch.mv", "torch.dot", "torch.vdot", "torch.inner", "torch.tensordot",
    "torch.cdist", "torch.addmm", "torch.baddbmm", "torch.nn.functional.linear", "torch.nn.functional.conv1d",
    "torch.nn.functional.conv2d", "torch.nn.functional.conv3d", "torch.nn.functional.scaled_dot_product_attention",
}
SAME_DTYPE_METHODS = {"matmul", "mm", "bmm", "mv", "dot", "vdot", "inner"}
CAST = {"float64": "double", "float32": "float", "float16": "half", "bfloat16": "bfloat16"}
ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


class MixedDtypeOperands(Rule):
    """A matrix product of tensors with two different float dtypes.

    ## What it does
    Flags `a @ b`, `torch.matmul`, `mm`, `bmm`, `mv`, `dot`, `inner`, `tensordot`, `einsum`, `addmm`,
    `baddbmm`, `cdist`, `F.linear`, `F.conv1d/2d/3d` and `F.scaled_dot_product_attention`, and the
    method forms such as `a.matmul(b)`, when two tensor operands have different float dtypes that the code states in the same
    function: an explicit `dtype=`, a cast (`.double()`, `.half()`, `.float()`, `.bfloat16()`,
    `.to(torch.float64)`), or the default float32 of factories such as `torch.randn(3)` and
    `torch.zeros(3)`. Dtypes are followed through names, views, elementwise ops and promotion.

    It stays silent when either dtype is unknown (a parameter, a model's output, data from NumPy,
    `dtype=some_variable`), inside `torch.autocast(...)` (which casts the operands itself), and when
    one side is a Python number.

    Elementwise arithmetic (`+`, `-`, `*`, `/`) between float dtypes is not reported, although it mixes
    them too: PyTorch promotes it to the wider dtype instead of raising (`float32 + float64` gives float64).
    ptlint follows that promotion, so `y = x * w` with a float64 `w` makes `y` float64 and a later
    `y @ v` with a float32 `v` is reported.

    ## Why is this bad?
    These ops have no type promotion: `torch.randn(10) @ torch.randn(10, dtype=torch.float64)` raises
    `RuntimeError: dot : expected both vectors to have same dtype, but found Float and Double`. The
    error only shows when that line runs, often deep in a training run.

    ## Example
    ```python
    x = torch.randn(10)
    w = torch.randn(10, dtype=torch.float64)
    y = x @ w
    ```

    ## Use instead
    ```python
    x = torch.randn(10)
    w = torch.randn(10, dtype=torch.float64)
    y = x.double() @ w
    ```

    ## Fix safety
    Unsafe. When one operand has the default float32 of a factory and the other a wider dtype that
    the code chose explicitly (`dtype=torch.float64`, `.double()`), the fix casts the default side
    to that dtype (`x.double() @ w`), as the explicit choice shows the intent. The result is then in
    the wider dtype, which later code may not expect. Otherwise (a half-precision operand, two
    explicit choices) there is no fix: whether to cast up or down is a decision about precision
    and memory that only the author can make.

    ## References
    - [Tensor attributes: type promotion](https://pytorch.org/docs/stable/tensor_attributes.html#type-promotion-doc)
    - [torch.matmul](https://pytorch.org/docs/stable/generated/torch.matmul.html)
    """

    code = "PTL042"
    name = "mixed-dtype-operands"
    message = "The operands have different float dtypes; this op raises instead of promoting"
    fix_safety = FixSafety.UNSAFE
    severity = "error"
    triggers = ("dtype", "double", "half", "float16", "float64", ".float(")
    contract = "E2"

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.MatrixMultiply):
            self._check(node, [node.left, node.right])

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        q = self.ctx.qualname(func)
        if q in SAME_DTYPE_FUNCS:
            operands = [a.value for a in node.args if a.keyword is None and not a.star]
            self._check(node, operands[:3])
        elif q == "torch.einsum":
            self._check(node, [a.value for a in node.args[1:] if a.keyword is None and not a.star])
        elif q is None and isinstance(func, cst.Attribute) and func.attr.value in SAME_DTYPE_METHODS and len(node.args) == 1:
            self._check(node, [func.value, node.args[0].value])

    def _check(self, node: cst.CSTNode, operands: list[cst.BaseExpression]) -> None:
        model = self.ctx.model
        known = [(op, model.dtype(op)) for op in operands]
        floats = [(op, d) for op, d in known if d is not None and d.floating]
        if len({d.name for _, d in floats}) < 2 or model.dtypes.in_autocast(node):
            return
        names = " and ".join(sorted({d.name for _, d in floats}))
        message = f"The operands are {names}: this op raises instead of promoting; cast one side"
        self.report(node, message=message, fix=self._fix(floats))

    def _fix(self, floats: list[tuple[cst.BaseExpression, Dtype]]) -> Fix | None:
        """Cast the one default-float32 operand up to the wider dtype that the other side states."""
        if len(floats) != 2:
            return None
        (a, da), (b, db) = floats
        low, high = ((a, da), (b, db)) if precision(da.name) < precision(db.name) else ((b, db), (a, da))
        if low[1].explicit or not high[1].explicit or precision(low[1].name) == precision(high[1].name):
            return None
        value = low[0]
        if not isinstance(value, ATOMS):
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        cast = cst.Call(func=cst.Attribute(value=value, attr=cst.Name(CAST[high[1].name])))
        return Fix(f"Cast the {low[1].name} operand to {high[1].name}", FixSafety.UNSAFE, (Replace(low[0], cast),))
