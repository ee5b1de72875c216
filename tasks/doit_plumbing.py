"""The doit side shared by every task: run state, database settings, checker, reporter.

Only the doit_* modules import doit. Errors found while loading become doit's
InvalidDodoFile (one line, exit 3); errors while running become TaskFailed (exit 1).
A run goes on after a failed task (doit's `continue`, on by default here: `doit
--no-continue` stops at the first failure), so one refused model does not keep the others
from being built; the reporter (doit_reporter) ends a failing build with what was and was
not built.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from doit.dependency import FileChangedChecker
from doit.exceptions import InvalidDodoFile

from . import lockfile
from .depcache import DependencyCache
from .doit_reporter import REPORT_META, Explained, Reporter
from .errors import DoitOllamaError, ServerError
from .hashing import DigestCache
from .lockfile import Lock
from .names import ModelName
from .project import STATE_DIR, IgnoredFile, ModelSource, Project, load_project, nothing_found
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


def _project_here() -> Project | None:
    """The project of the current folder, if it has one (a models folder, or extra models);
    its state folder is made here, because doit opens its database before it creates
    tasks. Elsewhere (a subfolder such as models/my-bot, a folder without models) nothing
    is written: the task creators then explain where they looked."""
    try:
        project = load_project()
    except DoitOllamaError:
        return None  # the task creators report it
    if not (project.models_dir.is_dir() or project.extra_models):
        return None
    _ensure_state_dir(project.root)
    return project


# doit has already changed into the dodo.py's folder at this point.
_HERE: tuple[str, Project | None] = (os.getcwd(), _project_here())

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
    # Without a project here there is nothing to remember, and no folder to write.
    "dep_file": f"{STATE_DIR}/doit.sqlite3" if _HERE[1] is not None else ":memory:",
    "default_tasks": ["build"],
    # Build every model that does not depend on a failure (`doit --no-continue` stops at
    # the first one): one refused tag must not keep independent models from being built,
    # and CI sees every failure of a run at once. Models built FROM a failed one are never
    # built (doit's task_dep), and each model's lock entry is written as it finishes.
    "continue": True,
}


class Run:
    """What one doit process knows: the project, its models, the lock and one /api/tags."""

    def __init__(self) -> None:
        cwd, here = _HERE
        self.project: Project = here if here is not None and cwd == os.getcwd() else load_project()
        self.dependencies = DependencyCache(self.project.state_dir / "dependencies.cache")
        self.models: list[ModelSource] = self.dependencies.models(self.project)
        self.ignored: list[IgnoredFile] = self.dependencies.ignored
        if not self.models and not self.ignored:
            raise nothing_found(self.project)
        self.by_name = {m.display: m for m in self.models}
        self.repo = {m.name.key: m.display for m in self.models}
        self.cache = DigestCache(self.project.state_dir / "hashes.sqlite3")
        self._tags: dict[tuple[str, str, str, str], Tag] | None = None
        self._tags_error: ServerError | None = None  # asked once: a down server fails fast
        self._fetch: threading.Thread | None = None
        self._fetched: list[Any] = []
        self._summary: lockfile.Summary | None = None
        self._channels: lockfile.ChannelSummary = {}
        self._summary_stamp: tuple[int, ...] | None = None

    def prefetch_tags(self) -> None:
        """Ask /api/tags now, in a thread, so the server answers while doit creates tasks."""
        if self._tags is not None or self._fetch is not None:
            return

        def fetch() -> None:
            try:
                self._fetched.append(self.server().tags())
            except BaseException as exc:  # handed to the main thread by tags()
                self._fetched.append(exc)

        self._fetch = threading.Thread(target=fetch, name="doit-ollama-tags", daemon=True)
        self._fetch.start()

    def server(self) -> Server:
        """The server builds run against (errors name what chose it)."""
        return Server(self.project.host, timeout=self.project.timeout,
                      origin=self.project.host_origin)

    def tags(self) -> dict[tuple[str, str, str, str], Tag]:
        """The server's models, asked once per process (a no-op build asks exactly once).
        A failure is remembered too: the next model fails at once with the same message."""
        if self._tags is None:
            if self._tags_error is not None:
                raise self._tags_error
            try:
                if self._fetch is not None:
                    self._fetch.join()
                    self._fetch = None
                    result = self._fetched.pop()
                    if isinstance(result, BaseException):
                        raise result
                    self._tags = result
                else:
                    self._tags = self.server().tags()
            except ServerError as err:
                self._tags_error = err
                raise
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
            self._summary, self._channels = lockfile.read_summaries(self.project.lock_path,
                                                                    self.project.lock_cache)
            self._summary_stamp = stamp
        return self._summary

    def channels(self) -> lockfile.ChannelSummary:
        """Per channel of the lock (target, digest), read with the summary."""
        self.summary(fresh=False)
        return self._channels

    def channel_is_current(self, channel: str, digest: str) -> bool:
        """The up-to-date rule of a channel: the server lists it at its locked digest."""
        tag = self.tags().get(ModelName.parse(channel).key)
        return tag is not None and tag.digest == digest

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
