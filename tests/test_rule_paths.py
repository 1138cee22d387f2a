"""Rule behaviour that depends on the file's path rather than its contents."""

from __future__ import annotations

from ptlint.api import lint_text
from ptlint.registry import by_code_or_name

DEVICE_KEYS = '''import torch


def test_cache_is_per_device(resampler):
    device_0 = torch.device("cuda:0")
    device_1 = torch.device("cuda:1")
    assert resampler.matrix_for((2, 2), device_0) is not resampler.matrix_for((2, 2), device_1)
'''


def test_ptl005_is_silent_on_device_objects_in_test_files():
    rule = by_code_or_name("PTL005")
    for path in ("tests/test_layers.py", "pkg/layers_test.py", "conftest.py"):
        assert lint_text(DEVICE_KEYS, path, [rule]).findings == []
    found = lint_text(DEVICE_KEYS, "layers.py", [rule]).findings
    assert [(f.start.line, f.start.column) for f in found] == [(5, 29), (6, 29)]
