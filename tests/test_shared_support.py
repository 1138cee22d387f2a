"""Shared rule support: compatibility guards, torch targets, import edits, deterministic imports."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from ptlint.context import Context
from ptlint.facts import guards, versions
from ptlint.facts.walk import iter_nodes
from ptlint.fixer import apply_fixes
from ptlint.fixes import add_import, remove_unused_import
from ptlint.rule import Fix, FixSafety, Replace


def _stack_to(module: cst.Module, pred) -> list[cst.CSTNode]:
    """The ancestors of the first node matching `pred`, outermost first, the node last."""
    def search(node: cst.CSTNode, path: list[cst.CSTNode]) -> list[cst.CSTNode] | None:
        if pred(node):
            return path + [node]
        for child in node.children:
            found = search(child, path + [node])
            if found:
                return found
        return None
    found = search(module, [])
    assert found is not None
    return found


def _call_named(name: str):
    return lambda n: isinstance(n, cst.Call) and isinstance(n.func, cst.Name) and n.func.value == name


@pytest.mark.parametrize(
    "source, expected",
    [
        ("try:\n    import a\nexcept ImportError:\n    target()\n", "inside a `try`/`except ImportError` compatibility block"),
        ("try:\n    target()\nexcept (ValueError, TypeError):\n    pass\n", "inside a `try`/`except TypeError` compatibility block"),
        ("if torch.__version__ >= '2.0':\n    target()\n", "inside a version-guarded branch"),
        ("if TORCH_VERSION < (1, 10):\n    pass\nelse:\n    target()\n", "inside a version-guarded branch"),
        ("if hasattr(torch, 'compile'):\n    target()\n", "inside a version-guarded branch"),
        ("try:\n    target()\nexcept ValueError:\n    pass\n", None),
        ("try:\n    pass\nexcept ImportError:\n    pass\nfinally:\n    target()\n", None),
        ("if args.fast:\n    target()\n", None),
        ("target()\n", None),
    ],
)
def test_compat_guard(source: str, expected: str | None) -> None:
    module = cst.parse_module(source)
    assert guards.compat_guard(_stack_to(module, _call_named("target"))) == expected


def test_torch_pin_from_project_files(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "requirements.txt").write_text("numpy\ntorch>=1.13.1\ntorchvision==0.14\n")
    (project / "pyproject.toml").write_text('[project]\ndependencies = ["torch ~= 2.1"]\n')
    versions.project_pin.cache_clear()
    versions.project_root.cache_clear()
    checked = project / "src" / "train.py"
    assert versions.target_torch("", checked) == ((1, 13), "the project's torch pin")
    assert versions.target_torch("2.4", checked) == ((2, 4), "target-torch-version")
    assert versions.pin_in_text("pytorch-lightning>=2.0\nmytorch==1.0\n") is None


def test_optional_extras_are_not_pins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["numpy"]\n[project.optional-dependencies]\nverify = ["torch>=2.0"]\n'
    )
    versions.project_pin.cache_clear()
    versions.project_root.cache_clear()
    assert versions.project_pin(tmp_path) is None


def _apply(source: str, build) -> str:
    module = cst.parse_module(source)
    ctx = Context(module, "a.py", source)
    return apply_fixes(module, [Fix("t", FixSafety.SAFE, tuple(build(ctx, module)))])


def _unwrap_calls(name: str):
    def build(ctx: Context, module: cst.Module) -> list:
        calls = [n for n in iter_nodes(module, enter_scopes=True) if _call_named(name)(n)]
        return [*(Replace(c, c.args[0].value) for c in calls), *remove_unused_import(ctx, name, calls)]
    return build


def test_remove_unused_import_keeps_the_other_names() -> None:
    source = "import torch\nfrom torch.autograd import Variable, grad  # noqa: F401\nx = Variable(torch.ones(1))\n"
    # A comment on the import line keeps the whole line.
    assert _apply(source, _unwrap_calls("Variable")) == (
        "import torch\nfrom torch.autograd import Variable, grad  # noqa: F401\nx = torch.ones(1)\n"
    )
    source = "import torch\nfrom torch.autograd import Variable, grad\ndef f(x):\n    return Variable(x)\n"
    assert _apply(source, _unwrap_calls("Variable")) == (
        "import torch\nfrom torch.autograd import grad\ndef f(x):\n    return x\n"
    )


def test_remove_unused_import_whole_line_and_blocks() -> None:
    source = "from torch.autograd import Variable\nimport torch\ny = Variable(torch.ones(1))\n"
    assert _apply(source, _unwrap_calls("Variable")) == "import torch\ny = torch.ones(1)\n"
    source = "try:\n    from torch.autograd import Variable\nexcept ImportError:\n    pass\ny = Variable(1)\n"
    assert _apply(source, _unwrap_calls("Variable")) == "try:\n    pass\nexcept ImportError:\n    pass\ny = 1\n"


def test_remove_unused_import_keeps_an_import_still_used() -> None:
    source = "from torch.autograd import Variable\nx = Variable(1)\nprint(Variable)\n"
    assert _apply(source, _unwrap_calls("Variable")) == "from torch.autograd import Variable\nx = 1\nprint(Variable)\n"
    source = 'from torch.autograd import Variable\nx = Variable(1)\n__all__ = ["Variable"]\n'
    assert "import Variable" in _apply(source, _unwrap_calls("Variable"))


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import torch\nx = 1\n", "import torch\nimport os\nx = 1\n"),
        ('"""Doc."""\nfrom __future__ import annotations\nx = 1\n', '"""Doc."""\nfrom __future__ import annotations\nimport os\nx = 1\n'),
        ("import os as os\nx = 1\n", "import os as os\nx = 1\n"),
        ("import os\nx = 1\n", "import os\nx = 1\n"),
    ],
)
def test_add_import(source: str, expected: str) -> None:
    # Asked twice, as two fixes would: the import is added once.
    assert _apply(source, lambda ctx, m: [*add_import(ctx, "import os"), *add_import(ctx, "import os")]) == expected


def test_first_binding_in_source_order_wins() -> None:
    source = (
        "try:\n    from torch.amp import autocast\nexcept ImportError:\n    from torch.cuda.amp import autocast\n"
        "if X:\n    import numpy as np\nelse:\n    import cupy as np\n"
    )
    ctx = Context(cst.parse_module(source), "a.py", source)
    assert ctx.imports.aliases["autocast"] == "torch.amp.autocast"
    assert ctx.imports.aliases["np"] == "numpy"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("f()", "f(device=d)"),
        ("f(a, b)", "f(a, b, device=d)"),
        ("f(a,)", "f(a, device=d,)"),
        ("f(\n    a,\n    b,\n)", "f(\n    a,\n    b,\n    device=d,\n)"),
        ("f(\n    a,\n)", "f(\n    a,\n    device=d,\n)"),
    ],
)
def test_append_keyword(source: str, expected: str) -> None:
    from ptlint.callargs import append_keyword

    call = cst.parse_expression(source)
    assert isinstance(call, cst.Call)
    assert cst.Module([]).code_for_node(append_keyword(call, "device", cst.Name("d"))) == expected


def test_insert_after_a_removed_import() -> None:
    # add_import anchors on the last import, which remove_unused_import drops in the same fix.
    source = "import torch\nfrom torch.autograd import Variable\nx = Variable(torch.ones(1))\n"

    def build(ctx: Context, module: cst.Module) -> list:
        return [*_unwrap_calls("Variable")(ctx, module), *add_import(ctx, "import os")]

    assert _apply(source, build) == "import torch\nimport os\nx = torch.ones(1)\n"
