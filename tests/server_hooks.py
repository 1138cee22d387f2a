"""`ptlint server` with two injected faults, for the tests that the server survives them.

- Rule PTL006 (save-whole-model) raises in its `visit_Call`, on every file.
- The engine's `analyze` raises outright for a text that contains `CRASH_THE_ENGINE`.

Run as a script: `python tests/server_hooks.py` serves LSP on stdin/stdout like `ptlint server`.
"""

from __future__ import annotations

import sys


def install() -> None:
    from ptlint import engine
    from ptlint.registry import by_code_or_name

    rule = by_code_or_name("PTL006")
    assert rule is not None

    def broken_visit_call(self, node):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected fault in PTL006")

    rule.visit_Call = broken_visit_call  # type: ignore[attr-defined]

    original = engine.analyze

    def analyze(text, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "CRASH_THE_ENGINE" in text:
            raise RuntimeError("injected crash of the engine")
        return original(text, *args, **kwargs)

    engine.analyze = analyze  # type: ignore[assignment]


if __name__ == "__main__":
    install()
    from ptlint.cli import main

    sys.exit(main(["server"]))
