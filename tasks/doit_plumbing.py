"""The doit side shared by every task: run state, database settings, checker, reporter.

Only the doit_* modules import doit. Errors found while loading become doit's
InvalidDodoFile (one line, exit 3); errors while running become TaskFailed (exit 1).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from doit.dependency import FileChangedChecker
from doit.exceptions import InvalidDodoFile, TaskFailed
from doit.reporter import ConsoleReporter

from . import lockfile
from .depcache import DependencyCache
from .errors import DoitOllamaError
from .hashing import DigestCache
from .lockfile import Lock
from .names import ModelName
from .project import STATE_DIR, ModelSource, Project, load_project
from .server import Server, Tag

__all__ = ["DOIT_CONFIG", "REPORT_META", "Explained", "Reporter", "Run", "Sha256Checker", "emit", "loaded", "run"]


def _ensure_state_dir(root: Path) -> Path:
    """Create .doit-ollama/ (ignored by git through its own .gitignore)."""
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# local state of doit-ollama; never commit it\n*\n")
    return state


# doit opens its database before it creates tasks, so the folder must exist on import.
# doit has already changed into the dodo.py's folder at this point.
_ensure_state_dir(Path.cwd())

_MAIN_PID = os.getpid()


def _interrupted(signum: int, frame: Any) -> None:
    """Ctrl-C: stop at once, in every process of the build, with one line instead of a
    traceback from deep inside doit or httpx. Nothing is lost: the lock is only ever
    replaced whole, and it already holds every model that finished."""
    if os.getpid() == _MAIN_PID:
        import multiprocessing

        for child in multiprocessing.active_children():  # doit's workers (-n N)
            try:
                os.kill(child.pid or 0, signal.SIGINT)
            except (ProcessLookupError, ValueError):
                pass
        sys.stderr.write("\ninterrupted: the lock keeps every model that finished; "
                         "run the same command again to continue\n")
        sys.stderr.flush()
    os._exit(130)


# doit has no handler of its own; do not replace one a user installed.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)


def _backend() -> str:
    """doit's sqlite3 file, read through this package's faster backend when doit can find
    it (its entry point is installed with the package), else through doit's own."""
    from importlib.metadata import PackageNotFoundError, distribution

    from .doit_database import NAME

    try:
        points = distribution("doit-ollama").entry_points
    except PackageNotFoundError:  # imported from a source tree, not installed
        return "sqlite3"
    return NAME if any(p.group == "doit.BACKEND" and p.name == NAME for p in points) else "sqlite3"


DOIT_CONFIG: dict[str, Any] = {
    "backend": _backend(),
    "dep_file": f"{STATE_DIR}/doit.sqlite3",
    "default_tasks": ["build"],
}


class Run:
    """What one doit process knows: the project, its models, the lock and one /api/tags."""

    def __init__(self) -> None:
        self.project: Project = load_project()
        self.dependencies = DependencyCache(self.project.state_dir / "dependencies.cache")
        self.models: list[ModelSource] = self.dependencies.models(self.project)
        self.by_name = {m.display: m for m in self.models}
        self.repo = {m.name.key: m.display for m in self.models}
        self.cache = DigestCache(self.project.state_dir / "hashes.sqlite3")
        self._tags: dict[tuple[str, str, str, str], Tag] | None = None
        self._fetch: threading.Thread | None = None
        self._fetched: list[Any] = []
        self._summary: lockfile.Summary | None = None
        self._summary_stamp: tuple[int, ...] | None = None

    def prefetch_tags(self) -> None:
        """Ask /api/tags now, in a thread, so the server answers while doit creates tasks."""
        if self._tags is not None or self._fetch is not None:
            return

        def fetch() -> None:
            try:
                self._fetched.append(Server(self.project.host, timeout=self.project.timeout).tags())
            except BaseException as exc:  # handed to the main thread by tags()
                self._fetched.append(exc)

        self._fetch = threading.Thread(target=fetch, name="doit-ollama-tags", daemon=True)
        self._fetch.start()

    def tags(self) -> dict[tuple[str, str, str, str], Tag]:
        """The server's models, asked once per process (a no-op build asks exactly once)."""
        if self._tags is None:
            if self._fetch is not None:
                self._fetch.join()
                self._fetch = None
                result = self._fetched.pop()
                if isinstance(result, BaseException):
                    raise result
                self._tags = result
            else:
                self._tags = Server(self.project.host, timeout=self.project.timeout).tags()
        return self._tags

    def remember_tags(self, tags: dict[tuple[str, str, str, str], Tag] | None) -> None:
        """Keep a newer listing (made by a build step after its create) for what follows."""
        if tags is not None:
            self._tags = dict(tags)

    def lock(self) -> Lock:
        """The lock as it is now (lockfile decodes the same content only once a process)."""
        return lockfile.read(self.project.lock_path, self.project.lock_cache)

    def summary(self, *, fresh: bool = True) -> lockfile.Summary:
        """Per model (inputs, digest, base name, base digest), as `lock()` but lighter."""
        if not fresh and self._summary is not None:
            return self._summary
        stamp = self._stamp()
        if self._summary is None or stamp != self._summary_stamp:
            self._summary = lockfile.read_summary(self.project.lock_path, self.project.lock_cache)
            self._summary_stamp = stamp
        return self._summary

    def _stamp(self) -> tuple[int, ...]:
        try:
            st = os.stat(self.project.lock_path)
        except FileNotFoundError:
            return (0,)
        # Every write is a rename of a new file, so the inode changes even when the size
        # and a coarse mtime do not.
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)

    def is_current(self, name: str, values: dict[str, Any]) -> bool:
        """The up-to-date rule: locked, as doit last built it, on the server, base unchanged."""
        # A model's own entry: nothing in this run changes it before its own check.
        row = self.summary(fresh=False).get(name)
        if row is None:
            return False
        inputs, digest, base_name, base_digest, registry, pinned = row
        if values.get("inputs") != inputs or values.get("digest") != digest:
            return False  # the lock changed since doit last ran this task (git pull, edit)
        tag = self.tags().get(self.by_name[name].name.key)
        # A tag pulled from the team registry holds the registry's digest of the same model.
        if tag is None or (tag.digest != digest and tag.digest != registry):
            return False
        if base_name is not None:
            base = ModelName.parse(base_name)
            if base.key in self.repo:
                # A base of this repository may have been rebuilt a moment ago in this very
                # run: the lock, updated as each model finishes, has its digest as it is now.
                base_row = self.summary().get(self.repo[base.key])
                current = base_row[1] if base_row else None
            else:
                found = self.tags().get(base.key)
                current = found.digest if found else None
            if current != base_digest and (current is None or current != pinned):
                return False
        return True


_RUN: Run | None = None


_RUN_CWD = ""


def run() -> Run:
    """This process's run state, made on first use in the current folder."""
    global _RUN, _RUN_CWD
    cwd = os.getcwd()
    if _RUN is None or cwd != _RUN_CWD:
        _RUN, _RUN_CWD = Run(), cwd
    return _RUN


def loaded() -> Run:
    """The run state for task creators: load errors end doit with one line (exit 3)."""
    try:
        return run()
    except DoitOllamaError as err:
        raise InvalidDodoFile(str(err)) from None


# --- doit plumbing ------------------------------------------------------------------------


class Sha256Checker(FileChangedChecker):
    """doit's file check with sha256 from the build's own cache instead of md5.

    Like doit's MD5Checker it trusts an unchanged mtime, so an up-to-date check never reads
    a file; when it must hash, the digest lands in the same cache the build uses, so a
    multi-GiB file is hashed once, not once by doit and once by the build.
    """

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        mtime, size, digest = state
        if file_stat.st_mtime == mtime:
            return False
        if file_stat.st_size != size:
            return True
        return bool(run().cache.digest(file_path) != digest)

    def get_state(self, dep: str, current_state: Any) -> Any:
        st = os.stat(dep)
        if current_state and current_state[0] == st.st_mtime:
            return None
        return st.st_mtime, st.st_size, run().cache.digest(dep)


DOIT_CONFIG["check_file_uptodate"] = Sha256Checker


REPORT_META = {"doit_ollama": "report"}


class Explained(TaskFailed):
    """A failure the task has already explained in its own report (exit 1, no repeat)."""


class Reporter(ConsoleReporter):
    """doit's console reporter, minus its own lines around report tasks (verify, status,
    lint): their output is the report itself (possibly JSON), and their failure has already
    been explained in it. Exit codes are unchanged."""

    @staticmethod
    def _is_report(task: Any) -> bool:
        return bool(task.meta) and task.meta.get("doit_ollama") == "report"

    def execute_task(self, task: Any) -> None:
        if not self._is_report(task):
            super().execute_task(task)

    def add_failure(self, task: Any, fail: Any) -> None:
        if self._is_report(task) and isinstance(fail, Explained):
            return
        super().add_failure(task, fail)


DOIT_CONFIG["reporter"] = Reporter


def emit(text: str, output: str) -> None:
    """Write a report to a file (creating folders) or to stdout."""
    if output and output != "-":
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
