"""The one module that talks to Ollama over HTTP.

Reads that every run needs (`/api/tags`, `/api/version`) use the standard library, because
importing the official `ollama` client (pydantic, httpx) costs about half a second and a
no-op build must stay light. Everything that changes the server (blob upload, create, pull,
copy, delete) and the smoke-test calls go through the official client, imported on first
use. Every failure leaves this module as a ServerError naming the server and the model.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import stats
from .errors import ModelNameError, ServerError
from .names import ModelName

__all__ = ["Progress", "Server", "Tag", "host_url"]

DEFAULT_PORT: Final = 11434
# A server that does not accept a connection within this time is treated as down.
CONNECT_TIMEOUT: Final = 10.0


def host_url(host: str) -> str:
    """The base URL for an OLLAMA_HOST-style value (`host`, `host:port`, `http://host:port`)."""
    text = host.strip() or f"127.0.0.1:{DEFAULT_PORT}"
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest, default_port = "http", text, DEFAULT_PORT
    else:
        default_port = 443 if scheme == "https" else 80 if scheme == "http" else DEFAULT_PORT
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    hostname = split.hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    try:
        port = split.port or default_port
    except ValueError:
        raise ServerError(f"invalid Ollama host {host!r}: the port is not a number", host=host) from None
    path = split.path.rstrip("/")
    return f"{scheme}://{hostname}:{port}{path}"


@dataclass(frozen=True)
class Tag:
    """One model as /api/tags lists it."""

    name: str
    digest: str  # "sha256:<hex>"
    size: int


@dataclass(frozen=True)
class Progress:
    """One progress line of a create, pull or upload."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


ProgressCallback = Callable[[Progress], None]


class Server:
    """One Ollama server, addressed the way OLLAMA_HOST addresses it."""

    def __init__(self, host: str, *, timeout: float = 3600.0):
        self.host = host
        self.url = host_url(host)
        self.timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"Server({self.url})"

    # --- errors -------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException, model: str | None = None) -> ServerError:
        """Translate any failure of a request into one ServerError."""
        status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
        detail = getattr(exc, "error", None) or str(exc) or type(exc).__name__
        if isinstance(exc, (ConnectionError, urllib.error.URLError)) and not isinstance(
            exc, urllib.error.HTTPError
        ) or type(exc).__name__ in {"ConnectError", "ConnectTimeout"}:
            reason = getattr(exc, "reason", exc)
            text = (
                f"cannot reach the Ollama server at {self.url} ({reason}). Is `ollama serve` "
                f"running there? Set the server with OLLAMA_HOST, DOIT_OLLAMA_HOST or "
                f"[tool.doit-ollama] host."
            )
            status = None
        elif isinstance(exc, (TimeoutError, socket.timeout)) or "Timeout" in type(exc).__name__:
            text = (
                f"the Ollama server at {self.url} did not answer within {self.timeout:g} s "
                f"while {what}; raise [tool.doit-ollama] timeout if it is just slow"
            )
        elif type(exc).__name__ in {"RemoteProtocolError", "ReadError", "IncompleteRead",
                                    "RemoteDisconnected", "ConnectionResetError"}:
            text = f"the Ollama server at {self.url} closed the connection while {what} ({detail})"
        else:
            code = f" (HTTP {status})" if isinstance(status, int) and status > 0 else ""
            text = f"the Ollama server at {self.url} failed while {what}: {detail}{code}"
        if model:
            text = f"{model}: {text}"
        return ServerError(text, host=self.url, model=model, status=status if isinstance(status, int) else None)

    # --- light reads (standard library) -----------------------------------------------------

    def _get_json(self, path: str, what: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, 300.0)) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            try:
                exc.error = json.loads(body).get("error", body)  # type: ignore[attr-defined]
            except (ValueError, AttributeError):
                exc.error = body or exc.reason  # type: ignore[attr-defined]
            raise self._error(what, exc) from exc
        except (OSError, ValueError) as exc:
            raise self._error(what, exc) from exc

    def tags(self) -> dict[tuple[str, str, str, str], Tag]:
        """Every model on the server, keyed by its case-insensitive name key."""
        body = self._get_json("/api/tags", "listing models (/api/tags)")
        result: dict[tuple[str, str, str, str], Tag] = {}
        try:
            for item in body.get("models") or []:
                try:
                    name = ModelName.parse(item.get("model") or item["name"])
                except ModelNameError:
                    continue  # e.g. names a newer server allows; not ours to judge
                digest = str(item["digest"])
                if not digest.startswith("sha256:"):
                    digest = f"sha256:{digest}"
                result[name.key] = Tag(name.display, digest, int(item.get("size") or 0))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._error("reading /api/tags (unexpected reply)", exc) from exc
        return result

    def version(self) -> str:
        """The server's version, as /api/version reports it."""
        body = self._get_json("/api/version", "asking its version (/api/version)")
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str):
            raise ServerError(f"the Ollama server at {self.url} gave no version", host=self.url)
        return version

    # --- changes and model calls (official client) ----------------------------------------

    @property
    def client(self) -> Any:
        """The official client, created on first use (its import is the slow part)."""
        if self._client is None:
            import httpx
            import ollama

            self._client = ollama.Client(
                host=self.url,
                timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout)),
            )
        return self._client

    def _call(self, what: str, model: str | None, action: Callable[[], Any]) -> Any:
        import httpx
        import ollama

        try:
            return action()
        except ServerError:
            raise
        # What the client lets through: its own ResponseError/RequestError, the builtin
        # ConnectionError for a refused connection, raw httpx errors (timeouts, dropped
        # streams), and ValueError for a reply that is not the JSON it should be.
        except (ollama.ResponseError, ollama.RequestError, httpx.HTTPError, OSError,
                ValueError) as exc:
            raise self._error(what, exc, model) from exc

    def has_blob(self, digest: str) -> bool:
        """True if the server already stores the blob (HEAD /api/blobs/<digest>)."""

        def head() -> bool:
            response = self.client._client.request("HEAD", f"/api/blobs/{digest}")
            if response.status_code == 404:
                return False
            response.raise_for_status()
            return True

        return bool(self._call(f"checking blob {digest}", None, head))

    def upload_blob(self, path: Path, digest: str, model: str | None = None,
                    progress: ProgressCallback | None = None) -> None:
        """Stream a local file to the server as the blob `digest`, in chunks."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with open(path, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    sent += len(chunk)
                    if progress:
                        progress(Progress(f"uploading {path.name}", digest, size, sent))
                    yield chunk

        # ollama.Client.create_blob would hash the whole file again before sending it; the
        # digest is already known (and cached), so the client's transport is used directly.
        self._call(
            f"uploading {path.name} as {digest}",
            model,
            lambda: self.client._request_raw(
                "POST", f"/api/blobs/{digest}", content=chunks(),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            ),
        )
        stats.record("uploaded", size)

    def _stream(self, what: str, model: str, path: str, body: Mapping[str, Any],
                progress: ProgressCallback | None) -> None:
        from ollama import ProgressResponse

        def run() -> None:
            last = None
            for part in self.client._request(ProgressResponse, "POST", path, json=dict(body), stream=True):
                last = part
                if progress:
                    progress(Progress(part.status or "", part.digest, part.total, part.completed))
            if last is None or last.status != "success":
                raise ServerError(
                    f"{model}: the Ollama server at {self.url} ended {what} without success "
                    f"(last status: {getattr(last, 'status', None)!r})",
                    host=self.url, model=model,
                )

        self._call(what, model, run)

    def create(self, model: str, request: Mapping[str, Any],
               progress: ProgressCallback | None = None) -> None:
        """POST /api/create with the exact body `ollama create` would send, streaming progress."""
        # The client's create() has no renderer/parser/requires/draft_files arguments, so the
        # body is sent through the client's own request method, unchanged.
        body = {"model": model, **request, "stream": True}
        self._stream(f"creating {model}", model, "/api/create", body, progress)

    def pull(self, model: str, progress: ProgressCallback | None = None) -> None:
        """Pull `model` from its registry, streaming progress."""
        self._stream(f"pulling {model}", model, "/api/pull", {"model": model, "stream": True}, progress)

    def copy(self, source: str, destination: str) -> None:
        """Point `destination` at the same manifest as `source`."""
        self._call(f"copying {source} to {destination}", destination,
                   lambda: self.client.copy(source, destination))

    def delete(self, model: str) -> None:
        """Delete a model tag."""
        self._call(f"deleting {model}", model, lambda: self.client.delete(model))

    def chat(self, model: str, messages: list[Mapping[str, Any]], options: Mapping[str, Any],
             fmt: Any = None) -> str:
        """One non-streamed chat turn; returns the assistant's text."""
        response = self._call(
            f"chatting with {model}", model,
            lambda: self.client.chat(model=model, messages=messages, options=dict(options),
                                     format=fmt, stream=False),
        )
        return str(response.message.content or "")

    def generate(self, model: str, prompt: str, options: Mapping[str, Any], fmt: Any = None) -> str:
        """One non-streamed completion; returns the text."""
        response = self._call(
            f"generating with {model}", model,
            lambda: self.client.generate(model=model, prompt=prompt, options=dict(options),
                                         format=fmt, stream=False),
        )
        return str(response.response or "")
