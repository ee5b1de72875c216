"""`doit publish`: every locked model, channel and base, from the build server to the registry.

For each locked model the registry is asked first (a HEAD of the manifest): a tag already
holding the model is left alone, so publishing twice pushes nothing. Otherwise the model is
copied on the server to its registry name and pushed (`/api/push`, the way `ollama push`
does it), and the digest the registry then serves, which every puller will see, is recorded
in the lock. A released tag that the registry already holds with other content is never
overwritten (the same rule as `doit build`); one the lock says was published with the
locked content and that someone changed since is pushed again.

Every base a locked model was built FROM (outside this repository) is mirrored under a name
derived from its locked digest (registry.pin_name): what a build uses when the base's tag
has moved upstream (pins.py).

One bug of Ollama's push is worked around (server/upload.go at v0.33): after a layer was
linked by a cross-repository mount (a layer inherited from a base that lives in the same
registry), the server counts that blob as uploaded for the rest of its life, so pushing it
to another repository later skips it and the registry refuses the manifest
(`MANIFEST_BLOB_UNKNOWN`). The blob is then linked into the repository from one that has
it (a mount request to the registry, no bytes sent) and the push is repeated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from . import lockfile
from .build import progress_printer, short
from .errors import ConfigError, RegistryError, ServerError
from .lockfile import Lock
from .names import ModelName
from .project import Project
from .registry import Registry, RegistryClient, pin_name, published_name
from .server import Server, Tag

__all__ = ["Published", "publish", "require_registry", "summary"]

Say = Callable[[str], None]
TagIndex = dict[tuple[str, str, str, str], Tag]

# A registry refusing a manifest because a blob is missing from the repository, and the blob.
_UNKNOWN_BLOB: Final = re.compile(r'MANIFEST_BLOB_UNKNOWN.*?"detail"\s*:\s*"(sha256:[0-9a-f]{64})"')
# Each repeat of a push links one more blob; a model has a handful of layers.
_MAX_REPAIRS: Final = 16

PUSHED: Final = "pushed"
PRESENT: Final = "present"
FAILED: Final = "failed"


@dataclass(frozen=True)
class Published:
    """What publishing did with one model, channel or base."""

    kind: str  # "model", "channel", "base"
    name: str  # as the lock names it ("my-bot:v1", "qwen2.5:0.5b")
    target: str  # its name in the registry
    action: str  # PUSHED, PRESENT or FAILED
    digest: str | None = None  # what the registry serves for it now
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.action == FAILED


def require_registry(project: Project) -> Registry:
    """The configured registry, or the one message that says how to set it."""
    if project.registry is None:
        raise ConfigError(
            "no registry configured: set [tool.doit-ollama] registry = \"HOST:PORT/namespace\" "
            "in pyproject.toml (\"http://HOST:PORT/namespace\" for plain HTTP), or "
            "DOIT_OLLAMA_REGISTRY; docs/registry.md shows a registry that works with Ollama")
    return project.registry


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Publisher:
    """One publish run: the build server, the registry, and what was found and done."""

    def __init__(self, project: Project, server: Server, client: RegistryClient, say: Say):
        self.project = project
        self.registry = require_registry(project)
        self.server = server
        self.client = client
        self.say = say
        self._tags: TagIndex | None = None
        self.results: list[Published] = []
        # Repositories of the registry that hold blobs this run may need to link elsewhere.
        self.repositories: list[ModelName] = []

    @property
    def tags(self) -> TagIndex:
        if self._tags is None:
            self._tags = self.server.tags()
        return self._tags

    def holds(self, target: ModelName, build_digest: str, recorded: str | None) -> tuple[str | None, bool]:
        """What the registry serves at `target`, and whether it is the model whose build
        digest is `build_digest`. A HEAD answers it when the digest is known; otherwise the
        manifest is read once: a pusher's own digest is that of the pushed bytes plus the
        newline its manifest file ends with."""
        present = self.client.head(target)
        if present is None:
            return None, False
        if present in (recorded, build_digest):
            return present, True
        info = self.client.get(target)
        ours = info is not None and info.data is not None and _sha(info.data + b"\n") == build_digest
        return present, ours

    def push(self, source: str, target: ModelName) -> str:
        """Copy `source` to its registry name on the server, push it, drop the copy; the
        digest the registry now serves."""
        self.server.copy(source, target.display)
        try:
            for repairs in range(_MAX_REPAIRS + 1):
                try:
                    self.server.push(target.display, progress=progress_printer(self.say, target.display),
                                     insecure=self.registry.insecure)
                    break
                except ServerError as err:
                    missing = _UNKNOWN_BLOB.search(str(err))
                    if missing is None or repairs == _MAX_REPAIRS or not self.link(target, missing[1]):
                        raise
                    self.say(f"{target.display}: the registry lacked blob {missing[1][7:19]}, which "
                             "Ollama skipped after an earlier cross-repository mount (an Ollama "
                             "bug); linked it from another repository, pushing again")
        finally:
            try:
                self.server.delete(target.display)
            except ServerError:
                pass
        self.repositories.append(target)
        digest = self.client.head(target)
        if digest is None:
            raise RegistryError(f"pushed {target.display}, but the registry does not serve it",
                                host=self.registry.host)
        return digest

    def link(self, target: ModelName, digest: str) -> bool:
        """Link `digest` into `target`'s repository from any repository known to have it."""
        for source in reversed(self.repositories):
            if source.repository != target.repository and self.client.mount(target, digest, source):
                return True
        return False

    def note_base(self, base: str) -> None:
        """A base in the team registry's own host: its repository may hold shared blobs."""
        name = ModelName.parse(base)
        if name.host.lower() == self.registry.host.lower() and name not in self.repositories:
            self.repositories.insert(0, name)

    def on_server(self, name: str, *digests: str | None) -> str | None:
        """Why the server cannot give `name` at one of `digests`, or None when it can."""
        tag = self.tags.get(ModelName.parse(name).key)
        if tag is None:
            return f"{name} is not on {self.server.url}"
        if tag.digest not in digests:
            return (f"{name} on {self.server.url} is {short(tag.digest)}, the lock says "
                    f"{short(next(d for d in digests if d))}")
        return None

    def record(self, kind: str, name: str, target: ModelName, action: str,
               digest: str | None = None, message: str = "") -> Published:
        result = Published(kind, name, target.display, action, digest, message)
        self.results.append(result)
        if action == PRESENT:
            self.say(f"{name}: already in the registry at {short(digest)} ({target.display}; no push)")
        elif action == PUSHED:
            self.say(f"{name}: published {target.display} at {short(digest)}")
        else:
            self.say(f"{name}: not published: {message}")
        return result

    # --- the three kinds ------------------------------------------------------------------------

    def model(self, name: str, entry: lockfile.ModelEntry) -> Published:
        parsed = ModelName.parse(name)
        target = published_name(self.registry, parsed)
        present, ours = self.holds(target, entry.digest, entry.registry)
        if ours:
            return self.record("model", name, target, PRESENT, present)
        released = not self.project.is_mutable(parsed)
        if present is not None and released and entry.registry is None:
            return self.record("model", name, target, FAILED, present, (
                f"{name} is a released tag and {target.display} already holds other content "
                f"({short(present)}); released tags are never overwritten. Publish the change "
                f"under a new tag, or delete the tag from the registry on purpose first."))
        problem = self.on_server(name, entry.digest, entry.registry)
        if problem:
            return self.record("model", name, target, FAILED, present,
                               f"{problem}; run `doit build` first")
        if present is not None:
            why = ("the registry held " + short(present) + ", not the locked " + short(entry.registry)
                   if released else f"a mutable tag: replacing {short(present)}")
            self.say(f"{name}: pushing {target.display} again ({why})")
        else:
            self.say(f"{name}: pushing {target.display}")
        return self.record("model", name, target, PUSHED, self.push(name, target))

    def channel(self, name: str, channel: lockfile.ChannelEntry, version: Published | None) -> Published:
        target = published_name(self.registry, ModelName.parse(name))
        if version is None or version.failed or version.digest is None:
            return self.record("channel", name, target, FAILED, None,
                               f"its version {channel.target} was not published")
        present = self.client.head(target)
        if present == version.digest:
            return self.record("channel", name, target, PRESENT, present)
        # A channel is the version's manifest under another tag: push the version itself.
        self.say(f"{name}: pushing {target.display} (-> {channel.target})")
        return self.record("channel", name, target, PUSHED, self.push(channel.target, target))

    def base(self, base: lockfile.BaseRef) -> Published:
        parsed = ModelName.parse(base.name)
        target = pin_name(self.registry, parsed, base.digest)
        present, ours = self.holds(target, base.digest, base.pinned)
        if ours:
            return self.record("base", base.name, target, PRESENT, present)
        if present is not None:
            return self.record("base", base.name, target, FAILED, present,
                               f"the pin {target.display} holds other content ({short(present)})")
        problem = self.on_server(base.name, base.digest, base.pinned)
        if problem:
            return self.record("base", base.name, target, FAILED, None, (
                f"cannot pin it: {problem}; pin it from a machine that still has "
                f"{base.name} at {short(base.digest)} (`doit publish` there)"))
        self.say(f"{base.name}: pinning {short(base.digest)} as {target.display}")
        return self.record("base", base.name, target, PUSHED, self.push(base.name, target))


def publish(project: Project, server: Server, client: RegistryClient, say: Say) -> list[Published]:
    """Publish every locked model, channel and base; record the registry digests in the lock."""
    publisher = _Publisher(project, server, client, say)
    say(f"publish: to {publisher.registry.display}"
        f"{' (plain HTTP)' if publisher.registry.insecure else ''} from {server.url}")
    lock = lockfile.read(project.lock_path, project.lock_cache)
    models: dict[str, Published] = {}
    bases: dict[tuple[str, str], Published] = {}
    for entry in lock.models.values():
        if entry.base is not None:
            publisher.note_base(entry.base.name)
    for name, entry in sorted(lock.models.items()):
        models[name] = _guarded(publisher, "model", name, lambda: publisher.model(name, entry))
    for name, channel in sorted(lock.channels.items()):
        _guarded(publisher, "channel", name,
                 lambda: publisher.channel(name, channel, models.get(channel.target)))
    repository = {ModelName.parse(name).key for name in lock.models}
    for entry in (lock.models[name] for name in sorted(lock.models)):
        base = entry.base
        if base is None or ModelName.parse(base.name).key in repository:
            continue  # bases built in this repository are published as models
        key = (base.name, base.digest)
        if key not in bases:
            bases[key] = _guarded(publisher, "base", base.name, lambda: publisher.base(base))
    _write(project, models, bases)
    return publisher.results


def _guarded(publisher: _Publisher, kind: str, name: str, step: Callable[[], Published]) -> Published:
    """One step; a server failure fails that step only (a registry failure stops the run)."""
    try:
        return step()
    except ServerError as err:
        return publisher.record(kind, name, ModelName.parse(name), FAILED, None, str(err))


def _write(project: Project, models: dict[str, Published],
           bases: dict[tuple[str, str], Published]) -> None:
    """Record the registry digest of every published model and pinned base in the lock."""

    def change(lock: Lock) -> None:
        for name, entry in list(lock.models.items()):
            done = models.get(name)
            if done is not None and not done.failed and done.digest:
                entry = replace(entry, registry=done.digest)
            if entry.base is not None:
                pinned = bases.get((entry.base.name, entry.base.digest))
                if pinned is not None and not pinned.failed and pinned.digest:
                    entry = replace(entry, base=replace(entry.base, pinned=pinned.digest))
            lock.models[name] = entry

    lockfile.update(project.lock_path, change, project.lock_guard, project.lock_cache)


def summary(results: list[Published], project: Project) -> str:
    """The last line of `doit publish`."""
    count = {action: sum(r.action == action for r in results) for action in (PUSHED, PRESENT, FAILED)}
    line = (f"publish: {count[PUSHED]} pushed, {count[PRESENT]} already in the registry, "
            f"{count[FAILED]} failed")
    if count[PUSHED] or count[PRESENT]:
        line += f"; {project.relative(project.lock_path)} records the registry digests (commit it)"
    return line

