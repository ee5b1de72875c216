"""The first hour of a new user (issue 14): a build that stops says what it did not do,
nothing to build is not success, files that are not built are named, every fix a message
gives works when followed, a server that is down is never reported as "ok", options work
where users type them, and channels come back on a fresh server.

Real `doit` runs in a temporary repository. The tests that take `ollama_server` run on the
test double and again on a real Ollama when there is one (tests/conftest.py).
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import OllamaServer
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fix_of(output: str, containing: str) -> str:
    """The `fix:` line that follows the first message containing `containing`."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if containing in line:
            for following in lines[number + 1:]:
                if following.strip().startswith("fix: "):
                    return following.strip()[len("fix: "):]
    raise AssertionError(f"no fix after {containing!r} in:\n{output}")


@pytest.fixture
def story(tmp_path: Path, ollama_server: OllamaServer, model_name: Callable[..., str],
          gguf_file: Callable[..., Path]) -> tuple[DoitRepo, dict[str, str]]:
    """A repository whose base is built from a tiny local GGUF (no pull: it runs on a real
    server too): base:v1, bot:v1 and other:v1 FROM it, child:v1 FROM bot:v1."""
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    names = {stem: model_name(stem, "v1") for stem in ("base", "bot", "child", "other")}
    weights = repo.root / "models" / names["base"].split(":")[0] / "weights.gguf"
    weights.parent.mkdir(parents=True)
    shutil.copy(gguf_file(seed=14), weights)
    repo.model(names["base"], "FROM ./weights.gguf\nPARAMETER temperature 0\n")
    repo.model(names["bot"], f'FROM {names["base"]}\nSYSTEM """Answer briefly."""\n')
    repo.model(names["child"], f'FROM {names["bot"]}\nPARAMETER top_k 10\n')
    repo.model(names["other"], f'FROM {names["base"]}\nSYSTEM """Unrelated."""\n')
    return repo, names


def modelfile(repo: DoitRepo, name: str) -> Path:
    repository, tag = name.rsplit(":", 1)
    return repo.root / "models" / repository / f"{tag}.Modelfile"


# --- 1. a build that stops says what it did not do ----------------------------------------


def test_a_failed_model_does_not_stop_the_others_and_the_run_ends_with_a_summary(
        story: tuple[DoitRepo, dict[str, str]]) -> None:
    repo, names = story
    repo.doit("build")
    bot = modelfile(repo, names["bot"])
    bot.write_text(bot.read_text().replace("briefly", "at length"))  # a released tag: refused
    broken = names["other"].replace("other", "broken")
    repo.model(broken, 'FROM base\nSYSTEM """never closed\n')  # does not parse
    new = names["other"].replace(":v1", ":v2")
    repo.model(new, f'FROM {names["base"]}\nSYSTEM """A new version."""\n')

    result = repo.doit("build", expect=1)  # exit 1, not doit's 2 for the skipped child
    out = result.out
    assert new in repo.lock().models  # built although other models failed before it
    assert (f"build summary: 1 built, 2 up to date, 2 failed, "
            "1 not built because a base failed") in out
    assert f"  failed: {names['bot']} is a released tag (locked in lock/models.lock) and its " \
           "inputs changed: SYSTEM changed" in out
    assert f"  failed: {broken}: models/" in out
    assert f"  not built: {names['child']} (its base {names['bot']} did not build)" in out

    # doit's own --continue says the same, with the same exit code; --no-continue stops at
    # the first failure and says which models were not run
    assert "build summary:" in repo.doit("--continue", "build", expect=1).out
    stopped = repo.doit("--no-continue", "build", expect=1).out
    assert "not run: " in stopped and "--no-continue" in stopped


def test_one_server_down_is_one_message_not_one_per_model(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", f"127.0.0.1:{closed_port()}")
    for i in range(3):
        repo.model(f"bot{i}:v1", f"FROM {BASE}\n")
    out = repo.doit("build", expect=1).out
    assert out.count("cannot reach the Ollama server") == 2  # the first failure, the summary
    assert "build:bot1:v1: failed as build:bot0:v1 did (above)" in out
    assert "  failed: bot0:v1, bot1:v1, bot2:v1: cannot reach the Ollama server" in out
    assert "It was chosen by OLLAMA_HOST." in out


# --- 2. nothing to build is not success -----------------------------------------------------


def test_no_models_folder_says_where_it_looked_and_fails(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", f"127.0.0.1:{closed_port()}")
    for command in ("build", "verify", "lint", "status"):
        result = repo.doit(command, expect=3)
        assert f"nothing to build: there is no models folder models/ in {repo.root.resolve()}" \
               in result.err, result.err
    assert not (repo.root / ".doit-ollama").exists()
    (repo.root / "models").mkdir()
    result = repo.doit("build", expect=3)
    assert f"nothing to build: no Modelfile in {(repo.root / 'models').resolve()}" in result.err


def test_a_command_run_from_a_subfolder_points_at_the_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", f"127.0.0.1:{closed_port()}")
    path = repo.model("my-bot:v1", f"FROM {BASE}\n")
    for args in (["verify", "--offline"], ["build"]):
        # `doit-ollama` runs where it is started (`doit` itself needs a dodo.py there)
        result = subprocess.run([sys.executable, "-m", "doit_ollama.cli", *args], cwd=path.parent,
                                env=repo.env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"there is no models folder models/ in {path.parent.resolve()}" in result.stderr
        assert f"inside the repository {repo.root.resolve()}: run the command there (cd ../..)" \
               in result.stderr
    assert not (path.parent / ".doit-ollama").exists()


# --- 3. files that are not built are named ------------------------------------------------


def test_build_names_files_it_ignores_and_fails_for_a_misplaced_modelfile(
        tmp_path: Path, ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", f"FROM {BASE}\n")
    for name in ("v3.modelfile", "Modelfile.v2", "v1.Modelfile.bak"):
        repo.write(f"models/bot/{name}", f"FROM {BASE}\n")
    out = repo.doit("build").out
    assert "warning: models/bot/v3.modelfile: not built: names are case-sensitive" in out
    assert "fix: rename it to models/bot/v3.Modelfile" in out
    assert "warning: models/bot/Modelfile.v2: not built: the tag goes before .Modelfile" in out
    assert "warning: models/bot/v1.Modelfile.bak: not built" in out
    assert set(repo.lock().models) == {"bot:v1"}

    repo.write("models/stray.Modelfile", f"FROM {BASE}\n")
    repo.model("other:v1", f"FROM {BASE}\n")
    out = repo.doit("build", expect=1).out
    assert "models/stray.Modelfile: not built: a Modelfile must sit at models/<model>/" in out
    assert "build summary: 1 built, 1 up to date, 1 failed" in out
    assert set(repo.lock().models) == {"bot:v1", "other:v1"}
    for command in (["list"], ["status", "--offline"], ["build:other:v1"]):
        repo.doit(*command)  # a finding for that file, not a failure of every command
    verify = repo.doit("verify", "--offline", expect=1).out
    assert "error: models/stray.Modelfile: not built" in verify


# --- 5. every fix a message gives works when followed ----------------------------------------


def test_advice_uses_the_configured_models_folder_and_extra_models(
        tmp_path: Path, ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodels = "llm/models"\n'
                                 'extra-models = { "legacy:v1" = "old/legacy.Modelfile" }\n')
    repo.write("llm/models/bot/v1.Modelfile", f"# bot\nFROM {BASE}\nSYSTEM one\n")
    repo.write("old/legacy.Modelfile", f"# legacy\nFROM {BASE}\nSYSTEM old\n")
    repo.doit("build")

    bot = repo.root / "llm/models/bot/v1.Modelfile"
    bot.write_text(bot.read_text().replace("one", "two"))
    refused = repo.doit("build", expect=1).out
    assert "copy llm/models/bot/v1.Modelfile to a new version (for example " \
           "llm/models/bot/<next>.Modelfile)" in refused
    assert "new tag (llm/models/bot/<next>.Modelfile)" in repo.doit("verify", "--offline", expect=1).out
    # follow it
    shutil.copy(bot, repo.root / "llm/models/bot/v2.Modelfile")
    bot.write_text(bot.read_text().replace("two", "one"))

    legacy = repo.root / "old/legacy.Modelfile"
    legacy.write_text(legacy.read_text().replace("old", "older"))
    refused = repo.doit("build", expect=1).out
    assert 'named in [tool.doit-ollama] extra-models as "legacy:v2"' not in refused
    assert 'named in [tool.doit-ollama] extra-models as "legacy:<next>"' in refused
    # follow it
    shutil.copy(legacy, repo.root / "old/legacy-v2.Modelfile")
    legacy.write_text(legacy.read_text().replace("older", "old"))
    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodels = "llm/models"\nextra-models = { '
                                 '"legacy:v1" = "old/legacy.Modelfile", '
                                 '"legacy:v2" = "old/legacy-v2.Modelfile" }\n')
    repo.doit("build")
    assert {"bot:v2", "legacy:v2"} <= set(repo.lock().models)
    repo.doit("verify")


def test_a_forced_channel_is_pointed_again_with_its_options(
        tmp_path: Path, ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    import ollama

    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", f"FROM {BASE}\nSYSTEM one\n")  # no tests: only an override promotes it
    repo.doit("build")
    repo.doit("promote", "--force", "--reason", "hotfix for incident 42", "bot:prod", "bot:v1")
    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:prod")
    out = repo.doit("verify", expect=1).out
    fix = fix_of(out, "channel bot:prod (-> bot:v1) is not on")
    assert "doit build (restores every channel the lock records)" in fix
    promote = fix.split(", or ", 1)[1]
    assert promote == "doit promote --force --reason 'hotfix for incident 42' bot:prod bot:v1"
    repo.doit(*shlex.split(promote)[1:])  # exactly as the fix says
    repo.doit("verify")
    assert repo.lock().channels["bot:prod"].reason == "hotfix for incident 42"


def test_a_base_built_here_is_built_not_pulled(story: tuple[DoitRepo, dict[str, str]],
                                               ollama_server: OllamaServer) -> None:
    repo, names = story
    repo.doit("build")
    with ollama_server.client() as client:
        client.delete(names["bot"])
    out = repo.doit("verify", expect=1).out
    fix = fix_of(out, f"its base {names['bot']} is not on")
    assert fix == f"doit build:{names['child']} (builds {names['bot']} first)"
    assert "pulls it" not in out
    repo.doit(*fix.split(" (")[0].split()[1:])  # doit build:<child>
    repo.doit("verify")


def test_git_add_names_the_path_to_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", f"127.0.0.1:{closed_port()}")
    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodels = "llm/models"\n')
    repo.write("llm/models/bot/v1.Modelfile", f"# bot v1: a bot\nFROM {BASE}\n")
    fix = fix_of(repo.doit("lint").out, "no-git")
    assert fix == "git init && git add llm/models lock/models.lock && git commit"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=repo.root, check=True)
    fix = fix_of(repo.doit("lint").out, "is not tracked by git")
    assert fix == "git add llm/models/bot/v1.Modelfile && git commit"
    subprocess.run(shlex.split(fix.split(" && ")[0]), cwd=repo.root, check=True)
    subprocess.run([*git, "commit", "-qm", "bot v1"], cwd=repo.root, check=True)
    assert "untracked" not in repo.doit("lint").out


# --- 6. a server that is down is never "ok" -------------------------------------------------


def test_verify_and_status_with_the_only_host_down_say_not_checked(
        story: tuple[DoitRepo, dict[str, str]]) -> None:
    repo, names = story
    repo.doit("build")
    dead = f"127.0.0.1:{closed_port()}"
    verify = repo.doit("verify", "--host", dead, expect=1).out
    assert "ok:" not in verify
    assert all(f"not checked: {name} (" in verify for name in names.values())
    assert verify.count("cannot reach the Ollama server") == 1
    assert "It was chosen by --host." in verify
    assert f"verify: 1 problem for 4 models, 4 not checked ({dead} (unreachable))" in verify

    status = repo.doit("status", "--host", dead).out
    assert "up to date" not in status
    assert status.count("not checked") == 5  # each model, and the reason once
    assert status.count("cannot reach the Ollama server") == 1 and "chosen by --host" in status
    env = repo.env(OLLAMA_HOST=dead)
    assert "It was chosen by OLLAMA_HOST." in repo.doit("status", env=env).out


@pytest.mark.parametrize("host", ["http://[bad", "foo:bar:baz", ":99999", "ftp://gpu-1", "gpu 1"])
def test_malformed_hosts_get_one_clear_message(tmp_path: Path, host: str) -> None:
    repo = make_repo(tmp_path / "repo", f"127.0.0.1:{closed_port()}")
    repo.model("bot:v1", f"FROM {BASE}\n")
    repo.model("other:v1", f"FROM {BASE}\n")
    for command in ("verify", "status"):
        out = repo.doit(command, "--host", host, expect=1).output
        assert out.count(f"invalid Ollama host {host!r} (set by --host): ") == 1, out
    out = repo.doit("build", env=repo.env(DOIT_OLLAMA_HOST=host), expect=1).output
    assert f"invalid Ollama host {host!r} (set by DOIT_OLLAMA_HOST)" in out
    assert out.count("invalid Ollama host") == 2  # the first failure and the summary


# --- 9. options where users type them -------------------------------------------------------


def test_build_relock_and_test_force_after_the_name(tmp_path: Path, ollama_double: OllamaDouble,
                                                   registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    bot = repo.model("bot:v1", f"FROM {BASE}\nSYSTEM one\n")
    repo.model("other:v1", f"FROM {BASE}\nSYSTEM other\n")
    repo.write("models/bot/v1.test.toml", '[[case]]\nname = "answers"\nprompt = "Hi"\n')
    repo.doit("build")
    before = repo.lock().models

    bot.write_text(bot.read_text().replace("one", "two"))
    repo.doit("build", expect=1)
    out = repo.doit("build", "--relock").out  # as `doit build:bot:v1 --relock`, for every model
    assert "bot:v1: re-locking (SYSTEM changed)" in out
    after = repo.lock().models
    assert after["bot:v1"].digest != before["bot:v1"].digest
    assert after["other:v1"] == before["other:v1"]

    repo.doit("test", "bot:v1")
    ollama_double.controls.reset_requests()
    repo.doit("test", "bot:v1")  # the stored result: the server is not asked
    assert ollama_double.controls.count("POST", "/api/generate") == 0
    repo.doit("test", "bot:v1", "--force")
    assert ollama_double.controls.count("POST", "/api/generate") == 1
    out = repo.doit("test", "bot:v1", "--frobnicate", expect=1).output
    assert "test: unknown option --frobnicate; usage: doit test [--force] [MODEL ...]" in out


# --- 11. channels survive a fresh server ----------------------------------------------------


def ci_job_commands() -> list[list[str]]:
    """The doit commands of the build-and-verify jobs of docs/ci.md (GitHub Actions, then
    GitLab CI: the same commands), in order; the annotation step that runs only on failure
    is left out."""
    text = (Path(__file__).parent.parent / "docs" / "ci.md").read_text()
    jobs = [text.split("  build-and-verify:", 1)[1].split("```", 1)[0],
            text.split("\nbuild-and-verify:", 1)[1].split("```", 1)[0]]
    found = []
    for job in jobs:
        commands = [line.split("doit ", 1)[1] for line in job.splitlines()
                    if line.strip().startswith(("run: doit ", "- doit ")) and "|| true" not in line]
        found.append([shlex.split(c) for c in commands])
    assert found[0] == found[1], found  # both CI systems run the same job
    return found[0]


def test_build_then_verify_passes_on_a_server_that_lost_everything(
        story: tuple[DoitRepo, dict[str, str]], ollama_server: OllamaServer) -> None:
    repo, names = story
    repo.doit("build")
    channel = names["bot"].replace(":v1", ":prod")
    repo.doit("promote", "--force", "--reason", "first release", channel, names["bot"])
    locked = repo.lock()
    # a fresh CI server: none of the models, no channel
    with ollama_server.client() as client:
        for name in [*names.values(), channel]:
            client.delete(name)

    # the CI job of docs/ci.md, command by command: build, then verify
    job = ci_job_commands()
    assert job[0] == ["build"] and job[1][0] == "verify", job
    out = repo.doit(*job[0]).out
    assert f"{channel}: restored the channel -> {names['bot']} " \
           f"({locked.channels[channel].digest.removeprefix('sha256:')[:12]})" in out
    for command in job[1:]:
        repo.doit(*command)
    assert "failures=\"0\"" in (repo.root / "reports/verify.xml").read_text()
    assert repo.lock().channels == locked.channels
    status = repo.doit("status").out
    assert any(line.startswith(channel) and "up to date" in line and f"channel -> {names['bot']}"
               in line for line in status.splitlines()), status

    # a channel moved by hand is put back too
    with ollama_server.client() as client:
        client.copy(names["other"], channel)
    assert "drifted" in repo.doit("status").out
    assert f"{channel}: restored the channel" in repo.doit("build").out
    repo.doit("verify")
    if ollama_server.double is not None:  # a no-op build still asks the server once
        ollama_server.double.controls.reset_requests()
        repo.doit("build")
        assert [r.path for r in ollama_server.double.controls.requests()] == ["/api/tags"]


def test_a_channel_whose_version_was_rebuilt_is_not_restored_blindly(
        tmp_path: Path, ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    import ollama

    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    bot = repo.model("bot:dev", f"FROM {BASE}\nSYSTEM one\n")  # a mutable tag
    repo.doit("build")
    repo.doit("promote", "--force", "--reason", "try it", "bot:prod", "bot:dev")
    bot.write_text(bot.read_text().replace("one", "two"))
    repo.doit("build")  # bot:dev rebuilt; the channel on the server is the promoted model
    assert "-- build:bot:prod" in repo.doit("build").out
    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:prod")
    out = repo.doit("build:bot:prod", expect=1).out  # the channel's own task
    assert "channel bot:prod cannot be restored: it was given bot:dev at" in out
    assert "doit test bot:dev && doit promote --force --reason 'try it' bot:prod bot:dev" in out
    assert "build summary: 0 built, 1 up to date, 1 failed" in out
