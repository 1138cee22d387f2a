"""What a file's path says about it."""

from __future__ import annotations

import re

# Files under tests/ or testing/, and pytest-style test_*.py / *_test.py files.
TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$")


def is_test_path(path: str) -> bool:
    return bool(TEST_PATH.search(path.replace("\\", "/")))
