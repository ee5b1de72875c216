"""`doit lint`, `doit test`, `doit promote` and `doit fmt`: the stability checklist as tasks.

The logic lives in lint.py, smoke.py, channels.py and fmt.py; this module only turns doit
parameters into calls and outcomes into exit codes (TaskFailed: exit 1).
"""

from __future__ import annotations

from typing import Any

from doit.exceptions import TaskFailed

from .doit_plumbing import REPORT_META, Explained, emit, loaded, run
from .errors import DoitOllamaError, ServerError
from .server import Server

# The checklist's modules (lint, smoke, channels, fmt and the parser under them) are imported
# inside the actions: loading them on every doit run cost a no-op build ~20 ms.
LINT_FORMATS = ("text", "json", "github")  # keep equal to lint.FORMATS
LINT_FAIL_ON = ("error", "warning")  # keep equal to lint.FAIL_ON

__all__ = ["task_fmt", "task_lint", "task_promote", "task_test"]


# --- lint --------------------------------------------------------------------------------------


def _lint_action(format: str, output: str, fail_on: str) -> Any:
    from . import lint

    state = run()
    try:
        report = lint.lint_project(state.project, fail_on=fail_on)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    emit(lint.render(report, format), output)
    if output and output != "-":  # a report in a file: the text still goes to the console
        emit(lint.render(report, "text"), "")
    if not report.ok:
        if report.errors:
            return Explained(f"lint: {report.errors} error{'s' * (report.errors != 1)} (see above)")
        return Explained(f"lint: {report.warnings} warning{'s' * (report.warnings != 1)} "
                         "and --fail-on warning (see above)")
    return None


def task_lint() -> Any:
    """Check every Modelfile against the stability checklist; exit 1 on errors."""
    loaded()
    return {
        "actions": [_lint_action],
        "params": [
            {"name": "format", "long": "format", "type": str, "default": "text",
             "choices": [(f, "") for f in LINT_FORMATS], "help": "report format"},
            {"name": "output", "long": "output", "short": "o", "type": str, "default": "",
             "help": "write the report to this file (text still goes to the console)"},
            {"name": "fail_on", "long": "fail-on", "type": str, "default": "error",
             "choices": [(f, "") for f in LINT_FAIL_ON],
             "help": "least severe finding that fails the run (exit 1): error or warning"},
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }


# --- test --------------------------------------------------------------------------------------


def _test_models(names: list[str] | None, force: bool) -> Any:
    from . import smoke

    state = run()
    project = state.project
    server: Server | None = None

    def make_server() -> Server:
        nonlocal server
        if server is None:
            server = Server(project.host, timeout=project.timeout)
        return server

    listing: list[Any] = []

    def tags() -> Any:
        # Every model checks the server's digest before its stored result is reused: one
        # /api/tags for the run, and a server that is down is asked once, not once a model.
        if not listing:
            try:
                listing.append(state.tags())
            except ServerError as err:
                listing.append(err)
        if isinstance(listing[0], ServerError):
            raise listing[0]
        return listing[0]

    try:
        lock = state.lock()
        unknown = [n for n in names or [] if n not in state.by_name]
        if unknown:
            return TaskFailed(f"test: no such model in this repository: {', '.join(unknown)} "
                              f"(models: {', '.join(state.by_name) or 'none'})")
        sources = state.models if not names else [state.by_name[n] for n in names]
        outcomes = []
        for source in sources:
            outcome = smoke.check_model(project, source, lock, tags, make_server,
                                        force=force)
            outcomes.append(outcome)
            emit(smoke.render_outcome(outcome), "")
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    if not names:
        emit(smoke.summary(outcomes), "")
    failed = [o.model for o in outcomes if o.failed]
    if failed:
        return TaskFailed(f"test: failed: {', '.join(failed)}")
    return None


_TEST_USAGE = "usage: doit test [--force] [MODEL ...], e.g. doit test my-bot:v1.1 --force"


def _test_action(force: bool, names: list[str]) -> Any:
    # doit stops reading options at the first model name; --force may follow the names too.
    models = []
    for word in names or []:
        if word == "--force":
            force = True
        elif word.startswith("-"):
            return TaskFailed(f"test: unknown option {word}; {_TEST_USAGE}")
        else:
            models.append(word)
    return _test_models(models, force)


_FORCE = {"name": "force", "long": "force", "type": bool, "default": False,
          "help": "run the cases again even if this digest already passed them"}


def task_test() -> Any:
    """Run the smoke tests (<tag>.test.toml) of built models; `doit test my-bot:v1.1` for one."""
    loaded()
    # One task runs every model (or those named), so one failing model does not stop the
    # others being tested. The stored results, not doit's up-to-date check, decide what runs
    # again: they are what promote trusts.
    return {
        "actions": [_test_action],
        "params": [_FORCE],
        "pos_arg": "names",
        "verbosity": 2,
    }


# --- promote -----------------------------------------------------------------------------------

_PROMOTE_USAGE = ("usage: doit promote [--force --reason \"why\"] CHANNEL VERSION, "
                  "e.g. doit promote my-bot:prod my-bot:v1.1")


def _promote_args(words: list[str], force: bool,
                  reason: str) -> tuple[list[str], bool, str, str]:
    """Positional words, with --force/--reason accepted after them too (doit stops parsing
    options at the first positional argument); the last item is a usage error or ""."""
    names: list[str] = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word == "--force":
            force = True
        elif word == "--reason" and rest:
            reason = rest.pop(0)
        elif word.startswith("--reason="):
            reason = word.partition("=")[2]
        elif word.startswith("-"):
            return names, force, reason, f"unknown option {word}; {_PROMOTE_USAGE}"
        else:
            names.append(word)
    return names, force, reason, "" if len(names) == 2 else _PROMOTE_USAGE


def _promote_action(names: list[str], force: bool, reason: str) -> Any:
    state = run()
    project = state.project
    words, force, reason, usage = _promote_args(names or [], force, reason)
    if usage:
        return TaskFailed(usage)
    try:
        from . import channels

        promotion = channels.promote(
            project, state.models, words[0], words[1],
            server=Server(project.host, timeout=project.timeout), force=force, reason=reason)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    emit(promotion.describe(), "")
    return None


def task_promote() -> Any:
    """Point a channel tag at a tested version: doit promote my-bot:prod my-bot:v1.1."""
    loaded()
    return {
        "actions": [_promote_action],
        "pos_arg": "names",
        "params": [
            {"name": "force", "long": "force", "type": bool, "default": False,
             "help": "promote even without passing smoke tests (needs --reason)"},
            {"name": "reason", "long": "reason", "type": str, "default": "",
             "help": "why the override is needed; recorded in the lock"},
        ],
        "verbosity": 2,
    }


# --- fmt ---------------------------------------------------------------------------------------


def _fmt_action(check: bool) -> Any:
    from . import fmt

    state = run()
    files = [(m.modelfile, m.relpath) for m in state.models]
    report = fmt.fmt_files(files, check=check)
    emit(report.render(check), "")
    if not report.ok(check):
        what = "would be reformatted" if report.changed and check else "refused"
        return Explained(f"fmt: files {what} (see above)")
    return None


def task_fmt() -> Any:
    """Rewrite every Modelfile in canonical form, comments kept (--check: only report)."""
    loaded()
    return {
        "actions": [_fmt_action],
        "params": [{"name": "check", "long": "check", "type": bool, "default": False,
                    "help": "change nothing; exit 1 if a file would be reformatted"}],
        "verbosity": 2,
        "meta": REPORT_META,
    }
