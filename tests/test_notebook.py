"""Jupyter notebooks: cells linted as one program, findings per cell, fixes written back in place."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import check_concise

from ptlint.notebook import load, split_program


def code(*lines: str, outputs: list | None = None, count: int | None = 1) -> dict:
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": outputs or [], "source": list(lines)}


def markdown(*lines: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": list(lines)}


def notebook(*cells: dict, language: str = "python", indent: int = 1) -> str:
    data = {
        "cells": list(cells),
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": language, "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=True) + "\n"


IMAGE = {"data": {"image/png": "iVBORw0KGgo=\n", "text/plain": ["<Figure>"]}, "metadata": {}, "output_type": "display_data"}
TRAINING = notebook(
    markdown("# Training\n", "Some text with `torch.save(model)` in it.\n"),
    code("%matplotlib inline\n", "import torch\n", "import torch.nn as nn\n", "!pip install foo"),
    code("model = nn.Linear(4, 2)\n", "torch.save(model, \"m.pt\")", outputs=[IMAGE]),
    code("%%bash\n", "echo torch.save\n"),
    code("files = !ls\n", "nn.Linear?\n", "x = torch.zeros(3).cuda()\n", outputs=[{"name": "stdout", "output_type": "stream", "text": ["héllo ✓\n"]}]),
)


SELECT = ("--no-cache", "--select", "PTL005,PTL006")  # rules added later must not change these outputs


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_findings_are_reported_per_cell(tmp_path):
    write(tmp_path, "train.ipynb", TRAINING)
    result = check_concise(tmp_path, *SELECT)
    assert result.exit_code == 1
    assert result.output == (
        "train.ipynb:cell 3:2:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
        "train.ipynb:cell 5:3:5: PTL005 `.cuda()` hard-codes the CUDA device; use `.to(device)`\n"
    )


def test_json_output_has_the_cell(tmp_path):
    write(tmp_path, "train.ipynb", TRAINING)
    result = check_concise(tmp_path, *SELECT, "--output-format", "json")
    found = [(f["code"], f["cell"], f["location"]["row"], f["location"]["column"]) for f in json.loads(result.output)]
    assert found == [("PTL006", 3, 2, 12), ("PTL005", 5, 3, 5)]


def test_fix_changes_only_the_fixed_cells_sources(tmp_path):
    path = write(tmp_path, "train.ipynb", TRAINING)
    result = check_concise(tmp_path, *SELECT, "--fix", "--unsafe-fixes")
    assert result.exit_code == 0, result.output
    expected = (
        TRAINING.replace(
            '    "import torch.nn as nn\\n",\n',
            '    "import torch.nn as nn\\n",\n    "\\n",\n'
            '    "device = torch.device(\\"cuda\\" if torch.cuda.is_available() else \\"cpu\\")\\n",\n',
        )
        .replace('"torch.save(model, \\"m.pt\\")"', '"torch.save(model.state_dict(), \\"m.pt\\")"')
        .replace('"x = torch.zeros(3).cuda()\\n"', '"x = torch.zeros(3).to(device)\\n"')
    )
    assert path.read_text(encoding="utf-8") == expected
    again = check_concise(tmp_path, *SELECT, "--fix", "--unsafe-fixes")
    assert again.exit_code == 0
    assert path.read_text(encoding="utf-8") == expected


def test_fix_keeps_a_foreign_layout(tmp_path):
    """Two-space indent, one-line source arrays, a string source, ASCII escapes: all kept as they were."""
    text = (
        '{\n  "cells": [\n    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,\n'
        '     "source": ["import torch\\n", "# caf\\u00e9\\n", "model = torch.nn.Linear(2, 2)\\n"]},\n'
        '    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,\n'
        '     "source": "torch.save(model, \'m.pt\')  # \\u00e9"}\n'
        '  ],\n  "metadata": {}, "nbformat": 4, "nbformat_minor": 2\n}'
    )
    path = write(tmp_path, "nb.ipynb", text)
    result = check_concise(tmp_path, *SELECT, "--fix", "--unsafe-fixes")
    assert result.exit_code == 0, result.output
    assert path.read_text() == text.replace("torch.save(model, ", "torch.save(model.state_dict(), ")


def test_magics_shell_escapes_and_cell_magics_are_skipped(tmp_path):
    write(tmp_path, "nb.ipynb", notebook(
        code("%load_ext autoreload\n", "%autoreload 2\n", "import torch\n"),
        code("%%timeit\n", "torch.save(model, 'x.pt')\n"),
        code("for i in range(2):\n", "    !echo {i} \\\n", "        more\n", "    %time torch.zeros(1)\n"),
        code("?torch.save\n", "torch.zeros??\n", "x = %env HOME\n", "await something()\n"),
    ))
    result = check_concise(tmp_path, *SELECT)
    assert (result.exit_code, result.output) == (0, "")


def test_cell_magic_with_python_body_is_linted(tmp_path):
    write(tmp_path, "nb.ipynb", notebook(
        code("import torch\n", "model = torch.nn.Linear(2, 2)\n"),
        code("%%time\n", "torch.save(model, 'm.pt')\n"),
    ))
    result = check_concise(tmp_path, *SELECT)
    assert result.output == (
        "nb.ipynb:cell 2:2:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
    )


def test_a_cell_with_a_syntax_error_does_not_hide_the_others(tmp_path):
    path = write(tmp_path, "nb.ipynb", notebook(
        code("import torch\n", "model = torch.nn.Linear(2, 2)\n"),
        code("def broken(:\n"),
        code("await asyncio.sleep(0)\n"),  # IPython's top-level await: left out, so fixes still re-parse
        code("torch.save(model, 'm.pt')\n"),
    ))
    result = check_concise(tmp_path, *SELECT)
    assert result.output == (
        "nb.ipynb:cell 2:1:12: PTL000 SyntaxError: invalid syntax\n"
        "nb.ipynb:cell 4:1:12: PTL006 `torch.save` pickles a whole nn.Module; save its `state_dict()` instead\n"
    )
    before = path.read_bytes()
    check_concise(tmp_path, *SELECT, "--fix", "--unsafe-fixes")
    assert path.read_bytes() == before.replace(b"torch.save(model, ", b"torch.save(model.state_dict(), ")


def test_other_languages_and_broken_files(tmp_path):
    write(tmp_path, "r.ipynb", notebook(code("torch.save(model, 'm.pt')\n"), language="R"))
    write(tmp_path, "bad.ipynb", '{"cells": [')
    write(tmp_path, "old.ipynb", '{"worksheets": []}')
    result = check_concise(tmp_path, *SELECT)
    assert result.output == (
        "bad.ipynb:1:1: PTL000 invalid notebook JSON: Expecting value: line 1 column 12 (char 11)\n"
        "old.ipynb:1:1: PTL000 not a Jupyter notebook (nbformat 4): no `cells` list\n"
    )


def test_discovery_skips_checkpoints_and_noqa_works(tmp_path):
    text = notebook(code("import torch\n"), code("x = torch.zeros(1).cuda()  # noqa: PTL005\n", "y = torch.ones(1).cuda()\n"))
    write(tmp_path, "a.ipynb", text)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write(tmp_path / ".ipynb_checkpoints", "a-checkpoint.ipynb", text)
    result = check_concise(tmp_path, *SELECT)
    assert result.output == "a.ipynb:cell 2:2:5: PTL005 `.cuda()` hard-codes the CUDA device; use `.to(device)`\n"


def test_cell_without_final_newline_and_indented_insertion():
    nb = load(notebook(code("import torch\n", "if True:\n", "    x = 1"), code("y = 2\n")))
    assert nb.program == "import torch\nif True:\n    x = 1\ny = 2\n"
    assert nb.line_map == [(1, 1), (1, 2), (1, 3), (2, 1)]
    fixed = "import torch\nif True:\n    x = 1\n    z = 3\nw = 0\ny = 2\n"
    assert split_program(nb, fixed) == {1: "import torch\nif True:\n    x = 1\n    z = 3\n", 2: "w = 0\ny = 2\n"}


def test_shell_escape_cell_before_a_future_import_keeps_fixes(tmp_path):
    """`!pip install` first, `from __future__` in the next cell: the joined program still compiles."""
    path = write(tmp_path, "nb.ipynb", notebook(
        code("!pip -q install somepackage\n", "%matplotlib inline"),
        code("from __future__ import print_function\n", "import torch\n", "model = torch.nn.Linear(2, 2)\n"),
        code("torch.save(model, 'm.pt')"),
    ))
    result = check_concise(tmp_path, *SELECT, "--fix", "--unsafe-fixes")
    assert (result.exit_code, result.output) == (0, "")
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    assert sources == [
        "!pip -q install somepackage\n%matplotlib inline",
        "from __future__ import print_function\nimport torch\nmodel = torch.nn.Linear(2, 2)\n",
        "torch.save(model.state_dict(), 'm.pt')",
    ]
