"""The team's OCI registry: its configuration, the names models and pins get there, and the
one module that speaks HTTP to a registry (the OCI distribution API, standard library).

Ollama pushes and pulls through its own server (`/api/push`, `/api/pull`: server.py); what
doit-ollama asks a registry directly is only a manifest's digest (HEAD, or GET when a
registry does not send `Docker-Content-Digest`) and, when a digest alone cannot tell,
a manifest's bytes. Names follow Ollama's rules: `HOST[:PORT]/namespace/model:tag`.

    registry = "registry.lan:5000/team"        # [tool.doit-ollama]
    my-bot:v1.1      -> registry.lan:5000/team/my-bot:v1.1
    team2/bot:v2     -> registry.lan:5000/team2/bot:v2      (a model's own namespace is kept)
    base qwen2.5:0.5b locked at sha256:a8b0...  (a pin: one per base digest)
                     -> registry.lan:5000/team/qwen2.5:sha256-a8b0...(64 hex)
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Final

from .errors import ConfigError, ModelNameError, RegistryError
from .names import DEFAULT_NAMESPACE, ModelName

__all__ = [
    "MANIFEST_TYPE",
    "Registry",
    "RegistryClient",
    "manifest_digest",
    "parse_registry",
    "pin_name",
    "published_name",
]

# What Ollama sends as Accept when it fetches a manifest, and as Content-Type when it pushes one.
MANIFEST_TYPE: Final = "application/vnd.docker.distribution.manifest.v2+json"
PIN_TAG_PREFIX: Final = "sha256-"
TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class Registry:
    """Where the team's models are published: `host/namespace`, plain HTTP or HTTPS."""

    host: str  # "registry.lan:5000"
    namespace: str  # "team"
    insecure: bool = False  # plain HTTP (Ollama's `insecure`)

    @property
    def display(self) -> str:
        return f"{'http://' if self.insecure else ''}{self.host}/{self.namespace}"


def parse_registry(text: str, where: str) -> Registry:
    """`[http://|https://]HOST[:PORT]/namespace` -> Registry; ConfigError naming `where`."""
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "", text.strip()
    if scheme not in ("", "http", "https"):
        raise ConfigError(f"{where}: registry {text!r}: the scheme must be http:// (plain HTTP) or "
                          "https:// (the default)")
    host, slash, namespace = rest.rstrip("/").partition("/")
    if not slash or not host or not namespace or "/" in namespace:
        raise ConfigError(f"{where}: registry {text!r} must look like HOST[:PORT]/namespace, "
                          "for example \"registry.lan:5000/team\" (Ollama names have one "
                          "namespace level)")
    try:
        ModelName.parse(f"{host}/{namespace}/probe:probe")
    except ModelNameError as exc:
        raise ConfigError(f"{where}: registry {text!r} does not give valid Ollama model names: "
                          f"{str(exc).split(': ', 1)[-1]}") from None
    return Registry(host, namespace, insecure=scheme == "http")


def published_name(registry: Registry, name: ModelName) -> ModelName:
    """The name a model of the repository has in the registry."""
    namespace = name.namespace if name.namespace.lower() != DEFAULT_NAMESPACE else registry.namespace
    return ModelName(registry.host, namespace, name.model, name.tag)


def pin_name(registry: Registry, base: ModelName, digest: str) -> ModelName:
    """The name of a base's pinned copy: derived from the digest it was locked at, so each
    locked version of a base has its own name that nothing else ever overwrites."""
    hexdigest = digest.removeprefix("sha256:")
    return ModelName(registry.host, registry.namespace, base.model, PIN_TAG_PREFIX + hexdigest)


def manifest_digest(data: bytes) -> str:
    """The digest a registry and every puller give these manifest bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ManifestInfo:
    """What a registry says about one tag: its digest, and the bytes when they were fetched."""

    digest: str
    data: bytes | None = None


class RegistryClient:
    """Plain requests to the registries that model names point at (one connection per host)."""

    def __init__(self, *, insecure_hosts: frozenset[str] = frozenset(), timeout: float = TIMEOUT):
        self.insecure_hosts = frozenset(h.lower() for h in insecure_hosts)
        self.timeout = timeout
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def base_url(self, host: str) -> str:
        scheme = "http" if host.lower() in self.insecure_hosts else "https"
        return f"{scheme}://{host}"

    def _connection(self, host: str) -> http.client.HTTPConnection:
        conn = self._connections.get(host)
        if conn is None:
            if host.lower() in self.insecure_hosts:
                conn = http.client.HTTPConnection(host, timeout=self.timeout)
            else:
                conn = http.client.HTTPSConnection(host, timeout=self.timeout,
                                                   context=ssl.create_default_context())
            self._connections[host] = conn
        return conn

    def _request(self, method: str, name: ModelName, what: str, path: str | None = None,
                 ) -> tuple[int, dict[str, str], bytes]:
        host = name.host
        if path is None:
            path = f"/v2/{name.namespace}/{name.model}/manifests/{urllib.parse.quote(name.tag)}"
        url = self.base_url(host) + path
        for attempt in (1, 2):  # a kept-alive connection the registry closed: reconnect once
            conn = self._connection(host)
            try:
                conn.request(method, path, body=b"" if method in ("POST", "PUT") else None,
                             headers={"Accept": MANIFEST_TYPE})
                response = conn.getresponse()
                body = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                self._connections.pop(host, None)
                if attempt == 2:
                    raise self._error(url, what, exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._connections.pop(host, None)
                raise self._error(url, what, exc) from exc
        raise AssertionError("unreachable")

    def _error(self, url: str, what: str, exc: BaseException) -> RegistryError:
        host = urllib.parse.urlsplit(url).netloc
        if isinstance(exc, ssl.SSLError):
            hint = (f" (is it a plain-HTTP registry? Then list \"{host}\" in [tool.doit-ollama] "
                    "insecure-registries, or write the registry as http://...)")
            return RegistryError(f"registry {host}: TLS failed while {what} ({exc.reason or exc}){hint}",
                                 host=host)
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            text = getattr(exc, "strerror", None) or str(exc)
            return RegistryError(f"cannot reach the registry at {url.split('/v2/')[0]} ({text}) "
                                 f"while {what}", host=host)
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return RegistryError(f"the registry at {host} did not answer within {self.timeout:g} s "
                                 f"while {what}", host=host)
        return RegistryError(f"registry {host} failed while {what}: {exc or type(exc).__name__}",
                             host=host)

    def _unexpected(self, name: ModelName, status: int, body: bytes, what: str) -> RegistryError:
        detail = body[:300].decode("utf-8", "replace").strip()
        hint = ""
        if status in (401, 403):
            hint = (" (the registry asks for credentials, which Ollama's client cannot give; "
                    "see docs/registry.md)")
        return RegistryError(f"registry {name.host} answered HTTP {status} while {what}"
                             f"{': ' + detail if detail else ''}{hint}", host=name.host)

    def _manifest(self, method: str, name: ModelName, what: str) -> tuple[dict[str, str], bytes] | None:
        """The headers and body of a manifest request, or None when the tag does not exist."""
        status, headers, body = self._request(method, name, what)
        if status == 404:
            return None
        if status != 200:
            raise self._unexpected(name, status, body, what)
        return headers, body

    def head(self, name: ModelName) -> str | None:
        """The digest the registry serves for `name`'s tag, or None if it has no such tag.

        One HEAD of the manifest; a registry that leaves out `Docker-Content-Digest` is asked
        again with a GET, and the bytes are hashed.
        """
        answer = self._manifest("HEAD", name, f"asking for {name.display}")
        if answer is None:
            return None
        digest = answer[0].get("docker-content-digest", "")
        if digest.startswith("sha256:"):
            return digest
        info = self.get(name)
        return info.digest if info else None

    def mount(self, target: ModelName, digest: str, source: ModelName) -> bool:
        """Link the blob `digest` into `target`'s repository from `source`'s (a cross-repository
        mount, no bytes sent); True if the registry did. A registry that cannot mount opens
        an upload session instead, which is cancelled."""
        query = urllib.parse.urlencode({"mount": digest, "from": f"{source.namespace}/{source.model}"})
        path = f"/v2/{target.namespace}/{target.model}/blobs/uploads/?{query}"
        what = f"linking blob {digest[7:19]} into {target.repository}"
        status, headers, _ = self._request("POST", target, what, path)
        if status == 201:
            return True
        location = headers.get("location")
        if status == 202 and location:
            cancel = urllib.parse.urlsplit(urllib.parse.urljoin(self.base_url(target.host) + path, location))
            self._request("DELETE", target, what, cancel.path + (f"?{cancel.query}" if cancel.query else ""))
        return False

    def get(self, name: ModelName) -> ManifestInfo | None:
        """The manifest's bytes and digest, or None if the registry has no such tag."""
        answer = self._manifest("GET", name, f"reading the manifest of {name.display}")
        return ManifestInfo(manifest_digest(answer[1]), answer[1]) if answer else None
