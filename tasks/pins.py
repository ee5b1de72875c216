"""Pinned bases: a base's locked version, kept in the team registry and put back on a server.

Ollama cannot pull by digest, so once a base's tag moves upstream no machine can pull the
version a released model was built from. `doit publish` therefore mirrors every base a
locked model was built FROM to the registry under a name derived from its locked digest
(registry.pin_name); a build that needs that version again pulls the pinned copy and copies
it to the base's *original* name before creating: the layers a model inherits carry the
base's name in their `from` field, so creating FROM the pinned name would give another
digest (docs/registry.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .build import short
from .errors import BuildRefused, ServerError
from .lockfile import BaseRef
from .names import ModelName
from .project import Project
from .registry import Registry, pin_name
from .server import Progress, Server

__all__ = ["moved_refusal", "restore", "swapped_in"]

Say = Callable[[str], None]


def _digest_on(server: Server, name: ModelName) -> str | None:
    tag = server.tags().get(name.key)
    return tag.digest if tag is not None else None


def restore(server: Server, registry: Registry, base: ModelName, locked: BaseRef, model: str,
            progress: Callable[[Progress], None] | None = None) -> str:
    """Pull the pinned copy of `base` and copy it to the base's own name; return its digest."""
    pinned = pin_name(registry, base, locked.digest)
    try:
        server.pull(pinned.display, progress=progress, insecure=registry.insecure)
    except ServerError as err:
        raise BuildRefused(
            f"{model}: the registry {registry.display} has no usable pinned copy of its base "
            f"{base.display} at {short(locked.digest)} ({pinned.display}): {err}\n"
            f"  Pin it with `doit publish` on a machine that still has {base.display} at "
            f"{short(locked.digest)}."
        ) from err
    server.copy(pinned.display, base.display)
    try:
        server.delete(pinned.display)  # the copy under the base's name is what builds use
    except ServerError:
        pass
    digest = _digest_on(server, base)
    if not locked.holds(digest):
        raise BuildRefused(
            f"{model}: the pinned copy {pinned.display} gave {base.display} the digest "
            f"{short(digest)}, but the lock says {short(locked.digest)}; the registry's copy "
            f"was changed outside doit-ollama"
        )
    return locked.digest


@contextmanager
def swapped_in(server: Server, registry: Registry, base: ModelName, locked: BaseRef,
               current: str, model: str, say: Say,
               progress: Callable[[Progress], None] | None = None) -> Iterator[str]:
    """The pinned base under the base's name while the block runs; the version the server
    held before (`current`, the moved one) is put back afterwards, so a build of an old
    release does not change which version of the base other builds see."""
    kept = ModelName(base.host, base.namespace, base.model, "sha256-" + current.removeprefix("sha256:"))
    server.copy(base.display, kept.display)
    try:
        yield restore(server, registry, base, locked, model, progress)
    finally:
        try:
            server.copy(kept.display, base.display)
            server.delete(kept.display)
            say(f"{model}: put {base.display} back at {short(current)}")
        except ServerError as err:
            say(f"{model}: warning: could not put {base.display} back at {short(current)} "
                f"(it is kept as {kept.display}): {err}")


def moved_refusal(model: str, relpath: str, project: Project, base: ModelName, locked: BaseRef,
                  now: str | None, where: str) -> str:
    """Why a released tag is not rebuilt from a base that moved, and the ways out that fit:
    the Modelfile did not change, so the advice is about the base, not about the file."""
    repository = ModelName.parse(model).repository
    models_dir = project.relative(project.models_dir)
    moved = (f"base {base.display} moved: {short(locked.digest)} -> {short(now)}" if now
             else f"base {base.display} at {short(locked.digest)} cannot be pulled")
    lines = [
        f"{model}: {moved} ({where})",
        f"  {model} is a released tag, built from {base.display} at {short(locked.digest)}; "
        "rebuilt from another version it would not reproduce its locked digest.",
        "  Ways out:",
    ]
    if project.registry is None:
        lines.append(
            f"  - reproduce it from a pinned copy: set [tool.doit-ollama] registry (docs/registry.md) "
            f"and run `doit publish` on a machine that still has {base.display} at "
            f"{short(locked.digest)}; a registry would let this build reproduce the locked digest;")
    else:
        lines.append(
            f"  - pin the base: run `doit publish` on a machine that still has {base.display} at "
            f"{short(locked.digest)}, then build again;")
    lines += [
        f"  - build a new version from the moved base: copy {relpath} to "
        f"{models_dir}/{repository}/<next>.Modelfile and run `doit build`;",
        f"  - or re-lock this tag on the moved base on purpose: `doit build:{model} --relock`.",
    ]
    return "\n".join(lines)
