"""The product's whole story, `doit` in a subprocess in a temporary repository, on every
server under test: the Ollama test double, and the session's real Ollama when the
real-server tier runs (OLLAMA_TEST_BINARY or OLLAMA_TEST_HOST; docs/testing.md).

Nothing here needs the double's registry or test controls: base models come from tiny local
GGUFs (tests/gguf_maker.py, accepted by the real llama.cpp loader), requests are counted by a
RecordingProxy between doit and the server, and every model name carries a unique prefix
that is deleted afterwards. Each test walks several steps on one repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import OllamaServer
from tests.doit_repo import DoitRepo, make_repo
from tests.recording_proxy import RecordingProxy


def listed(server: OllamaServer) -> dict[str, str]:
    """What the server's /api/tags lists: display name -> "sha256:<hex>"."""
    with server.client(timeout=60) as client:
        return {str(m.model): f"sha256:{m.digest}" for m in client.list().models}


def modelfile_path(repo: DoitRepo, name: str) -> Path:
    repository, tag = name.rsplit(":", 1)
    return repo.root / "models" / repository / f"{tag}.Modelfile"


def edit(repo: DoitRepo, name: str, old: str, new: str) -> None:
    path = modelfile_path(repo, name)
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def add_weights(repo: DoitRepo, name: str, gguf: Path) -> None:
    """models/<repository>/weights.gguf and `name` FROM it."""
    folder = modelfile_path(repo, name).parent
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(gguf, folder / "weights.gguf")
    repo.model(name, "FROM ./weights.gguf\nPARAMETER temperature 0\n")


@pytest.fixture
def story(tmp_path: Path, ollama_server: OllamaServer, model_name: Callable[..., str],
          gguf_file: Callable[..., Path]) -> tuple[DoitRepo, str, str, str]:
    """A repository: a base from a tiny local GGUF, a released tag and a dev tag FROM it."""
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    base, released, dev = model_name("base", "v1"), model_name("bot", "v1"), model_name("bot", "dev")
    add_weights(repo, base, gguf_file(seed=11))
    repo.model(released, f'FROM {base}\nSYSTEM """Answer with one JSON object."""\n')
    repo.model(dev, f'FROM {base}\nSYSTEM """Answer with one JSON object, briefly."""\n')
    return repo, base, released, dev


def test_build_no_op_edits_and_released_tags(story: tuple[DoitRepo, str, str, str],
                                             ollama_server: OllamaServer) -> None:
    repo, base, released, dev = story
    first = repo.doit("build")
    assert first.out.count("locked at") == 3
    lock = repo.lock()
    assert set(lock.models) == {base, released, dev}
    on_server = listed(ollama_server)
    for name, entry in lock.models.items():  # the lock records what the server lists
        assert on_server[name] == entry.digest, name
    assert lock.models[released].base is not None
    assert lock.models[released].base.digest == lock.models[base].digest
    # The server stores its llama-quantize rewrite of the GGUF, not the upload: the model
    # layer it shows is another blob than the file the lock records (the double does the same).
    (upload,) = lock.models[base].files.values()
    with ollama_server.client() as client:
        shown = client.show(base).modelfile or ""
    layer = next(line.split("sha256-", 1)[1] for line in shown.splitlines() if line.startswith("FROM "))
    assert upload.startswith("sha256:") and layer != upload.removeprefix("sha256:")
    locked = repo.lock_bytes()

    with RecordingProxy(ollama_server.host) as proxy:  # a no-op build: one /api/tags, nothing else
        again = repo.doit("build", env=repo.env(OLLAMA_HOST=proxy.host))
        assert [(r.method, r.path, r.status) for r in proxy.requests()] == [("GET", "/api/tags", 200)]
        assert "locked at" not in again.out

        proxy.reset()  # a comment-only edit: the task runs, nothing is created
        path = modelfile_path(repo, dev)
        path.write_text("# only a comment changed\n" + path.read_text())
        assert f"{dev}: up to date" in repo.doit("build", env=repo.env(OLLAMA_HOST=proxy.host)).out
        assert proxy.count("POST", "/api/create") == 0
        assert repo.lock_bytes() == locked

        proxy.reset()  # a mutable tag's edit: rebuilt, and only it
        edit(repo, dev, "briefly", "very briefly")
        rebuilt = repo.doit("build", env=repo.env(OLLAMA_HOST=proxy.host)).out
        assert f"{dev}: rebuilding (SYSTEM changed)" in rebuilt
        assert proxy.count("POST", "/api/create") == 1
    after = repo.lock()
    assert after.models[dev].digest != lock.models[dev].digest
    assert after.models[dev].digest == listed(ollama_server)[dev]
    assert after.models[released] == lock.models[released] and after.models[base] == lock.models[base]

    # a released tag's edit is refused, lock untouched; --relock accepts it on purpose
    edit(repo, released, "one JSON", "exactly one JSON")
    before = repo.lock_bytes()
    refused = repo.doit("build", expect=1).out
    assert f"{released} is a released tag" in refused and "SYSTEM changed" in refused
    assert f"doit build:{released} --relock" in refused
    assert repo.lock_bytes() == before
    repo.doit("verify", expect=1)
    repo.doit(f"build:{released}", "--relock")
    assert repo.lock().models[released].digest == listed(ollama_server)[released]
    repo.doit("verify")


def test_drift_is_repaired_to_the_locked_digests(story: tuple[DoitRepo, str, str, str],
                                                 ollama_server: OllamaServer) -> None:
    repo, base, released, dev = story
    repo.doit("build")
    locked = repo.lock_bytes()
    digests = repo.lock().models
    with ollama_server.client() as client:
        client.copy(dev, base)  # another model copied onto the base's name
        client.create(dev, from_=released, system="overwritten by hand")  # created onto it
        client.delete(released)  # deleted
    on_server = listed(ollama_server)
    assert released not in on_server
    assert on_server[base] != digests[base].digest and on_server[dev] != digests[dev].digest

    status = {m["name"]: m["state"] for m in json.loads(repo.doit("status", "--json").out)["models"]}
    assert status == {base: "drifted", released: "missing", dev: "drifted"}
    repaired = repo.doit("build").out
    for name in (base, released, dev):
        assert f"{name}: reproduced the locked digest" in repaired, repaired
    assert repo.lock_bytes() == locked
    on_server = listed(ollama_server)
    assert {name: on_server[name] for name in digests} == {n: e.digest for n, e in digests.items()}
    repo.doit("verify")

    with ollama_server.client() as client:  # the GGUF model itself, gone with its rewritten layer
        client.delete(base)
    assert f"{base}: reproduced the locked digest" in repo.doit("build").out
    assert repo.lock_bytes() == locked


def test_a_chain_rebuilds_in_order_and_parallel_builds_lock_everything(
        tmp_path: Path, ollama_server: OllamaServer, model_name: Callable[..., str],
        gguf_file: Callable[..., Path]) -> None:
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    core, chat, chat_fr = model_name("core", "dev"), model_name("chat", "dev"), model_name("chat-fr", "dev")
    add_weights(repo, core, gguf_file(seed=12))
    repo.model(chat, f"FROM {core}\nSYSTEM You chat.\n")
    repo.model(chat_fr, f"FROM {chat}\nSYSTEM Tu discutes.\n")
    side = [model_name(f"side{i}", "v1") for i in range(4)]
    for i, name in enumerate(side):
        repo.model(name, f"FROM {core}\nSYSTEM Side model {i}.\n")

    repo.doit("-n", "4", "build")
    lock = repo.lock()
    assert set(lock.models) == {core, chat, chat_fr, *side}
    on_server = listed(ollama_server)
    for name, entry in lock.models.items():
        assert on_server[name] == entry.digest, name
    assert lock.models[chat_fr].base is not None and lock.models[chat_fr].base.digest == lock.models[chat].digest

    # the base of the chain changes (a mutable tag): every dev tag FROM it is rebuilt, in order
    edit(repo, core, "temperature 0", "temperature 0.5")
    for name in side:  # released tags FROM it would be refused; leave them out of this build
        modelfile_path(repo, name).unlink()
    rebuilt = repo.doit("-n", "4", "build").out
    assert f"{core}: rebuilding (PARAMETERs changed)" in rebuilt
    assert f"{chat}: rebuilding" in rebuilt and f"{chat_fr}: rebuilding" in rebuilt
    assert rebuilt.index(f"{core}: locked at") < rebuilt.index(f"{chat}: locked at") \
        < rebuilt.index(f"{chat_fr}: locked at")
    after = repo.lock()
    for name in (core, chat, chat_fr):
        assert after.models[name].digest != lock.models[name].digest, name
        assert after.models[name].digest == listed(ollama_server)[name]
    assert after.models[chat].base is not None and after.models[chat].base.digest == after.models[core].digest
    assert after.models[chat_fr].base is not None and after.models[chat_fr].base.digest == after.models[chat].digest


def test_verify_in_every_format_status_and_rebuild(story: tuple[DoitRepo, str, str, str],
                                                   ollama_server: OllamaServer) -> None:
    repo, base, released, dev = story
    repo.doit("build")
    names = {base, released, dev}

    assert "verify: all checks passed for 3 models" in repo.doit("verify", "--format", "text").out
    report = json.loads(repo.doit("verify", "--format", "json").out)
    assert report["ok"] is True and report["findings"] == []
    assert {m["name"] for m in report["models"]} == names
    suite = ET.fromstring(repo.doit("verify", "--format", "junit").out)
    assert (suite.get("tests"), suite.get("failures")) == ("6", "0")  # sources + one server
    assert repo.doit("verify", "--format", "github").out == ""
    rows = {line.split()[0]: line.split(None, 1)[1] for line in repo.doit("status").out.splitlines()[1:]}
    assert all(rows[name].startswith("up to date") for name in names), rows

    with ollama_server.client() as client:
        client.delete(dev)
    assert f"]: {dev} is not on {ollama_server.url}" in repo.doit("verify", expect=1).out
    report = json.loads(repo.doit("verify", "--format", "json", expect=1).out)
    assert report["ok"] is False
    assert [(f["model"], f["kind"]) for f in report["findings"]] == [(dev, "missing")]
    repo.doit("verify", "--format", "junit", "--output", "verify.xml", expect=1)
    suite = ET.parse(repo.root / "verify.xml").getroot()
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == [dev] and suite.get("failures") == "1"
    annotations = repo.doit("verify", "--format", "github", expect=1).out.splitlines()
    assert len(annotations) == 1 and annotations[0].startswith("::error ") and dev in annotations[0]
    states = {m["name"]: m["state"] for m in json.loads(repo.doit("status", "--json").out)["models"]}
    assert states == {base: "up to date", released: "up to date", dev: "missing"}

    repo.doit("build")
    rebuilt = repo.doit("verify", "--rebuild")
    assert rebuilt.err.count("reproduced") == 3
    prefix = base.split("-base:")[0]  # the scratch tags are gone, the models are not
    assert {n for n in listed(ollama_server) if n.startswith(prefix)} == names


def test_promote_needs_tests_or_a_reason_and_rolls_back(
        tmp_path: Path, ollama_server: OllamaServer, model_name: Callable[..., str],
        gguf_file: Callable[..., Path]) -> None:
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    base, v1, v2 = model_name("base", "v1"), model_name("bot", "v1"), model_name("bot", "v2")
    prod = v1.rsplit(":", 1)[0] + ":prod"
    add_weights(repo, base, gguf_file(seed=13))
    repo.model(v1, f"FROM {base}\nSYSTEM You are version one.\n")
    repo.model(v2, f"FROM {base}\nSYSTEM You are version two.\n")
    repo.doit("build")
    lock = repo.lock()

    refused = repo.doit("promote", prod, v2, expect=1).output
    assert f"{v2} has no smoke tests" in refused and "--force --reason" in refused
    assert prod not in listed(ollama_server) and repo.lock().channels == {}

    # Tiny test GGUFs cannot answer a real server's generate, so the override is the way here
    # (tests/test_promote.py and the smoke tier cover promotion after passing tests).
    out = repo.doit("promote", "--force", "--reason", "incident 42", prod, v2).out
    assert f"promoted {prod} -> {v2}" in out and "NOT tested" in out
    channel = repo.lock().channels[prod]
    assert (channel.target, channel.digest, channel.tested, channel.reason) == \
        (v2, lock.models[v2].digest, False, "incident 42")
    assert listed(ollama_server)[prod] == lock.models[v2].digest
    assert f"ok: channel {prod} -> {v2}" in repo.doit("verify").out

    rollback = repo.doit("promote", prod, v1, "--force", "--reason", "roll back").out
    assert f"it was {v2}" in rollback
    assert listed(ollama_server)[prod] == lock.models[v1].digest
    assert repo.lock().channels[prod].target == v1

    with ollama_server.client() as client:  # moved by hand: verify names the channel
        client.copy(v2, prod)
    moved = repo.doit("verify", expect=1).out
    assert prod in moved and "doit promote" in moved
