"""An Ollama models folder on disk: content-addressed blobs and per-name manifests.

Layout as Ollama's: `<models>/blobs/sha256-<hex>` and
`<models>/manifests/<host>/<namespace>/<model>/<tag>`. Everything lives on disk; the
in-memory index only caches parsed manifests keyed by each file's stat, so the folder
may be changed behind the double's back and a restart sees the same state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import gojson
from .errors import ApiError
from .names import Name

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "Layer",
    "MANIFEST_MEDIA_TYPE",
    "Manifest",
    "Store",
    "manifest_bytes",
    "valid_digest",
]

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
_DIGEST_RE = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
_RACY_NS = 100_000_000  # stat keys younger than this are not trusted (coarse mtimes)
_COPY_CHUNK = 1024 * 1024
RECENT = 0.25  # seconds a listing may be reused by mutating requests (see Store.manifests)


def read_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes, a piece at a time."""
    with open(path, "rb") as src:
        while chunk := src.read(_COPY_CHUNK):
            yield chunk


def write_replacing(path: Path, chunks: Iterable[bytes], *, prefix: str = ".tmp-") -> None:
    """Write `chunks` to a new file beside `path`, then rename it over `path`: readers see
    the old file or the whole new one. The new file is removed if anything fails first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def valid_digest(digest: str) -> bool:
    """manifest.BlobsPath's check: sha256, ':' or '-', 64 hex digits (any case)."""
    return bool(_DIGEST_RE.match(digest))


@dataclass(frozen=True)
class Layer:
    """A manifest layer (or the config), as manifest.Layer serializes it."""

    media_type: str
    digest: str
    size: int
    from_: str = ""
    name: str = ""

    def to_json(self) -> gojson.Struct:
        out = gojson.Struct(mediaType=self.media_type, digest=self.digest, size=self.size)
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_json(cls, data: Any) -> "Layer":
        if not isinstance(data, dict):
            raise ValueError("layer is not an object")
        return cls(
            media_type=str(data.get("mediaType") or ""),
            digest=str(data.get("digest") or ""),
            size=int(data.get("size") or 0),
            from_=str(data.get("from") or ""),
            name=str(data.get("name") or ""),
        )


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest file; `digest` is the lowercase hex sha256 of its bytes."""

    name: Name
    path: Path
    digest: str
    config: Layer
    layers: tuple[Layer, ...]
    mtime_ns: int

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers) + self.config.size

    def digests(self) -> set[str]:
        found = {layer.digest for layer in self.layers if layer.digest}
        if self.config.digest:
            found.add(self.config.digest)
        return found


def manifest_bytes(config: Layer, layers: Iterable[Layer]) -> bytes:
    """Manifest JSON exactly as manifest.WriteManifest writes it (Encoder: trailing newline)."""
    return gojson.encode_line(
        gojson.Struct(
            schemaVersion=2,
            mediaType=MANIFEST_MEDIA_TYPE,
            config=config.to_json(),
            layers=[layer.to_json() for layer in layers],
        )
    )


def parse_manifest(name: Name, path: Path, data: bytes, mtime_ns: int) -> Manifest:
    """Parse manifest bytes; raises ValueError if they are not a manifest."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("manifest is not an object")
    layers = doc.get("layers") or []
    if not isinstance(layers, list):
        raise ValueError("layers is not a list")
    config = doc.get("config")
    return Manifest(
        name=name,
        path=path,
        digest=hashlib.sha256(data).hexdigest(),
        config=Layer.from_json(config) if config else Layer("", "", 0),
        layers=tuple(Layer.from_json(layer) for layer in layers),
        mtime_ns=mtime_ns,
    )


class Store:
    """Blobs and manifests under one models folder; `lock` serializes mutations."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.manifests_dir = self.root / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._index_lock = threading.RLock()
        self._files: dict[str, tuple[tuple[int, int, int, int], Manifest | None]] = {}
        self.memo: dict[str, Any] = {}  # caches derived from disk by other modules
        self.mounted: set[str] = set()  # blobs a push mounted across repositories (push.py)
        self.memo_lock = threading.Lock()
        self._names: dict[tuple[str, str, str, str], Name | None] = {}
        self._dirs: dict[str, tuple[int, list[tuple[str, str, bool]]]] = {}
        self._folds: dict[Name, tuple[str, str, str, str]] = {}
        self._now = 0
        self._snapshot: dict[Name, Manifest] | None = None
        self._snapshot_at = 0.0

    # --- blobs -------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives; ApiError 400 for a malformed digest (BlobsPath)."""
        if not valid_digest(digest):
            raise ApiError(400, "invalid digest format")
        return self.blobs / digest.replace(":", "-")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def ingest(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Stream bytes into a blob while hashing them; returns ("sha256:<hex>", size)."""
        digest, size, _existed = self._ingest(chunks)
        return digest, size

    def _ingest(self, chunks: Iterable[bytes]) -> tuple[str, int, bool]:
        hasher = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix="sha256-tmp-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = "sha256:" + hasher.hexdigest()
            final = self.blob_path(digest)
            existed = final.exists()
            if existed:
                os.unlink(tmp_name)
            else:
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, final)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        return digest, size, existed

    def new_layer(self, data: bytes | Iterable[bytes], media_type: str) -> tuple[Layer, str]:
        """manifest.NewLayer: store bytes (or streamed chunks) as a blob; returns the layer
        and its status line."""
        if isinstance(data, bytes):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            existed = self.blob_path(digest).exists()
            if not existed:
                self.ingest([data])
            size = len(data)
        else:
            digest, size, existed = self._ingest(data)
        status = "using existing layer" if existed else "creating new layer"
        return Layer(media_type, digest, size), f"{status} {digest}"

    def layer_from_blob(self, digest: str, media_type: str, from_: str) -> Layer:
        """manifest.NewLayerFromLayer: a layer for an existing blob."""
        if not digest:
            raise ApiError(500, "creating new layer from layer with empty digest")
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ApiError(500, f"stat {path}: no such file or directory") from None
        return Layer(media_type, digest, size, from_)

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ApiError(500, f"open {path}: no such file or directory") from None

    def in_use(self, manifests: Iterable[Manifest] | None = None) -> set[str]:
        """Every blob digest some manifest refers to (all stored manifests by default)."""
        found: set[str] = set()
        for manifest in self.manifests(RECENT).values() if manifests is None else manifests:
            found |= manifest.digests()
        return found

    def remove_unused(self, digests: Iterable[str], in_use: set[str] | None = None) -> None:
        """Delete the given blobs that no manifest uses (Layer.Remove, RemoveLayers,
        deleteUnusedLayers); `in_use` may pass a set the caller already computed."""
        if in_use is None:
            in_use = self.in_use()
        for digest in set(digests) - in_use:
            if digest and valid_digest(digest):
                self.blob_path(digest).unlink(missing_ok=True)

    # --- manifests ---------------------------------------------------------------------------

    def manifest_path(self, name: Name) -> Path:
        return self.manifests_dir.joinpath(*name.parts())

    def read_manifest(self, name: Name) -> Manifest | None:
        """The manifest stored under exactly this name (case-sensitive, like the file system)."""
        if not name.is_valid():
            return None
        with self._index_lock:
            return self._load(name, str(self.manifest_path(name)))

    def _load(self, name: Name, path: str, now: int | None = None) -> Manifest | None:
        """The parsed manifest at `path`, re-read only if its stat changed (or is too recent)."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
        cached = self._files.get(path)
        if cached is not None and cached[0] == key and (now or time.time_ns()) - st.st_ctime_ns >= _RACY_NS:
            return cached[1]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            manifest: Manifest | None = parse_manifest(name, Path(path), data, st.st_mtime_ns)
        except (OSError, ValueError):
            manifest = None
        self._files[path] = (key, manifest)
        return manifest

    def manifests(self, max_age: float = 0.0) -> dict[Name, Manifest]:
        """Every readable manifest (manifest.Manifests(continueOnError=true)).

        With max_age, a listing made less than that many seconds ago is reused (the
        double's own writes keep it current); listing and show always look at the disk.
        """
        with self._index_lock:
            if max_age and self._snapshot is not None and time.monotonic() - self._snapshot_at < max_age:
                return dict(self._snapshot)
            found: dict[Name, Manifest] = {}
            entries = list(self._walk())
            now = time.time_ns()
            load = self._load
            for name, path in entries:
                manifest = load(name, path, now)
                if manifest is not None:
                    found[name] = manifest
            if len(self._files) > len(entries):
                seen = {path for _name, path in entries}
                for stale in set(self._files) - seen:
                    del self._files[stale]
            self._snapshot, self._snapshot_at = dict(found), time.monotonic()
            return found

    def _remember(self, name: Name, manifest: Manifest | None) -> None:
        """Keep the reusable listing in step with a write or delete made here."""
        key = Name(*name.parts(), "https")
        if self._snapshot is not None:
            if manifest is None:
                self._snapshot.pop(key, None)
            else:
                self._snapshot[key] = manifest

    def _entries(self, path: str) -> list[tuple[str, str, bool]]:
        """A directory's (name, path, is_dir) entries, cached while its mtime is unchanged."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            self._dirs.pop(path, None)
            return []
        cached = self._dirs.get(path)
        if cached is not None and cached[0] == mtime and self._now - mtime >= _RACY_NS:
            return cached[1]
        try:
            with os.scandir(path) as it:
                listing = sorted((e.name, e.path, e.is_dir()) for e in it)
        except (FileNotFoundError, NotADirectoryError):
            return []
        self._dirs[path] = (mtime, listing)
        return listing

    def _walk(self) -> Iterator[tuple[Name, str]]:
        """(name, path) of every file at manifests/<host>/<namespace>/<model>/<tag>."""
        self._now = time.time_ns()
        names_cache = self._names
        entries = self._entries
        for host, host_path, host_dir in entries(str(self.manifests_dir)):
            if not host_dir:
                continue
            for namespace, ns_path, ns_dir in entries(host_path):
                if not ns_dir:
                    continue
                for model, model_path, model_dir in entries(ns_path):
                    if not model_dir:
                        continue
                    for tag, tag_path, tag_dir in entries(model_path):
                        if tag_dir or tag.startswith(".tmp-"):
                            continue
                        parts = (host, namespace, model, tag)
                        name = names_cache.get(parts, False)
                        if name is False:
                            candidate = Name(host, namespace, model, tag, "https")
                            name = names_cache[parts] = candidate if candidate.is_valid() else None
                        if name is not None:
                            yield name, tag_path

    def existing_name(self, name: Name, max_age: float = 0.0) -> Name:
        """getExistingName: reuse the case of existing parts (case-insensitive match)."""
        want = name.fold()
        host, namespace, model, tag = name.parts()
        folds = self._folds
        for other in self.manifests(max_age):
            fold = folds.get(other)
            if fold is None:
                fold = folds[other] = other.fold()
            if fold[0] == want[0]:
                host = other.host
            if fold[1] == want[1]:
                namespace = other.namespace
            if fold[2] == want[2]:
                model = other.model
            if fold[3] == want[3]:
                tag = other.tag
        return Name(host, namespace, model, tag, name.scheme)

    def write_manifest(self, name: Name, data: bytes) -> Manifest:
        """Write manifest bytes for a name (atomically) and return it parsed."""
        path = self.manifest_path(name)
        write_replacing(path, [data])
        with self._index_lock:
            manifest = self._load(name, str(path))
            assert manifest is not None
            self._remember(name, manifest)
        return manifest

    def delete_manifest(self, manifest: Manifest) -> None:
        """Manifest.Remove: delete the file and prune empty directories."""
        manifest.path.unlink(missing_ok=True)
        with self._index_lock:
            self._files.pop(str(manifest.path), None)
            self._remember(manifest.name, None)
        self.prune_directories(manifest.path.parent)

    def prune_directories(self, start: Path) -> None:
        """Remove empty directories from `start` up to (not including) manifests/."""
        current = start
        while current != self.manifests_dir and self.manifests_dir in current.parents:
            try:
                current.rmdir()
            except OSError:
                return
            current = current.parent

    def copy_blob_from(self, source: Path, digest: str) -> None:
        """Copy a file into the blobs folder under a digest (no verification)."""
        write_replacing(self.blob_path(digest), read_chunks(source), prefix="sha256-tmp-")

