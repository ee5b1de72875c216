"""doit's database through the `doit-ollama` backend: doit's sqlite3 file, read whole at
start. It must be what an installed package gets, and interchangeable with doit's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    built = make_repo(tmp_path / "repo", ollama_double.host)
    for i in range(3):
        built.model(f"m{i}:v1", f'FROM {BASE}\nSYSTEM """model {i}"""\n')
    return built


def test_an_installed_package_uses_the_doit_ollama_backend(repo: DoitRepo) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", "from doit_ollama.doit_tasks import DOIT_CONFIG; print(DOIT_CONFIG['backend'])"],
        cwd=repo.root, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "doit-ollama"


def test_the_same_database_serves_doit_own_sqlite3_backend_and_back(repo: DoitRepo,
                                                                     ollama_double: OllamaDouble) -> None:
    repo.doit("build")
    creates = ollama_double.controls.count("POST", "/api/create")
    assert creates == 3
    for backend in ("sqlite3", "doit-ollama"):
        out = repo.doit("--backend", backend, "build").out
        assert out.count("-- build:") == 3, out  # doit: all three up to date
    assert ollama_double.controls.count("POST", "/api/create") == creates
    # What doit writes through one backend, the other reads: forget one task, rebuild it.
    repo.doit("forget", "--backend", "sqlite3", "build:m1:v1")
    out = repo.doit("build").out
    assert ".  build:m1:v1" in out and out.count("-- build:") == 2, out
    assert "m1:v1: up to date" in out
    assert ollama_double.controls.count("POST", "/api/create") == creates
