"""The GGUF a real Ollama stores for an uploaded one: what `llama-quantize COPY` writes.

Since v0.30 `ollama create` passes every model GGUF through llama.cpp's `llama-quantize`
with the type COPY, and the rewritten file, not the upload, becomes the model layer. The
rewrite keeps every tensor's bytes and reorders the rest, so it can be imitated exactly:

* metadata in the upload's order, without `split.*`, then `general.quantization_version`
  (2) and `general.file_type` last (llama.cpp's gguf_set_val appends after removing);
* tensors sorted as llama.cpp's weight_name_comparer does: tensors outside `blk.N.` first,
  then by block number, then by name; trailing dimensions of 1 dropped (ggml_n_dims);
* the file's alignment (`general.alignment`, default 32) before the data and after each
  tensor, padded with zeros.

Checked byte for byte against Ollama 0.33.0-rc2-0-gfb30760 (llama.cpp b10488) on the test
GGUFs of tests/gguf_maker.py and on Gemma 3 270M Q4_K_M (tests/test_double.py pins one
digest). The header is scanned here rather than with the gguf package's reader, which
decodes every value (10 s for Gemma's 262k-token vocabulary).
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

__all__ = ["GgufLayoutError", "copy_chunks"]

QUANTIZATION_VERSION = 2  # GGML_QNT_VERSION
GUESSED = 1024  # LLAMA_FTYPE_GUESSED: the file had no general.file_type
DEFAULT_ALIGNMENT = 32
_REPLACED = frozenset({"general.quantization_version", "general.file_type"})
# split.* (and <arch>.split.*): what Ollama's create and llama-quantize drop
_SPLIT_SUFFIXES = ("split.no", "split.count", "split.tensors.count")
_BLOCK = re.compile(r"blk\.(\d+)\.")
_CHUNK = 8 * 1024 * 1024
_SCALAR_SIZES = {
    GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.BOOL: 1,
    GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4,
    GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8,
}
# llama_model_loader's guess of the file type from the most common tensor type (else F32)
_FTYPE_OF_TENSOR = {
    GGMLQuantizationType.F16: 1, GGMLQuantizationType.Q4_0: 2, GGMLQuantizationType.Q4_1: 3,
    GGMLQuantizationType.Q8_0: 7, GGMLQuantizationType.Q5_0: 8, GGMLQuantizationType.Q5_1: 9,
    GGMLQuantizationType.Q2_K: 10, GGMLQuantizationType.Q3_K: 12, GGMLQuantizationType.Q4_K: 15,
    GGMLQuantizationType.Q5_K: 17, GGMLQuantizationType.Q6_K: 18, GGMLQuantizationType.BF16: 32,
}


class GgufLayoutError(ValueError):
    """The file is not a GGUF this module can read."""


@dataclass(frozen=True)
class _Tensor:
    name: str
    dims: tuple[int, ...]
    kind: int
    offset: int  # in the data section
    size: int


class _Scanner:
    """Reads a GGUF header front to back, keeping each metadata entry's bytes as they are."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.position = 0

    def take(self, size: int) -> bytes:
        data = self.source.read(size)
        if len(data) != size:
            raise GgufLayoutError("the GGUF ends inside its header")
        self.position += size
        return data

    def number(self, fmt: str) -> int:
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def text(self) -> bytes:
        return self.take(self.number("<Q"))

    def skip_value(self, kind: int) -> bytes:
        """The bytes of one value of type `kind` (its type tag already read)."""
        if kind in _SCALAR_SIZES:
            return self.take(_SCALAR_SIZES[GGUFValueType(kind)])
        if kind == GGUFValueType.STRING:
            size = self.take(8)
            return size + self.take(struct.unpack("<Q", size)[0])
        if kind == GGUFValueType.ARRAY:
            head = self.take(12)
            item, count = struct.unpack("<IQ", head)
            if item in _SCALAR_SIZES:
                return head + self.take(_SCALAR_SIZES[GGUFValueType(item)] * count)
            return head + b"".join(self.skip_value(item) for _ in range(count))
        raise GgufLayoutError(f"unknown GGUF value type {kind}")


def _read_header(source: BinaryIO) -> tuple[list[tuple[str, bytes, bytes]], list[_Tensor], int, int]:
    """(key, type tag, value bytes) of each metadata entry, the tensors, where the data
    starts and the alignment."""
    scan = _Scanner(source)
    if scan.take(4) != b"GGUF":
        raise GgufLayoutError("not a GGUF file")
    if scan.number("<I") not in (2, 3):
        raise GgufLayoutError("unsupported GGUF version")
    n_tensors, n_kv = scan.number("<Q"), scan.number("<Q")
    entries = []
    for _ in range(n_kv):
        key = scan.text().decode("utf-8")
        tag = scan.take(4)
        entries.append((key, tag, scan.skip_value(struct.unpack("<I", tag)[0])))
    tensors = []
    for _ in range(n_tensors):
        name = scan.text().decode("utf-8")
        dims = tuple(scan.number("<Q") for _ in range(scan.number("<I")))
        kind, offset = scan.number("<I"), scan.number("<Q")
        elements = 1
        for dim in dims:
            elements *= dim
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        tensors.append(_Tensor(name, dims, kind, offset, elements // block * type_size))
    values = {key: value for key, _tag, value in entries}
    alignment = struct.unpack("<I", values["general.alignment"])[0] \
        if "general.alignment" in values else DEFAULT_ALIGNMENT
    return entries, tensors, scan.position + _gap(scan.position, alignment), alignment


def _order(tensor: _Tensor) -> tuple[int, str]:
    match = _BLOCK.match(tensor.name)
    return (int(match.group(1)) if match else -1, tensor.name)


def _u32_entry(key: str, value: int) -> bytes:
    raw = key.encode()
    return struct.pack("<Q", len(raw)) + raw + struct.pack("<II", GGUFValueType.UINT32, value)


def _file_type(entries: list[tuple[str, bytes, bytes]], tensors: list[_Tensor]) -> int:
    for key, _tag, value in entries:
        if key == "general.file_type":
            return int(struct.unpack("<I", value[:4])[0])
    counts = Counter(tensor.kind for tensor in tensors)
    if not counts:
        return GUESSED
    # the most common type; a tie goes to the lowest type number (a std::map walked in order)
    common = min(counts, key=lambda kind: (-counts[kind], kind))
    return _FTYPE_OF_TENSOR.get(GGMLQuantizationType(common), 0) | GUESSED


def _gap(size: int, alignment: int) -> int:
    return -size % alignment


def copy_chunks(source: Path) -> Iterator[bytes]:
    """The bytes `llama-quantize COPY` writes for the GGUF at `source`, a piece at a time;
    GgufLayoutError if its header cannot be read."""
    with open(source, "rb") as handle:
        try:
            entries, tensors, data_start, alignment = _read_header(handle)
        except (struct.error, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise GgufLayoutError(str(exc)) from None
        kept = []
        for key, tag, value in entries:
            if key in _REPLACED or key.endswith(_SPLIT_SUFFIXES):
                continue
            raw = key.encode()
            kept.append(struct.pack("<Q", len(raw)) + raw + tag + value)
        kept.append(_u32_entry("general.quantization_version", QUANTIZATION_VERSION))
        kept.append(_u32_entry("general.file_type", _file_type(entries, tensors)))

        ordered = sorted(tensors, key=_order)
        infos, offset = [], 0
        for tensor in ordered:
            dims = list(tensor.dims)
            while len(dims) > 1 and dims[-1] == 1:
                dims.pop()
            name = tensor.name.encode()
            infos.append(struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
                         + struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", tensor.kind, offset))
            offset += tensor.size + _gap(tensor.size, alignment)

        head = b"".join([b"GGUF", struct.pack("<IQQ", 3, len(ordered), len(kept)), *kept, *infos])
        yield head + bytes(_gap(len(head), alignment))
        for tensor in ordered:
            handle.seek(data_start + tensor.offset)
            left = tensor.size
            while left:  # never a whole tensor in memory
                block = handle.read(min(_CHUNK, left))
                if not block:
                    raise GgufLayoutError(f"the GGUF ends inside tensor {tensor.name}")
                left -= len(block)
                yield block
            yield bytes(_gap(tensor.size, alignment))
