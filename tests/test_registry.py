"""The team registry (docs/registry.md), against a real Distribution on loopback: bases on a
plain-HTTP registry, `doit publish`, pinned bases, `doit deploy`, `doit verify`/`status`
with a registry, and `doit outdated`.

The stories run on the server under test (`ollama_server`): the test double, and the real
Ollama of the real-server tier when there is one. The same Distribution plays upstream
(bases under `library/`) and the team registry (`team/`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import ollama
import pytest

from tests.conftest import OllamaServer
from tests.distribution import Distribution
from tests.doit_repo import DoitRepo, make_repo


@dataclass
class Team:
    """A repository, the server it builds on, and the registry it shares."""

    repo: DoitRepo
    server: OllamaServer
    registry: Distribution
    name: Callable[..., str]  # model_name: unique names, deleted after the test
    gguf: Callable[..., Path]

    def client(self) -> Any:
        return self.server.client(timeout=120)

    def upstream(self, stem: str, tag: str = "1b", *, seed: int, system: str = "") -> tuple[str, str]:
        """Publish a base under the registry's library/ as upstream would (create on a server,
        push), leaving nothing of it on the server; its name and the digest pullers see."""
        client = self.client()
        local = self.name(stem, tag)
        qualified = f"{self.registry.host}/library/{local}"
        source = self.gguf(seed=seed)
        client.create(local, files={source.name: client.create_blob(source)},
                      **({"system": system} if system else {}))
        client.copy(local, qualified)
        assert list(client.push(qualified, insecure=True, stream=True))[-1].status == "success"
        client.delete(qualified)
        client.delete(local)
        repository, _, tag_part = f"library/{local}".rpartition(":")
        digest = self.registry.digest(repository, tag_part)
        assert digest is not None
        return qualified, digest

    def configure(self, *, registry: bool = True, extra: str = "") -> None:
        lines = ["[tool.doit-ollama]"]
        if registry:
            lines.append(f'registry = "http://{self.registry.host}/team"')
        else:
            lines.append(f'insecure-registries = ["{self.registry.host}"]')
        self.repo.write("pyproject.toml", "\n".join(lines) + "\n" + extra)

    def digests(self) -> dict[str, str]:
        """What the server lists: name -> "sha256:<hex>"."""
        return {m.model: f"sha256:{m.digest}" for m in self.client().list().models}


@pytest.fixture
def team(tmp_path: Path, ollama_server: OllamaServer, distribution: Distribution,
         model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> Iterator[Team]:
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    yield Team(repo, ollama_server, distribution, model_name, gguf_file)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- 1. a base on a plain-HTTP registry --------------------------------------------------------

def test_a_base_on_a_plain_http_registry_builds(team: Team) -> None:
    base, digest = team.upstream("tinybase", seed=1)
    bot = team.name("bot", "v1")
    team.repo.model(bot, f"FROM {base}\nSYSTEM \"\"\"Answer briefly.\"\"\"\n")

    refused = team.repo.doit("build", expect=1).out  # Ollama pulls over HTTPS unless told
    assert "server gave HTTP response to HTTPS client" in refused
    assert f'insecure-registries = ["{team.registry.host}"]' in refused

    team.configure(registry=False)
    built = team.repo.doit("build").out
    assert f"{bot}: pulling base model {base}" in built
    entry = team.repo.lock().models[bot]
    assert entry.base is not None and entry.base.name == base and entry.base.digest == digest
    assert team.digests()[bot] == entry.digest
    team.repo.doit("verify")
