"""doit's console reporter, made to say what a build did and did not do.

doit goes on after a failed model (`continue` is on by default, see doit_plumbing), so one
refused tag no longer hides the models after it; this reporter then ends a failing run with
what happened to each model: built, up to date, failed (and why), not built because what it
is built FROM failed. doit counts a task skipped for a failed dependency as an error (exit 2,
"a task raised"); here that is an ordinary failure, already explained, so the run exits 1.
Report tasks (verify, status, lint) print their own report, so their doit lines are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from doit.exceptions import TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

__all__ = ["CHANNEL_META", "GROUP_META", "MODEL_META", "REPORT_META", "BuildTally", "Explained",
           "Reporter"]

REPORT_META: Final = {"doit_ollama": "report"}
MODEL_META: Final = {"doit_ollama": "model"}  # build:<model>
CHANNEL_META: Final = {"doit_ollama": "channel"}  # build:<channel>, which restores the channel
GROUP_META: Final = {"doit_ollama": "build"}  # build itself (fails for misplaced Modelfiles)

_SHOWN: Final = 10  # names listed on one line of the summary before "and N more"


class Explained(TaskFailed):
    """A failure the task has already explained in its own report (exit 1, no repeat)."""


def _kind(task: Any) -> str | None:
    return task.meta.get("doit_ollama") if task.meta else None


def _short(task_name: str) -> str:
    """build:my-bot:v1 -> my-bot:v1."""
    return task_name.split(":", 1)[1] if ":" in task_name else task_name


def _reason(name: str, message: str) -> str:
    """A failure message in one line: its first line (followed by the list it introduces,
    if it ends with a colon), without the model name it starts with."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "failed"
    first = lines[0]
    if first.endswith(":"):
        items = []
        for line in lines[1:]:
            if not line.startswith("- "):
                break
            items.append(line[2:])
        first = f"{first[:-1]}: {'; '.join(items)}" if items else first[:-1]
    return first.removeprefix(f"{name}: ")


def _names(names: list[str]) -> str:
    if len(names) <= _SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:_SHOWN])} and {len(names) - _SHOWN} more"


@dataclass
class BuildTally:
    """What a build run did to each model and channel, in the order it happened."""

    built: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    not_built: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    ignored: list[str] = field(default_factory=list)  # `doit ignore`d by the user

    @property
    def failing(self) -> bool:
        return bool(self.failed or self.not_built)

    def render(self, attempted: Iterable[str]) -> str:
        """The summary that ends a failing run; `attempted`: every model and channel the
        run was asked to build (those without an outcome were not run at all)."""
        seen = {*self.built, *self.up_to_date, *self.ignored, *(n for n, _ in self.failed),
                *(n for n, _ in self.not_built)}
        not_run = [n for n in attempted if n not in seen]
        counts = [f"{len(self.built)} built", f"{len(self.up_to_date)} up to date",
                  f"{len(self.failed)} failed"]
        if self.not_built:
            counts.append(f"{len(self.not_built)} not built because a base failed")
        if not_run:
            counts.append(f"{len(not_run)} not run")
        lines = ["build summary: " + ", ".join(counts)]
        by_reason: dict[str, list[str]] = {}
        for name, reason in self.failed:
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            # "a:v1 is a released tag ..." names its model already
            lines.append(f"  failed: {reason}" if names == [reason.split(" ", 1)[0]] else
                         f"  failed: {_names(names)}: {reason}")
        lines += [f"  not built: {name} ({why})" for name, why in self.not_built]
        if not_run:
            lines.append(f"  not run: {_names(not_run)} (the run stopped at the first failure: "
                         "--no-continue)")
        return "\n".join(lines) + "\n"


def _attempted(tasks: Mapping[str, Any], selected: Iterable[str]) -> list[str]:
    """The models and channels among the selected tasks and what they depend on."""
    names: list[str] = []
    seen: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name in seen or name not in tasks:
            continue
        seen.add(name)
        task = tasks[name]
        todo += task.task_dep
        if _kind(task) in ("model", "channel"):
            names.append(_short(name))
    return sorted(names)


class Reporter(ConsoleReporter):
    """doit's console reporter, plus the build summary and exit code 1 for a build that
    failed in the ordinary way; minus doit's own lines around report tasks (their output is
    the report itself, possibly JSON, and their failure is explained in it)."""

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.tally = BuildTally()
        self._tasks: Mapping[str, Any] = {}
        self._selected: list[str] = []
        self._done: list[tuple[Any, str | None]] = []  # (task, "up to date"/"ignored"/None)
        self._first: dict[str, str] = {}  # a failure's reason -> the first task that had it
        self._unmet = False  # a task skipped because a task it depends on failed
        self._errors = False  # a failure that is not ordinary (a bug): doit's exit 2 stands

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        self._tasks, self._selected = tasks, list(selected_tasks)
        if any(t == "build" or t.startswith("build:") for t in self._selected):
            from .doit_plumbing import run  # the run state the task creators made

            for ignored in run().ignored:
                if not ignored.misplaced:  # those fail the build, with the same text
                    self.write(f"warning: {ignored.describe()}\n  fix: {ignored.fix}\n")

    def execute_task(self, task: Any) -> None:
        if _kind(task) != "report":
            super().execute_task(task)

    # Successes are only noted here (a no-op build of 1000 models passes through these
    # 1000 times) and sorted out for the summary, which only a failing run prints.

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        self._done.append((task, "up to date"))

    def skip_ignore(self, task: Any) -> None:
        super().skip_ignore(task)
        self._done.append((task, "ignored"))

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        self._done.append((task, None))

    def _count_successes(self) -> None:
        for task, how in self._done:
            if _kind(task) not in ("model", "channel"):
                continue
            if how is None:  # executed: the build step says whether it changed anything
                how = "up to date" if (task.values or {}).get("outcome") == "up to date" else "built"
            {"up to date": self.tally.up_to_date, "ignored": self.tally.ignored,
             "built": self.tally.built}[how].append(_short(task.name))

    def add_failure(self, task: Any, fail: Any) -> None:
        kind = _kind(task)
        if isinstance(fail, UnmetDependency):
            self._unmet = True
        elif not isinstance(fail, TaskFailed):
            self._errors = True
        if kind == "report" and isinstance(fail, Explained):
            return
        if kind not in ("model", "channel", "build"):
            super().add_failure(task, fail)
            return
        if isinstance(fail, UnmetDependency):
            if kind == "model":
                self._not_built(task, fail, "its base")
            elif kind == "channel":
                self._not_built(task, fail, "its version")
            return  # the group task `build`: every model's outcome is in the summary
        if kind == "build":
            from .doit_plumbing import run

            self.tally.failed += [(i.relpath, i.reason) for i in run().ignored if i.misplaced]
            super().add_failure(task, fail)
            return
        name = _short(task.name)
        reason = _reason(name, fail.message)
        self.tally.failed.append((name, reason))
        first = self._first.setdefault(reason, task.name)
        if first != task.name:  # e.g. every model of a run whose server is down
            self.write(f"{task.name}: failed as {first} did (above)\n")
            return
        super().add_failure(task, fail)

    def _not_built(self, task: Any, fail: Any, what: str) -> None:
        bases = ", ".join(_short(t) for t in fail.message.split())
        why = f"{what} {bases} did not build"
        self.tally.not_built.append((_short(task.name), why))
        self.write(f"{task.name}: not built: {why}\n")

    def complete_run(self) -> None:
        super().complete_run()
        if self.tally.failing:
            self._count_successes()
            self.write("#" * 40 + "\n" + self.tally.render(_attempted(self._tasks, self._selected)))
        if self._unmet and not self._errors and not self.runtime_errors:
            # doit would exit 2 ("error") because models were skipped for a failed base;
            # that failure is an ordinary one, explained above: exit 1, as for any failure.
            self.outstream.flush()
            raise SystemExit(1)
