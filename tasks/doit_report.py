"""`doit verify` and `doit status`: read-only reports on sources, lock and servers."""

from __future__ import annotations

import sys
from typing import Any

from doit.exceptions import TaskFailed

from .doit_plumbing import REPORT_META, Explained, emit, loaded, run
from .errors import DoitOllamaError

# The report formats, listed here so that loading tasks does not import the report code.
FORMATS = ("text", "json", "junit", "github")

__all__ = ["task_status", "task_verify"]


_HOST_PARAM = {
    "name": "host", "long": "host", "type": list, "default": [],
    "help": "server to check (repeat for several); default: the project's host(s)",
}


def _verify_action(offline: bool, format: str, output: str, host: list[str],
                   rebuild: bool, strict: bool) -> Any:
    from .report import render
    from .verify import inspect, rebuild_check

    state = run()
    if offline and rebuild:
        return TaskFailed("verify: --rebuild needs a server; it cannot be combined with --offline")
    project = state.project.with_hosts(host)  # messages name --host when it chose the server
    try:
        report = inspect(project, project.hosts, offline=offline, digest=state.cache.digest,
                         strict=strict)
        if rebuild:
            for target in project.hosts:
                if all(h.reachable for h in report.hosts if h.host == target):
                    report.findings += rebuild_check(project, target, state.cache.digest,
                                                     lambda text: print(text, file=sys.stderr))
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    emit(render(report, format), output)
    if output and output != "-":  # a report in a file: the text still goes to the console
        emit(render(report, "text"), "")
    if not report.ok:
        count = len(report.findings)
        return Explained(f"verify: {count} problem{'s' * (count != 1)} (see above)")
    return None


def task_verify() -> Any:
    """Check that sources, lock and servers agree; exit 1 on any difference (read-only)."""
    loaded()
    return {
        "actions": [_verify_action],
        "params": [
            {"name": "offline", "long": "offline", "type": bool, "default": False,
             "help": "check sources against the lock only; no server needed"},
            {"name": "format", "long": "format", "type": str, "default": "text",
             "choices": [(f, "") for f in FORMATS], "help": "report format"},
            {"name": "output", "long": "output", "short": "o", "type": str, "default": "",
             "help": "write the report to this file (text still goes to the console)"},
            _HOST_PARAM,
            {"name": "rebuild", "long": "rebuild", "type": bool, "default": False,
             "help": "also rebuild each model under a scratch tag and compare digests"},
            {"name": "strict", "long": "strict", "type": bool, "default": False,
             "help": "also fail on Modelfiles not committed to git"},
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }


def _status_action(json: bool, host: list[str], offline: bool) -> Any:
    from .report import render, render_status
    from .verify import inspect

    state = run()
    project = state.project.with_hosts(host)  # messages name --host when it chose the server
    try:
        report = inspect(project, project.hosts if host else project.hosts[:1], offline=offline,
                         digest=state.cache.digest)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    emit(render(report, "json") if json else render_status(report), "")
    return None


def task_status() -> Any:
    """Show every model's state and why (up to date, stale, missing, drifted, ...); exit 0."""
    loaded()
    return {
        "actions": [_status_action],
        "params": [
            {"name": "json", "long": "json", "type": bool, "default": False,
             "help": "machine-readable output"},
            {"name": "offline", "long": "offline", "type": bool, "default": False,
             "help": "do not contact a server"},
            _HOST_PARAM,
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }
