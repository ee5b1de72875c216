"""A recording HTTP proxy on 127.0.0.1: forwards every request to one upstream server and
logs (method, path, status), so tests can count what the product asked of a real server
that keeps no request log of its own (a real Ollama, a registry).

    with RecordingProxy("127.0.0.1:11500") as proxy:
        run_doit(OLLAMA_HOST=proxy.host)
        assert proxy.count("GET", "/api/tags") == 1

Bodies stream through in both directions (blob uploads of any size, NDJSON progress lines
as the upstream sends them); chunked request bodies are re-chunked. Redirects are passed on
untouched.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

__all__ = ["ProxiedRequest", "RecordingProxy"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                         "trailer", "upgrade"})
CHUNK = 1 << 16


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str  # without the query string
    status: int | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _body(self) -> Iterator[bytes] | bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunks()
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None

        def fixed() -> Iterator[bytes]:
            left = length
            while left:
                block = self.rfile.read(min(CHUNK, left))
                if not block:
                    return
                left -= len(block)
                yield block

        return fixed()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _forward(self) -> None:
        record = [self.command, self.path.split("?", 1)[0], None]
        self.server.log_request_start(record)
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=self.server.timeout)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            body = self._body()
            chunked = body is not None and "Content-Length" not in self.headers
            upstream.request(self.command, self.path, body=body, headers=headers,
                             encode_chunked=chunked)
            response = upstream.getresponse()
            record[2] = response.status
            self.send_response_only(response.status, response.reason)
            streamed = response.getheader("Content-Length") is None and self.command != "HEAD"
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            if streamed:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD" or response.status in (204, 304):
                return
            while block := response.read1(CHUNK):
                if streamed:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                else:
                    self.wfile.write(block)
                self.wfile.flush()
            if streamed:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except OSError:
            self.close_connection = True
            if record[2] is None:
                try:
                    self.send_error(502, "upstream failed")
                except OSError:
                    pass
        finally:
            upstream.close()
            self.server.log_request_end(record)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, timeout: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.timeout = timeout
        self._lock = threading.Lock()
        self.records: list[list[object]] = []

    def log_request_start(self, record: list[object]) -> None:
        with self._lock:
            self.records.append(record)

    def log_request_end(self, record: list[object]) -> None:
        pass  # the record is filled in place


class RecordingProxy:
    """Forwards to `upstream` ("host:port"); `.host` is what to give the client instead."""

    def __init__(self, upstream: str, *, timeout: float = 600.0):
        self._server = _ProxyServer(upstream.split("://", 1)[-1].rstrip("/"), timeout)
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-proxy",
                                        daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self) -> list[ProxiedRequest]:
        with self._server._lock:
            return [ProxiedRequest(str(m), str(p), s if isinstance(s, int) else None)
                    for m, p, s in self._server.records]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen with this method and path (a trailing `*` matches a prefix)."""
        def matches(r: ProxiedRequest) -> bool:
            if method and r.method != method:
                return False
            if path is None:
                return True
            return r.path.startswith(path[:-1]) if path.endswith("*") else r.path == path
        return sum(1 for r in self.requests() if matches(r))

    def reset(self) -> None:
        with self._server._lock:
            self._server.records.clear()
