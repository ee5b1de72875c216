"""Go's net/http.DetectContentType: a file's type from its first 512 bytes.

`ollama create` checks the type of every file it takes from a model folder this way (a
GGUF must sniff as application/octet-stream, a config as text/plain), so a Git LFS pointer
named model.gguf is not a model.
"""

from __future__ import annotations

from typing import Final

__all__ = ["detect_content_type"]

# http.DetectContentType's table (Go 1.26, net/http/sniff.go), as data. After the HTML tags,
# each signature is (pattern, mask or None for an exact prefix, skip leading whitespace,
# content type); the mp4 check sits between the two tuples.
_SNIFF_HTML: Final = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT",
    b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
)
_RIFF_MASK: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff"
_Signature = tuple[bytes, bytes | None, bool, str]
_SNIFF_BEFORE_MP4: Final[tuple[_Signature, ...]] = (
    (b"<?xml", b"\xff" * 5, True, "text/xml; charset=utf-8"),
    (b"%PDF-", None, False, "application/pdf"),
    (b"%!PS-Adobe-", None, False, "application/postscript"),
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", False, "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", None, False, "image/x-icon"),
    (b"\x00\x00\x02\x00", None, False, "image/x-icon"),
    (b"BM", None, False, "image/bmp"),
    (b"GIF87a", None, False, "image/gif"),
    (b"GIF89a", None, False, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", _RIFF_MASK + b"\xff\xff", False, "image/webp"),
    (b"\x89PNG\r\n\x1a\n", None, False, "image/png"),
    (b"\xff\xd8\xff", None, False, "image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", _RIFF_MASK, False, "audio/aiff"),
    (b"ID3", None, False, "audio/mpeg"),
    (b"OggS\x00", None, False, "application/ogg"),
    (b"MThd\x00\x00\x00\x06", None, False, "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", _RIFF_MASK, False, "video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", _RIFF_MASK, False, "audio/wave"),
)
_SNIFF_AFTER_MP4: Final[tuple[_Signature, ...]] = (
    (b"\x1a\x45\xdf\xa3", None, False, "video/webm"),
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", False, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", None, False, "font/ttf"),
    (b"OTTO", None, False, "font/otf"),
    (b"ttcf", None, False, "font/collection"),
    (b"wOFF", None, False, "font/woff"),
    (b"wOF2", None, False, "font/woff2"),
    (b"\x1f\x8b\x08", None, False, "application/x-gzip"),
    (b"PK\x03\x04", None, False, "application/zip"),
    (b"Rar!\x1a\x07\x00", None, False, "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", None, False, "application/x-rar-compressed"),
    (b"\x00asm", None, False, "application/wasm"),
)
_SNIFF_WHITESPACE: Final = b"\t\n\x0c\r "
_BINARY_BYTES: Final = frozenset(
    [*range(0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)]
)


def detect_content_type(data: bytes) -> str:
    """http.DetectContentType of (at most) the first 512 bytes."""
    data = data[:512]
    body = data.lstrip(_SNIFF_WHITESPACE)
    for tag in _SNIFF_HTML:
        if len(body) > len(tag) and body[len(tag)] in b" >" and all(
            (byte & 0xDF if 0x41 <= want <= 0x5A else byte) == want
            for byte, want in zip(body, tag)
        ):
            return "text/html; charset=utf-8"
    found = _match_signatures(data, body, _SNIFF_BEFORE_MP4)
    if found:
        return found
    if _is_mp4(data):
        return "video/mp4"
    found = _match_signatures(data, body, _SNIFF_AFTER_MP4)
    if found:
        return found
    if not _BINARY_BYTES.intersection(body):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _match_signatures(data: bytes, body: bytes, table: tuple[_Signature, ...]) -> str:
    for pattern, mask, skip_ws, content_type in table:
        subject = body if skip_ws else data
        if mask is None:
            if subject.startswith(pattern):
                return content_type
        elif len(subject) >= len(pattern) and all(
            subject[i] & mask[i] == pattern[i] for i in range(len(pattern))
        ):
            return content_type
    return ""


def _is_mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 or data[4:8] != b"ftyp":
        return False
    return any(data[at : at + 3] == b"mp4" for at in range(8, box, 4) if at != 12)
