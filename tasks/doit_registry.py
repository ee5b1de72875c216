"""`doit publish`, `doit deploy` and `doit outdated`: the team registry as tasks.

The logic lives in publish.py, deploy.py and outdated.py; this module only turns doit
parameters into calls and outcomes into exit codes (TaskFailed: exit 1).
"""

from __future__ import annotations

import sys
from typing import Any

from doit.exceptions import TaskFailed

from .doit_plumbing import REPORT_META, Explained, emit, loaded, run
from .errors import DoitOllamaError

__all__ = ["task_deploy", "task_outdated", "task_publish"]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --- publish -----------------------------------------------------------------------------------


def _publish_action() -> Any:
    from .publish import publish, summary
    from .registry import RegistryClient
    from .server import Server

    state = run()
    project = state.project
    try:
        with Server(project.host, timeout=project.timeout) as server, \
                RegistryClient(insecure_hosts=project.insecure_registries) as client:
            results = publish(project, server, client, _say)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    _say(summary(results, project))
    failed = [r.name for r in results if r.failed]
    if failed:
        return Explained(f"publish: not published: {', '.join(failed)} (see above)")
    return None


def task_publish() -> Any:
    """Push every locked model, channel and base to the team registry; record its digests."""
    loaded()
    return {
        "actions": [_publish_action],
        "verbosity": 2,
        "meta": REPORT_META,
    }


# --- deploy ------------------------------------------------------------------------------------

# The report formats, listed here so that loading tasks does not import the report code.
FORMATS = ("text", "json", "junit", "github")

_FORMAT = {"name": "format", "long": "format", "type": str, "default": "text",
           "choices": [(f, "") for f in FORMATS], "help": "report format"}
_OUTPUT = {"name": "output", "long": "output", "short": "o", "type": str, "default": "",
           "help": "write the report to this file (text still goes to the console)"}


def _report(text: str, plain: str, format: str, output: str) -> None:
    """The report where it was asked for; the text one on the console as well."""
    emit(text, output)
    if output and output != "-" and format != "text":
        emit(plain, "")


def _deploy_action(host: list[str], channels: bool, format: str, output: str) -> Any:
    from .deploy import deploy
    from .registry_report import render_deploy

    state = run()
    project = state.project
    hosts = host or list(project.hosts)
    # Progress goes to stderr when the report itself is machine-readable on stdout.
    say = _say if format == "text" or (output and output != "-") else (
        lambda text: print(text, file=sys.stderr, flush=True))
    try:
        results = deploy(project, state.lock(), hosts, channels_only=channels, say=say)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    _report(render_deploy(results, format), render_deploy(results, "text"), format, output)
    failed = [h.host for h in results if not h.ok]
    if failed:
        return Explained(f"deploy: failed on {', '.join(failed)} (see above)")
    return None


def task_deploy() -> Any:
    """Make each host hold the locked models by pulling them from the registry; then verify."""
    loaded()
    return {
        "actions": [_deploy_action],
        "params": [
            {"name": "host", "long": "host", "type": list, "default": [],
             "help": "host to deploy to (repeat for several); default: the project's host(s)"},
            {"name": "channels", "long": "channels", "type": bool, "default": False,
             "help": "deploy the channels only (e.g. my-bot:prod), not every version"},
            _FORMAT,
            _OUTPUT,
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }


# --- outdated ----------------------------------------------------------------------------------


def _outdated_action(format: str, output: str, exit_code: bool) -> Any:
    from .outdated import check
    from .registry import RegistryClient
    from .registry_report import render_outdated

    state = run()
    project = state.project
    try:
        with RegistryClient(insecure_hosts=project.insecure_registries) as client:
            rows = check(state.lock(), client)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    _report(render_outdated(rows, format), render_outdated(rows, "text"), format, output)
    errors = [r for r in rows if r.error]
    if errors:
        return Explained(f"outdated: {len(errors)} base{'s' * (len(errors) != 1)} could not be "
                         "checked (see above)")
    if exit_code and any(r.moved for r in rows):
        return Explained("outdated: a base moved upstream (--exit-code)")
    return None


def task_outdated() -> Any:
    """Which bases moved upstream since they were locked (asks each registry; pulls nothing)."""
    loaded()
    return {
        "actions": [_outdated_action],
        "params": [
            _FORMAT,
            _OUTPUT,
            {"name": "exit_code", "long": "exit-code", "type": bool, "default": False,
             "help": "exit 1 when a base moved (for a scheduled CI job)"},
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }
