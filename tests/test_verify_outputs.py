"""What `doit verify` and `doit lint` write where, and what `--strict` checks (issue 14, item 14):
real doit runs in a temporary repository against the Ollama test double."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble


@pytest.fixture
def built(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish("base:1b", seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", 'FROM base:1b\nSYSTEM """Answer in JSON."""\n')
    repo.doit("build")
    return repo


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "github"])
def test_verify_output_file_keeps_the_text_on_the_console(built: DoitRepo, fmt: str) -> None:
    result = built.doit("verify", "--format", fmt, "--output", "reports/verify.out")
    assert "verify: all checks passed for 1 model" in result.out  # the text, whatever the file
    written = (built.root / "reports/verify.out").read_text()
    if fmt == "text":
        assert written == result.out
    elif fmt == "json":
        assert json.loads(written)["ok"] is True


def test_lint_output_file_keeps_the_text_on_the_console(built: DoitRepo, tmp_path: Path) -> None:
    env = built.env(GIT_CEILING_DIRECTORIES=str(tmp_path))
    result = built.doit("lint", "--output", "reports/lint.txt", env=env)
    assert "lint: 0 errors, 1 warning in 1 file" in result.out
    assert (built.root / "reports/lint.txt").read_text() == result.out


def git(repo: DoitRepo, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo.root, check=True, capture_output=True, timeout=60,
                   env={**repo.env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def test_strict_verify_also_needs_the_lock_committed(built: DoitRepo) -> None:
    git(built, "init", "-q")
    git(built, "add", "models", "dodo.py")
    git(built, "commit", "-q", "-m", "models, without their lock")
    report = json.loads(built.doit("verify", "--strict", "--format", "json", expect=1).out)
    assert [(f["kind"], f["file"]) for f in report["findings"]] == [("untracked", "lock/models.lock")]
    (finding,) = report["findings"]
    assert finding["message"] == ("lock/models.lock is not tracked by git: nobody else can verify "
                                  "or reproduce the builds it records")
    assert finding["fix"] == "git add lock/models.lock && git commit"

    git(built, "add", "lock")
    staged = json.loads(built.doit("verify", "--strict", "--format", "json", expect=1).out)
    assert [f["kind"] for f in staged["findings"]] == ["uncommitted"]
    git(built, "commit", "-q", "-m", "the lock")
    built.doit("verify", "--strict")

    built.model("bot:v2", 'FROM base:1b\nSYSTEM """Answer in YAML."""\n')
    built.doit("build")  # the lock changes; the new Modelfile is not committed either
    text = built.doit("verify", "--strict", expect=1).out
    assert "lock/models.lock has changes that are not staged: the committed lock does not " \
           "record these builds" in text
    assert "models/bot/v2.Modelfile is not tracked by git" in text
