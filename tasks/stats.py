"""Work counters for benchmarks and for users asking "what did that build actually do?".

Set DOIT_OLLAMA_STATS to a file path and every process of a build (doit's workers
included) appends one JSON line per event: {"pid": ..., "event": "hashed", "bytes": N}.
Unset (the default), recording costs one dictionary lookup.
"""

from __future__ import annotations

import json
import os

__all__ = ["record"]


def record(event: str, amount: int) -> None:
    """Append one event to the stats file, if the user asked for one."""
    target = os.environ.get("DOIT_OLLAMA_STATS")
    if not target:
        return
    line = json.dumps({"pid": os.getpid(), "event": event, "bytes": amount}) + "\n"
    # One write of one short line in append mode: lines from parallel workers do not mix.
    with open(target, "a", encoding="utf-8") as stream:
        stream.write(line)
