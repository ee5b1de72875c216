"""The team registry (docs/registry.md), against a real Distribution on loopback: bases on a
plain-HTTP registry, `doit publish`, pinned bases, `doit deploy`, `doit verify`/`status`
with a registry, and `doit outdated`.

The stories run on the server under test (`ollama_server`): the test double, and the real
Ollama of the real-server tier when there is one. The same Distribution plays upstream
(bases under `library/`) and the team registry (`team/`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

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
    # Weights unique to this test: a real server shared by the session never counts a blob
    # of another test as pushed already (after a cross-repository mount it would, forever).
    salt: int = field(default_factory=lambda: uuid.uuid4().int % 10**9)

    def client(self) -> Any:
        return self.server.client(timeout=120)

    def upstream(self, stem: str, tag: str = "1b", *, seed: int, system: str = "",
                 host: str | None = None) -> tuple[str, str]:
        """Publish a base under the registry's library/ as upstream would (create on a server,
        push), leaving nothing of it on the server; its name and the digest pullers see.
        `host`: the registry's address in the name (a proxy in front of it, say)."""
        client = self.client()
        local = self.name(stem, tag)
        qualified = f"{host or self.registry.host}/library/{local}"
        source = self.gguf(seed=seed * 10**9 + self.salt)
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


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()]


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


# --- 2. doit publish ---------------------------------------------------------------------------

@dataclass
class Built:
    """A team repository built once: a base from upstream, a released tag, a dev tag, a channel."""

    team: Team
    base: str
    base_digest: str
    bot: str
    dev: str
    channel: str

    @property
    def repo(self) -> DoitRepo:
        return self.team.repo

    def served(self, name: str) -> tuple[str | None, bytes | None]:
        """The registry's digest and bytes for a repository model's published name."""
        repository, tag = f"team/{name}".rsplit(":", 1)
        return self.team.registry.digest(repository, tag), self.team.registry.manifest(repository, tag)


@pytest.fixture
def built(team: Team) -> Built:
    base, base_digest = team.upstream("tinybase", seed=1)
    team.configure()
    bot, dev = team.name("bot", "v1"), team.name("bot", "dev")
    team.repo.model(bot, f'FROM {base}\nSYSTEM """Answer briefly."""\n')
    team.repo.model(dev, f'FROM {base}\nSYSTEM """Answer briefly, in French."""\n')
    team.repo.doit("build")
    channel = team.name("bot", "prod")
    team.repo.doit("promote", "--force", "--reason", "the tests have no smoke suite", channel, bot)
    return Built(team, base, base_digest, bot, dev, channel)


def test_publish_twice_pushes_nothing_the_second_time(built: Built) -> None:
    from tests.recording_proxy import RecordingProxy

    repo, team = built.repo, built.team
    with RecordingProxy(team.server.host) as proxy:
        first = repo.doit("publish", env=repo.env(OLLAMA_HOST=proxy.host)).out
        # two models, a channel, a pinned base; and the pin once more: its blob was mounted
        # into the registry for bot:v1 (the base lives in the same registry), which Ollama's
        # push then skips for every other repository (publish.py works around it)
        assert "pushing again" in first
        assert proxy.count("POST", "/api/push") == 4 + first.count("pushing again")
        proxy.reset()
        locked = repo.lock_bytes()
        second = repo.doit("publish", env=repo.env(OLLAMA_HOST=proxy.host)).out
        assert proxy.count("POST", "/api/push") == 0 and proxy.count("POST", "/api/copy") == 0
    assert "publish: 4 pushed, 0 already in the registry, 0 failed" in first
    assert "publish: 0 pushed, 4 already in the registry, 0 failed" in second
    assert repo.lock_bytes() == locked  # nothing new to record
    assert f"  {team.registry.host}/team/{built.bot}: pushing manifest" in first  # progress shown

    lock = repo.lock()
    for name in (built.bot, built.dev):
        digest, data = built.served(name)
        assert data is not None and digest == _sha(data) == lock.models[name].registry
        # the build digest is the same manifest with the newline the server's file ends with
        assert lock.models[name].digest == _sha(data + b"\n") != digest
    assert built.served(built.channel)[0] == lock.models[built.bot].registry
    pin = team.registry.digest(f"team/{built.base.rsplit('/', 1)[1].split(':')[0]}",
                               "sha256-" + built.base_digest[7:])
    base_ref = lock.models[built.bot].base
    assert base_ref is not None and pin == base_ref.pinned == built.base_digest
    assert f'registry = "{lock.models[built.bot].registry}"' in repo.lock_bytes().decode()
    # the build server keeps no registry-named copies
    assert not [n for n in team.digests() if n.startswith(f"{team.registry.host}/team/")]


def test_publish_never_overwrites_a_released_tag_with_other_content(built: Built) -> None:
    repo = built.repo
    repo.doit("publish")
    published = built.served(built.bot)[0]
    path = repo.root / "models" / built.bot.split(":")[0] / "v1.Modelfile"
    path.write_text(path.read_text().replace("Answer briefly.", "Answer at length."))
    repo.doit(f"build:{built.bot}", "--relock")
    assert repo.lock().models[built.bot].registry is None  # another model now: not published
    refused = repo.doit("publish", expect=1).out
    assert (f"{built.bot} is a released tag and {built.team.registry.host}/team/{built.bot} already "
            "holds other content") in refused
    assert "publish: 0 pushed, 2 already in the registry, 2 failed" in refused  # and its channel
    assert built.served(built.bot)[0] == published


def test_publish_without_a_registry_says_how_to_set_one(built: Built) -> None:
    built.team.configure(registry=False)
    result = built.repo.doit("publish", expect=1)
    assert "no registry configured: set [tool.doit-ollama] registry" in result.out


# --- 3. pinned bases ---------------------------------------------------------------------------

@pytest.fixture
def machine_b(request: pytest.FixtureRequest, ollama_server: OllamaServer,
              tmp_path: Path) -> Iterator[OllamaServer]:
    """A second, empty machine of the same kind as the server under test."""
    if ollama_server.is_double:
        from tests.ollama_double import OllamaDouble

        with OllamaDouble(tmp_path / "machine-b") as double:
            server = OllamaServer(double.host, double.url, double=double)
            yield server
            server.close()
        return
    real = request.getfixturevalue("start_real_ollama")("machine-b")
    server = OllamaServer(real.host, real.url, real=real)
    yield server
    server.close()


def _clone(repo: DoitRepo, root: Path, host: str) -> DoitRepo:
    """The repository as a teammate checks it out: no local state."""
    import shutil

    shutil.copytree(repo.root, root, ignore=shutil.ignore_patterns(".doit-ollama"))
    return DoitRepo(root, host)


@pytest.mark.parametrize("upstream", ["moved", "gone"])
def test_another_machine_rebuilds_every_locked_digest_through_the_pinned_base(
        built: Built, machine_b: OllamaServer, tmp_path: Path, upstream: str) -> None:
    built.repo.doit("publish")
    locked = built.repo.lock_bytes()
    lock = built.repo.lock()
    old = built.base_digest
    if upstream == "moved":
        _, new = built.team.upstream("tinybase", seed=2)  # the tag moves upstream
        assert new != old
        why = f"it moved upstream: {old[7:19]} -> {new[7:19]}"
    else:  # the tag is deleted upstream
        repository, tag = built.base.split("/", 1)[1].rsplit(":", 1)
        status, _, _ = built.team.registry.request("DELETE", f"/v2/{repository}/manifests/{old}")
        assert status == 202 and built.team.registry.digest(repository, tag) is None
        why = "it cannot be pulled: "

    b = _clone(built.repo, tmp_path / "machine-b-repo", machine_b.host)
    result = b.doit("build").out
    assert (f"restoring base {built.base} at {old[7:19]} from the registry's pinned copy ({why}"
            in result)
    assert result.count("reproduced the locked digest") == 2
    assert b.lock_bytes() == locked
    with machine_b.client() as client:
        held = {m.model: f"sha256:{m.digest}" for m in client.list().models}
    assert held[built.bot] == lock.models[built.bot].digest
    assert held[built.dev] == lock.models[built.dev].digest
    assert held[built.base] == old  # under its original name, at the locked digest
    assert not [n for n in held if "/team/" in n]  # the pinned name itself is not kept


def test_without_a_registry_the_refusal_names_the_base_and_both_digests(team: Team) -> None:
    base, old = team.upstream("tinybase", seed=1)
    team.configure(registry=False)
    bot = team.name("bot", "v1")
    team.repo.model(bot, f'FROM {base}\nSYSTEM """Answer briefly."""\n')
    team.repo.doit("build")
    locked = team.repo.lock_bytes()
    _, new = team.upstream("tinybase", seed=2)  # moves the tag; leaves no copy of the base here
    team.client().delete(bot)  # as on a machine that never had either

    refused = team.repo.doit("build", expect=1).out
    assert f"{bot}: base {base} moved: {old[7:19]} -> {new[7:19]}" in refused
    assert "a registry would let this build reproduce the locked digest" in refused
    assert f"doit build:{bot} --relock" in refused
    assert team.repo.lock_bytes() == locked


def test_a_released_tag_is_rebuilt_on_the_pin_and_the_moved_base_put_back(built: Built) -> None:
    built.repo.doit("publish")
    locked = built.repo.lock().models[built.bot]
    _, new = built.team.upstream("tinybase", seed=2)
    client = built.team.client()
    client.pull(built.base, insecure=True)  # the user takes the new version of the base
    noted = built.repo.doit("build").out  # still held at its locked digest: nothing to do
    assert f"base {built.base} moved: {built.base_digest[7:19]} -> {new[7:19]}" in noted
    assert "doit build restores its pinned copy from the registry" in noted

    client.delete(built.bot)
    rebuilt = built.repo.doit("build").out
    assert f"{built.bot}: reproduced the locked digest" in rebuilt
    assert f"put {built.base} back at {new[7:19]}" in rebuilt
    held = built.team.digests()
    assert held[built.bot] == built.repo.lock().models[built.bot].digest
    assert held[built.base] == new  # the user's version of the base, as before
    assert built.repo.lock().models[built.bot] == locked
    # (the dev tag, mutable, was rebuilt on the new base by the first build)
    assert built.repo.lock().models[built.dev].base.digest == new  # type: ignore[union-attr]


# --- 4. doit deploy ----------------------------------------------------------------------------

def test_deploy_pulls_to_each_host_and_a_host_that_is_down_fails_alone(
        built: Built, machine_b: OllamaServer, tmp_path: Path) -> None:
    from xml.etree import ElementTree as ET

    from tests.real_ollama import free_port
    from tests.recording_proxy import RecordingProxy

    repo = built.repo
    repo.doit("publish")
    lock = repo.lock()
    down = f"127.0.0.1:{free_port()}"
    with RecordingProxy(machine_b.host) as fresh, RecordingProxy(built.team.server.host) as builder:
        # three hosts: a fresh one, the build server (it holds every model already), one down
        result = repo.doit("deploy", "--host", fresh.host, "--host", builder.host, "--host", down,
                           "--format", "junit", "--output", "deploy.xml", expect=1)
        assert fresh.count("POST", "/api/pull") == 2  # two models (the channel is a copy)...
        assert builder.count("POST", "/api/pull") == 0  # ...and nothing on an up-to-date host
        assert fresh.count("POST", "/api/create") == builder.count("POST", "/api/create") == 0
        fresh.reset()
        again = repo.doit("deploy", "--host", fresh.host).out
        assert fresh.count("POST", "/api/pull") == 0 and "0 pulled, 0 copied, 3 already there" in again
        # the registry's digests are as good as the build digests (and a deployed host needs
        # no base): the fleet, the build server and the registry all verify
        verified = repo.doit("verify", "--host", fresh.host, "--host", builder.host).out
        assert f"verify: all checks passed for 2 models ({fresh.host}, {builder.host}, registry " in verified
    out = result.out
    assert f"ok: {fresh.host}: 2 pulled, 1 copied, 0 already there" in out
    assert f"ok: {builder.host}: 0 pulled, 0 copied, 3 already there" in out
    assert f"error [{down}]: not deployed: cannot reach the Ollama server at http://{down}" in out
    assert "deploy: 2 of 3 hosts hold the locked models" in out

    with machine_b.client() as client:
        held = {m.model: f"sha256:{m.digest}" for m in client.list().models}
    for name in (built.bot, built.dev):
        assert held[name] == lock.models[name].registry  # byte for byte what the registry serves
    assert held[built.channel] == lock.models[built.bot].registry
    assert not [n for n in held if "/team/" in n] and built.base not in held  # no base needed

    suite = ET.parse(repo.root / "deploy.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("7", "1")
    failing = [c for c in suite if c.find("failure") is not None]
    assert [c.get("name") for c in failing] == [f"host {down}"]


def test_deploy_needs_published_models(built: Built, machine_b: OllamaServer) -> None:
    result = built.repo.doit("deploy", "--host", machine_b.host, "--format", "json", expect=1)
    import json

    report = json.loads(result.out)
    assert not report["ok"]
    failed = report["hosts"][0]["failed"]
    assert set(failed) == {built.bot, built.dev, built.channel}
    assert "run `doit publish` first" in failed[built.bot]


# --- 5. doit verify and doit status know the registry --------------------------------------------

def test_verify_catches_a_registry_tag_overwritten_by_hand(built: Built) -> None:
    import json

    repo, registry = built.repo, built.team.registry
    status = repo.doit("status").out
    assert [built.bot, "not", "published"] == _rows(status)[[r[0] for r in _rows(status)].index(built.bot)][:3]
    unpublished = json.loads(repo.doit("verify", "--format", "json", expect=1).out)
    assert sorted((f["model"], f["kind"]) for f in unpublished["findings"]) == [
        (built.dev, "not-published"), (built.dev, "pin-missing"), (built.bot, "not-published")]
    assert all(f["fix"].startswith("doit publish") for f in unpublished["findings"])

    repo.doit("publish")
    repo.doit("verify")
    locked = repo.lock().models[built.bot].registry
    repository = f"team/{built.bot.split(':')[0]}"
    registry.overwrite_with(repository, "v1", "dev")  # someone re-pushes v1 by hand
    result = repo.doit("verify", expect=1).out
    assert (f"error [registry http://{registry.host}/team]: {registry.host}/team/{built.bot} serves "
            f"{repo.lock().models[built.dev].registry[7:19]}, the lock says {locked[7:19]} "
            "(overwritten outside doit-ollama)") in result
    assert "  fix: doit publish" in result
    assert "registry differs" in repo.doit("status").out

    restored = repo.doit("publish").out  # the locked model goes back; the lock already says it
    assert f"{built.bot}: pushing {registry.host}/team/{built.bot} again (the registry held" in restored
    assert registry.digest(repository, "v1") == locked
    repo.doit("verify")


# --- 7. doit outdated --------------------------------------------------------------------------

def test_outdated_asks_once_per_base_and_pulls_nothing(team: Team) -> None:
    import json

    from tests.recording_proxy import RecordingProxy

    with RecordingProxy(team.registry.host) as upstream, RecordingProxy(team.server.host) as server:
        base, old = team.upstream("tinybase", seed=1, host=upstream.host)
        team.repo.write("pyproject.toml", f'[tool.doit-ollama]\ninsecure-registries = ["{upstream.host}"]\n')
        bot, dev, fr = team.name("bot", "v1"), team.name("bot", "dev"), team.name("bot-fr", "v1")
        team.repo.model(bot, f'FROM {base}\nSYSTEM """Answer briefly."""\n')
        team.repo.model(dev, f'FROM {base}\nSYSTEM """Answer briefly, in French."""\n')
        team.repo.model(fr, f'FROM {bot}\nSYSTEM """Réponds brièvement."""\n')  # a base built here
        team.repo.doit("build")
        env = team.repo.env(OLLAMA_HOST=server.host)
        upstream.reset()

        same = team.repo.doit("outdated", env=env).out
        manifest = f"/v2/library/{base.split('/')[-1].replace(':', '/manifests/')}"
        assert [(r.method, r.path, r.status) for r in upstream.requests()] == [("HEAD", manifest, 200)]
        assert "outdated: no base moved upstream (1 base asked)" in same
        assert [bot, base, old[7:19], old[7:19]] in _rows(same) and fr not in same

        _, new = team.upstream("tinybase", seed=2, host=upstream.host)  # the tag moves
        upstream.reset()
        server_requests = len(server.requests())
        moved = team.repo.doit("outdated", env=env).out  # a report, not a failure...
        assert [bot, base, old[7:19], new[7:19], "(moved)"] in _rows(moved)
        assert "outdated: 2 models built on a base that moved upstream (1 base asked)" in moved
        strict = team.repo.doit("outdated", "--exit-code", "--format", "json", env=env, expect=1)
        report = json.loads(strict.out)  # ...unless a scheduled job asks for the exit code
        assert report["moved"] and {r["model"] for r in report["bases"]} == {bot, dev}
        assert {r["upstream"] for r in report["bases"]} == {new}
        assert upstream.count("HEAD") == 2 and upstream.count("GET") == 0  # one per run, no pull
        assert len(server.requests()) == server_requests  # Ollama is not asked at all


def test_outdated_asks_over_https_unless_the_host_is_plain_http(team: Team) -> None:
    from doit_ollama.registry import RegistryClient

    assert RegistryClient().base_url("registry.ollama.ai") == "https://registry.ollama.ai"
    base, _ = team.upstream("tinybase", seed=1)
    team.configure(registry=False)
    bot = team.name("bot", "v1")
    team.repo.model(bot, f"FROM {base}\n")
    team.repo.doit("build")
    team.repo.write("pyproject.toml", "")  # forget that this registry is plain HTTP
    result = team.repo.doit("outdated", expect=1).out
    assert f"registry {team.registry.host}: TLS failed while asking for {base}" in result
    assert f'list "{team.registry.host}" in [tool.doit-ollama] insecure-registries' in result
    assert "outdated: no base moved upstream (1 base asked, 1 could not be asked)" in result
