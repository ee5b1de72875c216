"""POST /api/push: a local model to its name's registry, as PushModel does.

The name must carry the registry (`HOST:PORT/namespace/model:tag`); the model is first
copied to that name, as with `ollama cp` + `ollama push`. Each layer and the config is
HEADed and uploaded only when missing, then the manifest is PUT: re-encoded from the
parsed local manifest (json.Marshal, no trailing newline), so the registry's digest is the
sha256 of the local file without its final newline.

A layer with a `from` field (inherited from a base) is first offered as a cross-repository
mount from the base's repository. Ollama's own bookkeeping of that case is kept, bug and
all (server/upload.go at v0.33): once a mount succeeded, the blob counts as uploaded for
the rest of the server's life, so a later push of it to a repository that lacks it skips
the upload and the manifest PUT fails with `MANIFEST_BLOB_UNKNOWN`.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import ApiError
from .names import DEFAULT_HOST, Name
from .oci import RegistryClient
from .store import Store, manifest_bytes, read_chunks

__all__ = ["push"]

Emit = Callable[[dict[str, Any]], None]


def push(store: Store, name: Name, emit: Emit, insecure: bool = False) -> None:
    """Push `name` to its registry; raises ApiError (500) like PushModel's errors."""
    if name.scheme == "http" and not insecure:
        raise ApiError(500, "insecure protocol http")
    emit({"status": "retrieving manifest"})
    manifest = store.read_manifest(name)
    if manifest is None:
        emit({"status": "couldn't retrieve manifest"})
        raise ApiError(500, f"open {store.manifest_path(name)}: no such file or directory")
    if name.host.lower() == DEFAULT_HOST:
        raise ApiError(500, "pushing to registry.ollama.ai is not supported by the Ollama test double")
    client = RegistryClient(name, insecure)
    layers = list(manifest.layers) + ([manifest.config] if manifest.config.digest else [])
    for layer in layers:
        short = layer.digest[7:19]
        done = {"status": f"pushing {short}", "digest": layer.digest, "total": layer.size,
                "completed": layer.size}
        if client.has_blob(layer.digest) or layer.digest in store.mounted:
            emit(done)  # present, or "uploaded" by an earlier mount (Ollama's bookkeeping)
            continue
        if layer.from_ and client.mount(layer.digest, layer.from_):
            store.mounted.add(layer.digest)
            emit(done)
            continue
        emit({"status": f"pushing {short}", "digest": layer.digest, "total": layer.size})
        client.upload(layer.digest, read_chunks(store.blob_path(layer.digest)), layer.size)
        emit({"status": f"pushing {short}", "digest": layer.digest, "total": layer.size,
              "completed": layer.size})
    emit({"status": "pushing manifest"})
    client.put_manifest(manifest_bytes(manifest.config, manifest.layers).rstrip(b"\n"))
    emit({"status": "success"})
