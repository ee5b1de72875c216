"""`doit graph`: a picture of the repository's models, bases and channels with their states."""

from __future__ import annotations

import sys
from typing import Any

from doit.exceptions import TaskFailed

from .doit_plumbing import REPORT_META, emit, loaded, run
from .errors import DoitOllamaError

# Listed here so that loading tasks does not import the graph code (a no-op build never draws).
GRAPH_FORMATS = ("mermaid", "dot")  # keep equal to graph.FORMATS

__all__ = ["task_graph"]


def _graph_action(format: str, output: str, host: list[str], offline: bool) -> Any:
    from .graph import collect, render
    from .verify import inspect

    state = run()
    project = state.project
    try:
        report = inspect(project, host or project.hosts[:1], offline=offline,
                         digest=state.cache.digest)
        picture = render(collect(project, state.models, report, state.cache.digest), format)
    except DoitOllamaError as err:
        return TaskFailed(str(err))
    for checked in report.hosts:
        if not checked.reachable:
            print(f"warning: {checked.error}", file=sys.stderr)
    emit(picture, output)
    if output and output != "-":
        print(f"graph: {len(report.models)} models drawn in {output}")
    return None


def task_graph() -> Any:
    """Draw the models, the bases they are built FROM and the channels, with each one's state."""
    loaded()
    return {
        "actions": [_graph_action],
        "params": [
            {"name": "format", "long": "format", "type": str, "default": "mermaid",
             "choices": [(f, "") for f in GRAPH_FORMATS],
             "help": "mermaid (GitHub renders it in Markdown) or dot (Graphviz)"},
            {"name": "output", "long": "output", "short": "o", "type": str, "default": "",
             "help": "write the picture to this file instead of the console"},
            {"name": "host", "long": "host", "type": list, "default": [],
             "help": "server whose state to draw; default: the project's first host"},
            {"name": "offline", "long": "offline", "type": bool, "default": False,
             "help": "do not contact a server: states are sources against the lock"},
        ],
        "verbosity": 2,
        "meta": REPORT_META,
    }
