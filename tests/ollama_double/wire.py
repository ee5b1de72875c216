"""HTTP/1.1 plumbing: request bodies (Content-Length or chunked), JSON and text responses,
chunked NDJSON streams, and the hooks that let injected faults cut a stream."""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator

from . import gojson
from .errors import ApiError

__all__ = ["Body", "DropConnection", "Exchange", "StreamWriter"]

_DRAIN_LIMIT = 256 * 1024  # Go's net/http discards at most this much of an unread body
_READ = 1024 * 1024


class DropConnection(Exception):
    """Close the socket now, without finishing the response."""


class Body:
    """The request body as a stream; never read whole unless asked."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._rfile = handler.rfile
        headers = handler.headers
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        length = headers.get("Content-Length")
        self.length = int(length) if length and not self.chunked and length.strip().isdigit() else None
        self._remaining = self.length or 0
        self._chunk_left = 0
        self.done = not self.chunked and not self._remaining

    def read(self, size: int = _READ) -> bytes:
        """Up to `size` bytes; b"" at the end of the body."""
        if self.done:
            return b""
        if not self.chunked:
            data = self._rfile.read(min(size, self._remaining))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            self._remaining -= len(data)
            self.done = self._remaining == 0
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            self._chunk_left = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if self._chunk_left == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.done = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(3)  # CRLF after the chunk
        return data

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.read():
            yield chunk

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def drain(self, limit: int = _DRAIN_LIMIT) -> bool:
        """Discard up to `limit` unread bytes; True if the body is now fully consumed."""
        if self.done:
            return True
        if self.length is not None and self._remaining > limit:
            return False
        seen = 0
        while not self.done and seen <= limit:
            seen += len(self.read(min(_READ, limit + 1)))
        return self.done


class Exchange:
    """One request/response on a handler: status tracking and the response helpers."""

    def __init__(self, handler: BaseHTTPRequestHandler, body: Body) -> None:
        self.handler = handler
        self.body = body
        self.head = handler.command == "HEAD"
        self.status: int | None = None
        self.close_after = False
        self.record: Any = None  # a request-log entry whose status is set before the reply goes out

    def _start(self, status: int, headers: list[tuple[str, str]]) -> None:
        if not self.body.drain():
            self.close_after = True
        self.status = status
        if self.record is not None:
            self.record.status = status
        h = self.handler
        h.send_response(status)
        for key, value in headers:
            h.send_header(key, value)
        if self.close_after:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()

    def send(self, status: int, body: bytes, content_type: str | None) -> None:
        headers = [("Content-Length", str(len(body)))]
        if content_type:
            headers.insert(0, ("Content-Type", content_type))
        self._start(status, headers)
        if body and not self.head:
            self.handler.wfile.write(body)
        self.handler.wfile.flush()

    def json(self, status: int, value: Any) -> None:
        """gin's c.JSON: json.Marshal, no trailing newline."""
        self.send(status, gojson.dumps(value).encode("utf-8"), "application/json; charset=utf-8")

    def error(self, status: int, message: str) -> None:
        self.json(status, gojson.Struct(error=message))

    def stream_json(self, status: int, value: Any) -> None:
        """A streaming endpoint's one JSON reply (stream false, or an error before any
        output): Ollama writes it itself, as `application/json` without gin's charset."""
        self.send(status, gojson.dumps(value).encode("utf-8"), "application/json")

    def text(self, status: int, text: str) -> None:
        self.send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def empty(self, status: int) -> None:
        self.send(status, b"", None)

    def start_chunked(self, content_type: str) -> None:
        self._start(200, [("Content-Type", content_type), ("Transfer-Encoding", "chunked")])

    def write_chunk(self, data: bytes) -> None:
        wfile = self.handler.wfile
        wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        wfile.flush()

    def end_chunked(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def drop(self) -> None:
        """Cut the connection: whatever was sent stays sent, nothing more follows."""
        h = self.handler
        try:
            h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def linger_close(self, seconds: float = 1.0) -> None:
        """After answering with an unread body: stop sending, read for a while, then close."""
        conn = self.handler.connection
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.2)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and conn.recv(_READ):
                pass
        except OSError:
            pass


class StreamWriter:
    """NDJSON progress as streamResponse writes it, with fault hooks on every line.

    `drop_after` / `error_after`: after that many lines, cut the connection or send an
    error line instead of the next line (or instead of the end of the stream).
    """

    def __init__(self, exchange: Exchange, *, drop_after: int | None = None,
                 error_after: tuple[int, str] | None = None,
                 encode: Callable[[Any], bytes] | None = None) -> None:
        self.x = exchange
        self.drop_after = drop_after
        self.error_after = error_after
        self.lines = 0
        self.started = False
        self._encode = encode or (lambda value: (gojson.dumps(value) + "\n").encode("utf-8"))

    def _check(self, final: bool = False) -> None:
        if self.drop_after is not None and (final or self.lines >= self.drop_after):
            raise DropConnection()
        if self.error_after is not None and (final or self.lines >= self.error_after[0]):
            raise ApiError(500, self.error_after[1])

    def emit(self, value: Any) -> None:
        self._check()
        if not self.started:
            self.x.start_chunked("application/x-ndjson")
            self.started = True
        self.x.write_chunk(self._encode(value))
        self.lines += 1

    def fail(self, error: ApiError) -> None:
        """streamResponse's error: a real status before output, a final line after it."""
        if not self.started:
            self.x.stream_json(error.status, gojson.Struct(error=error.message))
            return
        self.x.write_chunk((gojson.dumps(gojson.Struct(error=error.message)) + "\n").encode("utf-8"))
        self.x.end_chunked()

    def finish(self) -> None:
        self._check(final=True)  # a stream shorter than the fault's line count is cut at its end
        if not self.started:
            self.x.start_chunked("application/x-ndjson")
            self.started = True
        self.x.end_chunked()
