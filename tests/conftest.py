"""Shared fixtures: the Ollama test double, a registry folder, tiny GGUF files, and the
server under test (the double, or a real Ollama when OLLAMA_TEST_HOST is set).

The user's OLLAMA_* variables are removed for every test, so nothing reaches a developer's
real server by accident; OLLAMA_TEST_HOST is read once, before that.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.gguf_maker import make_gguf
from tests.ollama_double import OllamaDouble, publish_model

OLLAMA_TEST_HOST = os.environ.get("OLLAMA_TEST_HOST", "").strip()
NEEDS_DOUBLE_REGISTRY = "pull from the test registry needs the test double"
NEEDS_DOUBLE_CONTROLS = "test controls need the test double"


def _host_url(host: str) -> str:
    """OLLAMA_HOST-style text to a base URL, the way the ollama client reads it."""
    if "://" not in host:
        host = "http://" + host
    scheme, _, rest = host.partition("://")
    authority = rest.split("/", 1)[0]
    if ":" not in authority.rsplit("]", 1)[-1]:
        authority += ":11434"
    return f"{scheme}://{authority}"


@pytest.fixture(autouse=True)
def _isolate_ollama_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OLLAMA_"):
            monkeypatch.delenv(key)


@pytest.fixture
def gguf_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: gguf_file(seed=0, **make_gguf options) -> path of a new tiny GGUF."""
    counter = itertools.count()

    def make(seed: int = 0, filename: str | None = None, **kwargs: Any) -> Path:
        path = tmp_path / "gguf" / (filename or f"model-{seed}-{next(counter)}.gguf")
        path.parent.mkdir(parents=True, exist_ok=True)
        return make_gguf(path, seed, **kwargs)

    return make


@pytest.fixture
def ollama_double(tmp_path: Path) -> Iterator[OllamaDouble]:
    """A running double with fresh models and registry folders under tmp_path."""
    double = OllamaDouble(tmp_path / "ollama-models", registry_dir=tmp_path / "ollama-registry")
    double.start()
    try:
        yield double
    finally:
        double.stop()
    assert not double.internal_errors, "the Ollama test double failed:\n" + "\n".join(double.internal_errors)


@dataclass
class RegistryFolder:
    """Publishes models into a registry folder the double pulls from."""

    path: Path
    make: Callable[..., Path]

    def publish(self, name: str, gguf: Path | bytes | None = None, *, seed: int = 0, **layers: Any) -> str:
        """Publish or replace `name` (a GGUF made from `seed` unless given); returns its digest."""
        return publish_model(self.path, name, gguf if gguf is not None else self.make(seed), **layers)


@pytest.fixture
def registry(ollama_double: OllamaDouble, gguf_file: Callable[..., Path]) -> RegistryFolder:
    """The registry folder of the `ollama_double` fixture."""
    assert ollama_double.registry_dir is not None
    return RegistryFolder(ollama_double.registry_dir, gguf_file)


@dataclass
class OllamaServer:
    """The server a test talks to: the double (controls available) or a real Ollama."""

    host: str
    url: str
    double: OllamaDouble | None = None
    _clients: list[Any] = field(default_factory=list)

    @property
    def is_double(self) -> bool:
        return self.double is not None

    @property
    def has_controls(self) -> bool:
        return self.double is not None

    def client(self, **kwargs: Any) -> Any:
        """An official ollama.Client for this server (closed after the test)."""
        import ollama

        client = ollama.Client(host=self.url, **kwargs)
        self._clients.append(client)
        return client

    def require_double(self, reason: str = NEEDS_DOUBLE_CONTROLS) -> OllamaDouble:
        """The double, or skip the test on a real server."""
        if self.double is None:
            pytest.skip(reason)
        return self.double

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for subprocesses (e.g. `doit build`) pointed at this server."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("OLLAMA_")}
        env["OLLAMA_HOST"] = self.host
        return env

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


@pytest.fixture
def ollama_server(request: pytest.FixtureRequest) -> Iterator[OllamaServer]:
    """OLLAMA_TEST_HOST's server if set, else a fresh `ollama_double`."""
    if OLLAMA_TEST_HOST:
        url = _host_url(OLLAMA_TEST_HOST)
        server = OllamaServer(host=url.split("://", 1)[1], url=url)
    else:
        double: OllamaDouble = request.getfixturevalue("ollama_double")
        server = OllamaServer(host=double.host, url=double.url, double=double)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def model_name(ollama_server: OllamaServer) -> Iterator[Callable[..., str]]:
    """Factory of unique model names (prefix doit-ollama-test-<hex>); at the end of the
    test every model whose name starts with the prefix is deleted, so tests are safe to
    run against a real server."""
    prefix = f"doit-ollama-test-{uuid.uuid4().hex[:8]}"

    def make(stem: str = "m", tag: str = "v1") -> str:
        return f"{prefix}-{stem}:{tag}"

    yield make
    import ollama

    with ollama.Client(host=ollama_server.url, timeout=30) as client:
        for entry in client.list().models:
            if entry.model and entry.model.lower().startswith(prefix):
                try:
                    client.delete(entry.model)
                except ollama.ResponseError:
                    pass
