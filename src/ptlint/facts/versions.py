"""The torch version a project targets: `target-torch-version`, else the project's own pins."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

# Assumed when neither the configuration nor the project says otherwise.
DEFAULT_TORCH = (2, 6)
PIN_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "requirements.txt", "requirements/base.txt", "environment.yml")
# `torch>=1.13`, `torch==2.1.0`, `torch~=2.2`, `"torch >= 1.8.0"`: the lower bound of the pin.
_PIN = re.compile(r"""(?<![\w.-])torch\s*(?:\[[^\]]*\])?\s*(==|>=|~=|>|===)\s*v?(\d+)\.(\d+)""")


def parse_version(text: str) -> tuple[int, int] | None:
    """`2.6`, `2.6.0`, `v1.13` -> (major, minor)."""
    match = re.match(r"\s*v?(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def pin_in_text(text: str) -> tuple[int, int] | None:
    """The lowest torch version any pin in `text` allows, or None."""
    found = [(int(m.group(2)), int(m.group(3))) for m in _PIN.finditer(text)]
    return min(found) if found else None


@lru_cache(maxsize=64)
def project_pin(root: Path) -> tuple[int, int] | None:
    """The torch lower bound that the project at `root` declares in its packaging files."""
    pins = []
    for name in PIN_FILES:
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pin = pin_in_text(text)
        if pin is not None:
            pins.append(pin)
    return min(pins) if pins else None


def target_torch(configured: str, root: Path | None) -> tuple[tuple[int, int], str]:
    """The targeted (major, minor) and where it came from."""
    if configured:
        parsed = parse_version(configured)
        if parsed is not None:
            return parsed, "target-torch-version"
    if root is not None:
        pin = project_pin(root)
        if pin is not None:
            return pin, "the project's torch pin"
    return DEFAULT_TORCH, "the default target"
