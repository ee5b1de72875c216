"""Bad input: one clear message (file, line, model, what to do), a non-zero exit, never a
traceback, never a half-written or silently replaced lock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doit_ollama import lockfile
from doit_ollama.errors import LockError
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"
H = "sha256:" + "a" * 64


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", f"FROM {BASE}\nSYSTEM hi\n")
    return repo


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("version = 1\n[models.\"bot:v1\"\nmodelfile = 1\n", 2, "invalid TOML"),
        (f'version = 1\n\n[models."bot:v1"]\nmodelfile = 3\ninputs = "{H}"\n', 3,
         "field 'modelfile' must be a string"),
        ("version = 9\n", None, "newer than this doit-ollama understands"),
        (f'version = 1\n\n[models."bot:v1"]\nmodelfile = "m"\ninputs = "{H}"\n', 3,
         "field 'digest' is missing"),
    ],
    ids=["invalid-toml", "wrong-type", "unknown-version", "missing-field"],
)
def test_corrupt_lock_is_reported_with_path_and_line_and_never_overwritten(
        repo: DoitRepo, ollama_double: OllamaDouble, text: str, line: int | None, says: str) -> None:
    repo.write("lock/models.lock", text)
    result = repo.doit("build", expect=1)
    where = f"lock/models.lock:{line}:" if line else "lock/models.lock:"
    assert where in result.out and says in result.out, result.out
    assert result.out.count("TaskFailed") == 1  # doit stops at the first model
    repo.doit("lint")  # a command that does not need the lock still works
    assert "git checkout -- lock/models.lock" in result.out
    assert ollama_double.controls.count("POST", "/api/create") == 0
    verify = repo.doit("verify", expect=1)
    assert says in verify.output
    repo.doit("status", expect=1)
    assert repo.lock_path.read_text() == text


def test_modelfiles_with_bad_bytes_are_read_as_ollama_reads_them(repo: DoitRepo) -> None:
    repo.write("models/utf/v1.Modelfile", b"# invalid UTF-8 and NUL\nFROM base:1b\nSYSTEM caf\xe9 \x00bar\n")
    repo.write("models/utf16/v1.Modelfile", "# UTF-16\nFROM base:1b\nSYSTEM héllo\n".encode("utf-16"))
    repo.doit("build")
    lock = repo.lock()
    assert {"utf:v1", "utf16:v1"} <= set(lock.models)


def test_ten_megabytes_of_modelfile(repo: DoitRepo) -> None:
    big = "All work and no play makes Jack a dull boy. " * 240_000
    repo.model("big:v1", f'FROM {BASE}\nSYSTEM """{big}"""\n')
    repo.doit("build")
    repo.doit("build")
    assert "big:v1" in repo.lock().models


def test_paths_leaving_the_repository_are_refused_unless_allowed(repo: DoitRepo, tmp_path: Path,
                                                                 gguf_file: Callable[..., Path]) -> None:
    outside = gguf_file(seed=3)  # under tmp_path, outside the repository
    rel = os.path.relpath(outside, repo.root / "models" / "up")
    repo.model("up:v1", f"FROM {rel}\n")
    result = repo.doit("build", expect=1)
    assert "up:v1" in result.out and "is outside the repository" in result.out
    assert "models/up/v1.Modelfile:2" in result.out  # file and line of the FROM
    assert "allow-outside-paths" in result.out

    (repo.root / "models" / "up" / "v1.Modelfile").unlink()
    (repo.root / "models" / "link").mkdir()
    (repo.root / "models" / "link" / "weights.gguf").symlink_to(outside)
    repo.model("link:v1", "FROM ./weights.gguf\n")
    result = repo.doit("build", expect=1)
    assert "link:v1" in result.out and "is outside the repository" in result.out

    repo.write("pyproject.toml", "[tool.doit-ollama]\nallow-outside-paths = true\n")
    repo.doit("build")
    assert "link:v1" in repo.lock().models


def test_a_model_folder_without_model_files(repo: DoitRepo) -> None:
    (repo.root / "models" / "empty" / "weights").mkdir(parents=True)
    (repo.root / "models" / "empty" / "weights" / "notes.txt").write_text("nothing here")
    repo.model("empty:v1", "FROM ./weights\n")
    result = repo.doit("build", expect=1)
    assert "empty:v1" in result.out and "no Modelfile or safetensors files found" in result.out


def test_missing_local_file_says_so_instead_of_invalid_model_name(repo: DoitRepo) -> None:
    repo.model("gone:v1", "FROM ./missing.gguf\n")
    result = repo.doit("build", expect=1)
    assert "gone:v1" in result.out and "FROM ./missing.gguf: file not found" in result.out
    assert "models/gone/v1.Modelfile:2" in result.out


def test_model_names_at_and_past_ollamas_length_limits(repo: DoitRepo) -> None:
    longest = "m" * 80
    repo.model(f"{longest}:{'t' * 80}", f"FROM {BASE}\n")
    repo.doit("build")
    assert f"{longest}:{'t' * 80}" in repo.lock().models
    before = repo.lock_bytes()
    repo.model(f"{'m' * 81}:v1", f"FROM {BASE}\n")
    result = repo.doit("build", expect=3)
    assert "the model is 81 characters long, Ollama allows at most 80" in result.err
    assert "models/" + "m" * 81 + "/v1.Modelfile" in result.err
    assert repo.lock_bytes() == before


def test_invalid_tag_in_a_file_name_is_refused_before_any_request(repo: DoitRepo,
                                                                  ollama_double: OllamaDouble) -> None:
    repo.write("models/bot/v1 beta.Modelfile", f"FROM {BASE}\n")
    result = repo.doit("build", expect=3)
    assert "models/bot/v1 beta.Modelfile" in result.err and "may not contain ' '" in result.err
    assert ollama_double.controls.requests() == []


def test_files_that_are_not_modelfiles_are_ignored(repo: DoitRepo) -> None:
    repo.write("models/bot/README.md", "# notes\n")
    repo.write("models/bot/v1.test.toml", "")
    repo.write("models/bot/weights.bin", b"\x00\x01")
    repo.write("models/.hidden/x.Modelfile", "not even a modelfile")
    repo.doit("build")
    assert set(repo.lock().models) == {"bot:v1"}


def test_a_modelfile_ollama_rejects_names_file_and_line(repo: DoitRepo) -> None:
    repo.model("bad:v1", "FROM base:1b\nPARAMETER temperature hot\n")
    result = repo.doit("build", expect=1)
    assert "bad:v1" in result.out
    assert "models/bad/v1.Modelfile:3: invalid float value" in result.out


# --- the lock reader under fuzzing: only LockError may escape ---------------------------------

lock_like = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    st.builds(
        lambda extra: (f'version = 1\n\n[models."a:v1"]\nmodelfile = "m"\ninputs = "{H}"\n'
                       f'digest = "{H}"\nollama = "1"\n' + extra).encode(),
        st.text(alphabet='[]."=\n abcdefs:0123tuv{}', max_size=80),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lock_like)
def test_lock_reader_raises_only_lock_error(data: bytes) -> None:
    try:
        lockfile.parse(data, "lock/models.lock")
    except LockError as err:
        assert str(err).startswith("lock/models.lock")
