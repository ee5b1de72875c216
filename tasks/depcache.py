"""What each Modelfile depends on, remembered so a no-op `doit build` parses nothing.

doit needs every task's file_dep and task_dep before it can decide that the task is up to
date, so the task creator must know which local files a Modelfile names and which model it
is built FROM. Reading that means parsing the Modelfile and resolving its paths (~0.5 ms);
for 1000 models that alone would exceed doit's whole no-op time. This cache keeps the
answer per Modelfile, valid while the Modelfile and every path it names (and the folders a
model directory is searched in) keep their stat identity.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import lockfile
from .errors import DoitOllamaError
from .names import ModelName
from .project import ModelSource

__all__ = ["DependencyCache", "Dependencies"]

_PATH_INSTRUCTIONS: Final = ("model", "adapter", "draft")
_PLACEHOLDER_DIGEST: Final = "sha256:" + "0" * 64
_VERSION: Final = 1


def _identity(path: str) -> list[int] | None:
    """A file's or folder's stat identity, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


@dataclass(frozen=True)
class Dependencies:
    """The local files a Modelfile names and the model it is FROM (None if none/invalid)."""

    files: tuple[str, ...]
    base: str | None


def scan(source: ModelSource) -> tuple[Dependencies, dict[str, list[int] | None]]:
    """Parse and resolve one Modelfile (nothing hashed); also the paths whose change matters."""
    from . import modelfile  # only on a cache miss: a no-op build parses no Modelfile

    mf = modelfile.load(source.modelfile)
    folder = str(source.modelfile.parent)
    probes: dict[str, list[int] | None] = {}
    for name, args in mf.instructions:
        if name not in _PATH_INSTRUCTIONS:
            continue
        try:
            path = modelfile.expand_path(args, folder)
        except DoitOllamaError:
            continue
        probes[path] = _identity(path)
        if os.path.isdir(path):  # files are searched here and one level down
            for entry in os.scandir(path):
                if entry.is_dir():
                    probes[entry.path] = _identity(entry.path)
    resolved = mf.resolve(folder, digest=lambda _path: _PLACEHOLDER_DIGEST)
    base = None
    if resolved.base is not None and ModelName.is_valid(resolved.base):
        base = resolved.base
    files = tuple(str(f.path) for f in resolved.local_files)
    return Dependencies(files, base), probes


class DependencyCache:
    """Dependencies per Modelfile, in one JSON file under .doit-ollama/."""

    def __init__(self, path: Path):
        self.path = path
        self.dirty = False
        try:
            doc = json.loads(path.read_bytes())
            self.entries: dict[str, Any] = doc["entries"] if doc.get("version") == _VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def get(self, source: ModelSource) -> Dependencies:
        """The Modelfile's dependencies, from the cache when nothing they rest on changed."""
        key = source.path
        stamp = _identity(key)
        entry = self.entries.get(key)
        if (entry is not None and entry["stamp"] == stamp
                and all(_identity(p) == s for p, s in entry["probes"].items())):
            return Dependencies(tuple(entry["files"]), entry["base"])
        deps, probes = scan(source)  # may raise: the caller decides what a bad file means
        self.entries[key] = {"stamp": stamp, "probes": probes, "files": list(deps.files),
                             "base": deps.base}
        self.dirty = True
        return deps

    def save(self) -> None:
        """Write the cache if it changed (a failure only costs speed next time)."""
        if not self.dirty:
            return
        try:
            data = json.dumps({"version": _VERSION, "entries": self.entries}).encode("utf-8")
            lockfile.write_atomic(self.path, data, durable=False)
            self.dirty = False
        except OSError:
            pass
