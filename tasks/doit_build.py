"""`doit build`: one sub-task per model tag, up to date by the rules of the build, and one
per channel of the lock, which puts the channel back on a server that lost it."""

from __future__ import annotations

import gc
import hashlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from doit.exceptions import TaskFailed
from doit.task import Task

from .doit_plumbing import Run, loaded, run
from .doit_reporter import CHANNEL_META, GROUP_META, MODEL_META
from .errors import DoitOllamaError, ModelNameError
from .guard import Guard, GuardTimeout
from .names import ModelName
from .project import ModelSource

__all__ = ["task_build"]


def _up_to_date(check: Callable[..., bool], *args: Any) -> Any:
    """A doit `uptodate` item calling `check(*args, values)`; any error means "run it", so
    the action reports it."""

    def item(task: Any, values: dict[str, Any]) -> bool:
        try:
            return check(*args, values)
        except (DoitOllamaError, OSError):
            return False

    # doit asks inspect.signature() of every uptodate item on every run (which arguments
    # to pass); a ready answer saves ~10 ms per 1000 models.
    item.__signature__ = _UPTODATE_SIGNATURE  # type: ignore[attr-defined]
    return item


def _model_is_current(name: str, values: dict[str, Any]) -> bool:
    """Locked, as doit last built it, on the server, base unchanged (Run.is_current)."""
    return run().is_current(name, values)


def _channel_is_current(channel: str, digest: str, values: dict[str, Any]) -> bool:
    """The server lists the channel at its locked digest."""
    return run().channel_is_current(channel, digest)


def _signature_of(task: Any, values: dict[str, Any]) -> None: ...


_UPTODATE_SIGNATURE = inspect.signature(_signature_of)


def _build_action(name: str, relock: bool) -> Any:
    from .build import Builder  # the build step's imports are not needed to find a no-op

    state = run()
    project = state.project
    # Two builds started at once in one repository take turns per model: the second one
    # waits, then finds the model up to date instead of creating it again.
    key = hashlib.sha256(name.lower().encode()).hexdigest()[:16]
    guard = Guard(project.state_dir / "building" / f"{key}.lock", timeout=project.timeout)
    try:
        (project.state_dir / "building").mkdir(exist_ok=True)
        with guard:
            # Start from this process's listing of the server (taken for the up-to-date
            # checks, or after the previous create); keep the builder's newer one.
            builder = Builder(project, state.server(), state.cache.digest,
                              known_tags=state.tags())
            try:
                return builder.build(state.by_name[name], relock=relock, repo=state.repo)
            finally:
                state.remember_tags(builder.known_tags)
    except GuardTimeout:
        return TaskFailed(f"{name}: another process has been building this model for more than "
                          f"{project.timeout:g} s; is a build stuck? Stop it and try again.")
    except DoitOllamaError as err:
        text = str(err)
        return TaskFailed(text if text.startswith(name) else f"{name}: {text}")


def _channel_action(channel: str) -> Any:
    from . import channels  # only when a channel must be restored

    state = run()
    try:
        outcome = channels.restore(state.project, channel, state.server(), state.tags())
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    if outcome == "restored":
        target, digest = state.channels()[channel]
        print(f"{channel}: restored the channel -> {target} ({digest.removeprefix('sha256:')[:12]})",
              flush=True)
    return {"outcome": outcome}


def _check_layout() -> Any:
    """The action of `build` itself, after every model: a Modelfile that cannot be built
    because of where it is fails the build (after the others are built)."""
    state = run()
    lines = [f"{i.describe()}\n  fix: {i.fix}" for i in state.ignored if i.misplaced]
    if not state.models:
        lines.append(f"nothing to build: no model under {state.project.relative(state.project.models_dir)}/ "
                     "has a valid name (see above)")
    return TaskFailed("\n".join(lines))


class _BuildGroup(Task):  # type: ignore[misc]
    """The task `build` (every model): `doit build --relock` hands --relock to each model's
    build, as `doit build:<model> --relock` gives it to one."""

    def __init__(self, relock: dict[str, Any], **kwargs: Any) -> None:
        super().__init__("build", **kwargs)
        self.relock = relock  # the parameter every model's build shares

    def init_options(self, args: Any = None) -> Any:
        rest = super().init_options(args)
        if self.options.get("relock"):
            # The model tasks read their options when they run, after this.
            self.relock["default"] = True
        return rest


def _dependencies(state: Run, source: ModelSource) -> tuple[list[str], list[str]]:
    """file_dep and task_dep of a model; a Modelfile that does not parse gets only itself."""
    files = [source.path]
    tasks: list[str] = []
    try:
        deps = state.dependencies.get(source)
    except (DoitOllamaError, OSError):
        return files, tasks  # the build action will report the problem with its location
    files += deps.files
    if deps.base is not None:
        base = ModelName.parse(deps.base)
        if base.key in state.repo and base.key != source.name.key:
            tasks.append(f"build:{state.repo[base.key]}")
    return files, tasks


# doit's own commands; any other first word names tasks to run.
_DOIT_COMMANDS = frozenset({"auto", "clean", "dumpdb", "forget", "help", "ignore", "info", "list",
                            "reset-dep", "strace", "tabcompletion"})


def _serial_build_requested(argv: list[str]) -> bool:
    """True if this process was started to run build tasks in one process (`doit`,
    `doit build`, `doit build:x`), judged from the command line. With `-n`, doit forks
    workers, and a thread in flight at a fork is unsafe, so no prefetch there."""
    words = argv[1:]
    if any(w.startswith(("-n", "--process", "-P", "--parallel")) for w in words):
        return False
    if any(w in _DOIT_COMMANDS for w in words):
        return False
    tasks = [w for w in words if not w.startswith("-")]
    return not tasks or any(t == "build" or t.startswith("build:") for t in tasks)


def task_build() -> Any:
    """Build every stale model tag and record it in the lock."""
    state = loaded()
    if _serial_build_requested(sys.argv):
        state.prefetch_tags()  # the one /api/tags overlaps with creating the tasks
    relock = {"name": "relock", "long": "relock", "type": bool, "default": False,
              "help": "accept changed inputs of a released tag and record the new digest"}
    misplaced = any(i.misplaced for i in state.ignored) or not state.models
    yield _BuildGroup(
        relock, params=[dict(relock)], doc=task_build.__doc__, has_subtask=True, meta=GROUP_META,
        # Only when there is something to say: an action makes doit print the task's name.
        actions=[_check_layout] if misplaced else None, verbosity=2)
    for source in state.models:
        file_dep, task_dep = _dependencies(state, source)
        yield {
            "name": source.display,
            "doc": f"build {source.display} from {source.relpath}",
            "actions": [(_build_action, [source.display])],
            "params": [relock],
            "file_dep": file_dep,
            "task_dep": task_dep,
            "uptodate": [_up_to_date(_model_is_current, source.display)],
            "verbosity": 2,
            "meta": MODEL_META,
        }
    try:
        channels = state.channels()
    except DoitOllamaError:
        channels = {}  # a lock that cannot be read: every model's build says why
    for channel, (target, digest) in sorted(channels.items()):
        try:
            if ModelName.parse(channel).key in state.repo:
                continue  # also has a Modelfile: `doit verify` reports the conflict
        except ModelNameError:
            continue  # `doit verify` reports it
        yield {
            "name": channel,
            "doc": f"restore the channel {channel} -> {target} on the server",
            "actions": [(_channel_action, [channel])],
            "task_dep": [f"build:{target}"] if target in state.by_name else [],
            "uptodate": [_up_to_date(_channel_is_current, channel, digest)],
            "verbosity": 2,
            "meta": CHANNEL_META,
        }
    state.dependencies.save()
    # Everything made so far (imports, the run state, the task list) lives until the process
    # ends. Without this, the cyclic garbage collector walks all of it again in a full
    # collection while doit checks the tasks: ~15 ms of a 1000-model no-op, for nothing.
    gc.freeze()
