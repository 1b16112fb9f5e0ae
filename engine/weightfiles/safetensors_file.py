"""safetensors files, read by hand from the open file with every declared size checked first.

Read here rather than with the safetensors package, which maps the file by
name: this reads the file already open and checked, and holds no more than
the tensors.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, NoReturn

import torch

from engine.errors import WeightsError
from engine.weightfiles import limits
from engine.weightfiles.limits import bytes_text, first_line, stream_size

# Where Painterly records the preprocessing in the files it writes.
SAFETENSORS_PREPROCESSING_KEY = "painterly.preprocessing"

# Bytes per element of each safetensors dtype, and the torch dtype it is read
# as (the sub-byte float formats are not read).
_SAFETENSORS_ITEM_SIZES: Mapping[str, int] = MappingProxyType(
    {
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
        "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
        "U32": 4, "I32": 4, "F32": 4,
        "U64": 8, "I64": 8, "F64": 8,
    }
)  # fmt: skip
_SAFETENSORS_TORCH_DTYPES: Mapping[str, torch.dtype] = MappingProxyType(
    {
        name: getattr(torch, attribute)
        for name, attribute in (
            ("BOOL", "bool"), ("U8", "uint8"), ("I8", "int8"), ("F8_E5M2", "float8_e5m2"),
            ("F8_E4M3", "float8_e4m3fn"), ("U16", "uint16"), ("I16", "int16"), ("F16", "float16"),
            ("BF16", "bfloat16"), ("U32", "uint32"), ("I32", "int32"), ("F32", "float32"),
            ("U64", "uint64"), ("I64", "int64"), ("F64", "float64"),
        )
        if hasattr(torch, attribute)  # the unsigned and float8 types are recent
    }
)  # fmt: skip


@dataclass(frozen=True)
class _SafetensorsEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice")
    return result


def _is_count(value: Any) -> bool:
    # bool is an int in Python but never a size.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63


def read_safetensors(stream: IO[bytes], path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, every declared size checked first.

    Read here rather than with the safetensors package, which maps the file by
    name: this reads the file already open and checked, and holds no more than
    the tensors.
    """

    def corrupt(why: str) -> NoReturn:
        raise WeightsError(f"is not a readable safetensors file ({why})", path)

    size = stream_size(stream)
    stream.seek(0)
    prefix = stream.read(8)
    if len(prefix) < 8:
        corrupt("truncated before its header")
    (header_length,) = struct.unpack("<Q", prefix)
    if header_length > limits.SAFETENSORS_HEADER_LIMIT:
        raise WeightsError(
            f"has a {bytes_text(header_length)} safetensors header; a VGG-19's is a few KiB "
            f"(the limit is {bytes_text(limits.SAFETENSORS_HEADER_LIMIT)})",
            path,
        )
    if header_length > size - 8:
        corrupt("truncated: its header runs past the end of the file")
    try:
        header = json.loads(stream.read(header_length).decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        corrupt(f"its header is not valid JSON: {first_line(error, 80)}")
    if not isinstance(header, dict):
        corrupt("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        corrupt("its __metadata__ is not a map of strings")
    if len(header) > limits.SAFETENSORS_MAX_TENSORS:
        raise WeightsError(
            f"holds {len(header)} tensors; a VGG-19 has 38 (the limit is {limits.SAFETENSORS_MAX_TENSORS})",
            path,
        )

    entries: list[_SafetensorsEntry] = []
    for name, info in header.items():
        shown = repr(name[:80])
        if not isinstance(info, dict):
            corrupt(f"the entry for {shown} is not a JSON object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        item_size = _SAFETENSORS_ITEM_SIZES.get(dtype) if isinstance(dtype, str) else None
        if item_size is None or dtype not in _SAFETENSORS_TORCH_DTYPES:
            corrupt(f"tensor {shown} has the unsupported dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or len(shape) > 64 or not all(_is_count(n) for n in shape):
            corrupt(f"tensor {shown} has an invalid shape")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
            corrupt(f"tensor {shown} has invalid data offsets")
        nbytes = math.prod(shape) * item_size
        if nbytes > limits.TENSOR_BYTES_LIMIT:
            raise WeightsError(
                f"declares tensor {shown} of shape {tuple(shape)} ({bytes_text(nbytes)}), larger than any "
                f"VGG-19 tensor ({bytes_text(limits.TENSOR_BYTES_LIMIT)} at most in float64)",
                path,
            )
        begin, end = offsets
        if end - begin != nbytes:
            corrupt(f"tensor {shown} of shape {tuple(shape)} needs {nbytes} bytes but spans {end - begin}")
        entries.append(_SafetensorsEntry(name, dtype, tuple(shape), begin, end))

    # As the format requires: the tensors tile the data exactly, in offset order.
    entries.sort(key=lambda entry: (entry.begin, entry.end))
    covered = 0
    for entry in entries:
        if entry.begin != covered:
            corrupt("its tensors overlap or leave gaps")
        covered = entry.end
    if covered > limits.DECODED_LIMIT:
        raise WeightsError(
            f"declares {bytes_text(covered)} of tensors, more than a whole VGG-19 needs "
            f"(the limit is {bytes_text(limits.DECODED_LIMIT)})",
            path,
        )
    data_size = size - 8 - header_length
    if covered != data_size:
        corrupt(f"truncated or padded: its tensors take {covered} bytes but the file holds {data_size}")

    tensors: dict[str, torch.Tensor] = {}
    for entry in entries:
        stream.seek(8 + header_length + entry.begin)
        tensors[entry.name] = _tensor_from_file(stream, entry, path)
    return tensors, dict(metadata)


def _tensor_from_file(stream: IO[bytes], entry: _SafetensorsEntry, path: Path) -> torch.Tensor:
    dtype = _SAFETENSORS_TORCH_DTYPES[entry.dtype]
    nbytes = entry.end - entry.begin
    if nbytes == 0:
        return torch.empty(entry.shape, dtype=dtype)
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            raise WeightsError("is not a readable safetensors file (truncated while read)", path)
        filled += count
    flat = torch.frombuffer(buffer, dtype=torch.uint8)
    item_size = _SAFETENSORS_ITEM_SIZES[entry.dtype]
    if sys.byteorder == "big" and item_size > 1:  # safetensors is little-endian
        flat = flat.view(-1, item_size).flip(1).reshape(-1)
    return flat.view(dtype).reshape(entry.shape)
