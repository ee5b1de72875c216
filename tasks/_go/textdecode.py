"""Bytes to text as Ollama's reader sees them: unicode.BOMOverride(UTF8), then bufio.ReadRune.

UTF-8, or UTF-16 LE/BE when a byte order mark says so; invalid bytes become U+FFFD, in the
numbers Go produces (which differ with and without a UTF-8 byte order mark).
"""

from __future__ import annotations

import codecs
from typing import Final

__all__ = ["decode"]

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16LE_BOM: Final = b"\xff\xfe"
_UTF16BE_BOM: Final = b"\xfe\xff"


def _one_replacement_per_byte(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: one U+FFFD per bad byte, as Go's bufio.ReadRune does."""
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd", exc.start + 1


_PER_BYTE: Final = "doit_ollama.modelfile.per-byte"
codecs.register_error(_PER_BYTE, _one_replacement_per_byte)


def decode(data: bytes) -> str:
    """Bytes to text as unicode.BOMOverride(UTF8) followed by bufio.ReadRune does it."""
    if data.startswith(_UTF16LE_BOM):
        return _decode_utf16(data[2:], "little")
    if data.startswith(_UTF16BE_BOM):
        return _decode_utf16(data[2:], "big")
    if data.startswith(_UTF8_BOM):
        # After a UTF-8 BOM, x/text passes the bytes through unchecked, so every bad byte
        # becomes its own U+FFFD; without a BOM its UTF-8 decoder replaces each maximal
        # ill-formed subpart with one, which is what Python's "replace" does.
        return data[3:].decode("utf-8", _PER_BYTE)
    return data.decode("utf-8", "replace")


def _decode_utf16(data: bytes, byteorder: str) -> str:
    """UTF-16 as x/text decodes it: bad surrogates and an odd last byte become U+FFFD."""
    try:
        return data.decode("utf-16-le" if byteorder == "little" else "utf-16-be")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    at, size = 0, len(data)
    while at < size:
        if at + 1 >= size:  # a single trailing byte
            out.append("\ufffd")
            break
        unit = int.from_bytes(data[at : at + 2], byteorder)  # type: ignore[arg-type]
        step = 2
        if 0xD800 <= unit <= 0xDFFF and at + 3 < size:
            after = int.from_bytes(data[at + 2 : at + 4], byteorder)  # type: ignore[arg-type]
            # x/text consumes any surrogate followed by a low surrogate as one pair,
            # so two low surrogates make a single U+FFFD.
            if 0xDC00 <= after <= 0xDFFF:
                step = 4
                unit = (
                    0x10000 + ((unit - 0xD800) << 10) + (after - 0xDC00)
                    if unit <= 0xDBFF
                    else 0xFFFD
                )
        if 0xD800 <= unit <= 0xDFFF:
            unit = 0xFFFD
        out.append(chr(unit))
        at += step
    return "".join(out)
