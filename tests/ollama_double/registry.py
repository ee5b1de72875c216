"""A registry folder that the double pulls from, and a helper that publishes into it.

The folder is laid out like an Ollama models folder (`manifests/<host>/<ns>/<model>/<tag>`
and `blobs/sha256-<hex>`); every registry host maps onto this one folder. Published
manifests are written without a trailing newline, as a registry serves them
(json.Marshal), so their digest differs from a locally created manifest's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import ggufmeta, gojson, names
from .store import (
    CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    Layer,
    read_chunks,
    write_replacing,
)

__all__ = ["Registry", "publish_model"]

MEDIA = "application/vnd.ollama.image."


class Registry:
    """Read access to a registry folder (what the double's pull sees)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def manifest_bytes(self, name: names.Name) -> bytes | None:
        path = self.root.joinpath("manifests", *name.parts())
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest.replace(":", "-")


def _put_blob(root: Path, data: bytes, media_type: str) -> Layer:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = root / "blobs" / digest.replace(":", "-")
    if not path.exists():
        write_replacing(path, [data])
    return Layer(media_type, digest, len(data))


def _put_file(root: Path, source: Path, media_type: str) -> Layer:
    hasher = hashlib.sha256()
    for chunk in read_chunks(source):
        hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    path = root / "blobs" / digest.replace(":", "-")
    if not path.exists():
        write_replacing(path, read_chunks(source))
    return Layer(media_type, digest, source.stat().st_size)


def publish_model(
    registry_dir: str | os.PathLike[str],
    name: str,
    gguf: str | os.PathLike[str] | bytes,
    *,
    template: str | None = None,
    system: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    license: str | Iterable[str] | None = None,
    messages: Iterable[Mapping[str, str]] | None = None,
) -> str:
    """Publish (or replace) `name` in a registry folder; returns its "sha256:<hex>" digest.

    The model is a GGUF (a path or the bytes) plus optional template, system prompt,
    parameters (a params JSON layer), license(s) and messages, with a config blob read
    from the GGUF metadata, the way models on ollama.com are laid out.
    """
    root = Path(registry_dir)
    parsed = names.parse(name)
    if not parsed.is_valid():
        raise ValueError(f"invalid model name: {name!r}")
    if isinstance(gguf, bytes):
        model = _put_blob(root, gguf, MEDIA + "model")
    else:
        model = _put_file(root, Path(gguf), MEDIA + "model")
    info = ggufmeta.load(root / "blobs" / model.digest.replace(":", "-"), model.digest)
    layers = [model]
    if template is not None:
        layers.append(_put_blob(root, template.encode(), MEDIA + "template"))
    if system:
        layers.append(_put_blob(root, system.encode(), MEDIA + "system"))
    if parameters:
        layers.append(_put_blob(root, gojson.encode_line(dict(parameters)), MEDIA + "params"))
    if license is not None:
        for text in [license] if isinstance(license, str) else list(license):
            layers.append(_put_blob(root, text.encode(), MEDIA + "license"))
    if messages:
        msgs = [gojson.Struct(role=m["role"], content=m["content"]) for m in messages]
        layers.append(_put_blob(root, gojson.encode_line(msgs), MEDIA + "messages"))
    config = gojson.Struct(
        model_format="gguf",
        model_family=info.architecture,
        model_families=[info.architecture],
        model_type=ggufmeta.human_number(info.parameter_count),
        file_type=ggufmeta.file_type_name(info.file_type),
        architecture="amd64",
        os="linux",
    )
    config_layer = _put_blob(root, gojson.encode_line(config), CONFIG_MEDIA_TYPE)
    manifest = gojson.dumps(
        gojson.Struct(
            schemaVersion=2,
            mediaType=MANIFEST_MEDIA_TYPE,
            config=config_layer.to_json(),
            layers=[layer.to_json() for layer in layers],
        )
    ).encode("utf-8")
    write_replacing(root.joinpath("manifests", *parsed.parts()), [manifest])
    return "sha256:" + hashlib.sha256(manifest).hexdigest()
