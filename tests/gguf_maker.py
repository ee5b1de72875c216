"""Tiny, valid, deterministic GGUF files for tests (and big ones for benchmarks).

`make_gguf(path, seed)` writes the same bytes for the same arguments and different bytes for
a different seed. The metadata satisfies what llama.cpp's loader (and so a real Ollama's
`llama-quantize` validation on create) requires for the architecture: context_length,
embedding_length, block_count, head counts, feed_forward_length, and for llama the RMS
norm epsilon. Tensors are F16 and `general.file_type` is 1 (MOSTLY_F16), so Ollama reports
`quantization_level` "F16" and would accept a quantize request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFWriter

__all__ = ["make_gguf", "gguf_bytes"]

_ALIGN = 32
_CHUNK = 8 * 1024 * 1024
_LLAMA_STYLE = {"llama", "mistral3", "llama4", "deci", "granite", "qwen2", "qwen3"}

logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)


def _f16_values(seed: int, label: str, count: int) -> np.ndarray:
    """`count` float16 values in ±[0.5, 1), derived from (seed, label) only."""
    raw = hashlib.shake_256(f"doit-ollama-gguf:{seed}:{label}".encode()).digest(count * 2)
    bits = np.frombuffer(raw, dtype="<u2")
    # keep sign and mantissa, pin the exponent: finite, normal, deterministic values
    return ((bits & np.uint16(0x83FF)) | np.uint16(0x3800)).view("<f2")


def _pad(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _metadata(writer: GGUFWriter, arch: str, seed: int, size: int, n_tensors: int, name: str | None) -> None:
    heads = 4 if size % 4 == 0 else 1
    writer.add_string("general.name", name or f"doit-ollama-test-{seed}")
    writer.add_uint32("general.file_type", 1)
    writer.add_uint32(f"{arch}.context_length", 2048)
    writer.add_uint32(f"{arch}.embedding_length", size)
    writer.add_uint32(f"{arch}.block_count", max(1, n_tensors - 1))
    writer.add_uint32(f"{arch}.feed_forward_length", 4 * size)
    writer.add_uint32(f"{arch}.attention.head_count", heads)
    writer.add_uint32(f"{arch}.attention.head_count_kv", heads)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    if arch in _LLAMA_STYLE:
        writer.add_uint32(f"{arch}.rope.dimension_count", max(1, size // heads))


def _tensor_names(n_tensors: int) -> list[str]:
    return ["token_embd.weight"] + [f"blk.{i}.attn_norm.weight" for i in range(n_tensors - 1)]


def _write(path: Path, seed: int, arch: str, n_tensors: int, size: int, pad_elements: int,
           name: str | None, extra: dict[str, Any] | None) -> None:
    writer = GGUFWriter(path, arch)
    try:
        _metadata(writer, arch, seed, size, n_tensors, name)
        for key, value in sorted((extra or {}).items()):
            _add_extra(writer, key, value)
        names = _tensor_names(n_tensors)
        for tensor in names:
            writer.add_tensor_info(tensor, [size], np.dtype(np.float16), size * 2)
        if pad_elements:
            writer.add_tensor_info("output.weight", [pad_elements], np.dtype(np.float16), pad_elements * 2)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        out = writer.fout[0]
        writer.write_padding(out, out.tell())
        for tensor in names:  # data in the order of the tensor infos, each padded to the alignment
            data = _f16_values(seed, tensor, size).tobytes()
            out.write(data)
            writer.write_padding(out, len(data))
        if pad_elements:
            block = _f16_values(seed, "output.weight", min(pad_elements, _CHUNK // 2)).tobytes()
            remaining = pad_elements * 2
            while remaining:  # streamed: a 2 GiB file never sits in memory
                piece = block[: min(len(block), remaining)]
                out.write(piece)
                remaining -= len(piece)
            writer.write_padding(out, pad_elements * 2)
        out.flush()
    finally:
        writer.close()


def _add_extra(writer: GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if value >= 0 else writer.add_int32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, (list, tuple)):
        writer.add_array(key, list(value))
    else:
        raise TypeError(f"unsupported GGUF metadata value for {key!r}: {value!r}")


def make_gguf(
    path: str | os.PathLike[str],
    seed: int = 0,
    *,
    architecture: str = "llama",
    n_tensors: int = 1,
    size: int = 64,
    pad_to_bytes: int | None = None,
    name: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a small valid GGUF to `path` and return the path.

    `size` is the number of F16 elements per tensor (and the embedding length).
    `pad_to_bytes` adds one large tensor, written in chunks, so that the file is at
    least that many bytes (at most 32 bytes more): cheap multi-GiB files for benchmarks.
    `extra_metadata` adds keys (e.g. {"tokenizer.chat_template": "..."}).
    """
    if n_tensors < 1:
        raise ValueError("n_tensors must be at least 1")
    if size < 1:
        raise ValueError("size must be at least 1")
    path = Path(path)
    pad_elements = 0
    if pad_to_bytes:
        with tempfile.TemporaryDirectory() as tmp:  # learn the fixed part's size from a dry run
            probe = Path(tmp) / "probe.gguf"
            _write(probe, seed, architecture, n_tensors, size, 16, name, extra_metadata)
            fixed = probe.stat().st_size - _pad(16 * 2)
        missing = max(0, pad_to_bytes - fixed)
        pad_elements = max(16, -(-missing // _ALIGN) * (_ALIGN // 2))
    _write(path, seed, architecture, n_tensors, size, pad_elements, name, extra_metadata)
    return path


def gguf_bytes(seed: int = 0, **kwargs: Any) -> bytes:
    """The bytes `make_gguf` would write (small files only)."""
    with tempfile.TemporaryDirectory() as tmp:
        return make_gguf(Path(tmp) / "model.gguf", seed, **kwargs).read_bytes()
