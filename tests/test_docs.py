"""The docs show what the product does: every `sh` block of the documents below is run, command
by command, in a fresh copy of this repository's example models (a git checkout, with the
Makefile) against the Ollama test double, and each command must exit as its comment says
(`(exit N)`, else 0) without a traceback, printing what the comment quotes.

To check a new block, write it in a document below; it is run as it is. A block that needs
what a fresh example does not have gets a few commands in SETUP; a block that cannot run
here goes in NOT_RUN, with the reason and the test that covers it instead.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_commands import Block, blocks
from tests.gguf_maker import make_gguf
from tests.ollama_double import OllamaDouble, publish_model

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/checklist.md", "docs/ci.md", "docs/architecture.md")

# (document, first command of the block) -> why it is not run here, and what checks it.
NOT_RUN = {
    ("README.md", "make demo"):
        "needs a clone of this repository and a fresh .venv (a 30 s install): "
        "tests/test_first_lines.py runs it with Debian's externally-managed Python",
}

# (document, first command of the block) -> commands that make the state the text assumes.
SETUP = {
    # "Rolling back is promoting the old version": one that passed its tests before.
    ("docs/checklist.md", "doit build && doit test"):
        ["cp models/my-bot/v1.1.test.toml models/my-bot/v1.0.test.toml"],
    # docs/ci.md's jobs run in a repository whose lock is committed.
    ("docs/ci.md", "doit lint --fail-on warning --format github"):
        ["doit build", "git add lock && git commit -q -m lock"],
    # The emergency override promotes my-bot:v1.2, which the README's workflow creates.
    ("docs/checklist.md", 'doit promote --force --reason "hotfix for incident 42" my-bot:prod my-bot:v1.2'):
        ["cp models/my-bot/v1.1.Modelfile models/my-bot/v1.2.Modelfile", "doit build"],
}

# What the double answers the smoke tests with (it runs no model): my-bot's JSON contract.
REPLY = ('{"answer": "I do not know; please ask the support team.", "confidence": 0.3, '
         '"sources": []}')
# The user's $EDITOR in the README's workflow: it changes the SYSTEM prompt of the file.
EDITOR = """#!{python}
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text.replace('SYSTEM \"\"\"', 'SYSTEM \"\"\"Be brief. ', 1))
"""


def every_block() -> list[Block]:
    return [block for doc in DOCS for block in blocks(ROOT, doc)]


def git(root: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture
def example(tmp_path: Path) -> tuple[Path, dict[str, str], OllamaDouble]:  # type: ignore[misc]
    """This repository's example models, as a user's repository, and a double that serves
    their base (qwen2.5:0.5b, a tiny GGUF standing in for it)."""
    registry = tmp_path / "registry"
    publish_model(registry, "qwen2.5:0.5b", make_gguf(tmp_path / "base.gguf", 1))
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "models", repo / "models")
    for name in ("dodo.py", "Makefile"):
        shutil.copy(ROOT / name, repo / name)
    editor = tmp_path / "bin" / "editor"
    editor.parent.mkdir()
    editor.write_text(EDITOR.format(python=sys.executable))
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "DOIT_OLLAMA_"))}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # doit
        "EDITOR": str(editor),
        "GIT_AUTHOR_NAME": "doc", "GIT_AUTHOR_EMAIL": "doc@example.com",
        "GIT_COMMITTER_NAME": "doc", "GIT_COMMITTER_EMAIL": "doc@example.com",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    })
    git(repo, env, "init", "-q")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "-m", "models")
    with OllamaDouble(tmp_path / "server", registry_dir=registry) as double:
        env["OLLAMA_HOST"] = double.host
        for model in ("my-bot:v1.0", "my-bot:v1.1", "my-bot:v1.2"):
            double.controls.set_reply(model, REPLY)
        yield repo, env, double


def shell(repo: Path, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("block", every_block(), ids=lambda b: b.id)
def test_every_command_the_docs_show_runs_as_they_say(
        block: Block, example: tuple[Path, dict[str, str], OllamaDouble]) -> None:
    reason = NOT_RUN.get((block.doc, block.first))
    if reason is not None:
        pytest.skip(f"not run here: {reason}")
    repo, env, _double = example
    for command in SETUP.get((block.doc, block.first), []):
        ran = shell(repo, env, command)
        assert ran.returncode == 0, f"setup {command}\n{ran.stdout}{ran.stderr}"
    for command in block.commands:
        ran = shell(repo, env, command.text)
        said = f"{block.doc}:{command.line}: `{command.text}` exited {ran.returncode}, " \
               f"the doc says {command.expect}\n{ran.stdout}{ran.stderr}"
        assert ran.returncode == command.expect, said
        assert "Traceback" not in ran.stdout + ran.stderr, said
        for text in command.says:
            assert text in ran.stdout + ran.stderr, f"{said}\nthe doc quotes: {text}"


def test_the_lists_name_blocks_that_exist() -> None:
    """A block renamed in a doc must not leave a stale entry that skips nothing."""
    present = {(block.doc, block.first) for block in every_block()}
    assert set(NOT_RUN) <= present, set(NOT_RUN) - present
    assert set(SETUP) <= present, set(SETUP) - present


def test_commands_and_their_exit_codes_are_read_from_the_text(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text(
        "# doc\n\n```sh\ndoit build    # builds\n"
        "doit build   # ...refused (exit 1): \"a # in quotes\" and \"more\"\n"
        "doit promote --reason \"fix #42\" \\\n    a b  # joined\n```\n\n"
        "```yaml\nrun: doit verify\n```\n\n```sh title\n# a comment alone\n```\n")
    (first, second) = blocks(tmp_path, "doc.md")
    assert [(c.line, c.text, c.expect, c.says) for c in first.commands] == [
        (4, "doit build", 0, ()), (5, "doit build", 1, ("a # in quotes", "more")),
        (6, 'doit promote --reason "fix #42" a b', 0, ())]
    assert second.commands == () and second.line == 14
