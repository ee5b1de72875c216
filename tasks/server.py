"""The one module that talks to Ollama over HTTP.

Two clients, chosen by measurement. Everything a build does (`/api/tags`, `/api/version`,
blob HEAD and upload, `/api/create`, `/api/pull`, `/api/push`) is plain HTTP from the standard library:
these are Ollama's documented REST calls, and importing the official `ollama` client
(pydantic, httpx, an SSL context) costs 0.2-0.4 s of CPU per process, which was more than
a whole no-op build of 1000 models and kept `doit -n 4` workers busy importing instead of
creating (docs/performance.md). Copy, delete and the smoke tests' chat/generate use the
official client, imported on first use. Every failure leaves this module as a ServerError
naming the server and the model.
"""

from __future__ import annotations

import http.client
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
CHUNK_SIZE: Final = 1 << 20
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

# The failures that mean "never got through" and those that mean "the answer broke off".
_UNREACHABLE: Final = (ConnectionRefusedError, socket.gaierror)
_CUT_OFF: Final = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                   http.client.IncompleteRead, http.client.RemoteDisconnected)


class Server:
    """One Ollama server, addressed the way OLLAMA_HOST addresses it."""

    def __init__(self, host: str, *, timeout: float = 3600.0):
        self.host = host
        self.url = host_url(host)
        self.timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"Server({self.url})"

    def close(self) -> None:
        """Close the official client's connections, if it was used."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- errors -------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException, model: str | None = None) -> ServerError:
        """Translate any failure of a request into one ServerError."""
        status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
        detail = getattr(exc, "error", None) or str(exc) or type(exc).__name__
        cause: BaseException = exc
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
            cause = exc.reason if isinstance(exc.reason, BaseException) else exc
        name = type(cause).__name__
        if (isinstance(cause, _UNREACHABLE) or type(cause) is ConnectionError
                or name in {"ConnectError", "ConnectTimeout"}
                or (cause is not exc and not isinstance(cause, (TimeoutError, socket.timeout)))):
            text = (
                f"cannot reach the Ollama server at {self.url} ({getattr(cause, 'strerror', None) or cause}). "
                f"Is `ollama serve` running there? Set the server with OLLAMA_HOST, "
                f"DOIT_OLLAMA_HOST or [tool.doit-ollama] host."
            )
            status = None
        elif isinstance(cause, (TimeoutError, socket.timeout)) or "Timeout" in name:
            text = (
                f"the Ollama server at {self.url} did not answer within {self.timeout:g} s "
                f"while {what}; raise [tool.doit-ollama] timeout if it is just slow"
            )
        elif isinstance(cause, _CUT_OFF) or name in {"RemoteProtocolError", "ReadError"}:
            text = f"the Ollama server at {self.url} closed the connection while {what} ({detail})"
        else:
            code = f" (HTTP {status})" if isinstance(status, int) and status > 0 else ""
            text = f"the Ollama server at {self.url} failed while {what}: {detail}{code}"
        if model:
            text = f"{model}: {text}"
        return ServerError(text, host=self.url, model=model,
                           status=status if isinstance(status, int) and status > 0 else None)

    # --- plain HTTP (standard library) --------------------------------------------------------

    def _open(self, method: str, path: str, what: str, model: str | None = None, *,
              body: bytes | Iterator[bytes] | None = None,
              headers: Mapping[str, str] | None = None) -> http.client.HTTPResponse:
        """Send one request; return the open response, or raise ServerError."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Accept": "application/json", **(headers or {})})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            with exc:  # the error is also the response: read its body, then close it
                text = exc.read().decode("utf-8", "replace") if method != "HEAD" else ""
            try:
                exc.error = json.loads(text).get("error", text)  # type: ignore[attr-defined]
            except (ValueError, AttributeError):
                exc.error = text or exc.reason  # type: ignore[attr-defined]
            raise self._error(what, exc, model) from exc
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise self._error(what, exc, model) from exc

    def _get_json(self, path: str, what: str) -> Any:
        with self._open("GET", path, what) as response:
            try:
                return json.loads(response.read())
            except (OSError, ValueError, http.client.HTTPException) as exc:
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

    def has_blob(self, digest: str) -> bool:
        """True if the server already stores the blob (HEAD /api/blobs/<digest>)."""
        try:
            with self._open("HEAD", f"/api/blobs/{digest}", f"checking blob {digest}"):
                return True
        except ServerError as err:
            if err.status == 404:
                return False
            raise

    def upload_blob(self, path: Path, digest: str, model: str | None = None,
                    progress: ProgressCallback | None = None) -> None:
        """Stream a local file to the server as the blob `digest`, in chunks."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with open(path, "rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    sent += len(chunk)
                    if progress:
                        progress(Progress(f"uploading {path.name}", digest, size, sent))
                    yield chunk

        what = f"uploading {path.name} as {digest}"
        with self._open("POST", f"/api/blobs/{digest}", what, model, body=chunks(),
                        headers={"Content-Length": str(size),
                                 "Content-Type": "application/octet-stream"}) as response:
            response.read()
        stats.record("uploaded", size)

    def _stream(self, what: str, model: str, path: str, body: Mapping[str, Any],
                progress: ProgressCallback | None) -> None:
        """POST a streaming request and follow its NDJSON progress to `success`."""
        data = json.dumps(dict(body)).encode("utf-8")
        last = None
        with self._open("POST", path, what, model, body=data,
                        headers={"Content-Type": "application/json"}) as response:
            try:
                for line in response:
                    if not line.strip():
                        continue
                    part = json.loads(line)
                    if part.get("error"):  # an error after output started: status stays 200
                        raise ServerError(
                            f"{model}: the Ollama server at {self.url} failed while {what}: "
                            f"{part['error']}", host=self.url, model=model)
                    last = part.get("status")
                    if progress:
                        progress(Progress(last or "", part.get("digest"), part.get("total"),
                                          part.get("completed")))
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise self._error(what, exc, model) from exc
        if last != "success":
            raise ServerError(
                f"{model}: the Ollama server at {self.url} closed the connection while {what} "
                f"(the stream ended without success; last status: {last!r})",
                host=self.url, model=model)

    def create(self, model: str, request: Mapping[str, Any],
               progress: ProgressCallback | None = None) -> None:
        """POST /api/create with the exact body `ollama create` would send, streaming progress."""
        self._stream(f"creating {model}", model, "/api/create",
                     {"model": model, **request, "stream": True}, progress)

    def pull(self, model: str, progress: ProgressCallback | None = None, *,
             insecure: bool = False) -> None:
        """Pull `model` from its registry, streaming progress (`insecure`: plain HTTP)."""
        body: dict[str, Any] = {"model": model, "stream": True}
        if insecure:
            body["insecure"] = True
        self._stream(f"pulling {model}", model, "/api/pull", body, progress)

    def push(self, model: str, progress: ProgressCallback | None = None, *,
             insecure: bool = False) -> None:
        """Push `model` (a `HOST/namespace/model:tag` name) to its registry, streaming progress."""
        body: dict[str, Any] = {"model": model, "stream": True}
        if insecure:
            body["insecure"] = True
        self._stream(f"pushing {model}", model, "/api/push", body, progress)

    # --- the official client: copy, delete, smoke tests ---------------------------------------

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
