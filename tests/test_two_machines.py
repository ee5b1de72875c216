"""The two-machine story: machine A builds a repository and commits the lock; machine B, a
fresh clone (no `.doit-ollama/`) and a server with an empty models folder, rebuilds every
model at the locked digest, leaves the lock byte for byte as it was, and verifies.

It runs on two test doubles (no real server needed), on two fresh real Ollama servers (the
real-server tier: OLLAMA_TEST_BINARY), and from a double to a real server: a lock written
against the double is reproduced by a real Ollama of the version the double models.
Base models come from local GGUFs committed in the repository, so no registry is involved.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble
from tests.real_ollama import RealOllama

MODELS = {
    "base:v1": "FROM ./weights.gguf\nPARAMETER temperature 0\nPARAMETER num_ctx 256\n",
    "embed:v1": "FROM ./weights.gguf\n",
    "bot:v1": 'FROM base:v1\nSYSTEM """Answer with one JSON object."""\n',
    "bot:dev": 'FROM base:v1\nSYSTEM """Answer with one JSON object, briefly."""\n',
    "bot-fr:v1": 'FROM bot:v1\nSYSTEM """Réponds avec un objet JSON."""\nPARAMETER top_k 5\n',
}
WEIGHTS = {"base": 21, "embed": 22}  # models/<folder>/weights.gguf, by seed


@dataclass
class Machines:
    a: str  # OLLAMA_HOST of machine A
    b: str
    what: str


@pytest.fixture(params=["doubles", pytest.param("real", marks=pytest.mark.real_server),
                        pytest.param("double-to-real", marks=pytest.mark.real_server)])
def machines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Machines]:
    """Two servers with empty models folders: two doubles, two real servers, or a double (A)
    and a real server (B)."""
    doubles: list[OllamaDouble] = []

    def double(name: str) -> str:
        doubles.append(OllamaDouble(tmp_path / f"server-{name}").start())
        return doubles[-1].host

    def real(name: str) -> str:
        start: Callable[[str], RealOllama] = request.getfixturevalue("start_real_ollama")
        server = start(name)
        if server.version != "0.33.0-rc2-0-gfb30760" and request.param == "double-to-real":
            pytest.skip(f"the double models Ollama 0.33.0-rc2-0-gfb30760; this server is {server.version}")
        return server.host

    try:
        if request.param == "doubles":
            yield Machines(double("a"), double("b"), "two test doubles")
        elif request.param == "real":
            yield Machines(real("a"), real("b"), "two real servers")
        else:
            yield Machines(double("a"), real("b"), "a double, then a real server")
    finally:
        for server in doubles:
            server.stop()


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com", "GIT_CONFIG_NOSYSTEM": "1",
           "HOME": str(cwd)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def listed(host: str) -> dict[str, str]:
    with httpx.Client(base_url=f"http://{host}", timeout=60) as h:
        return {m["name"]: f"sha256:{m['digest']}" for m in h.get("/api/tags").json()["models"]}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_fresh_clone_on_an_empty_server_reproduces_every_locked_digest(
        tmp_path: Path, machines: Machines, gguf_file: Callable[..., Path]) -> None:
    a = make_repo(tmp_path / "a", machines.a)
    for folder, seed in WEIGHTS.items():
        (a.root / "models" / folder).mkdir(parents=True)
        shutil.copy(gguf_file(seed=seed), a.root / "models" / folder / "weights.gguf")
    for name, body in MODELS.items():
        a.model(name, body)
    git(a.root, "init", "-q")
    git(a.root, "add", ".")
    git(a.root, "commit", "-q", "-m", "models")
    a.doit("build")
    a.doit("verify")
    git(a.root, "add", "lock/models.lock")
    git(a.root, "commit", "-q", "-m", "lock")
    locked = a.lock_bytes()
    lock = a.lock()
    assert set(lock.models) == set(MODELS)

    git(tmp_path, "clone", "-q", str(a.root), "b")
    b = DoitRepo(tmp_path / "b", machines.b)
    assert not (b.root / ".doit-ollama").exists() and listed(machines.b) == {}
    assert "is not on" in b.doit("verify", expect=1).out

    built = b.doit("build").out
    assert built.count("reproduced the locked digest") == len(MODELS), built
    assert b.lock_bytes() == locked
    assert git(b.root, "status", "--porcelain") == ""  # nothing to commit on B
    on_b = listed(machines.b)
    assert {name: on_b[name] for name in MODELS} == {name: e.digest for name, e in lock.models.items()}
    b.doit("verify")
    fleet = b.doit("verify", "--host", machines.a, "--host", machines.b).out
    assert f"verify: all checks passed for {len(MODELS)} models" in fleet, machines.what
