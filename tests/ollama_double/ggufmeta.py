"""What Ollama reads from a GGUF blob: metadata, tensors, parameter count, file type.

Read with the `gguf` package's reader and cached by blob digest (blobs are
content-addressed, so a digest always names the same bytes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType, MODEL_ARCH_NAMES

__all__ = [
    "FILE_TYPES",
    "GgufError",
    "GgufInfo",
    "content_type",
    "file_type_name",
    "human_number",
    "load",
    "validation_error",
]

GGUF_MAGICS = (b"GGUF", b"FUGG")
KNOWN_ARCHITECTURES = frozenset(MODEL_ARCH_NAMES.values())

# ggml.FileType names, index = llama_ftype (fs/ggml/type.go); None = not a valid type.
FILE_TYPES: tuple[str | None, ...] = (
    "F32", "F16", "Q4_0", "Q4_1", None, None, None, "Q8_0", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S",
    "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ2_XXS", "IQ2_XS",
    "Q2_K_S", "IQ3_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ3_M", "IQ2_S", "IQ2_M",
    "IQ4_XS", "IQ1_M", "BF16", None, None, None, "TQ1_0", "TQ2_0", "MXFP4_MOE", "NVFP4", "Q1_0",
)


class GgufError(ValueError):
    """The blob starts like a GGUF but cannot be decoded."""


@dataclass(frozen=True)
class GgufInfo:
    """The parts of a GGUF that Ollama's create, show and list look at."""

    kv: dict[str, Any]
    kv_types: dict[str, int]
    tensors: list[tuple[str, str, list[int]]] = field(default_factory=list)
    parameter_count: int = 0

    @property
    def architecture(self) -> str:
        value = self.kv.get("general.architecture")
        return value if isinstance(value, str) else "unknown"

    @property
    def kind(self) -> str:
        value = self.kv.get("general.type")
        return value if isinstance(value, str) else "unknown"

    @property
    def file_type(self) -> int:
        """KV.FileType(): general.file_type if a non-zero uint32, else 1024 (unknown)."""
        value = self.kv.get("general.file_type")
        if self.kv_types.get("general.file_type") == GGUFValueType.UINT32 and value:
            return int(value)
        return 1024

    def arch_value(self, key: str) -> Any:
        return self.kv.get(f"{self.architecture}.{key}")

    def is_projector(self) -> bool:
        if self.kind in ("projector", "mmproj"):
            return True
        if not self.arch_value("block_count") and self.arch_value("vision.block_count"):
            return True
        return (
            self.architecture == "clip"
            and not self.arch_value("block_count")
            and bool(self.arch_value("has_vision_encoder") or self.arch_value("has_audio_encoder"))
        )


def file_type_name(value: int) -> str:
    """ggml.FileType.String()."""
    if 0 <= value < len(FILE_TYPES) and FILE_TYPES[value]:
        return FILE_TYPES[value] or "unknown"
    return "unknown"


def human_number(count: int) -> str:
    """format.HumanNumber, used for model_type / parameter_size."""
    for limit, suffix, decimals in ((10**9, "B", 1), (10**6, "M", 2)):
        if count >= limit:
            number = count / limit
            if number == int(number):
                return f"{int(number)}{suffix}"
            return f"{number:.{decimals}f}{suffix}"
    if count >= 1000:
        return f"{count / 1000:.0f}K"
    return str(count)


def content_type(head: bytes) -> str:
    """ggml.DetectContentType for the first bytes of a blob."""
    if head[:4] in GGUF_MAGICS:
        return "gguf"
    if head[:4] in (b"lmgg", b"ggml", b"tjgg", b"ggjt", b"algg", b"ggla"):
        return "ggml"
    return ""


def _plain(value: Any, vtype: int) -> Any:
    if vtype == GGUFValueType.FLOAT32:
        return float(str(np.float32(value)))  # shortest float32 text, as Go prints float32
    return value


def _read(path: Path) -> GgufInfo:
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct errors...
        raise GgufError(f"failed to decode GGUF: {exc}") from None
    kv: dict[str, Any] = {}
    kv_types: dict[str, int] = {}
    for name, item in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        main = int(item.types[0]) if item.types else -1
        value = item.contents()
        if main == GGUFValueType.ARRAY and item.types[-1] == GGUFValueType.FLOAT32:
            value = [_plain(v, GGUFValueType.FLOAT32) for v in value]
        else:
            value = _plain(value, main)
        kv[name] = value
        kv_types[name] = main
    tensors = []
    count = 0
    for tensor in reader.tensors:
        tensors.append((tensor.name, tensor.tensor_type.name, [int(d) for d in tensor.shape]))
        count += int(tensor.n_elements)
    kv["general.parameter_count"] = count  # ggml.Decode patches this in
    kv_types["general.parameter_count"] = GGUFValueType.UINT64
    del reader
    return GgufInfo(kv=kv, kv_types=kv_types, tensors=tensors, parameter_count=count)


_cache: dict[str, GgufInfo] = {}
_cache_lock = threading.Lock()


def load(path: Path, digest: str) -> GgufInfo:
    """Decode the GGUF blob at `path` (whose digest is `digest`), cached by digest."""
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None:
        return hit
    info = _read(path)
    with _cache_lock:
        if len(_cache) > 4096:
            _cache.clear()
        _cache[digest] = info
    return info


_LLAMA_RMS = frozenset({"llama", "llama4", "deci", "mistral3", "granite", "qwen2", "qwen3"})


def validation_error(info: GgufInfo) -> str | None:
    """Why a real Ollama's llama-quantize COPY would reject this model GGUF, or None.

    Only the loader's generic required keys (and llama's RMS epsilon) are checked; the
    real server reports every failure with the same opaque text.
    """
    arch = info.architecture
    if arch not in KNOWN_ARCHITECTURES:
        return f"unknown model architecture: '{arch}'"
    required = ["context_length", "embedding_length", "block_count"]
    if arch in _LLAMA_RMS:
        required.append("attention.layer_norm_rms_epsilon")
    for key in required:
        if f"{arch}.{key}" not in info.kv:
            return f"key not found in model: {arch}.{key}"
    return None
