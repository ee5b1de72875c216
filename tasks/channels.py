"""Channels: tags such as `my-bot:prod` that point at a tested version of the same model.

`promote` copies the version onto the channel on the server and records the channel's
target and digest in the lock, only when that digest passed its smoke tests (the stored
results of `doit test`) or with an explicit, recorded override. Rolling back is promoting
the old version. `restore` puts a channel back on a server that lost it (a fresh CI
server, a tag moved by hand): `doit build` does it for every channel of the lock, from the
version at the digest the lock recorded, so the copy is the promoted model. `check_channels`
is the source-side check: every channel's target still in the lock, at the digest the
channel was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from . import lockfile, smoke
from .errors import BuildRefused, ModelNameError
from .lockfile import ChannelEntry, Lock
from .names import ModelName
from .project import ModelSource, Project
from .server import Server, Tag

__all__ = ["ChannelProblem", "Promotion", "check_channels", "parse_channel", "promote",
           "repoint_command", "restore"]

_OVERRIDE: Final = "doit promote --force --reason \"<why>\" {channel} {target}"


@dataclass(frozen=True)
class Promotion:
    """What a promotion did."""

    channel: str
    target: str
    digest: str
    tested: bool
    reason: str = ""
    previous: ChannelEntry | None = None

    def describe(self) -> str:
        short = self.digest.removeprefix("sha256:")[:12]
        how = "its smoke tests passed" if self.tested else \
            f"NOT tested, override recorded in the lock: {self.reason}"
        was = ""
        if self.previous is not None:
            was = f"; it was {self.previous.target} " \
                  f"({self.previous.digest.removeprefix('sha256:')[:12]})"
        return f"promoted {self.channel} -> {self.target} ({short}): {how}{was}\n"


@dataclass(frozen=True)
class ChannelProblem:
    """A channel the sources and lock no longer support (fields as verify.Finding's)."""

    model: str  # the channel
    kind: str  # channel-orphan, channel-stale, channel-conflict
    message: str
    fix: str
    file: str | None = None
    line: int | None = None


def _name(text: str, what: str) -> ModelName:
    try:
        return ModelName.parse(text)
    except ModelNameError as err:
        raise BuildRefused(f"{what}: {err}") from None


def parse_channel(models: Iterable[ModelSource], channel: str,
                  target: str) -> tuple[ModelName, ModelSource]:
    """Check the pair's names; return the channel's name and the target's source."""
    channel_name = _name(channel, "channel")
    target_name = _name(target, "target")
    if channel_name.key[:3] != target_name.key[:3]:
        raise BuildRefused(
            f"a channel points at a version of its own model: {channel_name.display} cannot "
            f"point at {target_name.display}; use {target_name.repository}:{channel_name.tag}")
    by_key = {m.name.key: m for m in models}
    own = by_key.get(channel_name.key)
    if own is not None:
        raise BuildRefused(
            f"{channel_name.display} is a version with a Modelfile ({own.relpath}), so it "
            f"cannot be a channel; pick a channel tag such as {channel_name.repository}:prod")
    source = by_key.get(target_name.key)
    if source is None:
        raise BuildRefused(f"{target_name.display} has no Modelfile in this repository; a "
                           "channel points at a version built here")
    return channel_name, source


def promote(project: Project, models: Iterable[ModelSource], channel: str, target: str, *,
            server: Server, force: bool = False, reason: str = "") -> Promotion:
    """Point `channel` at `target` on the server and in the lock; BuildRefused if it may not."""
    channel_name, source = parse_channel(models, channel, target)
    name = source.display
    reason = reason.strip()
    if force and not reason:
        raise BuildRefused("--force needs --reason \"...\": the lock records why a version "
                           "went out without passing its tests")
    lock = lockfile.read(project.lock_path)
    entry = lock.models.get(name)
    if entry is None:
        raise BuildRefused(f"{name} is not built (not in {project.relative(project.lock_path)}); "
                           f"run doit build:{name} and doit test {name} first")
    tag = server.tags().get(source.name.key)
    if tag is None or tag.digest != entry.digest:
        where = "is not on" if tag is None else "has another digest on"
        raise BuildRefused(f"{name} {where} {server.url}, so the lock's {entry.digest[:19]}… "
                           f"cannot be promoted; run doit build:{name}")
    passed = smoke.passed_result(project, source, entry.digest)
    if passed is None and not force:
        raise BuildRefused(_untested(project, source, entry.digest, channel_name.display))
    previous = lock.channels.get(channel_name.display)
    server.copy(name, channel_name.display)
    recorded = ChannelEntry(name, entry.digest, tested=passed is not None,
                            reason="" if passed is not None else reason)

    def change(lock: Lock) -> None:
        lock.channels[channel_name.display] = recorded

    lockfile.update(project.lock_path, change, project.lock_guard)
    return Promotion(channel_name.display, name, entry.digest, recorded.tested, recorded.reason,
                     previous)


def repoint_command(channel: str, entry: ChannelEntry) -> str:
    """The `doit promote` that points `channel` at its target again, with the options it
    was promoted with (an override must be given again, with its recorded reason)."""
    if entry.tested:
        return f"doit promote {channel} {entry.target}"
    import shlex

    return f"doit promote --force --reason {shlex.quote(entry.reason)} {channel} {entry.target}"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def restore(project: Project, channel: str, server: Server,
            tags: dict[tuple[str, str, str, str], Tag]) -> str:
    """Make the server hold `channel` at the digest the lock records, copying its version
    (only when the server holds that version at that very digest). Returns "up to date" or
    "restored"; BuildRefused when the version is not there to copy."""
    lock = lockfile.read(project.lock_path, project.lock_cache)
    entry = lock.channels.get(channel)
    if entry is None:
        return "up to date"  # no longer in the lock (a promotion was undone meanwhile)
    key = ModelName.parse(channel).key
    target_key = ModelName.parse(entry.target).key
    current, target = tags.get(key), tags.get(target_key)
    if (current is None or current.digest != entry.digest) and (
            target is None or target.digest != entry.digest):
        tags = server.tags()  # the listing may predate this run's build of the version
        current, target = tags.get(key), tags.get(target_key)
    if current is not None and current.digest == entry.digest:
        return "up to date"
    if target is None or target.digest != entry.digest:
        locked = lock.models.get(entry.target)
        if locked is not None and locked.digest != entry.digest:
            raise BuildRefused(
                f"channel {channel} cannot be restored: it was given {entry.target} at "
                f"{_short(entry.digest)}, but {entry.target} is {_short(locked.digest)} in the lock "
                f"now; test it and promote it again: doit test {entry.target} && "
                f"{repoint_command(channel, entry)}")
        where = "is not on" if target is None else f"is {_short(target.digest)} on"
        raise BuildRefused(
            f"channel {channel} cannot be restored: its version {entry.target} {where} "
            f"{server.url}, and the lock gave the channel {_short(entry.digest)}; "
            f"build the version first: doit build:{entry.target}")
    server.copy(entry.target, channel)
    return "restored"


def _untested(project: Project, source: ModelSource, digest: str, channel: str) -> str:
    """Why a version may not be promoted yet, and the way forward."""
    name = source.display
    override = _OVERRIDE.format(channel=channel, target=name)
    path = smoke.suite_path(source.modelfile)
    if not path.exists():
        return (f"{name} has no smoke tests ({project.relative(path)}), so nothing shows it "
                f"works; write them and run doit test {name}, or override: {override}")
    suite = smoke.load_suite(path)
    stored = smoke.result_path(project, digest, suite.fingerprint)
    if stored.exists():
        return (f"{name} ({digest[:19]}…) failed its smoke tests; fix it in a new version, "
                f"or override: {override}")
    return (f"{name} ({digest[:19]}…) has not passed its smoke tests yet (or the test file "
            f"changed since); run doit test {name}, then promote again")


def check_channels(project: Project, lock: Lock,
                   models: Iterable[ModelSource]) -> list[ChannelProblem]:
    """Source-side channel checks: target gone from the lock, rebuilt since, or shadowed."""
    by_key = {m.name.key: m for m in models}
    problems = []
    for channel, entry in sorted(lock.channels.items()):
        fix = f"doit promote {channel} <version> (e.g. {entry.target} after doit test {entry.target})"
        try:
            key = ModelName.parse(channel).key
        except ModelNameError:
            key = None
        own = by_key.get(key) if key else None
        target = lock.models.get(entry.target)
        if own is not None:
            problems.append(ChannelProblem(
                channel, "channel-conflict",
                f"channel {channel} also has a Modelfile ({own.relpath}); doit build would "
                "overwrite the channel", f"rename {own.relpath} to a version tag",
                file=own.relpath, line=1))
        elif target is None:
            problems.append(ChannelProblem(
                channel, "channel-orphan",
                f"channel {channel} points at {entry.target}, which is no longer in the lock",
                fix))
        elif target.digest != entry.digest:
            problems.append(ChannelProblem(
                channel, "channel-stale",
                f"channel {channel} was given {entry.target} at {entry.digest[:19]}…, but "
                f"{entry.target} is now {target.digest[:19]}… in the lock",
                f"doit test {entry.target} && doit promote {channel} {entry.target}"))
    return problems
