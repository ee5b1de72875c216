"""A real Ollama server for the real-server tier: started by the tests, stopped by its PID.

`RealOllama(binary, workdir).start()` runs `ollama serve` on 127.0.0.1 and a free port, with
its own models folder and HOME under `workdir` (a fresh server: no models, its own key pair)
and OLLAMA_NO_CLOUD=1. The suite finds the binary through OLLAMA_TEST_BINARY; `.ci/run`
points it at ../shared/ollama/bin/ollama when that exists.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["RealOllama", "free_port"]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (the runners `ollama serve` started), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


class RealOllama:
    """One `ollama serve` process on loopback with a private models folder."""

    def __init__(self, binary: str | Path, workdir: Path, *, name: str = "ollama"):
        self.binary = Path(binary)
        self.workdir = workdir
        self.name = name
        self.models_dir = workdir / "models"
        self.home = workdir / "home"
        self.log_path = workdir / "serve.log"
        self.port = 0
        self.version = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """What OLLAMA_HOST takes: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
        env.update(OLLAMA_HOST=self.host, OLLAMA_MODELS=str(self.models_dir), HOME=str(self.home),
                   OLLAMA_NO_CLOUD="1")
        return env

    def start(self) -> RealOllama:
        """Start the server and wait until /api/version answers; raise with its log if not."""
        if not self.binary.is_file():
            raise FileNotFoundError(f"no Ollama binary at {self.binary}")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "serve"], env=self.env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/version", timeout=2) as response:
                    self.version = json.loads(response.read())["version"]
                    return self
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and any runner it left, by PID."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        runners = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        for pid in runners:  # normally gone with the server; never leave one running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def restart(self) -> None:
        """Stop and start again on the same folders (a new port)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> RealOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def answers(url: str) -> bool:
    """True if an Ollama server answers /api/version at `url`."""
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=5):
            return True
    except (OSError, urllib.error.URLError):
        return False
