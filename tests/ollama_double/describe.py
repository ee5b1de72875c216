"""GET /api/tags and POST /api/show: what Ollama reports about stored models."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from . import ggufmeta, gojson, templates
from .errors import ApiError
from .names import Name
from .store import Manifest, Store

__all__ = ["capabilities", "list_models", "list_models_json", "ModelView", "rfc3339", "show"]

MEDIA = "application/vnd.ollama.image."
_config_cache: dict[str, dict[str, Any]] = {}
_config_lock = threading.Lock()


def rfc3339(ns: int) -> str:
    """A time as Go's time.Time marshals it (RFC 3339, nanoseconds, local zone)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    local = dt.datetime.fromtimestamp(seconds).astimezone()
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    offset = local.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _config(store: Store, manifest: Manifest) -> dict[str, Any]:
    digest = manifest.config.digest
    if not digest:
        return {}
    with _config_lock:
        hit = _config_cache.get(digest)
    if hit is not None:
        return hit
    try:
        value = json.loads(store.read_blob(digest))
    except (ApiError, ValueError):
        return {}
    value = value if isinstance(value, dict) else {}
    with _config_lock:
        _config_cache[digest] = value
    return value


class ModelView:
    """Layers of a stored model resolved to their contents (GetModel)."""

    def __init__(self, store: Store, manifest: Manifest) -> None:
        self.manifest = manifest
        self.config = _config(store, manifest)
        self.model_digest = ""
        self.parent_model = ""
        self.template: str | None = None
        self.system = ""
        self.options: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.licenses: list[str] = []
        self.adapters: list[str] = []
        self.projectors: list[str] = []
        self.drafts: list[str] = []
        self.gguf: ggufmeta.GgufInfo | None = None
        for layer in manifest.layers:
            media = layer.media_type
            if media == MEDIA + "model":
                self.model_digest = layer.digest
                self.parent_model = layer.from_
            elif media == MEDIA + "adapter":
                self.adapters.append(layer.digest)
            elif media == MEDIA + "projector":
                self.projectors.append(layer.digest)
            elif media == MEDIA + "draft":
                self.drafts.append(layer.digest)
            elif media in (MEDIA + "template", MEDIA + "prompt"):
                self.template = store.read_blob(layer.digest).decode("utf-8", "replace")
            elif media == MEDIA + "system":
                self.system = store.read_blob(layer.digest).decode("utf-8", "replace")
            elif media == MEDIA + "params":
                self.options = _json_blob(store, layer.digest, dict)
            elif media == MEDIA + "messages":
                self.messages = _json_blob(store, layer.digest, list)
            elif media == MEDIA + "license":
                self.licenses.append(store.read_blob(layer.digest).decode("utf-8", "replace"))
        if self.model_digest:
            path = store.blob_path(self.model_digest)
            try:
                self.gguf = ggufmeta.load(path, self.model_digest)
            except (ggufmeta.GgufError, OSError):
                self.gguf = None

    @property
    def template_text(self) -> str:
        return "{{ .Prompt }}" if self.template is None else self.template


def _json_blob(store: Store, digest: str, kind: type) -> Any:
    try:
        value = json.loads(store.read_blob(digest))
    except ValueError as exc:
        raise ApiError(500, str(exc)) from None
    return value if isinstance(value, kind) else kind()


def capabilities(view: ModelView) -> list[str]:
    """Capabilities from the GGUF, the config and the template (a subset of Ollama's rules)."""
    caps: list[str] = []

    def add(cap: str) -> None:
        if cap and cap not in caps:
            caps.append(cap)

    info = view.gguf
    if info is not None:
        arch = info.architecture
        if f"{arch}.vision.block_count" in info.kv:
            add("vision")
        if f"{arch}.audio.block_count" in info.kv:
            add("audio")
        add("embedding" if f"{arch}.pooling_type" in info.kv else "completion")
    for cap in view.config.get("capabilities") or []:
        add(str(cap))
    variables = templates.variables(view.template_text)
    if "tools" in variables:
        add("tools")
    if "suffix" in variables:
        add("insert")
    if "thinking" in variables or view.config.get("model_family") in ("gptoss", "gpt-oss"):
        add("thinking")
    if view.projectors:
        add("vision")
    return caps


def _details(view: ModelView, *, with_lengths: bool) -> gojson.Struct:
    cfg = view.config
    quant = str(cfg.get("file_type") or "")
    if view.gguf is not None and quant in ("", "unknown"):
        quant = ggufmeta.file_type_name(view.gguf.file_type) if view.gguf.file_type != 1024 else quant
    details = gojson.Struct(
        parent_model=view.parent_model,
        format=str(cfg.get("model_format") or ""),
        family=str(cfg.get("model_family") or ""),
        families=cfg.get("model_families") or None,
        parameter_size=str(cfg.get("model_type") or ""),
        quantization_level=quant,
    )
    if with_lengths:
        context = int(cfg.get("context_length") or 0)
        embedding = int(cfg.get("embedding_length") or 0)
        if view.gguf is not None:
            context = context or int(view.gguf.arch_value("context_length") or 0)
            embedding = embedding or int(view.gguf.arch_value("embedding_length") or 0)
        if context:
            details["context_length"] = context
        if embedding:
            details["embedding_length"] = embedding
    return details


def _tag_entries(store: Store) -> list[tuple[gojson.Struct, str]]:
    """(entry, its JSON) for every model, newest first; cached per manifest file version."""
    entries = []
    live = set()
    with store.memo_lock:
        cache: dict[tuple[str, str, int], tuple[gojson.Struct, str]] = store.memo.setdefault("tags", {})
    for name, manifest in store.manifests().items():
        key = (str(manifest.path), manifest.digest, manifest.mtime_ns)
        live.add(key)
        with store.memo_lock:
            hit = cache.get(key)
        if hit is None:
            entry = _list_entry(store, name, manifest)
            hit = (entry, gojson.dumps(entry))
            with store.memo_lock:
                cache[key] = hit
        entries.append((-manifest.mtime_ns, name.display_shortest(), hit))
    with store.memo_lock:
        if len(cache) > len(live):
            for stale in set(cache) - live:
                del cache[stale]
    entries.sort(key=lambda item: (item[0], item[1]))
    return [hit for _, _, hit in entries]


def list_models(store: Store) -> gojson.Struct:
    """The /api/tags body: every model, newest first."""
    return gojson.Struct(models=[entry for entry, _ in _tag_entries(store)])


def list_models_json(store: Store) -> str:
    """The /api/tags body, already encoded (what the endpoint sends)."""
    return '{"models":[' + ",".join(text for _, text in _tag_entries(store)) + "]}"


def _list_entry(store: Store, name: Name, manifest: Manifest) -> gojson.Struct:
    view = ModelView(store, manifest)
    entry = gojson.Struct(
        name=name.display_shortest(),
        model=name.display_shortest(),
        modified_at=rfc3339(manifest.mtime_ns),
        size=manifest.size,
        digest=manifest.digest,
        details=_details(view, with_lengths=True),
    )
    caps = capabilities(view)
    if caps:
        entry["capabilities"] = caps
    return entry


def _quote(text: str) -> str:
    """parser.quote, used when Ollama prints a Modelfile."""
    if "\n" in text or text.startswith(" ") or text.endswith(" "):
        return f'"""{text}"""' if '"' in text else f'"{text}"'
    return text


def _param_values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _modelfile(store: Store, name: Name, view: ModelView) -> str:
    lines = [
        '# Modelfile generated by "ollama show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {name.display_shortest()}",
        "",
        f"FROM {store.blob_path(view.model_digest) if view.model_digest else ''}",
    ]
    lines += [f"ADAPTER {store.blob_path(d)}" for d in view.adapters]
    lines += [f"FROM {store.blob_path(d)}" for d in view.projectors]
    lines += [f"DRAFT {store.blob_path(d)}" for d in view.drafts]  # as 0.33.0-rc2 shows it
    lines.append(f"TEMPLATE {_quote(view.template_text)}")
    if view.system:
        lines.append(f"SYSTEM {_quote(view.system)}")
    for key in ("renderer", "parser"):
        if view.config.get(key):
            lines.append(f"{key.upper()} {_quote(str(view.config[key]))}")
    for key in sorted(view.options):  # Go ranges over a map here: its order varies per call
        for value in _param_values(view.options[key]):
            shown = value if isinstance(value, str) else gojson.go_verb_v(value)
            lines.append(f"PARAMETER {key} {_quote(shown)}")
    lines += [f"LICENSE {_quote(text)}" for text in view.licenses]
    for msg in view.messages:
        lines.append(f"MESSAGE {msg.get('role', '')} {_quote(str(msg.get('content', '')))}")
    return "\n".join(lines) + "\n"


def _parameters(view: ModelView) -> str:
    lines = []
    for key in sorted(view.options):
        for value in _param_values(view.options[key]):
            shown = gojson.go_quote(value) if isinstance(value, str) else gojson.go_verb_v(value)
            lines.append(f"{key:<30} {shown}")
    return "\n".join(lines)


def _model_info(view: ModelView, verbose: bool) -> dict[str, Any]:
    """GGUF metadata minus general.name and the chat template; long arrays emptied unless verbose."""
    if view.gguf is None:
        return {}
    info = {}
    for key, value in view.gguf.kv.items():
        if key in ("general.name", "tokenizer.chat_template"):
            continue
        info[key] = [] if isinstance(value, list) and len(value) > 5 and not verbose else value
    return info


def show(store: Store, name: Name, system_override: str = "", verbose: bool = False) -> gojson.Struct:
    """The /api/show body for a stored model; ApiError 404 if it is missing."""
    manifest = store.read_manifest(name)
    if manifest is None:
        raise ApiError(404, f"model '{name.display_shortest()}' not found")
    view = ModelView(store, manifest)
    if system_override:
        view.system = system_override
    out = gojson.Struct()
    license_text = "\n".join(view.licenses)
    if license_text:
        out["license"] = license_text
    out["modelfile"] = _modelfile(store, name, view)
    parameters = _parameters(view)
    if parameters:
        out["parameters"] = parameters
    if view.template_text:
        out["template"] = view.template_text
    if view.system:
        out["system"] = view.system
    out["details"] = _details(view, with_lengths=False)
    if view.messages:
        out["messages"] = [gojson.Struct(role=m.get("role", ""), content=m.get("content", "")) for m in view.messages]
    out["model_info"] = _model_info(view, verbose)
    if view.gguf is not None and view.gguf.tensors:
        out["tensors"] = [gojson.Struct(name=n, type=t, shape=s) for n, t, s in view.gguf.tensors]
    caps = capabilities(view)
    if caps:
        out["capabilities"] = caps
    out["modified_at"] = rfc3339(manifest.mtime_ns)
    if view.config.get("requires"):
        out["requires"] = view.config["requires"]
    return out
