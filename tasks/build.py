"""The build step of one model tag, and the comparison of its inputs with the lock.

The decision follows the rules in docs/architecture.md:
  * not in the lock                         -> create, then lock it;
  * inputs and base equal to the lock       -> create only if the tag is missing on the
                                               server or holds another digest, and the
                                               result must equal the locked digest;
  * inputs or base differ, tag mutable      -> create, then update the lock;
  * inputs or base differ, tag released     -> refuse (BuildRefused) unless re-locking.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TextIO

from . import lockfile
from .errors import BuildRefused, ServerError
from .inputs import FIELDS, Inputs, gather
from .lockfile import BaseRef, Lock, ModelEntry
from .names import ModelName
from .project import ModelSource, Project
from .server import Progress, Server, Tag

__all__ = ["Builder", "Change", "compare", "explain_mismatch", "progress_printer", "short"]

TagIndex = Mapping[tuple[str, str, str, str], Tag]


def short(digest: str | None) -> str:
    """A digest shortened for messages, like `ollama list` shows IDs."""
    if not digest:
        return "(none)"
    return digest.replace("sha256:", "")[:12]


@dataclass(frozen=True)
class Change:
    """One input that differs from the lock: what, and the old and new values."""

    what: str  # "system", "files: models/bot/x.gguf", "base", ...
    old: str | None = None
    new: str | None = None

    def describe(self) -> str:
        if self.what == "base":
            return f"base model digest changed: {short(self.old)} -> {short(self.new)}"
        if self.what.startswith("files: "):
            path = self.what[len("files: "):]
            if self.old is None:
                return f"new local file {path}"
            if self.new is None:
                return f"local file {path} no longer used"
            return f"local file {path} changed: {short(self.old)} -> {short(self.new)}"
        if self.what == "base name":
            return f"FROM changed: {self.old or '(a local file)'} -> {self.new or '(a local file)'}"
        if self.what == "create request":
            return "the create request changed"
        label = {"from": "FROM", "parameters": "PARAMETERs", "messages": "MESSAGEs",
                 "license": "LICENSE", "files": "model files", "adapters": "ADAPTER",
                 "draft_files": "DRAFT"}.get(self.what, self.what.upper())
        if self.old is None:
            return f"{label} added"
        if self.new is None:
            return f"{label} removed"
        return f"{label} changed"


_FILE_FIELDS = ("files", "adapters", "draft_files")


def compare(entry: ModelEntry, inputs: Inputs, base_digest: str | None) -> list[Change]:
    """Every difference between a lock entry and the current inputs, in report order."""
    changes: list[Change] = []
    old_base = entry.base.name if entry.base else None
    new_base = inputs.base.display if inputs.base else None
    if (old_base is None) != (new_base is None) or (
            old_base and new_base and not ModelName.parse(old_base).same(ModelName.parse(new_base))):
        changes.append(Change("base name", old_base, new_base))
    elif entry.base and base_digest and entry.base.digest != base_digest:
        changes.append(Change("base", entry.base.digest, base_digest))
    file_changes = [
        Change(f"files: {path}", entry.files.get(path), inputs.files.get(path))
        for path in sorted(set(entry.files) | set(inputs.files))
        if entry.files.get(path) != inputs.files.get(path)
    ]
    changes += file_changes
    if entry.inputs != inputs.inputs:
        field_changes = [
            Change(name, entry.fields.get(name), inputs.fields.get(name))
            for name in FIELDS
            if entry.fields.get(name) != inputs.fields.get(name)
            and not (name in _FILE_FIELDS and file_changes)
            and not (name == "from" and changes and changes[0].what == "base name")
        ]
        changes += field_changes
        if not field_changes and not file_changes:
            changes.append(Change("create request", entry.inputs, inputs.inputs))
    return changes


def explain_mismatch(name: str, entry: ModelEntry, inputs: Inputs, base_digest: str | None,
                     server_version: str, got: str) -> str:
    """Why a rebuild with the locked inputs gave another digest: the suspects, in order."""
    suspects = [f"{name}: rebuilt with the locked inputs but got digest {short(got)}, "
                f"the lock says {short(entry.digest)}. Suspects, most likely first:"]
    if entry.base and base_digest and entry.base.digest != base_digest:
        suspects.append(f"  - base {entry.base.name}: {short(entry.base.digest)} in the lock, "
                        f"{short(base_digest)} on this server")
    for path in sorted(set(entry.files) | set(inputs.files)):
        if entry.files.get(path) != inputs.files.get(path):
            suspects.append(f"  - local file {path}: {short(entry.files.get(path))} in the lock, "
                            f"{short(inputs.files.get(path))} here")
    if entry.ollama != server_version:
        suspects.append(f"  - Ollama version: the lock was built by {entry.ollama}, this server "
                        f"is {server_version}; Ollama versions may lay out models differently")
    for change in compare(entry, inputs, base_digest):
        if change.what not in ("base", "base name") and not change.what.startswith("files: "):
            suspects.append(f"  - {change.describe()}")
    if len(suspects) == 1:
        suspects.append(f"  - none of the inputs differ and both servers run Ollama {server_version}: "
                        "the server did not create this model deterministically (for example a GGUF "
                        "rewritten by another llama.cpp build)")
    suspects.append(f"  The lock was not changed. If the new digest is acceptable, re-lock it: "
                    f"`doit build:{name} --relock`")
    return "\n".join(suspects)


@dataclass
class Builder:
    """Builds model tags of one project on one server and records them in the lock."""

    project: Project
    server: Server
    digest: Callable[[str], str]  # sha256 of a local file, e.g. DigestCache.digest
    out: TextIO = field(default_factory=lambda: sys.stdout)
    # The server's models as this process last listed them (None: list them when needed).
    # A listing costs a full /api/tags; after a create the builder lists again and keeps it.
    known_tags: TagIndex | None = None
    _version: str | None = None

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self.server.version()
        return self._version

    # --- progress -----------------------------------------------------------------------

    def _progress(self, name: str) -> Callable[[Progress], None]:
        return progress_printer(self.say, name)

    # --- steps --------------------------------------------------------------------------

    def listing(self, *, fresh: bool) -> TagIndex:
        """The server's models: the last listing of this process, or a new one."""
        if fresh or self.known_tags is None:
            self.known_tags = self.server.tags()
        return self.known_tags

    def base_digest(self, name: str, base: ModelName, repo: Mapping[tuple[str, str, str, str], str],
                    lock: Lock, locked: BaseRef | None = None) -> str:
        """The digest of the model `name` is built FROM; pull it if the server lacks it.

        `locked` is the base the lock records: when the pull fails and the team registry
        holds its pinned copy, that copy is restored instead.
        """
        found = self.listing(fresh=False).get(base.key)
        if base.key in repo:
            if found is None:  # perhaps built by another process since the listing
                found = self.listing(fresh=True).get(base.key)
            if found is None:
                raise BuildRefused(
                    f"{name}: its base {base.display} is a model of this repository but is not "
                    f"on {self.server.url}; build it first: `doit build:{repo[base.key]}`"
                )
            # The listing may predate this run's build of the base by another doit worker
            # (-n); the lock, written as each model finishes, has its digest as it is now.
            locked = lock.models.get(repo[base.key])
            return locked.digest if locked is not None else found.digest
        if found is not None:
            return found.digest
        self.say(f"{name}: pulling base model {base.display}")
        try:
            self.server.pull(base.display, progress=self._progress(base.display),
                             insecure=self.project.is_insecure(base.host))
        except ServerError as err:
            if locked is not None and self.project.registry is not None:
                return self.restore_base(name, base, locked, f"it cannot be pulled: {err}")
            raise ServerError(_pull_failure(name, base, err, self.project, locked),
                              host=err.host, model=name, status=err.status) from err
        found = self.listing(fresh=True).get(base.key)
        if found is None:
            raise ServerError(f"{name}: pulled {base.display} but {self.server.url} does not list it",
                              host=self.server.url, model=name)
        if locked is not None and not locked.holds(found.digest) and self.project.registry is not None:
            # Nothing of the user's is replaced: the server had no copy before this pull.
            return self.restore_base(name, base, locked, f"it moved upstream: "
                                     f"{short(locked.digest)} -> {short(found.digest)}")
        return found.digest

    def restore_base(self, name: str, base: ModelName, locked: BaseRef, why: str) -> str:
        """Put the base's pinned copy from the team registry on the server; its digest."""
        from . import pins

        assert self.project.registry is not None
        self.say(f"{name}: restoring base {base.display} at {short(locked.digest)} from the "
                 f"registry's pinned copy ({why})")
        digest = pins.restore(self.server, self.project.registry, base, locked, name,
                              self._progress(base.display))
        self.listing(fresh=True)
        return digest

    def upload(self, name: str, inputs: Inputs) -> None:
        """Send each local file the server lacks (HEAD first, streamed)."""
        for local in inputs.local:
            if self.server.has_blob(local.digest):
                continue
            self.say(f"{name}: uploading {local.relpath} ({_size(local.path.stat().st_size)})")
            self.server.upload_blob(local.path, local.digest, model=name,
                                    progress=self._progress(name))

    def create(self, name: str, inputs: Inputs) -> str:
        """Create the tag from the inputs and return the digest the server reports for it."""
        self.upload(name, inputs)
        self.server.create(name, inputs.request, progress=self._progress(name))
        tag = self.listing(fresh=True).get(ModelName.parse(name).key)
        if tag is None:
            raise ServerError(f"{name}: created, but {self.server.url} does not list it",
                              host=self.server.url, model=name)
        return tag.digest

    def record(self, name: str, entry: ModelEntry) -> None:
        """Write one lock entry (merged under the file lock)."""

        def change(lock: Lock) -> None:
            old = lock.models.get(name)
            new = entry
            # The same model keeps the registry digest `doit publish` recorded for it, and
            # the same base the digest of its pinned copy.
            if old is not None and new.registry is None and old.digest == new.digest:
                new = replace(new, registry=old.registry)
            if (old is not None and old.base is not None and new.base is not None
                    and new.base.pinned is None and old.base.digest == new.base.digest):
                new = replace(new, base=replace(new.base, pinned=old.base.pinned))
            lock.models[name] = new

        lockfile.update(self.project.lock_path, change, self.project.lock_guard,
                        self.project.lock_cache)

    def build(self, source: ModelSource, *, relock: bool = False,
              repo: Mapping[tuple[str, str, str, str], str] | None = None) -> dict[str, str]:
        """Bring one model tag to its locked state (or lock it); return doit's saved values."""
        name = source.display
        inputs = gather(self.project, source, self.digest)
        for warning in inputs.warnings:
            self.say(f"{name}: warning: {source.relpath}: {warning}")
        lock = lockfile.read(self.project.lock_path, self.project.lock_cache)
        entry = lock.models.get(name)
        repo = repo or {}
        external = inputs.base is not None and inputs.base.key not in repo
        released = not (relock or self.project.is_mutable(source.name))
        if (entry is not None and released and external and entry.base is not None
                and not compare(entry, inputs, None)):
            intact = self._intact(name, source, entry, inputs.base)  # type: ignore[arg-type]
            if intact is not None:
                return intact
        base_digest = None
        if inputs.base is not None:
            base_digest = self.base_digest(name, inputs.base, repo, lock,
                                           entry.base if entry is not None and external else None)
            if entry is not None and entry.base is not None and entry.base.holds(base_digest):
                base_digest = entry.base.digest  # the pinned copy is the locked base
        current = self.listing(fresh=False).get(source.name.key)
        new_entry = ModelEntry(
            modelfile=source.relpath,
            inputs=inputs.inputs,
            digest="",
            ollama="",
            fields=inputs.fields,
            files=inputs.files,
            base=BaseRef(inputs.base.display, base_digest) if inputs.base and base_digest else None,
        )

        if entry is None:
            self.say(f"{name}: creating (not in the lock yet)")
            digest = self.create(name, inputs)
            self.record(name, replace(new_entry, digest=digest, ollama=self.version))
            self.say(f"{name}: locked at {short(digest)}")
            return {"inputs": inputs.inputs, "digest": digest}

        changes = compare(entry, inputs, base_digest)
        base_moved = bool(changes) and external and all(c.what == "base" for c in changes)
        if changes and released and not base_moved:
            raise BuildRefused(_refusal(name, source, changes, self.project))

        if not changes or (base_moved and released):
            if not entry.holds(current.digest if current else None):
                # The listing may be from before another process (a second `doit build`)
                # restored this very tag: ask again before creating it a second time.
                current = self.listing(fresh=True).get(source.name.key)
            if current is not None and entry.holds(current.digest):
                if entry.modelfile != source.relpath:
                    self.record(name, replace(entry, modelfile=source.relpath))
                self.say(f"{name}: up to date ({short(current.digest)})")
                return {"inputs": entry.inputs, "digest": entry.digest}
            why = "missing on the server" if current is None else (
                f"the server holds {short(current.digest)}, the lock {short(entry.digest)}")
            if base_moved:
                assert inputs.base is not None and entry.base is not None and base_digest
                return self._rebuild_on_pinned_base(name, source, entry, inputs, new_entry,
                                                    base_digest, why)
            self.say(f"{name}: restoring ({why})")
            digest = self.create(name, inputs)
            if digest != entry.digest and not relock:
                raise BuildRefused(explain_mismatch(name, entry, inputs, base_digest,
                                                    self.version, digest))
            if digest != entry.digest or entry.modelfile != source.relpath:
                self.record(name, replace(new_entry, digest=digest, ollama=self.version))
            self.say(f"{name}: reproduced the locked digest {short(digest)}"
                     if digest == entry.digest else f"{name}: re-locked at {short(digest)}")
            return {"inputs": inputs.inputs, "digest": digest}

        label = "re-locking" if relock and not self.project.is_mutable(source.name) else "rebuilding"
        self.say(f"{name}: {label} ({'; '.join(c.describe() for c in changes)})")
        digest = self.create(name, inputs)
        self.record(name, replace(new_entry, digest=digest, ollama=self.version))
        self.say(f"{name}: locked at {short(digest)}")
        return {"inputs": inputs.inputs, "digest": digest}


    def _intact(self, name: str, source: ModelSource, entry: ModelEntry,
                base: ModelName) -> dict[str, str] | None:
        """A released tag with unchanged inputs that the server holds at its locked digest
        is up to date, whatever its base does meanwhile (the model does not change when its
        base moves); a base that moved here is noted, because the lock no longer reproduces
        from it. None: the model must be restored."""
        current = self.listing(fresh=False).get(source.name.key)
        if current is None or not entry.holds(current.digest):
            return None
        assert entry.base is not None
        found = self.listing(fresh=False).get(base.key)
        if entry.modelfile != source.relpath:
            self.record(name, replace(entry, modelfile=source.relpath))
        self.say(f"{name}: up to date ({short(current.digest)})")
        if found is not None and not entry.base.holds(found.digest):
            pinned = ("doit build restores its pinned copy from the registry when it must "
                      "recreate this model" if self.project.registry is not None else
                      "set a registry and `doit publish` to pin it (docs/registry.md)")
            self.say(f"{name}: note: base {base.display} moved: {short(entry.base.digest)} -> "
                     f"{short(found.digest)} on {self.server.url}; the lock no longer reproduces "
                     f"{name} from it ({pinned})")
        return {"inputs": entry.inputs, "digest": entry.digest}

    def _rebuild_on_pinned_base(self, name: str, source: ModelSource, entry: ModelEntry,
                                inputs: Inputs, new_entry: ModelEntry, moved: str,
                                why: str) -> dict[str, str]:
        """Recreate a released tag whose base moved, from the base's pinned copy."""
        from . import pins

        assert inputs.base is not None and entry.base is not None
        base = inputs.base
        if self.project.registry is None:
            raise BuildRefused(pins.moved_refusal(name, source.relpath, self.project, base,
                                                  entry.base, moved, f"{name} is {why}"))
        self.say(f"{name}: restoring ({why}); base {base.display} moved: "
                 f"{short(entry.base.digest)} -> {short(moved)}, so it is built on the pinned "
                 f"copy of {short(entry.base.digest)} from {self.project.registry.display}")
        # The server's own copy of the moved base is put back afterwards.
        with pins.swapped_in(self.server, self.project.registry, base, entry.base, moved,
                             name, self.say, self._progress(base.display)):
            digest = self.create(name, inputs)
        self.listing(fresh=True)
        if digest != entry.digest:
            raise BuildRefused(explain_mismatch(name, entry, inputs, entry.base.digest,
                                                self.version, digest))
        if entry.modelfile != source.relpath:
            self.record(name, replace(entry, modelfile=source.relpath))
        self.say(f"{name}: reproduced the locked digest {short(digest)}")
        return {"inputs": entry.inputs, "digest": entry.digest}


def _pull_failure(name: str, base: ModelName, err: ServerError, project: Project,
                  locked: BaseRef | None) -> str:
    """A failed base pull, with the fixes that fit what went wrong."""
    text = str(err)
    if "HTTP response to HTTPS client" in text and not project.is_insecure(base.host):
        text += (f"\n  {base.host} is a plain-HTTP registry: list it in [tool.doit-ollama] "
                 f"insecure-registries = [\"{base.host}\"] (docs/registry.md)")
    if locked is not None and project.registry is None:
        text += (f"\n  {name} was locked on {base.display} at {short(locked.digest)}; a team "
                 "registry holding its pinned copy would let this build reproduce it "
                 "(docs/registry.md)")
    return text


def _refusal(name: str, source: ModelSource, changes: list[Change], project: Project) -> str:
    lines = [f"{name} is a released tag (locked in {project.relative(project.lock_path)}) "
             f"and its inputs changed:"]
    lines += [f"  - {c.describe()}" for c in changes]
    repository = source.name.repository
    lines += [
        "Released tags never change. Either:",
        f"  - give the change a new tag: copy {source.relpath} to a new version (for example "
        f"models/{repository}/<next>.Modelfile), restore this one, and run `doit build`;",
        f"  - or re-lock this tag on purpose: `doit build:{name} --relock`.",
    ]
    return "\n".join(lines)


def progress_printer(say: Callable[[str], None], name: str) -> Callable[[Progress], None]:
    """A progress printer that shows statuses once and byte counts in 25% steps."""
    seen: dict[str, int] = {}

    def show(p: Progress) -> None:
        if p.total and p.completed is not None and p.digest:
            step = min(4, int(4 * p.completed / p.total)) if p.total else 4
            key = f"{p.status}:{p.digest}"
            if seen.get(key, -1) < step:
                seen[key] = step
                say(f"  {name}: {p.status} {_size(p.completed)}/{_size(p.total)} ({25 * step}%)")
        elif p.status and p.status not in seen:
            seen[p.status] = 0
            say(f"  {name}: {p.status}")

    return show


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
