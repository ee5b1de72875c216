"""POST /api/pull, with PullModel's progress lines and pruning.

Where a model comes from depends on its host, as in Ollama: registry.ollama.ai is the
double's registry folder (the tests cannot reach ollama.com); any other host is a real
registry reached over HTTP(S) (oci.py), plain HTTP only with `insecure`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Callable, Iterator, Protocol

from .errors import ApiError
from .names import DEFAULT_HOST, Name
from .oci import RegistryClient
from .registry import Registry
from .store import Layer, Store, read_chunks

__all__ = ["pull", "source_for"]

Emit = Callable[[dict[str, Any]], None]
_REPORT_EVERY = 32 * 1024 * 1024


class Source(Protocol):
    def manifest(self) -> bytes: ...

    def blob_chunks(self, digest: str) -> Iterator[bytes]: ...


class _FolderSource:
    """A model of the registry folder (the stand-in for registry.ollama.ai)."""

    def __init__(self, registry: Registry | None, name: Name) -> None:
        self.registry = registry
        self.name = name

    def manifest(self) -> bytes:
        data = self.registry.manifest_bytes(self.name) if self.registry is not None else None
        if data is None:
            raise ApiError(500, "pull model manifest: file does not exist")
        return data

    def blob_chunks(self, digest: str) -> Iterator[bytes]:
        assert self.registry is not None
        path = self.registry.blob_path(digest)
        if not path.is_file():
            raise ApiError(500, "file does not exist")
        return read_chunks(path)


def source_for(registry: Registry | None, name: Name, insecure: bool) -> Source:
    """Where `name` is pulled from: the folder for ollama.com's names, else its registry."""
    if name.host.lower() == DEFAULT_HOST:
        return _FolderSource(registry, name)
    return RegistryClient(name, insecure)


def pull(store: Store, registry: Registry | None, name: Name, emit: Emit, insecure: bool = False) -> None:
    """Pull `name` into the store; raises ApiError (500) like PullModel's errors."""
    existing = store.read_manifest(name)
    delete = existing.digests() if existing is not None else set()
    if name.scheme == "http" and not insecure:
        raise ApiError(500, "insecure protocol http")
    emit({"status": "pulling manifest"})
    source = source_for(registry, name, insecure)
    data = source.manifest()
    try:
        doc = json.loads(data)
        layers = [Layer.from_json(layer) for layer in doc.get("layers") or []]
        if doc.get("config"):
            layers.append(Layer.from_json(doc["config"]))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ApiError(500, f"pull model manifest: {exc}") from None

    fetched: dict[str, str] = {}  # digest -> actual digest of what was downloaded
    for layer in layers:
        if not layer.digest:
            raise ApiError(500, f"{name.namespace}/{name.model}: digest is empty")
        path = store.blob_path(layer.digest)
        short = layer.digest[7:19]
        if path.exists() and layer.digest not in fetched:
            size = path.stat().st_size
            emit({"status": f"pulling {short}", "digest": layer.digest, "total": size, "completed": size})
            continue
        if layer.digest in fetched:
            continue
        fetched[layer.digest] = _download(store, source, layer, emit)
        delete.discard(layer.digest)

    emit({"status": "verifying sha256 digest"})
    for digest, actual in fetched.items():
        if actual != digest:
            store.blob_path(digest).unlink(missing_ok=True)
            raise ApiError(500, f"digest mismatch, file must be downloaded again: want {digest}, got {actual}")

    with store.lock:
        delete -= {layer.digest for layer in layers}
        emit({"status": "writing manifest"})
        store.write_manifest(name, data)
        if delete:
            emit({"status": "removing unused layers"})
            store.remove_unused(delete)
    emit({"status": "success"})


def _download(store: Store, source: Source, layer: Layer, emit: Emit) -> str:
    total = layer.size
    short = layer.digest[7:19]
    chunks = source.blob_chunks(layer.digest)
    emit({"status": f"pulling {short}", "digest": layer.digest, "total": total})
    hasher = hashlib.sha256()
    done = reported = 0
    fd, tmp = tempfile.mkstemp(prefix="sha256-tmp-", dir=store.blobs)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                hasher.update(chunk)
                done += len(chunk)
                if done - reported >= _REPORT_EVERY and done < total:
                    reported = done
                    emit({"status": f"pulling {short}", "digest": layer.digest, "total": total, "completed": done})
        os.chmod(tmp, 0o644)
        os.replace(tmp, store.blob_path(layer.digest))
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    emit({"status": f"pulling {short}", "digest": layer.digest, "total": total, "completed": total})
    return "sha256:" + hasher.hexdigest()
