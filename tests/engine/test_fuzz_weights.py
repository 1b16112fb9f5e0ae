"""Property-based fuzzing of the weights reader, the parser of files a stranger is most likely to send.

Random bytes (bare and behind each format's magic), mutations of small valid files in every format
(bit flips, overwritten bytes and length fields, truncations, deletions, duplications), and
structure-aware MATLAB element trees and safetensors headers.  Reading must end in weights or an
InputError (WeightsError) whose message is one printable line naming the file: no other exception,
no traceback, and no crash (scipy crashes on some MATLAB files engine.weights must refuse first).
Nothing is downloaded; every file is made here and written to a temporary folder.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine import weights as W
from engine.errors import InputError
from engine.text import printable
from engine.weightfiles.read import SUPPORTED_EXTENSIONS

# torch and scipy warn about what they find in damaged files (pickle protocols, repeated names).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# No example database: nothing is written into the working tree.  Each test takes a few seconds.
FUZZ = settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def read_one_line(path: Path) -> W.VGGWeights | None:
    """Read ``path``; a VGGWeights, or None after checking the error is one inert line about it."""
    W.clear_cache()  # the same name is rewritten with new bytes for every example
    try:
        return W.read_weights_file(path)
    except InputError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message and "Traceback" not in message, message
        assert printable(message) == message, repr(message)
        return None


# -- seeds: tiny valid files of every format ---------------------------------------------------------


def _mat_layers(weights: W.VGGWeights) -> np.ndarray:
    cells = np.empty((1, len(weights.layers)), dtype=object)
    for i, (name, (weight, bias)) in enumerate(weights.layers.items()):
        pair = np.empty((1, 2), dtype=object)
        pair[0, 0] = weight.numpy().transpose(2, 3, 1, 0)
        pair[0, 1] = bias.numpy().reshape(1, -1)
        cells[0, i] = {"name": name, "type": "conv", "weights": pair}
    return cells


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-weights")


@pytest.fixture(scope="module")
def seeds(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Format name -> (file suffix, bytes of a small valid weights file)."""
    # Widths 1..8: every file is a few KiB, so each example is milliseconds.
    weights = W.random_weights(64, seed=5)
    found: dict[str, tuple[str, bytes]] = {}
    buffer = io.BytesIO()
    torch.save(W.state_dict(weights, "torchvision"), buffer)
    found["pth-zip"] = (".pth", buffer.getvalue())
    buffer = io.BytesIO()
    torch.save(W.state_dict(weights), buffer, _use_new_zipfile_serialization=False)
    found["bin-legacy"] = (".bin", buffer.getvalue())
    found["safetensors"] = (
        ".safetensors",
        W.save_weights_safetensors(weights, folder / "seed.safetensors").read_bytes(),
    )
    meta = {"normalization": {"averageImage": np.array([123.68, 116.779, 103.939]).reshape(1, 1, 3)}}
    for name, compressed in (("mat", False), ("mat-compressed", True)):
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {"layers": _mat_layers(weights), "meta": meta}, do_compression=compressed)
        found[name] = (".mat", buffer.getvalue())
    return found


def test_every_seed_reads(seeds: dict[str, tuple[str, bytes]], folder: Path) -> None:
    for name, (suffix, data) in seeds.items():
        path = folder / f"seed-{name}{suffix}"
        path.write_bytes(data)
        weights = read_one_line(path)
        assert weights is not None and weights.widths[-1] == 8, name


# -- mutations -----------------------------------------------------------------------------------------

# Values that make a length, a count or an offset absurd.
_INTERESTING = (
    0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF
)  # fmt: skip
_FORMATS = {"<H": 0xFFFF, "<I": 0xFFFFFFFF, ">I": 0xFFFFFFFF, "<Q": (1 << 64) - 1, "<i": None}


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        if not out:
            break
        size = len(out)
        # Headers sit at the start and zip directories at the end: aim there often.
        where = draw(
            st.one_of(
                st.integers(0, min(size, 512) - 1),
                st.integers(max(0, size - 512), size - 1),
                st.integers(0, size - 1),
            )
        )
        kind = draw(st.sampled_from(("flip", "byte", "number", "truncate", "delete", "duplicate")))
        if kind == "flip":
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            out[where] = draw(st.integers(0, 255))
        elif kind == "number":
            fmt = draw(st.sampled_from(sorted(_FORMATS)))
            value = draw(st.sampled_from(_INTERESTING))
            packed = struct.pack(fmt, -1 if fmt == "<i" else value & _FORMATS[fmt])
            out[where : where + len(packed)] = packed
        elif kind == "truncate":
            del out[where:]
        elif kind == "delete":
            del out[where : where + draw(st.integers(1, 64))]
        else:
            out[where:where] = out[where : where + draw(st.integers(1, 64))]
    return bytes(out)


@pytest.mark.parametrize("fmt", ["pth-zip", "bin-legacy", "safetensors", "mat", "mat-compressed"])
@FUZZ
@given(data=st.data())
def test_mutated_files_give_weights_or_one_line(
    fmt: str, data: st.DataObject, seeds: dict[str, tuple[str, bytes]], folder: Path
) -> None:
    suffix, seed = seeds[fmt]
    path = folder / f"mutated-{fmt}{suffix}"
    path.write_bytes(data.draw(mutated(seed), label="file"))
    read_one_line(path)


# -- random bytes --------------------------------------------------------------------------------------

_MAGIC: dict[str, Callable[[int], bytes]] = {
    "zip": lambda n: b"PK\x03\x04",
    "empty-zip": lambda n: b"PK\x05\x06",
    "pickle": lambda n: b"\x80\x02",
    "safetensors": lambda n: struct.pack("<Q", max(2, n)) + b"{",
    "matlab": lambda n: b"MATLAB 5.0 MAT-file".ljust(124) + b"\x00\x01IM",
    "matlab-big-endian": lambda n: b"MATLAB 5.0 MAT-file".ljust(124) + b"\x01\x00MI",
    "matlab73": lambda n: b"MATLAB 7.3 MAT-file".ljust(128),
}


@FUZZ
@given(
    body=st.binary(max_size=4096),
    magic=st.sampled_from(["none", *_MAGIC]),
    suffix=st.sampled_from(SUPPORTED_EXTENSIONS),
)
def test_random_bytes_give_one_line(body: bytes, magic: str, suffix: str, folder: Path) -> None:
    prefix = _MAGIC[magic](len(body)) if magic != "none" else b""
    path = folder / f"random{suffix}"
    path.write_bytes(prefix + body)
    assert read_one_line(path) is None


# -- MATLAB 5 element trees ----------------------------------------------------------------------------
#
# Random classes, data types, dimensions and nesting, as scipy reads them: the cases where scipy itself
# crashes the process (reserved data types, deep nesting) or runs away (huge struct and cell arrays)
# must all be refused before it sees the file.


def _tag(mdtype: int, count: int) -> bytes:
    return struct.pack("<II", mdtype, count)


def _element(mdtype: int, payload: bytes) -> bytes:
    if len(payload) <= 4 and mdtype < 0x10000 and payload and mdtype % 3 == 0:
        # Sometimes a small data element: the data inside the tag.
        return struct.pack("<HH", mdtype, len(payload)) + payload.ljust(4, b"\0")
    return _tag(mdtype, len(payload)) + payload + bytes(-len(payload) % 8)


_DATA_TYPES = st.one_of(st.integers(0, 20), st.sampled_from([1, 2, 4, 5, 6, 7, 9, 12, 13, 16]))
_DIMS = st.lists(
    st.one_of(st.integers(0, 4), st.sampled_from([1 << 16, 1 << 30, 0x7FFFFFFF, -1])), min_size=0, max_size=4
)
# Numeric data types with their item sizes, as MATLAB stores numbers.
_NUMBERS = [(9, 8, "d"), (7, 4, "f"), (2, 1, "B"), (5, 4, "i")]


@st.composite
def _matrix(draw: st.DrawFn, children: st.SearchStrategy[bytes], name: bytes = b"") -> bytes:
    """One array: mostly well formed (so scipy and the layout code see them), now and then anything."""
    if draw(st.integers(0, 9)) == 0:
        return _tag(14, 0)  # an empty array
    broken = draw(st.integers(0, 11)) == 0
    if not broken:
        mclass = draw(st.sampled_from([1, 1, 2, 2, 4, 6, 7, 9]))
        dims = draw(st.lists(st.integers(0, 2), min_size=2, max_size=3))
        flags, dims_type, name_type = mclass, 5, 1
    else:
        mclass = draw(st.integers(0, 20))
        dims = draw(_DIMS)
        flags = mclass | draw(st.sampled_from([0, 1 << 9, 1 << 11]))
        dims_type, name_type = draw(st.sampled_from([5, 6, 1])), draw(st.sampled_from([1, 16, 2]))
    # As many elements as declared, or for absurd dimensions a few.
    count = min(max(0, math.prod(dims)), 8)
    header = (
        _element(6, struct.pack("<II", flags, 0))
        + _element(dims_type, struct.pack(f"<{len(dims)}i", *dims))
        + _element(name_type, name)
    )
    body = b""
    if mclass in (6, 7, 9):
        mdtype, size, code = draw(st.sampled_from(_NUMBERS))
        values = draw(st.lists(st.floats(-1e3, 1e3) if code in "df" else st.integers(0, 100), min_size=count,
                               max_size=count))  # fmt: skip
        body += _element(mdtype, struct.pack(f"<{count}{code}", *values))
    elif mclass == 4:
        body += _element(16, draw(st.sampled_from(["conv1_1", "conv", "relu", "x" * 9]))[:count].encode())
    elif mclass == 1:
        body += b"".join(draw(st.lists(children, min_size=count, max_size=count)))
    elif mclass == 2:
        fields = draw(st.lists(st.sampled_from(["name", "type", "weights", "filters", "biases", "value"]),
                               max_size=3, unique=True))  # fmt: skip
        slot = draw(st.sampled_from([0, 1, -1])) if broken else 32
        body += _element(5, struct.pack("<i", slot))
        body += _element(1, b"".join(field.encode().ljust(max(slot, 0), b"\0") for field in fields))
        body += b"".join(draw(st.lists(children, min_size=count * len(fields), max_size=count * len(fields))))
    if broken:  # and something out of place
        body += draw(st.one_of(children, st.builds(_element, _DATA_TYPES, st.binary(max_size=48))))
    return _tag(14, len(header) + len(body)) + header + body


_TREES = st.recursive(st.just(_tag(14, 0)), lambda children: _matrix(children), max_leaves=16)


@st.composite
def _matlab_file(draw: st.DrawFn) -> bytes:
    body = b""
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([b"layers", b"meta", b"net", b"params", b"classes", b""]))
        array = draw(_matrix(_TREES, name=name))
        if draw(st.booleans()):
            packed = zlib.compress(array)
            array = _tag(15, len(packed)) + packed
        body += array
    if draw(st.integers(0, 4)) == 0:
        body += draw(st.binary(max_size=12))
    return b"MATLAB 5.0 MAT-file, fuzz".ljust(116) + bytes(8) + b"\x00\x01IM" + body


@FUZZ
@given(content=_matlab_file())
def test_random_matlab_arrays_give_one_line(content: bytes, folder: Path) -> None:
    path = folder / "tree.mat"
    path.write_bytes(content)
    assert read_one_line(path) is None


# -- safetensors headers -------------------------------------------------------------------------------

_JSON_NUMBERS = st.one_of(
    st.integers(-2, 64),
    st.sampled_from([1 << 31, 1 << 32, 1 << 62, 1 << 64, 10**30]),
    st.floats(),
    st.booleans(),
)


@st.composite
def _safetensors_file(draw: st.DrawFn) -> bytes:
    header: dict[str, Any] = {}
    offset = 0
    for index in range(draw(st.integers(0, 4))):
        dtype = draw(st.sampled_from(["F32", "F16", "BF16", "U8", "F64", "I64", "F4", "X", 7, None]))
        shape = draw(st.lists(st.one_of(st.integers(0, 5), _JSON_NUMBERS), max_size=4))
        size = draw(st.one_of(st.integers(0, 64), _JSON_NUMBERS))
        begin = draw(st.one_of(st.just(offset), _JSON_NUMBERS))
        end = begin + size if isinstance(begin, int) and isinstance(size, int) else size
        entry: Any = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        if draw(st.integers(0, 9)) == 0:
            entry = draw(st.sampled_from([[], "x", 3, {"dtype": "F32"}]))
        header[draw(st.sampled_from([f"conv1_{index}.weight", f"t{index}", "__metadata__", ""]))] = entry
        offset = end if isinstance(end, int) else offset
    if draw(st.booleans()):
        metadata = [{"painterly.preprocessing": "caffe"}, {"painterly.preprocessing": "x"}, {"a": 1}, [], "x"]
        header["__metadata__"] = draw(st.sampled_from(metadata))
    raw = json.dumps(header, allow_nan=True).encode()
    data_length = draw(st.one_of(st.just(max(offset, 0)), st.integers(0, 256)))
    declared = draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw) + 16)))
    return struct.pack("<Q", declared) + raw + bytes(min(data_length, 1 << 16))


@FUZZ
@given(content=_safetensors_file())
def test_random_safetensors_headers_give_one_line(content: bytes, folder: Path) -> None:
    path = folder / "header.safetensors"
    path.write_bytes(content)
    assert read_one_line(path) is None


# -- MatConvNet layouts --------------------------------------------------------------------------------
#
# Well-formed MATLAB files (written by scipy) whose layer lists, parameter lists and metadata hold
# values of every kind where weights, names and types belong: the layout code must refuse each in
# one line, as it must big-endian arrays, strings and structs where numbers belong.

_FIELDS = ["name", "type", "weights", "filters", "biases", "value", "averageImage", "normalization"]
_LEAVES = st.one_of(
    st.just(np.zeros((3, 3, 3, 4), np.float32)),
    st.just(np.zeros((1, 4), np.float32)),
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.uint8, np.int32, np.complex64, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
    ),
    st.text(max_size=8),
    st.integers(-3, 3),
    st.floats(),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(_FIELDS), children, max_size=3),
    ),
    max_leaves=8,
)
_LAYER = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["conv1_1", "conv1_2", "conv5_4", "relu1_1", "fc6", ""]),
        "type": st.one_of(st.sampled_from(["conv", "relu", "pool"]), _LEAVES),
    },
    optional={"weights": _VALUES, "filters": _VALUES, "biases": _VALUES},
)
_PARAM = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["conv1_1_filter", "conv1_1_bias", "conv2_1_f", "conv9_9_filter", "x"]),
        "value": _VALUES,
    }
)


def _cell(items: list[Any]) -> np.ndarray:
    cells = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cells[0, i] = item
    return cells


@FUZZ
@given(
    layers=st.none() | st.lists(_LAYER, max_size=4),
    params=st.none() | st.lists(_PARAM, max_size=4),
    meta=st.none() | _VALUES,
    nested=st.booleans(),
)
def test_random_matconvnet_layouts_give_one_line(
    layers: list[dict[str, Any]] | None,
    params: list[dict[str, Any]] | None,
    meta: Any,
    nested: bool,
    folder: Path,
) -> None:
    variables: dict[str, Any] = {}
    if layers is not None:
        variables["layers"] = _cell(layers)
    if params is not None:
        variables["params"] = _cell(params)
    if nested and variables:
        variables = {"net": variables}
    if meta is not None:
        variables["meta"] = meta
    buffer = io.BytesIO()
    try:
        scipy.io.savemat(buffer, variables or {"x": 1})
    except Exception:  # a value scipy cannot write: not a file anyone could send
        reject()
    path = folder / "layout.mat"
    path.write_bytes(buffer.getvalue())
    assert read_one_line(path) is None
