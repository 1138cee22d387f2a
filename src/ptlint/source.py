"""Decoding and re-encoding source files without losing their encoding or BOM."""

from __future__ import annotations

import codecs
import io
import os
import re
import tempfile
import tokenize
from dataclasses import dataclass


_NEWLINE_RE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as libcst and Python count them (\\n, \\r\\n or \\r), without their endings."""
    return _NEWLINE_RE.split(text)


class DecodeError(Exception):
    """The bytes of a file cannot be decoded as Python source."""


@dataclass(frozen=True)
class SourceFile:
    text: str
    encoding: str
    bom: bool

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data


def decode(data: bytes) -> SourceFile:
    """Decode with the PEP 263 cookie or UTF-8, remembering a UTF-8 BOM."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise DecodeError(
                f"not valid utf-8 (byte 0x{data[bad.start]:02x} at offset {bad.start}) and no coding declaration"
            ) from None
        raise DecodeError(str(exc)) from None
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8):]
        encoding = "utf-8"
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not valid {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    except LookupError:
        raise DecodeError(f"unknown encoding {encoding!r}") from None
    return SourceFile(text, encoding, bom)


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and os.replace, keeping the mode."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ptlint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
