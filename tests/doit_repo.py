"""A temporary repository of Modelfiles, and `doit` run in it as a user runs it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from doit_ollama import lockfile
from doit_ollama.lockfile import Lock

DODO = "from doit_ollama.doit_tasks import *  # noqa: F403\n"


@dataclass
class Result:
    """What one doit run printed and returned."""

    returncode: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


@dataclass
class DoitRepo:
    """A repository with a dodo.py, models/ and (after a build) lock/models.lock."""

    root: Path
    host: str

    def write(self, relpath: str, text: str | bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def model(self, name: str, body: str, *, purpose: str = "a model for the tests") -> Path:
        """Write models/<model>/<tag>.Modelfile for `name` ("bot:v1", "team/bot:v1")."""
        repository, tag = name.rsplit(":", 1)
        return self.write(f"models/{repository}/{tag}.Modelfile", f"# {name}: {purpose}\n{body}")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "DOIT_OLLAMA_"))}
        env["OLLAMA_HOST"] = self.host
        env.update(extra)
        return env

    def doit(self, *args: str, expect: int | None = 0, timeout: float = 180,
             env: dict[str, str] | None = None) -> Result:
        """Run `python -m doit ARGS` here; check the exit code and that no traceback leaked."""
        completed = subprocess.run(
            [sys.executable, "-m", "doit", *args], cwd=self.root, env=env or self.env(),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        result = Result(completed.returncode, completed.stdout, completed.stderr)
        assert "Traceback" not in result.output, result.output
        if expect is not None:
            assert result.returncode == expect, (
                f"doit {' '.join(args)} exited {result.returncode}, expected {expect}\n{result.output}")
        return result

    @property
    def lock_path(self) -> Path:
        return self.root / "lock" / "models.lock"

    def lock_bytes(self) -> bytes:
        return self.lock_path.read_bytes()

    def lock(self) -> Lock:
        return lockfile.read(self.lock_path)


def make_repo(root: Path, host: str) -> DoitRepo:
    """A new repository at `root` whose doit talks to `host`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dodo.py").write_text(DODO)
    return DoitRepo(root, host)
