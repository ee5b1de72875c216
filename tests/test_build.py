"""`doit build` as a user runs it: doit in a subprocess, in a temporary repository, against
the Ollama test double."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import ollama
import pytest

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"


def creates(double: OllamaDouble) -> int:
    return double.controls.count("POST", "/api/create")


def tags_calls(double: OllamaDouble) -> int:
    return double.controls.count("GET", "/api/tags")


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    return make_repo(tmp_path / "repo", ollama_double.host)


def system_model(text: str, base: str = BASE) -> str:
    return f'FROM {base}\nSYSTEM """{text}"""\nPARAMETER temperature 0\n'


@pytest.mark.parametrize("count", [3, 12])
def test_second_build_is_one_tags_request_and_no_create(repo: DoitRepo, ollama_double: OllamaDouble,
                                                         count: int) -> None:
    for i in range(count):
        repo.model(f"bot{i}:v1", system_model(f"You are bot number {i}."))
    repo.doit("build")
    assert creates(ollama_double) == count
    assert set(repo.lock().models) == {f"bot{i}:v1" for i in range(count)}

    ollama_double.controls.reset_requests()
    result = repo.doit("build")
    assert creates(ollama_double) == 0
    assert tags_calls(ollama_double) == 1
    assert len(ollama_double.controls.requests()) == 1, ollama_double.controls.requests()
    assert result.out.count("-- build:") == count


def test_comment_and_spacing_edits_rebuild_nothing(repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    path = repo.model("bot:v1", system_model("Be brief."))
    repo.doit("build")
    before = repo.lock_bytes()
    ollama_double.controls.reset_requests()

    path.write_text("# a different comment\n\n\nFROM   base:1b\n\n# why\nSYSTEM   \"\"\"Be brief.\"\"\"\n"
                    "parameter temperature 0\n")
    result = repo.doit("build")
    assert creates(ollama_double) == 0
    assert "up to date" in result.out
    assert repo.lock_bytes() == before


def test_system_edit_rebuilds_that_model_and_its_dependents_only(repo: DoitRepo,
                                                                  ollama_double: OllamaDouble) -> None:
    edited = repo.model("core:dev", system_model("Answer in JSON."))
    # The dependents inherit core's SYSTEM (they only add parameters), so its change reaches them.
    repo.model("child:dev", "FROM core:dev\nPARAMETER num_ctx 2048\n")
    repo.model("grandchild:dev", "FROM child:dev\nPARAMETER top_k 10\n")
    repo.model("other:dev", system_model("Unrelated."))
    repo.doit("build")
    first = repo.lock()

    ollama_double.controls.reset_requests()
    edited.write_text(edited.read_text().replace("Answer in JSON.", "Answer in strict JSON."))
    repo.doit("build")
    rebuilt = {r.model for r in ollama_double.controls.requests() if r.path == "/api/create"}
    assert rebuilt == {"core:dev", "child:dev", "grandchild:dev"}
    second = repo.lock()
    assert second.models["other:dev"] == first.models["other:dev"]
    for name in ("core:dev", "child:dev", "grandchild:dev"):
        assert second.models[name].digest != first.models[name].digest
    assert second.models["child:dev"].base.digest == second.models["core:dev"].digest

    ollama_double.controls.reset_requests()
    repo.doit("build")
    assert creates(ollama_double) == 0


def test_parallel_rebuild_of_a_chain_records_the_bases_as_they_are_now(repo: DoitRepo,
                                                                      ollama_double: OllamaDouble) -> None:
    # doit -n 4: each worker process keeps its own listing of the server from its first
    # build step; a base rebuilt meanwhile by another worker must not be recorded at the
    # digest that old listing shows.
    core = repo.model("core:dev", system_model("Answer in JSON."))
    repo.model("child:dev", "FROM core:dev\nPARAMETER num_ctx 2048\n")
    repo.model("grandchild:dev", "FROM child:dev\nPARAMETER top_k 10\n")
    others = [repo.model(f"other{i}:dev", system_model(f"Unrelated {i}.")) for i in range(6)]
    repo.doit("-n", "4", "build")
    ollama_double.controls.delay("POST", "/api/create", 0.2)  # keep every worker busy at once
    for path in [core, *others]:
        path.write_text(path.read_text().replace('."""', '. Be brief."""'))
    repo.doit("-n", "4", "build")
    lock = repo.lock()
    with ollama.Client(host=ollama_double.url) as client:
        on_server = {m.model: f"sha256:{m.digest}" for m in client.list().models}
    for name, base in (("child:dev", "core:dev"), ("grandchild:dev", "child:dev")):
        assert lock.models[name].base is not None
        assert lock.models[name].base.digest == lock.models[base].digest == on_server[base], name
    repo.doit("verify")


def test_a_dependent_whose_digest_does_not_change_stops_the_chain(repo: DoitRepo,
                                                                   ollama_double: OllamaDouble) -> None:
    edited = repo.model("core:dev", system_model("Answer in JSON."))
    # child overrides core's SYSTEM, so core's new prompt does not change child's manifest
    repo.model("child:dev", system_model("Answer in French.", base="core:dev"))
    repo.model("grandchild:dev", "FROM child:dev\nPARAMETER top_k 10\n")
    repo.doit("build")
    first = repo.lock()
    ollama_double.controls.reset_requests()

    edited.write_text(edited.read_text().replace("Answer in JSON.", "Answer in strict JSON."))
    repo.doit("build")
    rebuilt = {r.model for r in ollama_double.controls.requests() if r.path == "/api/create"}
    assert rebuilt == {"core:dev", "child:dev"}
    second = repo.lock()
    assert second.models["child:dev"].digest == first.models["child:dev"].digest
    assert second.models["child:dev"].base.digest == second.models["core:dev"].digest
    assert second.models["grandchild:dev"] == first.models["grandchild:dev"]


def test_replacing_a_local_gguf_rebuilds_its_model(repo: DoitRepo, ollama_double: OllamaDouble,
                                                   gguf_file: Callable[..., Path]) -> None:
    weights = repo.root / "models" / "local" / "weights.gguf"
    weights.parent.mkdir(parents=True)
    shutil.copy(gguf_file(seed=5), weights)
    repo.model("local:dev", "FROM ./weights.gguf\nSYSTEM hi\n")
    repo.model("other:dev", system_model("Unrelated."))
    repo.doit("build")
    first = repo.lock()
    assert first.models["local:dev"].files == {"models/local/weights.gguf": first.models["local:dev"].files[
        "models/local/weights.gguf"]}

    ollama_double.controls.reset_requests()
    shutil.copy(gguf_file(seed=6), weights)
    repo.doit("build")
    rebuilt = {r.model for r in ollama_double.controls.requests() if r.path == "/api/create"}
    assert rebuilt == {"local:dev"}
    second = repo.lock()
    assert second.models["local:dev"].files != first.models["local:dev"].files
    assert second.models["local:dev"].digest != first.models["local:dev"].digest


def test_base_moving_upstream_rebuilds_models_from_it(repo: DoitRepo, ollama_double: OllamaDouble,
                                                      registry) -> None:  # type: ignore[no-untyped-def]
    repo.model("bot:dev", system_model("Be brief."))
    repo.model("released:v1", system_model("Be brief too."))
    repo.model("other:dev", "FROM other-base:1\nSYSTEM x\n")
    registry.publish("other-base:1", seed=3)
    repo.doit("build")
    first = repo.lock()

    new_digest = registry.publish(BASE, seed=2)  # the registry's tag moves...
    with ollama.Client(host=ollama_double.url) as client:
        client.pull(BASE)  # ...and the user pulls it, as `ollama pull base:1b` would
    ollama_double.controls.reset_requests()

    result = repo.doit("build")
    rebuilt = {r.model for r in ollama_double.controls.requests() if r.path == "/api/create"}
    assert rebuilt == {"bot:dev"}
    second = repo.lock()
    assert second.models["bot:dev"].base.digest == new_digest
    assert second.models["bot:dev"].digest != first.models["bot:dev"].digest
    # The released tag is still on the server at its locked digest: the model did not change,
    # so the build does not fail; it says that the lock no longer reproduces from the base.
    old = first.models["released:v1"].base.digest
    assert f"released:v1: up to date ({first.models['released:v1'].digest[7:19]})" in result.out
    assert f"base {BASE} moved: {old[7:19]} -> {new_digest[7:19]}" in result.out
    assert second.models["released:v1"] == first.models["released:v1"]
    assert second.models["other:dev"] == first.models["other:dev"]
    # verify and status still say that the lock no longer reproduces from upstream
    moved = f"released:v1: base {BASE} moved: {old[7:19]} -> {new_digest[7:19]}"
    verified = repo.doit("verify", expect=1).out
    assert f"{moved} on {ollama_double.url}; the lock no longer reproduces released:v1 from upstream" in verified
    assert "keep reproducing it: set a registry and `doit publish`" in verified
    assert "or move on: a new version FROM the moved base" in verified
    assert moved in repo.doit("status").out

    # Once it must be recreated, the released tag is refused, naming the base and both digests,
    # with the ways out that fit a Modelfile that did not change (no "restore this one").
    with ollama.Client(host=ollama_double.url) as client:
        client.delete("released:v1")
    refused = repo.doit("build", expect=1).out
    assert f"released:v1: base {BASE} moved: {old[7:19]} -> {new_digest[7:19]}" in refused
    assert "a registry would let this build reproduce the locked digest" in refused
    assert "doit build:released:v1 --relock" in refused
    assert "restore this one" not in refused
    assert repo.lock() == second


@pytest.mark.parametrize("damage", ["delete", "overwrite"])
def test_tag_deleted_or_overwritten_on_the_server_is_restored(repo: DoitRepo, ollama_double: OllamaDouble,
                                                              damage: str) -> None:
    repo.model("bot:v1", system_model("Be brief."))
    repo.doit("build")
    locked = repo.lock().models["bot:v1"].digest
    before = repo.lock_bytes()

    with ollama.Client(host=ollama_double.url) as client:
        if damage == "delete":
            client.delete("bot:v1")
        else:
            client.create("bot:v1", from_=BASE, system="Something else entirely.")
    assert _digest_on_server(ollama_double, "bot:v1") != locked

    ollama_double.controls.reset_requests()
    result = repo.doit("build")
    assert creates(ollama_double) == 1
    assert "reproduced the locked digest" in result.out
    assert _digest_on_server(ollama_double, "bot:v1") == locked
    assert repo.lock_bytes() == before


def _digest_on_server(double: OllamaDouble, name: str) -> str | None:
    with ollama.Client(host=double.url) as client:
        for model in client.list().models:
            if model.model == name:
                return f"sha256:{model.digest}"
    return None


def test_editing_a_released_tag_is_refused_and_relock_accepts_it(repo: DoitRepo,
                                                                 ollama_double: OllamaDouble) -> None:
    released = repo.model("bot:v1.0", system_model("Be brief."))
    dev = repo.model("bot:dev", system_model("Be brief."))
    repo.doit("build")
    before = repo.lock_bytes()
    ollama_double.controls.reset_requests()

    released.write_text(released.read_text().replace("Be brief.", "Be very brief."))
    result = repo.doit("build", expect=1)
    assert "bot:v1.0 is a released tag" in result.out
    assert "SYSTEM changed" in result.out
    assert "doit build:bot:v1.0 --relock" in result.out
    assert creates(ollama_double) == 0
    assert repo.lock_bytes() == before
    repo.doit("build", expect=1)  # refused again, not forgotten
    assert repo.lock_bytes() == before

    dev.write_text(dev.read_text().replace("Be brief.", "Be very brief."))
    repo.doit("build:bot:dev")
    assert repo.lock().models["bot:dev"].digest != _entry(before, "bot:dev")

    repo.doit("build:bot:v1.0", "--relock")
    relocked = repo.lock().models["bot:v1.0"]
    assert relocked.digest == _digest_on_server(ollama_double, "bot:v1.0")
    assert relocked.digest != _entry(before, "bot:v1.0")
    repo.doit("build")
    repo.doit("verify")


def _entry(lock_bytes: bytes, name: str) -> str:
    from doit_ollama import lockfile

    return lockfile.parse(lock_bytes).models[name].digest


def test_parallel_build_of_8_models_keeps_all_8_every_time(tmp_path: Path, ollama_double: OllamaDouble,
                                                           registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    names = {f"par{i}:v1" for i in range(8)}
    for attempt in range(4):
        repo = make_repo(tmp_path / f"repo{attempt}", ollama_double.host)
        for name in names:
            repo.model(name, system_model(f"Model {name}, attempt {attempt}."))
        repo.doit("-n", "4", "build")
        assert set(repo.lock().models) == names, attempt


def test_two_fresh_servers_write_identical_locks(tmp_path: Path, gguf_file: Callable[..., Path]) -> None:
    from tests.ollama_double import publish_model

    registry_dir = tmp_path / "registry"
    publish_model(registry_dir, BASE, gguf_file(seed=1))
    locks = []
    for side in ("a", "b"):
        with OllamaDouble(tmp_path / f"server-{side}", registry_dir=registry_dir) as double:
            repo = make_repo(tmp_path / f"repo-{side}", double.host)
            repo.model("bot:v1", system_model("Be brief."))
            repo.model("bot-fr:v1", system_model("Sois bref.", base="bot:v1"))
            weights = repo.write("models/local/weights.gguf", gguf_file(seed=9).read_bytes())
            assert weights.exists()
            repo.model("local:v1", "FROM ./weights.gguf\n")
            repo.doit("build")
            locks.append(repo.lock_bytes())
    assert locks[0] == locks[1]
    assert b"sha256:" in locks[0] and b"/tmp" not in locks[0]


def test_a_restore_that_gives_another_digest_names_the_suspects(repo: DoitRepo,
                                                                ollama_double: OllamaDouble) -> None:
    import dataclasses

    from doit_ollama import lockfile

    repo.model("bot:v1", system_model("Be brief."))
    repo.doit("build")
    # As if the lock had been written by another Ollama version that laid the model out
    # differently: same inputs, other digest.
    lock = repo.lock()
    lock.models["bot:v1"] = dataclasses.replace(lock.models["bot:v1"], digest="sha256:" + "d" * 64,
                                                ollama="0.31.0")
    lockfile.write_atomic(repo.lock_path, lockfile.render(lock))
    tampered = repo.lock_bytes()

    result = repo.doit("build", expect=1)
    assert "bot:v1: rebuilt with the locked inputs but got digest" in result.out
    assert "Ollama version: the lock was built by 0.31.0, this server is 0.33.0-rc2-0-gfb30760" in result.out
    assert "doit build:bot:v1 --relock" in result.out
    assert repo.lock_bytes() == tampered
    repo.doit("build:bot:v1", "--relock")
    repo.doit("verify")
