"""`doit deploy`: make each host hold the locked models by pulling them from the registry.

Deploying is pulling (no create ever runs on a host), so every host holds byte-identical
manifests: the registry's digest of each model. Hosts are deployed in parallel and each one
alone: a host that is down fails, the others go on. On a host, a model already there at its
build or registry digest is skipped; the others are pulled under their registry name,
copied to their own name, and the registry-named copy dropped. A channel whose version was
just deployed is a local copy of it; otherwise it is pulled too. Then the host is listed
again and checked: each model at the registry's digest (or the build digest), and nothing
else is touched: models the lock does not know stay as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .build import progress_printer, short
from .errors import DoitOllamaError, ServerError
from .lockfile import Lock
from .names import ModelName
from .project import Project
from .publish import require_registry
from .registry import Registry, published_name
from .server import Server, Tag

__all__ = ["HostDeploy", "Wanted", "deploy", "wanted"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class Wanted:
    """One tag a host must hold: its name, the digests that count, where to pull it from."""

    name: str
    digests: tuple[str, ...]  # the registry digest first, then the build digest
    source: str | None  # its registry name; None when it was never published
    channel_of: str | None = None  # for a channel, its version


@dataclass
class HostDeploy:
    """What deploying did on one host."""

    host: str
    url: str = ""
    reachable: bool = True
    error: str = ""
    pulled: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)  # channels made from a deployed version
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why

    @property
    def ok(self) -> bool:
        return self.reachable and not self.failed


def wanted(lock: Lock, registry: Registry, *, channels_only: bool) -> list[Wanted]:
    """What every host must hold: the locked models (unless channels only), then channels."""
    result = []
    if not channels_only:
        for name, entry in sorted(lock.models.items()):
            digests = tuple(d for d in (entry.registry, entry.digest) if d)
            source = published_name(registry, ModelName.parse(name)).display if entry.registry else None
            result.append(Wanted(name, digests, source))
    for name, channel in sorted(lock.channels.items()):
        version = lock.models.get(channel.target)
        registry_digest = version.registry if version is not None else None
        digests = tuple(d for d in (registry_digest, channel.digest) if d)
        source = published_name(registry, ModelName.parse(name)).display if registry_digest else None
        result.append(Wanted(name, digests, source, channel.target))
    return result


class _Host:
    """Deploying to one host."""

    def __init__(self, project: Project, registry: Registry, host: str, say: Say):
        self.registry = registry
        self.server = Server(host, timeout=project.timeout)
        self.result = HostDeploy(host, self.server.url)
        self.say = lambda text: say(f"[{host}] {text}")

    def listing(self) -> dict[tuple[str, str, str, str], Tag]:
        return self.server.tags()

    def run(self, items: list[Wanted]) -> HostDeploy:
        try:
            tags = self.listing()
        except ServerError as err:
            self.result.reachable, self.result.error = False, str(err)
            self.say(f"not deployed: {err}")
            return self.result
        done: set[str] = set()
        for item in items:
            try:
                self.one(item, tags, done)
            except ServerError as err:
                self.result.failed[item.name] = str(err)
                self.say(f"{item.name}: failed: {err}")
        self.check(items)
        return self.result

    def one(self, item: Wanted, tags: dict[tuple[str, str, str, str], Tag], done: set[str]) -> None:
        key = ModelName.parse(item.name).key
        found = tags.get(key)
        if found is not None and found.digest in item.digests:
            self.result.present.append(item.name)
            done.add(item.name)
            self.say(f"{item.name}: up to date ({short(found.digest)})")
            return
        if item.channel_of is not None and item.channel_of in done:
            self.server.copy(item.channel_of, item.name)  # the same manifest, no download
            self.result.copied.append(item.name)
            self.say(f"{item.name}: copied from {item.channel_of}")
            return
        if item.source is None:
            self.result.failed[item.name] = "not in the registry yet; run `doit publish` first"
            self.say(f"{item.name}: not deployed: not published yet (`doit publish`)")
            return
        self.say(f"{item.name}: pulling {item.source}")
        self.server.pull(item.source, progress=progress_printer(self.say, item.source),
                         insecure=self.registry.insecure)
        self.server.copy(item.source, item.name)
        try:
            self.server.delete(item.source)  # the model's own name is what users ask for
        except ServerError:
            pass
        self.result.pulled.append(item.name)
        done.add(item.name)

    def check(self, items: list[Wanted]) -> None:
        """List the host again: every wanted tag at one of its digests."""
        try:
            tags = self.listing()
        except ServerError as err:
            self.result.reachable, self.result.error = False, str(err)
            return
        for item in items:
            if item.name in self.result.failed:
                continue
            found = tags.get(ModelName.parse(item.name).key)
            if found is None:
                self.result.failed[item.name] = f"not on {self.server.url} after deploying"
            elif found.digest not in item.digests:
                self.result.failed[item.name] = (
                    f"{self.server.url} holds {short(found.digest)}, the registry "
                    f"{short(item.digests[0])}: the registry's tag changed since `doit publish`; "
                    "`doit verify` says how")
        ok = sum(1 for item in items if item.name not in self.result.failed)
        self.say(f"verified: {ok} of {len(items)} at their locked digests")


def deploy(project: Project, lock: Lock, hosts: Iterable[str], *, channels_only: bool,
           say: Say) -> list[HostDeploy]:
    """Deploy to every host in parallel; one HostDeploy per host, in the order given."""
    registry = require_registry(project)
    items = wanted(lock, registry, channels_only=channels_only)
    if not items:
        raise DoitOllamaError(f"deploy: nothing to deploy: {project.relative(project.lock_path)} "
                              f"has no {'channels' if channels_only else 'models'}")
    host_list = list(dict.fromkeys(hosts))
    lock_for_output = threading.Lock()

    def said(text: str) -> None:
        with lock_for_output:
            say(text)

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(host_list)))) as pool:
        return list(pool.map(lambda host: _Host(project, registry, host, said).run(items), host_list))
