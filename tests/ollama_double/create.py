"""POST /api/create: build layers, config and manifest the way server/create.go does.

A model GGUF is stored as `llama-quantize COPY` rewrites it (gguf_copy.py), as on a real
v0.30+ server, so digests of models built from local GGUFs match a real server's.
Differences, on purpose: a GGUF's chat template is not auto-detected, safetensors are
refused, quantization is refused unless it is a no-op, split GGUFs are not merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from . import gguf_copy, ggufmeta, gojson, names, templates
from .errors import ApiError
from .names import Name
from .store import CONFIG_MEDIA_TYPE, RECENT, Layer, Manifest, Store, manifest_bytes

__all__ = ["CREATE_FIELDS", "Emit", "PullFn", "create", "precheck", "valid_path"]

Emit = Callable[[dict[str, Any]], None]
PullFn = Callable[[Name, Emit], None]

MEDIA = "application/vnd.ollama.image."
MODEL, ADAPTER, PROJECTOR, DRAFT = MEDIA + "model", MEDIA + "adapter", MEDIA + "projector", MEDIA + "draft"
GGML_MEDIA = (MODEL, PROJECTOR, ADAPTER, DRAFT)

CREATE_FIELDS = {
    "model": "string", "name": "string", "stream": "bool", "quantize": "string",
    "quantization": "string", "draft_quantize": "string", "from": "string",
    "remote_host": "string", "files": "strmap", "draft_files": "strmap", "adapters": "strmap",
    "template": "string", "license": "any", "system": "string", "parameters": "anymap",
    "messages": "messages", "renderer": "string", "parser": "string", "requires": "string",
    "info": "anymap",
}

QUANT_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15, "Q4_K": 15, "BF16": 32}


def valid_path(path: str) -> bool:
    """io/fs.ValidPath: unrooted, slash-separated, no empty, '.' or '..' elements."""
    if path == ".":
        return True
    return all(part not in ("", ".", "..") for part in path.split("/"))


@dataclass
class _Layer:
    layer: Layer
    status: str = ""
    gguf: ggufmeta.GgufInfo | None = None
    rewrite: bool = False  # came from user files: a real server re-emits it via llama-quantize


@dataclass
class _Config:
    model_format: str = ""
    model_family: str = ""
    model_families: list[str] | None = None
    model_type: str = ""
    file_type: str = ""
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    capabilities: list[str] = field(default_factory=list)
    context_length: int = 0
    embedding_length: int = 0
    base_name: str = ""
    draft: dict[str, str] | None = None

    def to_json(self) -> gojson.Struct:
        out = gojson.Struct(
            model_format=self.model_format,
            model_family=self.model_family,
            model_families=self.model_families,
            model_type=self.model_type,
            file_type=self.file_type,
        )
        for key in ("renderer", "parser", "requires"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.capabilities:
            out["capabilities"] = self.capabilities
        if self.context_length:
            out["context_length"] = self.context_length
        if self.embedding_length:
            out["embedding_length"] = self.embedding_length
        if self.base_name:
            out["base_name"] = self.base_name
        if self.draft:
            out["draft"] = gojson.Struct((k, v) for k, v in self.draft.items() if v)
        out["architecture"] = "amd64"
        out["os"] = "linux"
        return out


def precheck(store: Store, req: dict[str, Any]) -> Name:
    """The checks CreateHandler makes before it starts streaming; returns the target name."""
    for path, digest in (req["files"] or {}).items():
        if not valid_path(path):
            raise ApiError(400, "file path must be relative")
        if not digest:
            raise ApiError(400, "invalid digest format")
    for path, digest in (req["draft_files"] or {}).items():
        if not valid_path(path):
            raise ApiError(400, "file path must be relative")
        if not digest:
            raise ApiError(400, "invalid digest format")
    if req["draft_quantize"] and not req["draft_files"]:
        raise ApiError(400, "--draft-quantize requires a DRAFT model")
    for digest in (req["adapters"] or {}).values():
        if not digest:
            raise ApiError(400, "invalid digest format")
    name = names.parse(req["model"] or req["name"] or "")
    if not name.is_valid():
        raise ApiError(400, "invalid model name")
    return name


def create(store: Store, name: Name, req: dict[str, Any], emit: Emit, pull: PullFn) -> None:
    """The streamed part of a create; raises ApiError (status 500 unless Ollama sets one)."""
    with store.lock:
        name = store.existing_name(name, RECENT)
        old = store.read_manifest(name)
        config = _Config(renderer=req["renderer"] or "", parser=req["parser"] or "", requires=req["requires"] or "")
        if req["from"]:
            base = _from_model(store, req, config, emit, pull)
        elif req["files"] is not None:
            base = _from_files(store, req["files"], False, "", True, emit)
        else:
            raise ApiError(400, "neither 'from' or 'files' was specified")
        if req["draft_files"] is not None:
            base += _from_files(store, req["draft_files"], False, DRAFT, False, emit)
        if req["adapters"] is not None:
            base += _from_files(store, req["adapters"], True, "", True, emit)
        _apply_info(config, req["info"])
        others = [m for n, m in store.manifests(RECENT).items() if n.parts() != name.parts()]
        in_use = store.in_use(others) | (old.digests() if old is not None else set())
        new = _build(store, name, req, base, config, emit, in_use)
        if old is not None:  # prune what only the overwritten manifest used
            store.remove_unused(old.digests(), store.in_use(others) | new.digests())
    emit({"status": "success"})


def _from_model(store: Store, req: dict[str, Any], config: _Config, emit: Emit, pull: PullFn) -> list[_Layer]:
    try:
        base_text, source = names.parse_ref(req["from"])
    except names.NameRefError:
        raise ApiError(400, "invalid model name") from None
    base_name = names.parse(base_text)
    if not base_name.is_valid():
        raise ApiError(400, "invalid model name")
    if source == "cloud" or req["remote_host"]:
        raise ApiError(400, "remote (cloud) models are not supported by the Ollama test double")
    manifest = store.read_manifest(base_name)
    if manifest is None:
        pull(base_name, emit)
        manifest = store.read_manifest(base_name)
        if manifest is None:
            raise ApiError(500, f"open {store.manifest_path(base_name)}: no such file or directory")
    display = base_name.display_shortest()
    layers = []
    for src in manifest.layers:
        layer = store.layer_from_blob(src.digest, src.media_type, display)
        layer = Layer(layer.media_type, layer.digest, layer.size, layer.from_, src.name)
        info = None
        if layer.media_type in GGML_MEDIA:
            info = _decode(store, layer.digest)
        layers.append(_Layer(layer, f"using existing layer {layer.digest}", info))
    if manifest.config.digest:
        try:
            base_config = json.loads(store.read_blob(manifest.config.digest))
        except (ApiError, ValueError):
            base_config = {}
        if isinstance(base_config, dict):
            config.renderer = config.renderer or str(base_config.get("renderer") or "")
            config.parser = config.parser or str(base_config.get("parser") or "")
            config.requires = config.requires or str(base_config.get("requires") or "")
            config.model_format = config.model_format or str(base_config.get("model_format") or "")
            if not config.capabilities and isinstance(base_config.get("capabilities"), list):
                config.capabilities = [str(c) for c in base_config["capabilities"]]
    return layers


def _decode(store: Store, digest: str) -> ggufmeta.GgufInfo:
    path = store.blob_path(digest)
    if not path.exists():
        raise ApiError(500, f"open {path}: no such file or directory")
    try:
        return ggufmeta.load(path, digest)
    except ggufmeta.GgufError as exc:
        raise ApiError(500, str(exc)) from None


def _detect_type(store: Store, files: dict[str, str]) -> str:
    for key, digest in files.items():
        if key.endswith(".safetensors"):
            return "safetensors"
        if key.endswith(".gguf"):
            return "gguf"
        try:
            with open(store.blob_path(digest), "rb") as blob:
                head = blob.read(4)
        except (ApiError, OSError):
            return ""
        if ggufmeta.content_type(head) == "gguf":
            return "gguf"
    return ""


def _from_files(store: Store, files: dict[str, str], adapter: bool, media_type: str,
                detect_template: bool, emit: Emit) -> list[_Layer]:
    kind = _detect_type(store, files)
    if kind == "safetensors":
        raise ApiError(400, "safetensors models are not supported by the Ollama test double (use GGUF)")
    if kind != "gguf":
        raise ApiError(400, "unknown type")
    if not files:
        raise ApiError(400, "no files provided to convert")
    if len(files) > 1 and adapter:
        raise ApiError(400, "only one adapter is currently supported")
    layers = []
    for key in sorted(files):
        digest = files[key]
        emit({"status": "parsing GGUF"})
        path = store.blob_path(digest)
        try:
            with open(path, "rb") as blob:
                head = blob.read(512)
        except FileNotFoundError:
            raise ApiError(500, f"open {path}: no such file or directory") from None
        if ggufmeta.content_type(head) != "gguf":
            raise ApiError(400, "supplied file was not in GGUF format")
        info = _decode(store, digest)
        kind_media = media_type
        if not kind_media:
            kind_media = MODEL
            if info.kind == "adapter":
                kind_media = ADAPTER
            elif info.is_projector():
                kind_media = PROJECTOR
        layer = store.layer_from_blob(digest, kind_media, key)
        layers.append(_Layer(layer, f"using existing layer {digest}", info, rewrite=True))
    return layers


def _apply_info(config: _Config, info: dict[str, Any] | None) -> None:
    if not info:
        return
    caps = info.get("capabilities")
    if isinstance(caps, list):
        config.capabilities = config.capabilities + [c if isinstance(c, str) else "" for c in caps]

    def text(key: str) -> str:
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f'info field "{key}" must be a string')
        return value or ""

    def number(key: str) -> int:
        value = info.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(400, f'info field "{key}" must be a number')
        if value < 0 or int(value) != value:
            raise ApiError(400, f'info field "{key}" must be a non-negative integer')
        return int(value)

    config.model_family = text("model_family")
    if config.model_family:
        config.model_families = [config.model_family]
    config.base_name = text("base_name")
    config.file_type = text("quantization_level")
    config.model_type = text("parameter_size")
    config.context_length = number("context_length")
    config.embedding_length = number("embedding_length")


def _quantize(layer: _Layer, requested: str) -> None:
    assert layer.gguf is not None
    want = QUANT_TYPES.get(requested)
    if want is None:
        raise ApiError(500, f"unsupported quantization type {requested} - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0")
    have = layer.gguf.file_type
    if ggufmeta.file_type_name(have) not in ("F16", "BF16", "F32"):
        raise ApiError(500, "quantization is only supported for F16, BF16 and F32 models")
    if have != want:
        raise ApiError(500, f"quantizing {ggufmeta.file_type_name(have)} to {requested} is not supported by the Ollama test double")


def _copy_with_llama_quantize(store: Store, item: _Layer, emit: Emit) -> _Layer:
    """copyLayerWithLlamaQuantize: check the GGUF as llama.cpp's loader would, then store
    what `llama-quantize COPY` writes (gguf_copy.py) as a new model layer without "from".
    The upload stays in blobs/ as a blob no manifest uses."""
    assert item.gguf is not None
    problem = ggufmeta.validation_error(item.gguf)
    if problem is None:
        try:
            copied = store.new_layer(gguf_copy.copy_chunks(store.blob_path(item.layer.digest)),
                                     item.layer.media_type)
        except gguf_copy.GgufLayoutError as exc:
            problem = f"failed to read the GGUF: {exc}"
    if problem is not None:
        raise ApiError(500, f"failed to validate GGUF with llama-quantize without compatibility patches: "
                            f"llama-quantize failed: exit status 1 ({problem})")
    layer, status = copied
    emit({"status": "verifying conversion"})
    return _Layer(layer, status, _decode(store, layer.digest))


def _remove(store: Store, layers: list[_Layer], media_type: str, in_use: set[str]) -> list[_Layer]:
    """removeLayer: drop layers of a media type, deleting their blobs if no manifest uses them."""
    kept = []
    for item in layers:
        if item.layer.media_type == media_type:
            store.remove_unused([item.layer.digest], in_use)
        else:
            kept.append(item)
    return kept


def _add(store: Store, layers: list[_Layer], data: bytes, media_type: str) -> None:
    layer, status = store.new_layer(data, media_type)
    layers.append(_Layer(layer, status))


def _build(store: Store, name: Name, req: dict[str, Any], base: list[_Layer], config: _Config, emit: Emit,
           in_use: set[str]) -> Manifest:
    layers: list[_Layer] = []
    params = dict(req["parameters"]) if req["parameters"] is not None else None
    for item in base:
        info = item.gguf
        if info is not None:
            media = item.layer.media_type
            requested = (req["quantize"] or req["quantization"] or "").upper() if media == MODEL else ""
            if media == DRAFT:
                requested = (req["draft_quantize"] or "").upper()
            if requested:
                _quantize(item, requested)
            if item.rewrite and media == MODEL:
                item = _copy_with_llama_quantize(store, item, emit)
                info = item.gguf
                assert info is not None
            if media == MODEL:
                config.model_format = config.model_format or "gguf"
                config.model_family = config.model_family or info.architecture
                config.model_type = config.model_type or ggufmeta.human_number(info.parameter_count)
                config.file_type = config.file_type or ggufmeta.file_type_name(info.file_type)
                config.model_families = (config.model_families or []) + [info.architecture]
            elif media == DRAFT:
                config.draft = {"model_format": "gguf", "architecture": info.architecture}
        layers.append(item)

    if req["template"]:
        layers = _remove(store, layers, MEDIA + "template", in_use)
        try:
            templates.check(req["template"])
        except templates.TemplateError as exc:
            raise ApiError(400, f"template error: {exc}") from None
        _add(store, layers, req["template"].encode("utf-8"), MEDIA + "template")
    if req["system"]:
        layers = _remove(store, layers, MEDIA + "system", in_use)
        _add(store, layers, req["system"].encode("utf-8"), MEDIA + "system")
    for text in _licenses(req["license"]):
        _add(store, layers, text.encode("utf-8"), MEDIA + "license")
    layers = _set_parameters(store, layers, params, in_use)
    if req["messages"]:
        layers = _remove(store, layers, MEDIA + "messages", in_use)
        _add(store, layers, gojson.encode_line(req["messages"]), MEDIA + "messages")

    config_layer, _status = store.new_layer(gojson.encode_line(config.to_json()), CONFIG_MEDIA_TYPE)
    for item in layers:
        if item.status:
            emit({"status": item.status})
    emit({"status": "writing manifest"})
    return store.write_manifest(name, manifest_bytes(config_layer, [item.layer for item in layers]))


def _licenses(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, list):
        bad = next(item for item in value if not isinstance(item, str))
        kind = {bool: "bool", int: "number", float: "number", dict: "object", list: "array"}.get(type(bad), "value")
        raise ApiError(500, f"json: cannot unmarshal {kind} into Go value of type string")
    kind = {bool: "bool", int: "number", float: "number", dict: "object"}.get(type(value), "value")
    raise ApiError(500, f"json: cannot unmarshal {kind} into Go value of type []string")


def _set_parameters(store: Store, layers: list[_Layer], params: dict[str, Any] | None,
                    in_use: set[str]) -> list[_Layer]:
    merged = dict(params or {})
    for item in layers:
        if item.layer.media_type != MEDIA + "params":
            continue
        try:
            existing = json.loads(store.read_blob(item.layer.digest))
        except ValueError as exc:
            raise ApiError(500, str(exc)) from None
        for key, value in (existing or {}).items():
            merged.setdefault(key, value)
    if not merged:
        return layers
    layers = _remove(store, layers, MEDIA + "params", in_use)
    _add(store, layers, gojson.encode_line(merged), MEDIA + "params")
    return layers
