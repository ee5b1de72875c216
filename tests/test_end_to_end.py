"""The product's main story against the server under test: the Ollama test double by
default, a real Ollama when OLLAMA_TEST_HOST is set (nothing here needs the double's
registry or controls, and every model name carries a unique prefix that is deleted after).

    OLLAMA_TEST_HOST=127.0.0.1:11434 pytest tests/test_end_to_end.py
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import OllamaServer
from tests.doit_repo import DoitRepo, make_repo


@pytest.fixture
def story(tmp_path: Path, ollama_server: OllamaServer, model_name: Callable[..., str],
          gguf_file: Callable[..., Path]) -> tuple[DoitRepo, str, str, str]:
    """A repository: a base built from a tiny local GGUF, a released tag and a dev tag FROM it."""
    repo = make_repo(tmp_path / "repo", ollama_server.host)
    base, released, dev = model_name("base", "v1"), model_name("bot", "v1"), model_name("bot", "dev")
    base_repo = base.rsplit(":", 1)[0]
    weights = repo.root / "models" / base_repo / "weights.gguf"
    weights.parent.mkdir(parents=True)
    shutil.copy(gguf_file(seed=11), weights)
    repo.model(base, "FROM ./weights.gguf\nPARAMETER temperature 0\n")
    repo.model(released, f'FROM {base}\nSYSTEM """Answer with one JSON object."""\n')
    repo.model(dev, f'FROM {base}\nSYSTEM """Answer with one JSON object, briefly."""\n')
    return repo, base, released, dev


def test_build_is_incremental_locked_and_verifiable(story: tuple[DoitRepo, str, str, str],
                                                    ollama_server: OllamaServer) -> None:
    repo, base, released, dev = story
    first = repo.doit("build")
    assert first.out.count("locked at") == 3
    lock = repo.lock()
    assert set(lock.models) == {base, released, dev}
    assert lock.models[released].base is not None and lock.models[released].base.digest == lock.models[base].digest
    repo.doit("verify")

    again = repo.doit("build")
    assert again.out.count("-- build:") == 3 and "locked at" not in again.out

    path = repo.root / "models" / dev.rsplit(":", 1)[0] / "dev.Modelfile"
    path.write_text("# only a comment changed\n" + path.read_text())
    assert "up to date" in repo.doit("build").out

    path.write_text(path.read_text().replace("briefly", "very briefly"))
    rebuilt = repo.doit("build").out
    assert f"{dev}: rebuilding (SYSTEM changed)" in rebuilt
    assert repo.lock().models[dev].digest != lock.models[dev].digest
    assert repo.lock().models[released] == lock.models[released]


def test_released_tag_is_immutable_and_restored(story: tuple[DoitRepo, str, str, str],
                                                ollama_server: OllamaServer) -> None:
    repo, base, released, _ = story
    repo.doit("build")
    locked = repo.lock_bytes()
    with ollama_server.client() as client:
        client.delete(released)
    restored = repo.doit("build").out
    assert f"{released}: reproduced the locked digest" in restored
    assert repo.lock_bytes() == locked

    path = repo.root / "models" / released.rsplit(":", 1)[0] / "v1.Modelfile"
    path.write_text(path.read_text().replace("one JSON", "exactly one JSON"))
    refused = repo.doit("build", expect=1).out
    assert f"{released} is a released tag" in refused
    assert repo.lock_bytes() == locked
    repo.doit("verify", expect=1)
    repo.doit(f"build:{released}", "--relock")
    repo.doit("verify")


def test_verify_rebuild_reproduces_every_digest(story: tuple[DoitRepo, str, str, str]) -> None:
    repo = story[0]
    repo.doit("build")
    result = repo.doit("verify", "--rebuild")
    assert result.err.count("reproduced") == 3
