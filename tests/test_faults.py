"""Hardening: server faults, killed and interrupted builds, concurrent builds.

Every case: one clear message naming the model and the server, a non-zero exit, the lock
unchanged for the failed model, finished models kept, and the next build completes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import ollama
import pytest

from doit_ollama import lockfile
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"
MODELS = ("a:v1", "b:v1", "c:v1")


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    for name in MODELS:
        repo.model(name, f'FROM {BASE}\nSYSTEM """I am {name}."""\n')
    return repo


def server_digests(double: OllamaDouble) -> dict[str, str]:
    with ollama.Client(host=double.url, timeout=10) as client:
        return {m.model: f"sha256:{m.digest}" for m in client.list().models}


def assert_failed_cleanly(repo: DoitRepo, double: OllamaDouble, result_text: str, *, failed: str,
                          says: str) -> None:
    assert failed in result_text and double.url in result_text, result_text
    assert says in result_text, result_text
    lock = repo.lock()
    assert failed not in lock.models
    assert "a:v1" in lock.models  # built before the failure, and kept
    # the next build completes and ends where a clean build would
    double.controls.clear_faults()
    repo.doit("build")
    assert set(repo.lock().models) == set(MODELS)
    repo.doit("verify")


@pytest.mark.parametrize(
    ("inject", "says"),
    [
        (lambda c: c.fail_next("POST", "/api/create", status=500, message="out of memory", model="b:v1"),
         "out of memory (HTTP 500)"),
        (lambda c: c.error_in_stream("POST", "/api/create", message="llama-quantize failed: exit status 1",
                                     after_lines=2, model="b:v1"),
         "llama-quantize failed: exit status 1"),
        (lambda c: c.drop_stream("POST", "/api/create", after_lines=1, model="b:v1"),
         "closed the connection"),
    ],
    ids=["500-on-create", "error-line-mid-stream", "connection-dropped"],
)
def test_server_errors_during_create(repo: DoitRepo, ollama_double: OllamaDouble,
                                     inject: Callable[..., object], says: str) -> None:
    inject(ollama_double.controls)
    result = repo.doit("build", expect=1)
    assert_failed_cleanly(repo, ollama_double, result.output, failed="b:v1", says=says)


def test_blob_upload_rejected(repo: DoitRepo, ollama_double: OllamaDouble,
                              gguf_file: Callable[..., Path]) -> None:
    repo.write("models/b/weights.gguf", gguf_file(seed=4).read_bytes())
    repo.model("b:v1", "FROM ./weights.gguf\nSYSTEM b\n")
    ollama_double.controls.fail_next(
        "POST", "/api/blobs/*", status=400,
        message='digest mismatch, expected "sha256:aaaa", got "sha256:bbbb"')
    result = repo.doit("build", expect=1)
    assert_failed_cleanly(repo, ollama_double, result.output, failed="b:v1", says="digest mismatch")


def test_hung_server_times_out_with_the_configured_timeout(repo: DoitRepo,
                                                           ollama_double: OllamaDouble) -> None:
    repo.write("pyproject.toml", "[tool.doit-ollama]\ntimeout = 2\n")
    ollama_double.controls.hang("POST", "/api/create", timeout=20, model="b:v1")
    started = time.monotonic()
    result = repo.doit("build", expect=1)
    assert time.monotonic() - started < 15
    assert_failed_cleanly(repo, ollama_double, result.output, failed="b:v1",
                          says="did not answer within 2 s")


def test_unreachable_server_at_start(repo: DoitRepo) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = repo.doit("build", expect=1, env=repo.env(OLLAMA_HOST=f"127.0.0.1:{port}"))
    assert f"cannot reach the Ollama server at http://127.0.0.1:{port}" in result.output
    assert "a:v1" in result.output
    assert not repo.lock_path.exists()


def test_server_dies_mid_build_and_the_next_build_completes(repo: DoitRepo,
                                                            ollama_double: OllamaDouble) -> None:
    ollama_double.controls.hang("POST", "/api/create", timeout=30, model="b:v1")
    process = subprocess.Popen([sys.executable, "-m", "doit", "build"], cwd=repo.root, env=repo.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while ollama_double.controls.count("POST", "/api/create", model="b:v1") == 0:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    ollama_double.stop()  # the server goes away while b:v1 is being created
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in out + err, out + err
    assert "b:v1" in out and ollama_double.url in out
    assert set(repo.lock().models) == {"a:v1"}
    ollama_double.start()  # same folder, same port: the server is back
    repo.doit("build")
    assert set(repo.lock().models) == set(MODELS)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # doit and the workers it forked, nothing else
    except ProcessLookupError:
        pass
    process.communicate(timeout=30)


def test_sigkill_at_random_points_never_leaves_a_bad_lock(tmp_path: Path, ollama_double: OllamaDouble,
                                                          registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    names = [f"m{i:02d}:v1" for i in range(20)]
    for name in names:
        repo.model(name, f'FROM {BASE}\nSYSTEM """I am {name}."""\n')
    ollama_double.controls.delay("POST", "/api/create", 0.05)
    rng = random.Random(8)
    for attempt in range(20):
        args = ["-n", "2", "build"] if attempt % 2 else ["build"]
        process = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=repo.root, env=repo.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        time.sleep(rng.uniform(0.2, 1.2))
        _kill_group(process)
        if repo.lock_path.exists():
            lock = lockfile.parse(repo.lock_bytes())  # always valid TOML of the right shape
            on_server = server_digests(ollama_double)
            for name, entry in lock.models.items():
                assert on_server.get(name) == entry.digest, (attempt, name)
    ollama_double.controls.clear_faults()
    repo.doit("build")
    assert set(repo.lock().models) == set(names)
    assert not list((repo.root / "lock").glob(".*.tmp"))
    repo.doit("verify")


def test_sigint_stops_cleanly(repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    ollama_double.controls.delay("POST", "/api/create", 2.0, model="b:v1")
    for args in (["build"], ["-n", "2", "build"]):
        ollama_double.controls.reset_requests()
        process = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=repo.root, env=repo.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while ollama_double.controls.count("POST", "/api/create", model="b:v1") == 0:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, out + err
        assert "Traceback" not in out + err
        assert "interrupted: the lock keeps every model that finished" in err
        lockfile.parse(repo.lock_bytes())
    ollama_double.controls.clear_faults()
    repo.doit("build")
    assert set(repo.lock().models) == set(MODELS)


def test_two_builds_at_once_take_turns_and_lose_nothing(tmp_path: Path, ollama_double: OllamaDouble,
                                                        registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    names = {f"m{i}:v1" for i in range(6)}
    for name in names:
        repo.model(name, f'FROM {BASE}\nSYSTEM """I am {name}."""\n')
    ollama_double.controls.delay("POST", "/api/create", 0.3)
    results: list[subprocess.CompletedProcess[str]] = []

    def build() -> None:
        results.append(subprocess.run([sys.executable, "-m", "doit", "-n", "2", "build"], cwd=repo.root,
                                      env=repo.env(), capture_output=True, text=True, timeout=120))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert [r.returncode for r in results] == [0, 0], [r.stdout + r.stderr for r in results]
    assert set(repo.lock().models) == names
    # each model was created once: the second process waited and then found it up to date
    created = [r.model for r in ollama_double.controls.requests() if r.path == "/api/create"]
    assert sorted(created) == sorted(names)
    repo.doit("verify")
