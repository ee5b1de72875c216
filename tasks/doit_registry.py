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

__all__ = ["task_publish"]


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
