"""A pyproject.toml that is not valid TOML (issue 14, item 8): one message with the path and the
line, exit 3, no traceback, from every way a user starts doit-ollama. doit itself parses the
file before it loads the dodo.py; tasks/startup.py (installed as doit_ollama.pth) handles that."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doit_repo import DoitRepo, make_repo

BROKEN = {  # pyproject.toml text -> the line the message must name
    '[tool.doit-ollama]\nmodels = models\n': 2,  # an unquoted string
    '[tool.doit-ollama]\nhost = "a:1"\n\n[tool.doit-ollama.lint\ndisable = []\n': 4,
    '[tool.doit-ollama]\nlock = [\n': 3,  # at the end of the file
}


@pytest.fixture
def repo(tmp_path: Path) -> DoitRepo:
    installed = [Path(folder, "doit_ollama.pth") for folder in site.getsitepackages()]
    assert any(p.exists() for p in installed), (
        "doit_ollama.pth is not installed in this environment: reinstall the package "
        "(.venv/bin/pip install -e '.[test]'; setup.py adds the file)")
    repo = make_repo(tmp_path / "repo", "127.0.0.1:9")  # never reached
    repo.model("bot:v1", "FROM base:1b\n")
    return repo


def one_line_error(output: str, repo: DoitRepo, line: int) -> None:
    assert output.count("\n") == 1, output
    assert f"{repo.root.resolve()}/pyproject.toml:{line}: invalid TOML: " in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("text", list(BROKEN))
@pytest.mark.parametrize("command", [["build"], ["lint"], ["verify", "--offline"], ["list"]])
def test_doit_reports_a_broken_pyproject_in_one_line_and_exits_3(repo: DoitRepo, text: str,
                                                                  command: list[str]) -> None:
    repo.write("pyproject.toml", text)
    result = repo.doit(*command, expect=3)
    assert result.out == ""
    assert result.err.startswith("ERROR: ")
    one_line_error(result.err, repo, BROKEN[text])
    assert not (repo.root / "lock").exists()


def test_the_console_script_and_the_pre_commit_hook_say_the_same(repo: DoitRepo) -> None:
    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodels = models\n')
    script = Path(sys.executable).with_name("doit-ollama")
    for args in ([str(script), "build"], [sys.executable, "-m", "doit_ollama.lint"]):
        result = subprocess.run(args, cwd=repo.root, env=repo.env(), capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 3, result
        assert result.stdout == ""
        one_line_error(result.stderr, repo, 2)


def test_other_programs_keep_their_own_tracebacks(tmp_path: Path) -> None:
    """The start-up hook acts only on doit's own command line reading a TOML file."""
    (tmp_path / "pyproject.toml").write_text("x = \n")
    code = "import tomllib; tomllib.loads(open('pyproject.toml').read())"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "TOMLDecodeError" in result.stderr
