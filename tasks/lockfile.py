"""lock/models.lock: what was built, from which inputs, with which digest.

The lock is TOML written with tomli-w. `render` is pure and deterministic (sorted keys, no
timestamps, no absolute paths, no host names), so two machines that build the same thing
write the same bytes. `update` is the only writer: it takes a file lock, re-reads the lock,
applies one change and replaces the file atomically, so parallel builds never lose an entry
and a killed build never leaves half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from . import localfiles
from .errors import LockError
from .guard import Guard, GuardTimeout
from .localfiles import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "LOCK_VERSION",
    "BaseRef",
    "ChannelEntry",
    "Lock",
    "ModelEntry",
    "parse",
    "read",
    "read_summary",
    "render",
    "update",
    "write_atomic",
]

LOCK_VERSION: Final = 1
HEADER: Final = (
    "# This file is written by doit-ollama (`doit build`). Do not edit it by hand.\n"
    "# Check it with `doit verify`; see docs/lock-format.md for every field.\n"
)
_DIGEST: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
# How long a build waits for another process that is writing the lock.
LOCK_WAIT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class BaseRef:
    """The model a tag is built FROM, and the manifest digest it had."""

    name: str
    digest: str
    # The digest the team registry serves for this base's pinned copy (`doit publish`); the
    # same as `digest` unless the base's manifest file had a form Ollama re-encodes on push.
    pinned: str | None = None

    def holds(self, digest: str | None) -> bool:
        """True if a server holding the base at `digest` holds this very base."""
        return digest is not None and digest in (self.digest, self.pinned)


@dataclass(frozen=True)
class ModelEntry:
    """One built model tag."""

    modelfile: str  # repository-relative, forward slashes
    inputs: str  # sha256 of the canonical create request
    digest: str  # manifest digest the server reported after create
    ollama: str  # version of the server that built it
    fields: Mapping[str, str] = field(default_factory=dict)  # per-field fingerprints
    files: Mapping[str, str] = field(default_factory=dict)  # local path -> blob digest
    base: BaseRef | None = None
    # The digest the team registry serves for this tag (`doit publish`): the build digest's
    # manifest without its trailing newline. A server holding either holds this model.
    registry: str | None = None

    def holds(self, digest: str | None) -> bool:
        """True if a server listing the tag at `digest` holds this very model."""
        return digest is not None and digest in (self.digest, self.registry)


@dataclass(frozen=True)
class ChannelEntry:
    """A channel tag (e.g. `my-bot:prod`) pointing at a version."""

    target: str
    digest: str
    tested: bool = True  # False when promoted with an explicit override
    reason: str = ""  # the override's reason, recorded when tested is False


@dataclass
class Lock:
    """The whole lock: model entries and channels, keyed by display name."""

    models: dict[str, ModelEntry] = field(default_factory=dict)
    channels: dict[str, ChannelEntry] = field(default_factory=dict)


# --- reading ------------------------------------------------------------------------------


def _line_of(text: str, key: str) -> int | None:
    """The line of the table header for `key` (models or channels), for error messages."""
    pattern = re.compile(r'^\s*\[\s*(models|channels)\s*\.\s*"' + re.escape(key) + r'"')
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


class _Reader:
    """Checks the shape of a decoded lock, with errors that name the file and line."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path

    def fail(self, message: str, key: str | None = None) -> LockError:
        line = _line_of(self.text, key) if key else None
        where = f"{self.path}:{line}" if line else self.path
        return LockError(
            f"{where}: {message}\n"
            f"  The lock is not valid; it was left untouched. Restore it from git "
            f"(`git checkout -- {self.path}`) or delete it and run `doit build` to write it again."
        )

    def string(self, table: Mapping[str, Any], name: str, key: str, *, digest: bool = False,
               required: bool = True) -> str:
        value = table.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            problem = "is missing" if value is None else f"must be a string, not {type(value).__name__}"
            raise self.fail(f"{key!r}: field {name!r} {problem}", key)
        if digest and not _DIGEST.match(value):
            raise self.fail(f"{key!r}: field {name!r} must look like sha256:<64 hex digits>, got {value!r}", key)
        return value

    def digest_map(self, table: Mapping[str, Any], name: str, key: str) -> dict[str, str]:
        value = table.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(f"{key!r}: field {name!r} must be a table", key)
        return {k: self.string(value, k, key, digest=True) for k in value}

    def model(self, key: str, table: Any) -> ModelEntry:
        if not isinstance(table, dict):
            raise self.fail(f"models.{key!r} must be a table", key)
        base = None
        if "base" in table:
            raw = table["base"]
            if not isinstance(raw, dict):
                raise self.fail(f"{key!r}: field 'base' must be a table with name and digest", key)
            base = BaseRef(self.string(raw, "name", key), self.string(raw, "digest", key, digest=True),
                           self.string(raw, "pinned", key, digest=True, required=False) or None)
        return ModelEntry(
            modelfile=self.string(table, "modelfile", key),
            inputs=self.string(table, "inputs", key, digest=True),
            digest=self.string(table, "digest", key, digest=True),
            ollama=self.string(table, "ollama", key),
            fields=self.digest_map(table, "fields", key),
            files=self.digest_map(table, "files", key),
            base=base,
            registry=self.string(table, "registry", key, digest=True, required=False) or None,
        )

    def channel(self, key: str, table: Any) -> ChannelEntry:
        if not isinstance(table, dict):
            raise self.fail(f"channels.{key!r} must be a table", key)
        tested = table.get("tested", True)
        if not isinstance(tested, bool):
            raise self.fail(f"{key!r}: field 'tested' must be true or false", key)
        return ChannelEntry(
            target=self.string(table, "target", key),
            digest=self.string(table, "digest", key, digest=True),
            tested=tested,
            reason=self.string(table, "reason", key, required=False),
        )


def parse(data: bytes, path: str = "lock/models.lock") -> Lock:
    """Decode and check lock bytes; raise LockError naming the file and line."""
    reader = _Reader("", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise reader.fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader.text = text
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Older tomllib/tomli keep the line only in the text: "(at line 3, column 5)".
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        message = str(exc)
        raise LockError(
            f"{path}{':' + str(line) if line else ''}: invalid TOML: {message}\n"
            f"  The lock was left untouched. Restore it from git (`git checkout -- {path}`) "
            "or delete it and run `doit build` to write it again."
        ) from None
    version = doc.get("version")
    if version != LOCK_VERSION:
        if isinstance(version, int) and version > LOCK_VERSION:
            raise reader.fail(
                f"lock version {version} is newer than this doit-ollama understands "
                f"(version {LOCK_VERSION}); upgrade doit-ollama"
            )
        raise reader.fail(f"'version' must be {LOCK_VERSION}, got {version!r}")
    unknown = sorted(set(doc) - {"version", "models", "channels"})
    if unknown:
        raise reader.fail(f"unknown top-level key(s): {', '.join(unknown)}")
    models = doc.get("models", {})
    channels = doc.get("channels", {})
    if not isinstance(models, dict) or not isinstance(channels, dict):
        raise reader.fail("'models' and 'channels' must be tables")
    return Lock(
        models={key: reader.model(key, value) for key, value in models.items()},
        channels={key: reader.channel(key, value) for key, value in channels.items()},
    )


def _shown(path: str | os.PathLike[str]) -> str:
    """The path as messages show it: relative to the current folder when inside it."""
    text = os.fspath(path)
    if os.path.isabs(text):
        relative = os.path.relpath(text)
        if not relative.startswith(".."):
            return relative
    return text


def read(path: str | os.PathLike[str], cache: str | os.PathLike[str] | None = None) -> Lock:
    """Read the lock at `path`; a missing file is an empty lock.

    With `cache` (a file in .doit-ollama/), the checked result is remembered under the
    sha256 of the lock's bytes: parsing TOML in pure Python costs ~0.3 s for 1000 models,
    reading the remembered JSON a few milliseconds, and the hash makes it exactly as
    trustworthy as parsing.
    """
    return _read(path, cache)[0]


def _read_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The lock's bytes, or None when there is no lock yet."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"{_shown(path)}: cannot read the lock: {exc.strerror}") from None


# The last lock this process read or wrote, under the sha256 of its bytes. A build step
# reads the lock and then updates it; a serial build does that once per model: the same
# content is decoded once. Callers get their own tables (the entries are immutable).
_PARSED: list[tuple[str, Lock]] = []


def _remember(key: str, lock: Lock) -> None:
    _PARSED[:] = [(key, Lock(dict(lock.models), dict(lock.channels)))]


def _read(path: str | os.PathLike[str], cache: str | os.PathLike[str] | None) -> tuple[Lock, str | None]:
    """The lock and the sha256 of its bytes (None when there is no lock yet)."""
    data = _read_bytes(path)
    if data is None:
        return Lock(), None
    key = hashlib.sha256(data).hexdigest()
    if _PARSED and _PARSED[0][0] == key:
        known = _PARSED[0][1]
        return Lock(dict(known.models), dict(known.channels)), key
    if cache is None:
        lock = parse(data, _shown(path))
    else:
        lock = _load_cached(Path(cache), key)
        if lock is None:
            lock = parse(data, _shown(path))
            _store_cached(Path(cache), key, lock)
    _remember(key, lock)
    return lock, key


def _model_row(entry: ModelEntry) -> tuple[Any, ...]:
    """An entry as the cache keeps it: its fields in order, plain values only."""
    base = (entry.base.name, entry.base.digest, entry.base.pinned) if entry.base is not None else None
    return (entry.modelfile, entry.inputs, entry.digest, entry.ollama, dict(entry.fields),
            dict(entry.files), base, entry.registry)


_MODEL_ROW_LENGTH: Final = 8


def _channel_row(entry: ChannelEntry) -> tuple[Any, ...]:
    return (entry.target, entry.digest, entry.tested, entry.reason)


def _load_cached(cache: Path, key: str) -> Lock | None:
    doc = localfiles.load_cache(cache)
    try:
        if doc is None or doc["key"] != key:
            return None  # no cache, another lock's cache, or a damaged one: parse instead
        models = {}
        for name, row in doc["models"].items():
            if len(row) != _MODEL_ROW_LENGTH:
                return None  # written by an older doit-ollama: parse instead
            *fields, base, registry = row
            models[name] = ModelEntry(*fields, base=BaseRef(*base) if base else None,
                                      registry=registry)
        return Lock(models=models,
                    channels={name: ChannelEntry(*row) for name, row in doc["channels"].items()})
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _texts_path(cache: Path) -> Path:
    return cache.with_name(f"{cache.stem}-texts{cache.suffix}")


def _summary_path(cache: Path) -> Path:
    return cache.with_name(f"{cache.stem}-summary{cache.suffix}")


# Per model: inputs, digest, base name, base digest, registry digest, pinned base digest.
Summary = dict[str, tuple[str, str, "str | None", "str | None", "str | None", "str | None"]]
_SUMMARY_ROW_LENGTH: Final = 6


def _summarize(lock: Lock) -> Summary:
    return {name: (e.inputs, e.digest, e.base.name if e.base else None,
                   e.base.digest if e.base else None, e.registry,
                   e.base.pinned if e.base else None) for name, e in lock.models.items()}


def read_summary(path: str | os.PathLike[str], cache: str | os.PathLike[str]) -> Summary:
    """Per model (inputs, digest, base name, base digest, registry digest, pinned base
    digest): all an up-to-date check needs.

    Remembered beside the cache under the same content hash; loading it is a fraction of
    loading every entry, which matters when nothing changed.
    """
    data = _read_bytes(path)
    if data is None:
        return {}
    key = hashlib.sha256(data).hexdigest()
    doc = localfiles.load_cache(_summary_path(Path(cache)))
    if isinstance(doc, dict) and doc.get("key") == key and isinstance(doc.get("models"), dict):
        rows = doc["models"]
        if all(type(row) is tuple and len(row) == _SUMMARY_ROW_LENGTH for row in rows.values()):
            return rows  # type: ignore[no-any-return]
    return _summarize(read(path, cache))


def _load_texts(cache: Path, key: str, lock: Lock) -> None:
    """Seed the render memo with the entries' texts remembered beside the cache (unless
    this process rendered them all already, as the second update of a serial build has)."""
    if all(_rendered(section, name, entry)
           for section, entries in (("models", lock.models), ("channels", lock.channels))
           for name, entry in entries.items()):
        return
    doc = localfiles.load_cache(_texts_path(cache))
    try:
        if doc is None or doc["key"] != key:
            return
        for section, entries in (("models", lock.models), ("channels", lock.channels)):
            for name, text in doc[section].items():
                if name in entries and isinstance(text, str):
                    _RENDERED[(section, name)] = (entries[name], text)
    except (TypeError, ValueError, KeyError, AttributeError):
        pass


def _store_cached(cache: Path, key: str, lock: Lock) -> None:
    doc = {
        "key": key,
        "models": {name: _model_row(entry) for name, entry in lock.models.items()},
        "channels": {name: _channel_row(entry) for name, entry in lock.channels.items()},
    }
    # The rendered text of each entry is kept apart (only writers need it), so the next
    # writer in another process does not render 1000 unchanged entries again.
    texts: dict[str, Any] = {"key": key, "models": {}, "channels": {}}
    for section, entries in (("models", lock.models), ("channels", lock.channels)):
        for name, entry in entries.items():
            text = _rendered(section, name, entry)
            if text is not None:
                texts[section][name] = text
    localfiles.store_cache(cache, doc)
    localfiles.store_cache(_texts_path(cache), texts)
    localfiles.store_cache(_summary_path(cache), {"key": key, "models": _summarize(lock)})


# --- writing ------------------------------------------------------------------------------


def _model_table(entry: ModelEntry) -> dict[str, Any]:
    table: dict[str, Any] = {
        "modelfile": entry.modelfile,
        "digest": entry.digest,
        "inputs": entry.inputs,
        "ollama": entry.ollama,
    }
    if entry.registry is not None:
        table["registry"] = entry.registry
    if entry.base is not None:
        table["base"] = {"name": entry.base.name, "digest": entry.base.digest}
        if entry.base.pinned is not None:
            table["base"]["pinned"] = entry.base.pinned
    if entry.files:
        table["files"] = dict(sorted(entry.files.items()))
    if entry.fields:
        table["fields"] = dict(sorted(entry.fields.items()))
    return table


def _channel_table(entry: ChannelEntry) -> dict[str, Any]:
    table: dict[str, Any] = {"target": entry.target, "digest": entry.digest, "tested": entry.tested}
    if entry.reason:
        table["reason"] = entry.reason
    return table


# Rendered text of each entry, reused while the entry is unchanged (entries compare by
# value): a build updates the lock once per model, and re-rendering 1000 unchanged entries
# each time would dominate.
_RENDERED: dict[tuple[str, str], tuple[Any, str]] = {}


def _rendered(section: str, name: str, entry: ModelEntry | ChannelEntry) -> str | None:
    """The memo's text of this very entry, if it has one."""
    hit = _RENDERED.get((section, name))
    return hit[1] if hit is not None and hit[0] == entry else None


def _render_entry(section: str, name: str, entry: ModelEntry | ChannelEntry) -> str:
    text = _rendered(section, name, entry)
    if text is not None:
        return text
    import tomli_w  # imported on first write: a no-op build never renders the lock

    table = _model_table(entry) if isinstance(entry, ModelEntry) else _channel_table(entry)
    text = tomli_w.dumps({section: {name: table}})
    _RENDERED[(section, name)] = (entry, text)
    return text


def render(lock: Lock) -> bytes:
    """The lock's bytes: deterministic, so equal locks are byte-identical.

    The same text as tomli_w.dumps of the whole document (tables are separated by one blank
    line), assembled per entry so unchanged entries are not rendered again.
    """
    parts = [f"version = {LOCK_VERSION}\n"]
    parts += [_render_entry("models", k, lock.models[k]) for k in sorted(lock.models)]
    parts += [_render_entry("channels", k, lock.channels[k]) for k in sorted(lock.channels)]
    return (HEADER + "\n".join(parts)).encode("utf-8")


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temp files a killed writer left beside the lock (we hold the guard: none is live)."""
    try:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    except OSError:
        pass


def update(path: str | os.PathLike[str], change: Callable[[Lock], None],
           guard: str | os.PathLike[str], cache: str | os.PathLike[str] | None = None) -> Lock:
    """Re-read the lock under a file lock (`guard`), apply `change`, write it if it changed."""
    Path(guard).parent.mkdir(parents=True, exist_ok=True)
    try:
        with Guard(guard, timeout=LOCK_WAIT_SECONDS):
            _remove_stale_temporaries(Path(path))
            lock, key = _read(path, cache)
            if cache is not None and key is not None:
                _load_texts(Path(cache), key, lock)
            before = render(lock) if key is not None else None
            change(lock)
            after = render(lock)
            if after != before:
                write_atomic(path, after)
                written = hashlib.sha256(after).hexdigest()
                if cache is not None:
                    _store_cached(Path(cache), written, lock)
                _remember(written, lock)
            return lock
    except GuardTimeout:
        raise LockError(
            f"{path}: another process held the lock for more than {LOCK_WAIT_SECONDS:.0f} s "
            f"(guard file {guard}); is another build stuck? Stop it and try again."
        ) from None
