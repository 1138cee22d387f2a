"""`ptlint server`: a language server for editors (install with `pip install 'ptlint[server]'`).

`ptlint.server.lint`, `.edits` and `.workspace` need only ptlint itself; `.protocol` needs pygls.
"""

from __future__ import annotations

MISSING = "ptlint server needs pygls, which `pip install 'ptlint[server]'` installs"


def available() -> bool:
    """Whether pygls (the server extra) is installed."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    """Serve the Language Server Protocol on stdin/stdout."""
    if not available():
        raise SystemExit(f"ptlint: error: {MISSING}")
    from ptlint.server.protocol import serve

    serve()
