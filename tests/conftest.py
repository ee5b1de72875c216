"""Shared fixtures: the Ollama test double, a registry folder, tiny GGUF files, and the
server under test: the double, and a real Ollama (the real-server tier) when one is given.

The real-server tier: OLLAMA_TEST_BINARY names an `ollama` binary that a session fixture
starts on 127.0.0.1 with a fresh models folder (`.ci/run` points it at
../shared/ollama/bin/ollama when that exists); or OLLAMA_TEST_HOST names a server that is
already running. Without either, every real-server test is skipped with that reason, and
the run ends with one line saying how many tests ran against a real Ollama.

The user's OLLAMA_* variables are removed for every test, so nothing reaches a developer's
real server by accident; OLLAMA_TEST_HOST and OLLAMA_TEST_BINARY are read once, before that.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.distribution import Distribution, missing_reason
from tests.gguf_maker import make_gguf
from tests.ollama_double import OllamaDouble, publish_model
from tests.real_ollama import RealOllama

OLLAMA_TEST_HOST = os.environ.get("OLLAMA_TEST_HOST", "").strip()
OLLAMA_TEST_BINARY = os.environ.get("OLLAMA_TEST_BINARY", "").strip()
NEEDS_DOUBLE_REGISTRY = "pull from the test registry needs the test double"
NEEDS_DOUBLE_CONTROLS = "test controls need the test double"
NO_REAL_SERVER = ("real-server tier skipped: no real Ollama (set OLLAMA_TEST_BINARY to an `ollama` "
                  "binary, or OLLAMA_TEST_HOST to a running server)")
NEEDS_BINARY = "a second real server needs OLLAMA_TEST_BINARY (OLLAMA_TEST_HOST gives only one)"


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


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[Distribution]:
    """A real OCI registry (Distribution) on 127.0.0.1, with the blob redirect a real Ollama
    needs; skipped, with the reason, where docker-registry is not installed."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with Distribution(tmp_path / "distribution") as registry:
        yield registry


@dataclass
class OllamaServer:
    """The server a test talks to: the double (controls available) or a real Ollama."""

    host: str
    url: str
    double: OllamaDouble | None = None
    real: RealOllama | None = None  # None for the double, and for OLLAMA_TEST_HOST's server
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


@dataclass
class RealTier:
    """What the run did with the real-server tier, for the line at the end of the run."""

    version: str = ""
    where: str = ""
    ran: int = 0
    failed: int = 0
    skipped: int = 0


REAL_TIER = RealTier()


@pytest.fixture(scope="session")
def real_ollama_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, RealOllama | None]]:
    """The session's real Ollama: (host, url, process or None), or skip the test."""
    if OLLAMA_TEST_HOST:
        url = _host_url(OLLAMA_TEST_HOST)
        import json
        import urllib.request

        with urllib.request.urlopen(f"{url}/api/version", timeout=10) as response:
            REAL_TIER.version = json.loads(response.read())["version"]
        REAL_TIER.where = f"OLLAMA_TEST_HOST={OLLAMA_TEST_HOST}"
        yield url.split("://", 1)[1], url, None
        return
    if not OLLAMA_TEST_BINARY:
        pytest.skip(NO_REAL_SERVER)
    real = RealOllama(OLLAMA_TEST_BINARY, tmp_path_factory.mktemp("real-ollama"))
    real.start()
    REAL_TIER.version, REAL_TIER.where = real.version, f"OLLAMA_TEST_BINARY={OLLAMA_TEST_BINARY}"
    try:
        yield real.host, real.url, real
    finally:
        real.stop()


@pytest.fixture
def real_ollama(real_ollama_endpoint: tuple[str, str, RealOllama | None]) -> Iterator[OllamaServer]:
    """The session's real Ollama as an OllamaServer (skips when there is none)."""
    host, url, process = real_ollama_endpoint
    server = OllamaServer(host=host, url=url, real=process)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def start_real_ollama(tmp_path: Path) -> Iterator[Callable[[str], RealOllama]]:
    """Factory: start another real Ollama (its own empty models folder); stopped after the test."""
    if not OLLAMA_TEST_BINARY:
        pytest.skip(NEEDS_BINARY if OLLAMA_TEST_HOST else NO_REAL_SERVER)
    started: list[RealOllama] = []

    def start(name: str) -> RealOllama:
        # its own folder, apart from whatever the test keeps under tmp_path
        real = RealOllama(OLLAMA_TEST_BINARY, tmp_path / f"real-ollama-{name}", name=name)
        started.append(real)
        real.start()
        if not REAL_TIER.version:  # for the summary line when no session server was started
            REAL_TIER.version, REAL_TIER.where = real.version, f"OLLAMA_TEST_BINARY={OLLAMA_TEST_BINARY}"
        return real

    try:
        yield start
    finally:
        for real in started:
            real.stop()


@pytest.fixture(params=["double", pytest.param("real", marks=pytest.mark.real_server)])
def ollama_server(request: pytest.FixtureRequest) -> Iterator[OllamaServer]:
    """The server under test: each test runs on a fresh `ollama_double`, and again on the
    session's real Ollama when there is one (skipped with the reason otherwise)."""
    if request.param == "real":
        server: OllamaServer = request.getfixturevalue("real_ollama")
        yield server
        return
    double: OllamaDouble = request.getfixturevalue("ollama_double")
    server = OllamaServer(host=double.host, url=double.url, double=double)
    try:
        yield server
    finally:
        server.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs a real Ollama carries the `real_server` mark."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "real_ollama" in fixtures or "start_real_ollama" in fixtures:
            item.add_marker(pytest.mark.real_server)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "real_server" not in report.keywords:
        return
    if report.skipped:
        REAL_TIER.skipped += 1
    elif report.when == "call":
        REAL_TIER.ran += 1
        REAL_TIER.failed += report.failed
    elif report.when == "setup" and report.failed:
        REAL_TIER.failed += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tier = REAL_TIER
    if tier.ran:
        where = tier.where or (f"OLLAMA_TEST_BINARY={OLLAMA_TEST_BINARY}" if OLLAMA_TEST_BINARY
                               else f"OLLAMA_TEST_HOST={OLLAMA_TEST_HOST}")
        line = (f"real-server tier: {tier.ran} tests ran against a real Ollama"
                f"{' ' + tier.version if tier.version else ''} ({where}); "
                f"{tier.failed} failed, {tier.skipped} skipped")
    elif tier.skipped or tier.failed:
        line = f"real-server tier: 0 tests ran against a real Ollama; {tier.skipped} skipped"
        if not (OLLAMA_TEST_BINARY or OLLAMA_TEST_HOST):
            line += " (no real Ollama: set OLLAMA_TEST_BINARY or OLLAMA_TEST_HOST)"
    else:
        return  # no real-server test was selected
    terminalreporter.write_sep("-", line)


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
            # also registry-qualified copies: 127.0.0.1:5000/library/<prefix>-m:v1
            if entry.model and (entry.model.lower().startswith(prefix) or f"/{prefix}" in entry.model.lower()):
                try:
                    client.delete(entry.model)
                except ollama.ResponseError:
                    pass
