"""server.py is the boundary: every failure of a request leaves it as one ServerError that
names the server (and the model), whatever the client or urllib raised."""

from __future__ import annotations

import http.client
import socket
import urllib.error

import httpx
import ollama
import pytest

from doit_ollama.errors import ServerError
from doit_ollama.server import Server, host_url
from tests.ollama_double import OllamaDouble


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com:56789", "http://example.com:56789"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:56789/path/", "https://example.com:56789/path"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
    ],
)
def test_host_url_reads_ollama_host_like_the_client(host: str, url: str) -> None:
    assert host_url(host) == url


def test_a_bad_port_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="the port is not a number"):
        host_url("localhost:abc")


REQUEST = httpx.Request("POST", "http://127.0.0.1:1/api/create")
RAISED = {
    "response error": (ollama.ResponseError("model is required", 400), "model is required (HTTP 400)"),
    "stream error line": (ollama.ResponseError("boom"), "boom"),
    "request error": (ollama.RequestError("must provide a model"), "must provide a model"),
    "connection refused": (ConnectionError("Failed to connect to Ollama"), "cannot reach the Ollama server"),
    "httpx connect": (httpx.ConnectError("refused", request=REQUEST), "cannot reach the Ollama server"),
    "httpx read timeout": (httpx.ReadTimeout("slow", request=REQUEST), "did not answer within 7 s"),
    "socket timeout": (socket.timeout("timed out"), "did not answer within 7 s"),
    "dropped stream": (httpx.RemoteProtocolError("peer closed", request=REQUEST), "closed the connection"),
    "urllib refused": (urllib.error.URLError(ConnectionRefusedError(111, "refused")),
                       "cannot reach the Ollama server"),
    "bad json": (ValueError("Expecting value: line 1 column 1"), "Expecting value"),
}


@pytest.mark.parametrize("case", sorted(RAISED))
def test_every_client_failure_becomes_a_server_error(case: str) -> None:
    raised, says = RAISED[case]
    server = Server("127.0.0.1:1", timeout=7)

    def fail() -> None:
        raise raised

    with pytest.raises(ServerError) as info:
        server._call("creating bot:v1", "bot:v1", fail)
    err = info.value
    assert says in str(err)
    assert str(err).startswith("bot:v1: ") and "http://127.0.0.1:1" in str(err)
    assert err.host == "http://127.0.0.1:1" and err.model == "bot:v1"
    assert err.__cause__ is raised


def test_bugs_are_not_disguised_as_server_errors() -> None:
    def bug() -> None:
        raise KeyError("oops")

    with pytest.raises(KeyError):
        Server("127.0.0.1:1")._call("creating", None, bug)


def test_reads_and_writes_against_the_double(ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    digest = registry.publish("base:1b", seed=1)
    with Server(ollama_double.host, timeout=30) as server:
        _reads_and_writes(server, digest)


def _reads_and_writes(server: Server, digest: str) -> None:
    assert server.version() == "0.33.0-rc2-0-gfb30760"
    assert server.tags() == {}
    seen = []
    server.pull("base:1b", progress=seen.append)
    assert seen[-1].status == "success" and any(p.total for p in seen)
    tags = server.tags()
    assert [t.digest for t in tags.values()] == [digest]
    server.create("bot:v1", {"from": "base:1b", "system": "hi"})
    assert server.tags().keys() >= {("registry.ollama.ai", "library", "bot", "v1")}
    server.copy("bot:v1", "bot:prod")
    server.delete("bot:prod")
    with pytest.raises(ServerError, match="bot:nope: .*not found.*HTTP 404"):
        server.delete("bot:nope")
    with pytest.raises(ServerError, match="pull model manifest: file does not exist"):
        server.pull("nothing:here")


STDLIB = {
    "refused": (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
                "cannot reach the Ollama server"),
    "unknown host": (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
                     "cannot reach the Ollama server"),
    "connect timeout": (urllib.error.URLError(socket.timeout("timed out")), "did not answer within 7 s"),
    "read timeout": (TimeoutError("timed out"), "did not answer within 7 s"),
    "incomplete": (http.client.IncompleteRead(b"", 10), "closed the connection"),
    "disconnected": (http.client.RemoteDisconnected("Remote end closed"), "closed the connection"),
    "reset": (ConnectionResetError(104, "reset"), "closed the connection"),
}


@pytest.mark.parametrize("case", sorted(STDLIB))
def test_standard_library_failures_become_server_errors(case: str) -> None:
    raised, says = STDLIB[case]
    err = Server("127.0.0.1:1", timeout=7)._error("creating bot:v1", raised, "bot:v1")
    assert says in str(err) and str(err).startswith("bot:v1: the Ollama server at http://127.0.0.1:1") \
        or str(err).startswith("bot:v1: cannot reach the Ollama server at http://127.0.0.1:1")
    assert says in str(err)
