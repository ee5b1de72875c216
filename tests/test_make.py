"""The Makefile as a user runs it, in a temporary repository against the Ollama test double
(issue 14, item 14): `make models` runs `doit build` only when something changed, comment-only
edits included, and each target fails with doit, naming doit's own exit code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

ROOT = Path(__file__).resolve().parent.parent
DOIT = f"DOIT={sys.executable} -m doit"


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    registry.publish("base:1b", seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", 'FROM base:1b\nSYSTEM """Answer in JSON."""\n')
    shutil.copy(ROOT / "Makefile", repo.root / "Makefile")
    return repo


def make(repo: DoitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", *args, DOIT], cwd=repo.root, env=repo.env(),
                          capture_output=True, text=True, timeout=180, check=False)


def ran_build(result: subprocess.CompletedProcess[str]) -> bool:
    assert result.returncode == 0, result.stdout + result.stderr
    return "-m doit build" in result.stdout  # Make echoes each command it runs


def test_make_models_builds_once_per_change_even_a_comment_only_one(repo: DoitRepo) -> None:
    assert ran_build(make(repo, "models"))
    assert repo.lock().models["bot:v1"]
    assert not ran_build(make(repo, "models"))  # nothing changed: doit is not even started

    path = repo.root / "models/bot/v1.Modelfile"
    path.write_text(path.read_text() + "# a comment only: the lock stays as it is\n")
    lock_before = repo.lock_path.stat().st_mtime_ns
    assert ran_build(make(repo, "models"))
    assert repo.lock_path.stat().st_mtime_ns == lock_before  # nothing was rebuilt...
    assert not ran_build(make(repo, "models"))  # ...and Make does not ask again

    repo.model("bot:v2", 'FROM base:1b\nSYSTEM """Answer in YAML."""\n')
    assert ran_build(make(repo, "models"))
    assert "bot:v2" in repo.lock().models


def test_each_target_fails_with_doit_and_names_its_exit_code(repo: DoitRepo,
                                                             ollama_double: OllamaDouble) -> None:
    assert ran_build(make(repo, "models"))
    for target in ("verify", "lock-check", "status", "lint"):
        result = make(repo, target)
        assert result.returncode == 0, f"make {target}\n{result.stdout}{result.stderr}"

    import ollama

    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:v1")
    failed = make(repo, "verify")  # doit verify exits 1
    assert failed.returncode == 2 and "bot:v1 is not on" in failed.stdout
    assert failed.stderr.rstrip().endswith("verify] Error 1"), failed.stderr

    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodel = "models"\n')  # doit exits 3
    broken = make(repo, "lock-check")
    assert broken.returncode == 2
    assert broken.stderr.rstrip().endswith("lock-check] Error 3"), broken.stderr
