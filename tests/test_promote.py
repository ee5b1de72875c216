"""`doit promote`: channels point only at tested versions, overrides are recorded, rollback is
promoting the old version, and `doit verify` sees a channel moved by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from doit_ollama import channels
from doit_ollama.lockfile import ChannelEntry, Lock, ModelEntry
from doit_ollama.project import load_project

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"
SUITE = '[[case]]\nname = "answers"\nprompt = "Hello"\n[case.expect]\ncontains = "Hello"\n'


def digest_on_server(double: OllamaDouble, name: str) -> str | None:
    import ollama

    with ollama.Client(host=double.url) as client:
        for model in client.list().models:
            if model.model == name:
                return f"sha256:{model.digest}"
    return None


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    for version in ("v1.0", "v1.1", "v1.2"):
        repo.model(f"bot:{version}", f"FROM {BASE}\nSYSTEM You are bot {version}.\n")
    repo.write("models/bot/v1.0.test.toml", SUITE)
    repo.write("models/bot/v1.1.test.toml", SUITE)  # v1.2 has no tests
    repo.model("other:v1", f"FROM {BASE}\nSYSTEM Another model.\n")
    repo.doit("build")
    return repo


def test_promotion_needs_passing_tests_then_rollback_and_hand_moves(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    lock = repo.lock()
    v10, v11 = lock.models["bot:v1.0"].digest, lock.models["bot:v1.1"].digest

    result = repo.doit("promote", "bot:prod", "bot:v1.1", expect=1)
    assert "bot:v1.1 (sha256:" in result.output and "has not passed its smoke tests yet" in result.output
    assert "doit test bot:v1.1" in result.output

    ollama_double.controls.set_reply("bot:v1.1", "Goodbye.")
    repo.doit("test", "bot:v1.1", expect=1)
    result = repo.doit("promote", "bot:prod", "bot:v1.1", expect=1)
    assert "failed its smoke tests" in result.output
    assert digest_on_server(ollama_double, "bot:prod") is None
    assert repo.lock().channels == {}

    ollama_double.controls.clear_replies()
    repo.doit("test", "--force", "bot:v1.1")
    result = repo.doit("promote", "bot:prod", "bot:v1.1")
    assert f"promoted bot:prod -> bot:v1.1 ({v11.removeprefix('sha256:')[:12]}): its smoke " \
           "tests passed" in result.out
    assert repo.lock().channels == {"bot:prod": ChannelEntry("bot:v1.1", v11, tested=True)}
    assert digest_on_server(ollama_double, "bot:prod") == v11
    assert "ok: channel bot:prod -> bot:v1.1" in repo.doit("verify").out

    # rolling back is promoting the old version (once it has passed its tests)
    repo.doit("test")
    result = repo.doit("promote", "bot:prod", "bot:v1.0")
    assert "it was bot:v1.1" in result.out
    assert repo.lock().channels["bot:prod"] == ChannelEntry("bot:v1.0", v10, tested=True)
    assert digest_on_server(ollama_double, "bot:prod") == v10

    # someone points the channel elsewhere by hand: verify names the channel
    import ollama

    with ollama.Client(host=ollama_double.url) as client:
        client.copy("bot:v1.1", "bot:prod")
    result = repo.doit("verify", expect=1)
    assert "channel bot:prod" in result.output and "bot:v1.0" in result.output
    repo.doit("promote", "bot:prod", "bot:v1.0")
    repo.doit("verify")


def test_override_is_recorded_in_the_lock(repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    v12 = repo.lock().models["bot:v1.2"].digest
    result = repo.doit("promote", "bot:prod", "bot:v1.2", expect=1)
    assert "bot:v1.2 has no smoke tests (models/bot/v1.2.test.toml)" in result.output
    assert 'doit promote --force --reason "<why>" bot:prod bot:v1.2' in result.output
    result = repo.doit("promote", "--force", "bot:prod", "bot:v1.2", expect=1)
    assert "--force needs --reason" in result.output

    # options after the names work too (doit itself stops at the first name)
    result = repo.doit("promote", "bot:prod", "bot:v1.2", "--force", "--reason", "hotfix for #12")
    assert "NOT tested, override recorded in the lock: hotfix for #12" in result.out
    assert repo.lock().channels["bot:prod"] == ChannelEntry("bot:v1.2", v12, tested=False,
                                                            reason="hotfix for #12")
    assert b'reason = "hotfix for #12"' in repo.lock_bytes()
    assert b"tested = false" in repo.lock_bytes()
    assert digest_on_server(ollama_double, "bot:prod") == v12

    # the doit-parsed form: options first
    repo.doit("test", "bot:v1.1")
    repo.doit("promote", "--force", "--reason", "not needed", "bot:prod", "bot:v1.1")
    assert repo.lock().channels["bot:prod"].tested is True  # it had passed: no override recorded
    assert repo.lock().channels["bot:prod"].reason == ""


INVALID = [
    (("other:prod", "bot:v1.1"), "a channel points at a version of its own model"),
    (("bot:v1.0", "bot:v1.1"), "bot:v1.0 is a version with a Modelfile"),
    (("bot:prod", "bot:v9"), "bot:v9 has no Modelfile in this repository"),
    (("bot:prod",), "usage: doit promote"),
    (("bot:prod", "bot:v1.1", "--fast"), "unknown option --fast"),
    (("bot:Pr*d", "bot:v1.1"), "channel: invalid model name"),
]


def test_invalid_promotions_are_refused(repo: DoitRepo) -> None:
    repo.doit("test", "bot:v1.1")  # so that only the names can be wrong
    for args, message in INVALID:
        result = repo.doit("promote", *args, expect=1)
        assert message in result.output, (args, result.output)
    assert repo.lock().channels == {}


def test_an_unbuilt_target_is_refused(tmp_path: Path, ollama_double: OllamaDouble) -> None:
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", f"FROM {BASE}\n")
    result = repo.doit("promote", "bot:prod", "bot:v1", expect=1)
    assert "bot:v1 is not built" in result.output


def test_check_channels_on_the_source_side(tmp_path: Path) -> None:
    for version in ("v1", "prod"):
        path = tmp_path / "models" / "bot" / f"{version}.Modelfile"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# bot\nFROM base:1b\n")
    project = load_project(tmp_path)
    digest_a, digest_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    entry = ModelEntry("models/bot/v1.Modelfile", digest_a, digest_a, "0.1")
    lock = Lock(models={"bot:v1": entry}, channels={
        "bot:stable": ChannelEntry("bot:v1", digest_a),
        "bot:canary": ChannelEntry("bot:v1", digest_b),
        "bot:old": ChannelEntry("bot:v0", digest_a),
        "bot:prod": ChannelEntry("bot:v1", digest_a),
    })
    problems = channels.check_channels(project, lock, project.models())
    assert [(p.model, p.kind) for p in problems] == [
        ("bot:canary", "channel-stale"),
        ("bot:old", "channel-orphan"),
        ("bot:prod", "channel-conflict"),
    ]
    assert "bot:v0, which is no longer in the lock" in problems[1].message
    assert problems[2].file == "models/bot/prod.Modelfile"
