"""The torch version a project targets: `target-torch-version`, else the project's own pins."""

from __future__ import annotations

import re
import tomllib
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


def _pyproject_requirements(text: str) -> str:
    """The required dependencies of a pyproject.toml (optional extras are not pins)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return ""
    project = data.get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    lines = [d for d in deps if isinstance(d, str)]
    if isinstance(poetry, dict) and isinstance(poetry.get("torch"), str):
        lines.append("torch" + poetry["torch"].lstrip("^"))
    return "\n".join(lines)


@lru_cache(maxsize=64)
def project_pin(root: Path) -> tuple[int, int] | None:
    """The torch lower bound that the project at `root` declares in its packaging files."""
    pins = []
    for name in PIN_FILES:
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if name == "pyproject.toml":
            text = _pyproject_requirements(text)
        pin = pin_in_text(text)
        if pin is not None:
            pins.append(pin)
    return min(pins) if pins else None


@lru_cache(maxsize=1024)
def project_root(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` that holds a packaging or requirements file."""
    for candidate in (folder, *folder.parents):
        if any((candidate / name).is_file() for name in PIN_FILES):
            return candidate
    return None


def target_torch(configured: str, path: Path | str | None) -> tuple[tuple[int, int], str]:
    """The targeted (major, minor) for the file at `path`, and where that came from."""
    if configured:
        parsed = parse_version(configured)
        if parsed is not None:
            return parsed, "target-torch-version"
    if path is not None:
        folder = Path(path)
        root = project_root(folder if folder.is_dir() else folder.resolve().parent)
        pin = project_pin(root) if root is not None else None
        if pin is not None:
            return pin, "the project's torch pin"
    return DEFAULT_TORCH, "the default target"
