"""OllamaDouble: the HTTP server on 127.0.0.1, its threads, start/stop."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from .app import App
from .faults import Controls
from .registry import Registry
from .store import Store

__all__ = ["OllamaDouble"]

_JOIN_TIMEOUT = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-test-double"
    sys_version = ""
    timeout = 120  # idle keep-alive connections end on their own eventually

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        server.app.handle(self)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        server: _Server = self.server  # type: ignore[assignment]
        if server.verbose:
            super().log_message(format, *args)


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_one, args=(request, client_address),
                                  name="ollama-double-conn", daemon=True)
        with self._conns_lock:
            self._conns[thread] = request
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:
            super().handle_error(request, client_address)

    def close_connections(self, deadline: float) -> list[threading.Thread]:
        """Shut every open connection down and join its thread; returns threads still alive."""
        with self._conns_lock:
            conns = dict(self._conns)
        for conn in conns.values():
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in conns if t.is_alive()]


class OllamaDouble:
    """A fake Ollama server over real HTTP, storing models like Ollama does under `models_dir`.

    `registry_dir` is the folder `/api/pull` (and create's automatic pull) reads from.
    Use as a context manager, or call start() and stop().
    """

    def __init__(self, models_dir: str | os.PathLike[str], registry_dir: str | os.PathLike[str] | None = None,
                 version: str = "0.33.0-rc2-0-gfb30760", host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the Ollama test double only listens on 127.0.0.1")
        self.models_dir = Path(models_dir)
        self.registry_dir = Path(registry_dir) if registry_dir is not None else None
        self.version = version
        self._bind = ("127.0.0.1", port)
        self.verbose = verbose
        self.controls = Controls(registry_dir=self.registry_dir)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = port
        self.internal_errors: list[str] = []  # tracebacks of bugs in the double (500 answers)

    @property
    def host(self) -> str:
        """"127.0.0.1:PORT", the form OLLAMA_HOST takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "OllamaDouble":
        """Bind, start serving in a background thread, return self."""
        if self._server is not None:
            raise RuntimeError("the double is already running")
        self._stopping = threading.Event()
        store = Store(self.models_dir)
        registry = Registry(self.registry_dir) if self.registry_dir is not None else None
        if self.registry_dir is not None:
            self.registry_dir.mkdir(parents=True, exist_ok=True)
        app = App(store, registry, self.version, self.controls, self._stopping)
        app.bugs = self.internal_errors
        server = _Server(self._bind, app, self.verbose)
        self.port = server.server_address[1]
        self._bind = ("127.0.0.1", self.port)  # a restart reuses the port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ollama-double", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = _JOIN_TIMEOUT) -> None:
        """Stop serving, end hanging requests, close connections, join threads (bounded)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = server.close_connections(deadline)
        self._server = self._thread = None
        if stuck:
            raise RuntimeError(f"{len(stuck)} request thread(s) of the Ollama test double did not stop in {timeout}s")

    def __enter__(self) -> "OllamaDouble":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<OllamaDouble {state} models={self.models_dir}>"
