"""What discovery found and what each Modelfile depends on, remembered so that a no-op
`doit build` neither walks models/ nor parses a Modelfile.

doit needs every task's file_dep and task_dep before it can decide that the task is up to
date, so the task creator must know the models, which local files each Modelfile names and
which model it is built FROM. Walking 1000 folders and naming their models costs ~20 ms,
parsing and resolving a Modelfile ~0.5 ms each; for 1000 models that alone would exceed
doit's whole no-op time. This cache keeps both answers in one file, each valid while
the paths it rests on keep their stat stamps: for discovery every folder under models/, for
a Modelfile the file itself and every path it names (and the folders a model directory is
searched in).

Like git's index, a stamp is trusted only if it is older than the cache file itself: on a
file system with coarse timestamps, a file edited in the same tick as the cache was written
would otherwise keep its stamp and be taken as unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import localfiles
from .errors import DoitOllamaError
from .names import ModelName
from .project import ModelSource, Project, discover, stat_stamp

__all__ = ["Dependencies", "DependencyCache"]

_PATH_INSTRUCTIONS: Final = ("model", "adapter", "draft")
_PLACEHOLDER_DIGEST: Final = "sha256:" + "0" * 64
_VERSION: Final = 2

Stamps = dict[str, "list[int] | None"]


@dataclass(frozen=True)
class Dependencies:
    """The local files a Modelfile names and the model it is FROM (None if none/invalid)."""

    files: tuple[str, ...]
    base: str | None


def scan(source: ModelSource) -> tuple[Dependencies, Stamps]:
    """Parse and resolve one Modelfile (nothing hashed); also the stamps of the paths whose
    change matters, the Modelfile's own first."""
    # only on a cache miss: a no-op build parses no Modelfile
    from . import createrequest, modelfile

    stamps: Stamps = {source.path: stat_stamp(source.path)}  # before reading it
    mf = modelfile.load(source.modelfile)
    folder = str(source.modelfile.parent)
    for name, args in mf.instructions:
        if name not in _PATH_INSTRUCTIONS:
            continue
        try:
            path = createrequest.expand_path(args, folder)
        except DoitOllamaError:
            continue
        stamps[path] = stat_stamp(path)
        if os.path.isdir(path):  # files are searched here and one level down
            for entry in os.scandir(path):
                if entry.is_dir():
                    stamps[entry.path] = stat_stamp(entry.path)
    resolved = mf.resolve(folder, digest=lambda _path: _PLACEHOLDER_DIGEST)
    base = None
    if resolved.base is not None and ModelName.is_valid(resolved.base):
        base = resolved.base
    files = tuple(str(f.path) for f in resolved.local_files)
    return Dependencies(files, base), stamps


class DependencyCache:
    """Discovery and dependencies per Modelfile, in one cache file under .doit-ollama/."""

    def __init__(self, path: Path):
        self.path = path
        self.dirty = False
        self.written_ns = 0  # the cache file's mtime: only older stamps are trusted
        self.discovery: dict[str, Any] | None = None
        self.entries: dict[str, Any] = {}
        try:
            # The mtime before the content: were the file replaced in between, the older
            # time only trusts fewer stamps.
            self.written_ns = os.stat(path).st_mtime_ns
        except OSError:
            return
        doc = localfiles.load_cache(path)
        try:
            if doc is not None and doc["version"] == _VERSION:
                self.entries = doc["entries"]
                self.discovery = doc["discovery"]
        except (KeyError, TypeError):
            pass

    def _holds(self, stamps: Stamps) -> bool:
        """True if every path still has the stamp recorded, from before the cache was written."""
        for path, stamp in stamps.items():
            now = stat_stamp(path)
            if now != stamp or (now is not None and now[0] >= self.written_ns):
                return False
        return True

    def models(self, project: Project) -> list[ModelSource]:
        """Every model of the repository, as `discover` finds it; nothing is walked or
        parsed while no folder under models/ (and no extra Modelfile) changed."""
        key = [str(project.models_dir), [list(item) for item in sorted(project.extra_models.items())]]
        known = self.discovery
        try:
            if known is not None and known["key"] == key and self._holds(known["stamps"]):
                return [ModelSource(ModelName(*name), path, relpath)
                        for name, path, relpath in known["models"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a damaged cache: discover again
        stamps: Stamps = {}
        sources = discover(project, stamps)  # may raise: nothing is remembered then
        self.discovery = {
            "key": key,
            "stamps": stamps,
            "models": [[[s.name.host, s.name.namespace, s.name.model, s.name.tag], s.path, s.relpath]
                       for s in sources],
        }
        self.dirty = True
        return sources

    def get(self, source: ModelSource) -> Dependencies:
        """The Modelfile's dependencies, from the cache when nothing they rest on changed."""
        entry = self.entries.get(source.path)
        try:
            if entry is not None and self._holds(entry["stamps"]):
                return Dependencies(tuple(entry["files"]), entry["base"])
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a damaged entry: scan again
        deps, stamps = scan(source)  # may raise: the caller decides what a bad file means
        self.entries[source.path] = {"stamps": stamps, "files": list(deps.files), "base": deps.base}
        self.dirty = True
        return deps

    def save(self) -> None:
        """Write the cache if it changed (a failure only costs speed next time)."""
        if not self.dirty:
            return
        if self.discovery is not None:  # forget Modelfiles that are gone
            current = {path for _name, path, _rel in self.discovery["models"]}
            self.entries = {k: v for k, v in self.entries.items() if k in current}
        localfiles.store_cache(self.path, {"version": _VERSION, "discovery": self.discovery,
                                           "entries": self.entries})
        self.dirty = False
