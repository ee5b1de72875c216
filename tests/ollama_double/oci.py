"""A model name's registry over real HTTP, reached the way Ollama's own client reaches it.

Used by the double's `/api/pull` and `/api/push` for every name whose host is not
registry.ollama.ai (which the registry folder stands in for): the OCI distribution API
(`/v2/<namespace>/<model>/manifests/<tag>`, blob HEAD, GET, POST and PUT uploads) over
HTTPS, or plain HTTP when the request says `insecure`. Two habits of Ollama's client are
kept because a registry set-up that works with the double must work with Ollama:
  * a blob download first asks the registry and follows redirects only while they stay on
    the registry's host name; the answer must be a redirect to *another* host name, else
    the pull fails with Go's `http: no Location header in response` (ollama issue #7244);
  * the error texts are Go's: `Get "https://...": http: server gave HTTP response to HTTPS
    client`, `dial tcp ...: connect: connection refused`.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .errors import ApiError
from .names import Name

__all__ = ["MANIFEST_TYPE", "RegistryClient"]

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_TIMEOUT = 60.0
_CHUNK = 1024 * 1024
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset((301, 302, 303, 307, 308))


class TransportError(Exception):
    """A request that got no HTTP answer; str() is Go's wording of the cause."""


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def _go_reason(exc: BaseException, host: str) -> str:
    """How Go's net/http words a failed request, for the errors the double reports."""
    if isinstance(exc, ssl.SSLError):
        return "http: server gave HTTP response to HTTPS client"
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {host}: connect: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host.rsplit(':', 1)[0]}: no such host"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "context deadline exceeded"
    return str(exc) or type(exc).__name__


def _open(method: str, url: str, body: bytes | Iterator[bytes] | None = None,
          headers: Mapping[str, str] | None = None,
          length: int | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """One request; the caller reads and closes the response and its connection."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, timeout=_TIMEOUT, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, timeout=_TIMEOUT)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    send = dict(headers or {})
    if length is not None:
        send["Content-Length"] = str(length)
    try:
        conn.request(method, path or "/", body=body, headers=send,  # type: ignore[arg-type]
                     encode_chunked=False)
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise TransportError(f'{method.capitalize()} "{url}": {_go_reason(exc, host)}') from exc


def _call(method: str, url: str, body: bytes | None = None,
          headers: Mapping[str, str] | None = None, *, follow: str = "all") -> Answer:
    """A request with its whole answer. `follow`: "all" redirects, "same-host" ones (as
    Ollama's blob download), or "none"."""
    start_host = urllib.parse.urlsplit(url).hostname
    for _ in range(_MAX_REDIRECTS + 1):
        conn, response = _open(method, url, body, headers,
                               length=len(body) if body is not None else None)
        try:
            data = response.read() if method != "HEAD" else b""
        finally:
            conn.close()
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, url)
        location = answer.headers.get("location")
        if answer.status not in _REDIRECTS or not location or follow == "none":
            return answer
        target = urllib.parse.urljoin(url, location)
        if follow == "same-host" and urllib.parse.urlsplit(target).hostname != start_host:
            return answer
        url = target
    raise TransportError(f"stopped after {_MAX_REDIRECTS} redirects")


def _download(url: str) -> Iterator[bytes]:
    """The body at `url` (the direct URL a registry redirected to), redirects followed."""
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            conn, response = _open("GET", url)
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        try:
            if response.status in _REDIRECTS and response.getheader("Location"):
                url = urllib.parse.urljoin(url, response.getheader("Location", ""))
                continue
            if response.status != 200:
                raise ApiError(500, f"unexpected status code {response.status}")
            while chunk := response.read(_CHUNK):
                yield chunk
            return
        finally:
            conn.close()
    raise ApiError(500, "maximum redirects exceeded (10) for directURL")


def _registry_error(answer: Answer) -> str:
    """How Ollama reports a registry's error answer: the status and the body as sent."""
    return f"{answer.status}: {answer.body.decode('utf-8', 'replace').strip()}"


class RegistryClient:
    """The registry of one model name: `https://HOST` or, insecure, `http://HOST`."""

    def __init__(self, name: Name, insecure: bool) -> None:
        scheme = "http" if insecure or name.scheme == "http" else "https"
        self.base = f"{scheme}://{name.host}"
        self.repository = f"{name.namespace}/{name.model}"
        self.tag = name.tag

    def _url(self, *parts: str) -> str:
        return "/".join([self.base, "v2", self.repository, *parts])

    # --- pull --------------------------------------------------------------------------------

    def manifest(self) -> bytes:
        """The tag's manifest bytes as the registry serves them (pullModelManifest)."""
        url = self._url("manifests", self.tag)
        try:
            answer = _call("GET", url, headers={"Accept": MANIFEST_TYPE})
        except TransportError as exc:
            raise ApiError(500, f"pull model manifest: {exc}") from None
        if answer.status == 404:
            raise ApiError(500, "pull model manifest: file does not exist")
        if answer.status != 200:
            raise ApiError(500, f"pull model manifest: {_registry_error(answer)}")
        return answer.body

    def blob_chunks(self, digest: str) -> Iterator[bytes]:
        """A blob's bytes: ask the registry where to download it (now), then stream from there."""
        url = self._url("blobs", digest)
        try:
            answer = _call("GET", url, follow="same-host")
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        if answer.status not in (200, 307):
            raise ApiError(500, f"unexpected status code {answer.status}")
        location = answer.headers.get("location") if answer.status == 307 else None
        if not location:
            raise ApiError(500, "http: no Location header in response")
        return _download(urllib.parse.urljoin(answer.url, location))

    # --- push --------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """HEAD the blob (redirects followed, as Go's client does for HEAD)."""
        url = self._url("blobs", digest)
        try:
            answer = _call("HEAD", url)
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        if answer.status == 200:
            return True
        if answer.status == 404:
            return False
        raise ApiError(500, f"on head blob: {answer.status}")

    def mount(self, digest: str, source: str) -> bool:
        """Offer a cross-repository mount of `digest` from the repository of the model name
        `source`; True when the registry linked it (201). Otherwise the upload session it
        opened (202) is cancelled and the blob must be uploaded."""
        from .names import parse

        origin = parse(source)
        query = urllib.parse.urlencode({"mount": digest, "from": f"{origin.namespace}/{origin.model}"})
        try:
            answer = _call("POST", self._url("blobs", "uploads") + "/?" + query, body=b"", follow="none")
            if answer.status == 201:
                return True
            location = answer.headers.get("location")
            if answer.status == 202 and location:
                _call("DELETE", urllib.parse.urljoin(answer.url, location), follow="none")
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        return False

    def upload(self, digest: str, chunks: Iterator[bytes], size: int) -> None:
        """Start an upload session and send the blob in one PUT (a monolithic upload)."""
        try:
            started = _call("POST", self._url("blobs", "uploads") + "/", body=b"", follow="none")
            if started.status != 202 or not started.headers.get("location"):
                raise ApiError(500, _registry_error(started))
            target = urllib.parse.urljoin(started.url, started.headers["location"])
            sep = "&" if "?" in target else "?"
            target += f"{sep}digest={urllib.parse.quote(digest)}"
            conn, response = _open("PUT", target, body=chunks,
                                   headers={"Content-Type": "application/octet-stream"}, length=size)
            try:
                body = response.read()
            finally:
                conn.close()
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        if response.status != 201:
            raise ApiError(500, _registry_error(Answer(response.status, {}, body, target)))

    def put_manifest(self, data: bytes) -> None:
        """PUT the manifest under the tag."""
        url = self._url("manifests", self.tag)
        try:
            answer = _call("PUT", url, body=data, headers={"Content-Type": MANIFEST_TYPE}, follow="none")
        except TransportError as exc:
            raise ApiError(500, str(exc)) from None
        if answer.status != 201:
            raise ApiError(500, _registry_error(answer))
