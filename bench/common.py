"""What every benchmark shares: the Ollama test double as a process, repositories of
Modelfiles in a temporary folder, `python -m doit` run the way a user runs it, and the
figure lines.

The double runs as a **subprocess** (`python -m tests.ollama_double`), not as a thread of
the benchmark: it is then a separate program, like a real `ollama serve`, so its CPU time
never competes with the benchmark's own Python for one GIL, its memory never counts towards
the build's peak RSS, and it is stopped by PID whatever happens to the benchmark. It is
driven through its HTTP test controls (`/_double/...`, docs/testing.md).
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

PYTHON = sys.executable
DODO = "from doit_ollama.doit_tasks import *  # noqa: F403\n"
MiB = 1 << 20
GiB = 1 << 30
BASE_MODEL = "base:1b"


# --- figures --------------------------------------------------------------------------------


@dataclass
class Figure:
    """One printed line: `name  value  unit  target  PASS|FAIL|INFO`.

    `kind` is "count" (request counts, bytes hashed or uploaded, lock completeness: enforced
    in every mode), "timing" (wall times, throughput, speed-ups, memory: enforced only in a
    full run, because CI machines are noisy) or "info" (a reference value, no target).
    """

    name: str
    value: float | int | str
    unit: str
    target: str = "-"
    ok: bool | None = None
    kind: str = "info"

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "INFO"
        return "PASS" if self.ok else "FAIL"

    def line(self) -> str:
        value = self.value
        if isinstance(value, float):
            value = f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return f"{self.name:<40} {value!s:>10}  {self.unit:<9} {self.target:<12} {self.verdict}"


class Report:
    """Collects figures and prints each as soon as it is known."""

    def __init__(self, out: Callable[[str], None] | None = None):
        self.figures: list[Figure] = []
        self._out = out or (lambda text: print(text, flush=True))

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        self._out(figure.line())
        return figure

    def note(self, text: str) -> None:
        """A comment line (context, not a figure)."""
        self._out(f"# {text}")

    def count(self, name: str, value: int, unit: str, *, equals: int | None = None,
              at_least: int | None = None) -> Figure:
        if equals is not None:
            target, ok = f"=={equals}", value == equals
        else:
            assert at_least is not None
            target, ok = f">={at_least}", value >= at_least
        return self.add(Figure(name, value, unit, target, ok, "count"))

    def at_most(self, name: str, value: float, unit: str, limit: float) -> Figure:
        return self.add(Figure(name, value, unit, f"<={limit:g}", value <= limit, "timing"))

    def below(self, name: str, value: float, unit: str, limit: float) -> Figure:
        return self.add(Figure(name, value, unit, f"<{limit:g}", value < limit, "timing"))

    def at_least(self, name: str, value: float, unit: str, limit: float) -> Figure:
        return self.add(Figure(name, value, unit, f">={limit:g}", value >= limit, "timing"))

    def info(self, name: str, value: float | str, unit: str) -> Figure:
        return self.add(Figure(name, value, unit))


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# --- temporary folders --------------------------------------------------------------------


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder, removed afterwards whatever happens (big files included)."""
    path = Path(tempfile.mkdtemp(prefix=f"doit-ollama-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


# --- the test double as a process ---------------------------------------------------------


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the benchmark dies (Linux), so that even a
    benchmark killed with SIGKILL leaves no server or build running."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# the double listens on 127.0.0.1: never through a proxy from the environment
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Double:
    """`python -m tests.ollama_double` in a subprocess, driven over its HTTP controls."""

    def __init__(self, models_dir: Path, registry_dir: Path | None = None):
        self.models_dir = models_dir
        self.registry_dir = registry_dir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.host = ""

    def start(self, timeout: float = 30.0) -> Double:
        args = [PYTHON, "-m", "tests.ollama_double", "--models", str(self.models_dir), "--port", "0"]
        if self.registry_dir is not None:
            args += ["--registry", str(self.registry_dir)]
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                                     env=clean_env(),
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if "listening on" in line:
                    self.url = line.split()[-1]
                    self.host = self.url.split("://", 1)[1]
                    return self
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the Ollama test double did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, a bounded wait, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Double:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP -------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, timeout: float = 600.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with _NO_PROXY.open(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def requests(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/_double/requests")["requests"])

    def reset_requests(self) -> None:
        self.call("DELETE", "/_double/requests")

    def delay(self, method: str, path: str, seconds: float) -> None:
        """Delay every matching request (over HTTP a fault applies once unless times is null)."""
        self.call("POST", "/_double/faults", {"kind": "delay", "method": method, "path": path,
                                              "seconds": seconds, "times": None})

    def pull(self, name: str) -> None:
        reply = self.call("POST", "/api/pull", {"model": name, "stream": False})
        if not reply or reply.get("status") != "success":
            raise RuntimeError(f"pull {name} failed: {reply}")

    def delete(self, name: str) -> None:
        self.call("DELETE", "/api/delete", {"model": name})


def count(log: list[dict[str, Any]], method: str | None = None, path: str | None = None,
          status: int | None = None) -> int:
    """Requests in a log that match (path may end in * for a prefix)."""

    def match(record: dict[str, Any]) -> bool:
        if method is not None and record["method"].upper() != method:
            return False
        if path is not None:
            if path.endswith("*"):
                if not record["path"].startswith(path[:-1]):
                    return False
            elif record["path"] != path:
                return False
        return status is None or record["status"] == status

    return sum(1 for record in log if match(record))


def publish_base(registry_dir: Path, work: Path, name: str = BASE_MODEL) -> None:
    """Put a small base model into the double's registry folder (what `FROM base:1b` pulls)."""
    from tests.gguf_maker import make_gguf
    from tests.ollama_double import publish_model

    gguf = make_gguf(work / "base.gguf", 1)
    publish_model(registry_dir, name, gguf)
    gguf.unlink()


# --- repositories and doit ----------------------------------------------------------------


_PYCACHE: list[Path] = []


def use_bytecode_cache(folder: Path) -> None:
    """Let every Python started from now on keep compiled bytecode under `folder`.

    A user's Python caches bytecode in __pycache__; a machine with PYTHONDONTWRITEBYTECODE
    set (some CI images and sandboxes) would otherwise compile doit_ollama from source on
    every run and measure that instead. PYTHONPYCACHEPREFIX keeps the cache in the
    benchmark's temporary folder, so the source tree is left untouched.
    """
    _PYCACHE[:] = [folder]


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment without OLLAMA_* and DOIT_OLLAMA_* (never a real server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "DOIT_OLLAMA_"))}
    if _PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE[0])
    env.update(extra)
    return env


def warm_bytecode(cwd: Path) -> None:
    """Compile (into the bytecode cache) everything a build imports, doit's workers included."""
    imports = "import doit.doit_cmd, ollama, doit_ollama.doit_tasks, doit_ollama.build"
    subprocess.run([PYTHON, "-c", imports], cwd=cwd, env=clean_env(), check=True)


def model_text(name: str, system: str, base: str = BASE_MODEL) -> str:
    return (f"# {name}: benchmark model\nFROM {base}\nSYSTEM \"\"\"{system}\"\"\"\n"
            f"PARAMETER temperature 0\n")


def model_path(root: Path, name: str) -> Path:
    repository, tag = name.rsplit(":", 1)
    return root / "models" / repository / f"{tag}.Modelfile"


def write_model(root: Path, name: str, text: str) -> Path:
    path = model_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dodo.py").write_text(DODO)
    return root


@dataclass
class DoitRun:
    returncode: int
    seconds: float
    out: str
    err: str
    cpu: float = 0.0  # user + system seconds of doit and the children it waited for

    def check(self, what: str) -> DoitRun:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited {self.returncode}:\n{self.out[-3000:]}\n{self.err[-3000:]}")
        return self


def doit(repo: Path, *args: str, env: dict[str, str], timeout: float = 1800.0,
         wrapper: list[str] | None = None) -> DoitRun:
    """`python -m doit ARGS` in `repo`, timed from spawn to exit (wall clock)."""
    command = [*(wrapper or []), PYTHON, "-m", "doit", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Its own process group, so that doit's workers (-n) and a wrapper's child can be
    # stopped together, by that group's id, if the benchmark gives up or is interrupted.
    proc = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise RuntimeError(f"doit {' '.join(args)} did not finish within {timeout:g} s") from None
    except BaseException:  # Ctrl-C, SIGTERM: stop the build too
        _kill_group(proc)
        raise
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return DoitRun(proc.returncode, seconds, out, err, cpu)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group this benchmark created for `proc`; bounded wait."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass


def read_stats(path: Path) -> list[dict[str, Any]]:
    """The DOIT_OLLAMA_STATS events a build appended (none if the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stat_bytes(events: list[dict[str, Any]], event: str) -> int:
    return sum(int(e["bytes"]) for e in events if e["event"] == event)


def locked_models(repo: Path) -> set[str]:
    from doit_ollama import lockfile

    return set(lockfile.read(repo / "lock" / "models.lock").models)
