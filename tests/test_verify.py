"""`doit verify`, `doit status`, the two-machine story, fleets, Make and the console script:
doit in a subprocess, in temporary repositories, against the Ollama test double."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree as ET

import ollama
import pytest

from doit_ollama import lockfile
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble, publish_model

BASE = "base:1b"
ROOT = Path(__file__).resolve().parent.parent


def bot(text: str, base: str = BASE) -> str:
    return f'FROM {base}\nSYSTEM """{text}"""\nPARAMETER temperature 0\n'


@pytest.fixture
def built(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    """A repository with a released model, a dev model, a model FROM another one, all built."""
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", bot("Answer in JSON."))
    repo.model("bot:dev", bot("Answer in JSON, briefly."))
    repo.model("bot-fr:v1", bot("Réponds en JSON.", base="bot:v1"))
    repo.doit("build")
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verify_json(repo: DoitRepo, *args: str, expect: int = 1) -> dict:  # type: ignore[type-arg]
    result = repo.doit("verify", "--format", "json", *args, expect=expect)
    return json.loads(result.out)  # the report alone: doit's own lines are kept out of it


def test_two_machines_share_only_the_registry_and_get_the_same_digests(
        tmp_path: Path, gguf_file: Callable[..., Path]) -> None:
    registry = tmp_path / "registry"
    publish_model(registry, BASE, gguf_file(seed=1))
    with OllamaDouble(tmp_path / "server-1", registry_dir=registry) as first:
        a = make_repo(tmp_path / "a", first.host)
        a.model("bot:v1", bot("Answer in JSON."))
        a.model("bot-fr:v1", bot("Réponds en JSON.", base="bot:v1"))
        a.write("models/local/weights.gguf", gguf_file(seed=7).read_bytes())
        a.model("local:v1", "FROM ./weights.gguf\nSYSTEM local\n")
        a.doit("build")
        a.doit("verify")
        locked = a.lock_bytes()

    b_root = tmp_path / "b"
    shutil.copytree(a.root, b_root, ignore=shutil.ignore_patterns(".doit-ollama"))
    with OllamaDouble(tmp_path / "server-2", registry_dir=registry) as second:
        b = DoitRepo(b_root, second.host)
        b.doit("verify", expect=1)  # nothing on the fresh server yet
        result = b.doit("build")
        assert result.out.count("reproduced the locked digest") == 3
        assert b.lock_bytes() == locked
        b.doit("verify")
        with ollama.Client(host=second.url) as client:
            tags = {m.model: f"sha256:{m.digest}" for m in client.list().models}
        for name, entry in b.lock().models.items():
            assert tags[name] == entry.digest


def test_a_base_that_moved_upstream_is_refused_on_a_fresh_server(tmp_path: Path,
                                                                  gguf_file: Callable[..., Path]) -> None:
    registry = tmp_path / "registry"
    old = publish_model(registry, BASE, gguf_file(seed=1))
    with OllamaDouble(tmp_path / "server-1", registry_dir=registry) as first:
        a = make_repo(tmp_path / "a", first.host)
        a.model("bot:v1", bot("Answer in JSON."))
        a.doit("build")
    new = publish_model(registry, BASE, gguf_file(seed=2))  # the tag moves upstream
    with OllamaDouble(tmp_path / "server-2", registry_dir=registry) as second:
        a.host = second.host
        before = a.lock_bytes()
        result = a.doit("build", expect=1)
        assert "bot:v1 is a released tag" in result.out
        assert f"{old[7:19]} -> {new[7:19]}" in result.out
        assert "doit build:bot:v1 --relock" in result.out
        assert a.lock_bytes() == before
        a.doit("build:bot:v1", "--relock")
        assert a.lock().models["bot:v1"].base.digest == new


def _damage(kind: str, repo: DoitRepo, double: OllamaDouble, registry) -> str:  # type: ignore[no-untyped-def]
    """Make one kind of difference; return the model the finding must name."""
    with ollama.Client(host=double.url) as client:
        return _damage_with(kind, repo, client, registry)


def _damage_with(kind: str, repo: DoitRepo, client: ollama.Client, registry) -> str:  # type: ignore[no-untyped-def]
    if kind == "stale":
        path = repo.root / "models/bot/v1.Modelfile"
        path.write_text(path.read_text().replace("Answer in JSON.", "Answer in YAML."))
    elif kind == "missing":
        client.delete("bot:v1")
    elif kind == "drifted":
        client.create("bot:v1", from_=BASE, system="overwritten by hand")
    elif kind == "base-moved":
        registry.publish(BASE, seed=2)
        client.pull(BASE)
    elif kind == "orphan":
        (repo.root / "models/bot/dev.Modelfile").unlink()
        return "bot:dev"
    elif kind == "not-locked":
        repo.model("new:v1", bot("New."))
        return "new:v1"
    return "bot:v1"


@pytest.mark.parametrize("kind", ["stale", "missing", "drifted", "base-moved", "orphan", "not-locked"])
def test_each_difference_fails_verify_naming_model_and_cause(built: DoitRepo, ollama_double: OllamaDouble,
                                                              registry, kind: str) -> None:  # type: ignore[no-untyped-def]
    built.doit("verify")
    before = built.lock_bytes()
    model = _damage(kind, built, ollama_double, registry)

    text = built.doit("verify", expect=1).out
    assert any(model in line and "error" in line for line in text.splitlines()), text
    assert "fix:" in text

    report = verify_json(built)
    assert report["ok"] is False
    kinds = {(f["model"], f["kind"]) for f in report["findings"]}
    assert (model, kind) in kinds, kinds

    built.doit("verify", "--format", "junit", "--output", "report.xml", expect=1)
    suite = ET.parse(built.root / "report.xml").getroot()
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert model in failed
    assert int(suite.get("tests", "0")) >= 3 and int(suite.get("failures", "0")) >= 1

    annotations = built.doit("verify", "--format", "github", expect=1).out
    assert "::error " in annotations and model in annotations
    if kind in ("stale", "not-locked"):
        assert "file=models/" in annotations and "line=" in annotations
    assert built.lock_bytes() == before  # verify never writes the lock


def test_status_table_names_every_state_and_exits_0(built: DoitRepo, ollama_double: OllamaDouble) -> None:
    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:dev")
        client.create("bot-fr:v1", from_=BASE, system="by hand")
    path = built.root / "models/bot/v1.Modelfile"
    path.write_text(path.read_text().replace("Answer in JSON.", "Answer in YAML."))
    built.model("new:v1", bot("New."))

    table = built.doit("status").out
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert "stale" in rows["bot:v1"] and "SYSTEM changed" in rows["bot:v1"]
    assert "missing" in rows["bot:dev"]
    assert "drifted" in rows["bot-fr:v1"]
    assert "not locked" in rows["new:v1"]
    states = {m["name"]: m["state"] for m in json.loads(built.doit("status", "--json").out)["models"]}
    assert states == {"bot:v1": "stale", "bot:dev": "missing", "bot-fr:v1": "drifted", "new:v1": "not locked"}


def test_offline_verify_needs_no_server(built: DoitRepo) -> None:
    env = built.env(OLLAMA_HOST=f"127.0.0.1:{free_port()}")  # nothing listens there
    built.doit("verify", expect=1, env=env)  # online: the server is unreachable
    result = built.doit("verify", "--offline", env=env)
    assert "offline" in result.out
    path = built.root / "models/bot/v1.Modelfile"
    path.write_text(path.read_text() + "PARAMETER top_k 5\n")
    stale = built.doit("verify", "--offline", expect=1, env=env).out
    assert "bot:v1" in stale and "PARAMETERs changed" in stale


def test_fleet_with_one_host_down_reports_both(built: DoitRepo, ollama_double: OllamaDouble) -> None:
    down = f"127.0.0.1:{free_port()}"
    report = verify_json(built, "--host", ollama_double.host, "--host", down)
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts[ollama_double.host]["reachable"] is True
    assert hosts[down]["reachable"] is False and "cannot reach" in hosts[down]["error"]
    assert [f["kind"] for f in report["findings"]] == ["unreachable"]
    text = built.doit("verify", "--host", ollama_double.host, "--host", down, expect=1).out
    assert "ok: bot:v1" in text and "(unreachable)" in text


def test_fleet_from_config_checks_every_host(built: DoitRepo, ollama_double: OllamaDouble,
                                             tmp_path: Path) -> None:
    with OllamaDouble(tmp_path / "other", registry_dir=ollama_double.registry_dir) as other:
        built.write("pyproject.toml", f'[tool.doit-ollama]\nhosts = ["{ollama_double.host}", "{other.host}"]\n')
        report = verify_json(built)
        missing = {(f["host"], f["model"]) for f in report["findings"] if f["kind"] == "missing"}
        assert missing == {(other.host, m) for m in ("bot:v1", "bot:dev", "bot-fr:v1")}
        assert not any(f["host"] == ollama_double.host for f in report["findings"])


def test_rebuild_check_reproduces_and_cleans_up(built: DoitRepo, ollama_double: OllamaDouble) -> None:
    result = built.doit("verify", "--rebuild")
    assert result.err.count("reproduced") == 3
    with ollama.Client(host=ollama_double.url) as client:
        names = {m.model for m in client.list().models}
    assert not any("verify-" in n for n in names), names

    # A lock written by another Ollama version with another digest: the rebuild names the suspects.
    lock = built.lock()
    lock.models["bot:dev"] = dataclasses.replace(lock.models["bot:dev"], digest="sha256:" + "e" * 64,
                                                 ollama="0.32.0")
    lockfile.write_atomic(built.lock_path, lockfile.render(lock))
    report = verify_json(built, "--rebuild")
    rebuilt = [f for f in report["findings"] if f["kind"] == "not-reproducible"]
    assert rebuilt and "Ollama version" in rebuilt[0]["message"]


def test_make_verify_propagates_the_exit_code(built: DoitRepo, ollama_double: OllamaDouble) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    shutil.copy(ROOT / "Makefile", built.root / "Makefile")
    doit = f"{sys.executable} -m doit"
    ok = subprocess.run(["make", "verify", f"DOIT={doit}"], cwd=built.root, env=built.env(),
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:v1")
    bad = subprocess.run(["make", "verify", f"DOIT={doit}"], cwd=built.root, env=built.env(),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "bot:v1" in bad.stdout
    check = subprocess.run(["make", "lock-check", f"DOIT={doit}"], cwd=built.root, env=built.env(),
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr  # sources still match the lock


def test_console_script_runs_the_tasks_without_a_dodo(built: DoitRepo) -> None:
    (built.root / "dodo.py").unlink()
    script = Path(sys.executable).with_name("doit-ollama")
    assert script.exists(), "pip install -e . installs the doit-ollama console script"
    result = subprocess.run([str(script), "verify"], cwd=built.root, env=built.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    listing = subprocess.run([str(script), "list"], cwd=built.root, env=built.env(),
                             capture_output=True, text=True, timeout=120)
    assert "build" in listing.stdout and "verify" in listing.stdout
    assert os.path.exists(built.root / ".doit-ollama")


def _git(repo: DoitRepo, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo.root, check=True, capture_output=True,
                   env={**repo.env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def test_strict_verify_fails_on_modelfiles_not_committed(built: DoitRepo) -> None:
    _git(built, "init", "-q")
    _git(built, "add", "models", "lock", "dodo.py")
    _git(built, "commit", "-q", "-m", "models")
    built.doit("verify", "--strict")

    path = built.root / "models/bot/v1.Modelfile"
    path.write_text("# a comment only: same meaning, so the lock still matches\n" + path.read_text())
    built.doit("verify")  # plain verify: sources still match the lock
    report = verify_json(built, "--strict")
    assert [(f["kind"], f["file"]) for f in report["findings"]] == [("uncommitted", "models/bot/v1.Modelfile")]
    _git(built, "commit", "-q", "-am", "comment")
    built.doit("verify", "--strict")


def test_verify_reports_a_channel_whose_target_left_the_lock(built: DoitRepo) -> None:
    lock = built.lock()
    lock.channels["bot:prod"] = lockfile.ChannelEntry("bot:v9", "sha256:" + "b" * 64)
    lockfile.write_atomic(built.lock_path, lockfile.render(lock))
    report = verify_json(built, "--offline")
    kinds = {(f["model"], f["kind"]) for f in report["findings"]}
    assert ("bot:prod", "channel-orphan") in kinds


def test_an_invalid_crlf_modelfile_is_reported_at_the_line_an_editor_shows(built: DoitRepo) -> None:
    built.write("models/crlf/v1.Modelfile", "# crlf:v1: a model for the tests\r\nFROM base:1b\r\nFROM2 x\r\n")
    report = verify_json(built, "--offline")
    (finding,) = [f for f in report["findings"] if f.get("file") == "models/crlf/v1.Modelfile"]
    assert finding["line"] == 3, finding
    assert "models/crlf/v1.Modelfile:3:" in finding["message"], finding
