"""`doit outdated`: which bases moved upstream since they were locked, without pulling.

For every base a locked model was built FROM (outside this repository), its registry is
asked for the digest its tag has now: one HEAD of `/v2/<namespace>/<model>/manifests/<tag>`
per base (ollama.com's registry over HTTPS for names without a host; a host listed in
`insecure-registries` over plain HTTP), compared with the digest in the lock. A pulled
model's digest is the registry's digest of its manifest, so equal digests mean the tag
still serves the locked version (ollama issue #2586 asks for a way to know about updates).
"""

from __future__ import annotations

from dataclasses import dataclass

from .build import short
from .errors import RegistryError
from .lockfile import Lock
from .names import ModelName
from .registry import RegistryClient

__all__ = ["Outdated", "check"]


@dataclass(frozen=True)
class Outdated:
    """One model's base: the locked digest and what its tag serves upstream now."""

    model: str
    base: str
    locked: str
    upstream: str | None  # None: the tag is gone upstream (or could not be asked: error)
    modelfile: str | None = None
    error: str = ""

    @property
    def moved(self) -> bool:
        """True when upstream no longer serves the locked version under the base's tag."""
        return not self.error and self.upstream != self.locked

    @property
    def state_text(self) -> str:
        if self.error:
            return f"not checked: {self.error}"
        if self.upstream is None:
            return "gone (the tag is not in its registry any more)"
        return short(self.upstream) + (" (moved)" if self.upstream != self.locked else "")


def check(lock: Lock, client: RegistryClient) -> list[Outdated]:
    """One row per locked model built FROM an outside base; one request per distinct base."""
    repository = {ModelName.parse(name).key for name in lock.models}
    asked: dict[str, tuple[str | None, str]] = {}  # base name -> (upstream digest, error)
    rows = []
    for name, entry in sorted(lock.models.items()):
        base = entry.base
        if base is None:
            continue
        parsed = ModelName.parse(base.name)
        if parsed.key in repository:
            continue  # built here: `doit status` says when it changed
        if base.name not in asked:
            try:
                asked[base.name] = (client.head(parsed), "")
            except RegistryError as err:
                asked[base.name] = (None, str(err))
        upstream, error = asked[base.name]
        rows.append(Outdated(name, base.name, base.digest, upstream, entry.modelfile, error))
    return rows
