"""Lint severity is the repository's call (issue 14, item 10): `--fail-on warning` (hadolint's
failure threshold) and per-rule severity in `[tool.doit-ollama.lint]`, through `doit lint`
and the pre-commit hook as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from doit_ollama import doit_checklist, lint

from tests.doit_repo import DoitRepo, make_repo

LATEST_NO_PURPOSE = "FROM base:1b\nSYSTEM Be brief.\n"  # models/bot/Modelfile: two warnings


def lint_repo(tmp_path: Path) -> tuple[DoitRepo, dict[str, str]]:
    """A repository whose only problems are warnings: a latest tag and no purpose comment."""
    repo = make_repo(tmp_path / "repo", "127.0.0.1:9")  # lint never asks a server
    repo.write("models/bot/Modelfile", LATEST_NO_PURPOSE)
    return repo, repo.env(GIT_CEILING_DIRECTORIES=str(tmp_path))  # and no git: no-git too


def test_fail_on_warning_fails_a_run_with_only_warnings(tmp_path: Path) -> None:
    repo, env = lint_repo(tmp_path)
    plain = repo.doit("lint", env=env)
    assert "lint: 0 errors, 3 warnings in 1 file\n" in plain.out

    strict = repo.doit("lint", "--fail-on", "warning", expect=1, env=env)
    assert "warning latest-tag" in strict.out and "warning no-purpose" in strict.out
    assert "lint: 0 errors, 3 warnings in 1 file (--fail-on warning: warnings fail too)" in strict.out
    body = json.loads(repo.doit("lint", "--fail-on", "warning", "--format", "json",
                                expect=1, env=env).out)
    assert body["ok"] is False and body["errors"] == 0  # "ok" agrees with the exit code
    assert json.loads(repo.doit("lint", "--format", "json", env=env).out)["ok"] is True

    refused = repo.doit("lint", "--fail-on", "info", expect=3, env=env)
    assert "available choices are: 'error', 'warning'" in refused.err


def test_per_rule_severity_in_pyproject_makes_latest_tags_and_purpose_errors(tmp_path: Path) -> None:
    repo, env = lint_repo(tmp_path)
    repo.write("pyproject.toml", '[tool.doit-ollama.lint]\n'
                                 'severity = { latest-tag = "error", no-purpose = "error" }\n')
    result = repo.doit("lint", expect=1, env=env)
    assert "models/bot/Modelfile:1: error latest-tag:" in result.out
    assert "models/bot/Modelfile:1: error no-purpose:" in result.out
    assert "warning no-git" in result.out  # other rules keep their own severity
    assert "lint: 2 errors, 1 warning in 1 file" in result.out
    github = repo.doit("lint", "--format", "github", expect=1, env=env).out
    assert "::error file=models/bot/Modelfile,line=1,title=doit-ollama latest-tag::" in github

    # A rule can be made a warning too: an error rule then no longer fails the run.
    repo.write("models/bot/Modelfile", "# bot: the test bot\nFROM base:1b\nPARAMETER temprature 1\n")
    repo.write("pyproject.toml", '[tool.doit-ollama.lint.severity]\n"unknown-parameter" = "warning"\n'
                                 '"latest-tag" = "warning"\n')
    assert "warning unknown-parameter" in repo.doit("lint", env=env).out


def test_a_bad_severity_table_is_one_clear_message(tmp_path: Path) -> None:
    repo, env = lint_repo(tmp_path)
    repo.write("pyproject.toml", '[tool.doit-ollama.lint]\nseverity = { latest-tag = "fatal" }\n')
    result = repo.doit("lint", expect=3, env=env)
    assert 'severity.latest-tag must be "error" or "warning", got \'fatal\'' in result.err
    repo.write("pyproject.toml", '[tool.doit-ollama.lint]\nseverity = { latest-tga = "error" }\n')
    result = repo.doit("lint", env=env)  # a typo in a rule id is a finding, as in disable
    assert "pyproject.toml:2: warning unknown-rule: [tool.doit-ollama.lint] severity names an " \
           "unknown rule 'latest-tga'" in result.out


def test_the_pre_commit_hook_takes_fail_on_and_the_severity_table(tmp_path: Path) -> None:
    repo, env = lint_repo(tmp_path)

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "doit_ollama.lint", *args], cwd=repo.root,
                              env=env, capture_output=True, text=True, check=False, timeout=60)

    assert hook().returncode == 0
    assert hook("--fail-on", "warning").returncode == 1
    assert hook("--fail-on=warning", "models/bot/Modelfile").returncode == 1
    assert hook("--fail-on", "never").returncode == 2
    repo.write("pyproject.toml", '[tool.doit-ollama.lint]\nseverity = { no-purpose = "error" }\n')
    assert "error no-purpose" in hook().stdout and hook().returncode == 1


def test_the_task_offers_the_thresholds_lint_knows() -> None:
    assert doit_checklist.LINT_FAIL_ON == lint.FAIL_ON
