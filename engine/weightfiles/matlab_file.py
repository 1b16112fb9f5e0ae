"""MATLAB 5 files, walked element by element as scipy would read them, before scipy does.

scipy.io.loadmat trusts what a file declares: it allocates each element at
its declared byte count, inflates compressed elements as it goes, makes one
Python object per element of a cell or struct array however few bytes
describe them, recurses in C for each nesting level and looks data types up
in a table without a bounds check.  Measured with scipy 1.17: a 208-byte
file declaring a 1000 x 1000 struct array without fields took 2.7 s and
213 MB (10000 x 3000 ran out of memory), a 200-byte file with a reserved
data type crashed the process, and so did 100,000 nested cells (200 KB).
So the file is first walked here, element by element in the order scipy
will read it, without keeping any data: every declared size is charged to
``DECODED_LIMIT`` before it is read or inflated, arrays are counted, nesting
is bounded, and anything a MatConvNet network does not use (sparse arrays,
objects, function handles, complex numbers) is refused.  Only variables
scipy is asked for are walked beyond their header, as scipy skips the rest.
(scipy inflates a compressed element up to 128 KiB of input at a time, so
it may hold ~130 MB more than it parsed for a moment.)
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, NoReturn

from engine.errors import WeightsError
from engine.weightfiles import limits
from engine.weightfiles.limits import bytes_text, first_line, stream_size

# Data types: numeric ones and their sizes, and those scipy reads as characters.
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED, _MI_UTF8 = 1, 5, 6, 14, 15, 16
_MAT_NUMERIC_TYPES: Mapping[int, int] = MappingProxyType(
    {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
)
_MAT_CHAR_TYPES = frozenset({1, 2, 4, 16, 17, 18})
# Array classes.
_MX_CELL, _MX_STRUCT, _MX_CHAR, _MX_OPAQUE = 1, 2, 4, 17
_MX_NUMERIC = frozenset(range(6, 16))
_MX_NAMES: Mapping[int, str] = MappingProxyType(
    {3: "objects", 5: "sparse arrays", 16: "function handles", 17: "objects"}
)
# A MatConvNet VGG-19 holds a few thousand arrays (43 layer structs and their
# fields, 2 x 1000 class-name strings); each becomes a Python object.
_MAT_NAME_LIMIT = 1024
_MAT_MAX_FIELD_SLOT = 256
_MAT_MAX_FIELDS = 1024


@dataclass(frozen=True)
class _MatHeader:
    mclass: int
    is_complex: bool
    dims: tuple[int, ...]
    name: bytes

    @property
    def count(self) -> int:
        return math.prod(self.dims)


class _MatWalk:
    """What reading one MATLAB 5 file would cost scipy, refused as soon as it is too much."""

    def __init__(self, path: Path, order: str) -> None:
        self.path = path
        self.order = order
        self.spent = 0
        self.arrays = 0

    def corrupt(self, why: str) -> NoReturn:
        raise WeightsError(f"is not a readable MATLAB file ({why})", self.path)

    def truncated(self) -> NoReturn:
        self.corrupt("truncated: an element runs past the end of its data")

    def spend(self, count: int) -> None:
        self.spent += count
        if self.spent > limits.DECODED_LIMIT:
            raise WeightsError(
                "declares more MATLAB data than a whole VGG-19 needs "
                f"(over {bytes_text(limits.DECODED_LIMIT)} once read)",
                self.path,
            )

    def count_arrays(self, count: int, *, then: int = 0) -> None:
        """Count ``count`` arrays now, and refuse if ``then`` more would be too many."""
        if self.arrays + count + then > limits.MAT_MAX_ARRAYS:
            raise WeightsError(
                f"holds more than {limits.MAT_MAX_ARRAYS:,} MATLAB arrays; "
                "a MatConvNet VGG-19 has a few thousand",
                self.path,
            )
        self.arrays += count

    def tag(self, source: _MatSource) -> tuple[int, int, bytes | None]:
        """A data element's type and byte count, and its data if it is a small element."""
        first, second = struct.unpack(self.order + "II", source.read(8))
        if first >> 16:  # small data element: up to 4 bytes inside the tag
            count = first >> 16
            if count > 4:
                self.corrupt("a small data element of more than 4 bytes")
            raw = struct.pack(self.order + "I", second)
            return first & 0xFFFF, count, raw[:count]
        return first, second, None

    def element(self, source: _MatSource, limit: int) -> tuple[int, bytes]:
        """A small data element (a name, the dimensions) read whole."""
        mdtype, count, data = self.tag(source)
        if data is None:
            if count > limit:
                self.corrupt(f"a {count}-byte name or size field")
            data = source.read(count)
            source.skip_padding(count)
        return mdtype, data

    def skip_element(self, source: _MatSource) -> tuple[int, int]:
        """A data element scipy will hold in memory: charged and skipped."""
        mdtype, count, data = self.tag(source)
        if data is None:
            source.skip(count)
            source.skip_padding(count)
        return mdtype, count

    def header(self, source: _MatSource) -> _MatHeader:
        """Array flags, dimensions and name, as scipy's ``read_header`` reads them."""
        self.count_arrays(1)
        # scipy skips the flags' tag unread; MATLAB and scipy always write it so.
        if struct.unpack(self.order + "II", source.read(8)) != (_MI_UINT32, 8):
            self.corrupt("an array without its flags")
        flags_class, _ = struct.unpack(self.order + "II", source.read(8))
        mclass = flags_class & 0xFF
        if mclass == _MX_OPAQUE:  # scipy versions read these headers differently
            self.corrupt("it holds MATLAB objects, which a network file does not use")
        mdtype, raw_dims = self.element(source, limit=128)
        if mdtype not in (_MI_INT32, _MI_UINT32) or not 8 <= len(raw_dims) <= 128:
            self.corrupt("an array with malformed dimensions")
        dims = struct.unpack(f"{self.order}{len(raw_dims) // 4}i", raw_dims[: len(raw_dims) // 4 * 4])
        if any(d < 0 for d in dims):
            self.corrupt("an array with a negative dimension")
        mdtype, name = self.element(source, limit=_MAT_NAME_LIMIT)
        if mdtype not in (_MI_INT8, _MI_UTF8):
            self.corrupt("an array name that is not text")
        return _MatHeader(mclass, bool(flags_class >> 11 & 1), dims, name)

    def body(self, source: _MatSource, header: _MatHeader, depth: int) -> None:
        """The array's contents, as scipy's ``array_from_header`` reads them."""
        if depth > limits.MAT_MAX_DEPTH:
            self.corrupt(f"arrays nested more than {limits.MAT_MAX_DEPTH} deep")
        mclass, count = header.mclass, header.count
        if header.is_complex:
            self.corrupt("it holds complex numbers, which network weights are not")
        if mclass in _MX_NUMERIC:
            mdtype, nbytes = self.skip_element(source)
            item_size = _MAT_NUMERIC_TYPES.get(mdtype)
            if item_size is None:
                self.corrupt(f"numbers of the unknown data type {mdtype}")
            if nbytes // item_size != count:
                self.corrupt(f"an array of {count} numbers holding {nbytes // item_size}")
        elif mclass == _MX_CHAR:
            mdtype, nbytes = self.skip_element(source)
            if mdtype not in _MAT_CHAR_TYPES:
                self.corrupt(f"text of the unknown data type {mdtype}")
            # scipy makes an array of 4-byte characters, as many as the
            # dimensions say even when no bytes follow.
            self.spend(4 * max(count, nbytes))
        elif mclass == _MX_CELL:
            self.count_arrays(0, then=count)  # before looping over a declared size
            for _ in range(count):
                self.child(source, depth + 1)
        elif mclass == _MX_STRUCT:
            mdtype, raw = self.element(source, limit=4)
            if mdtype not in (_MI_INT32, _MI_UINT32) or len(raw) != 4:
                self.corrupt("a struct without its field name length")
            (slot,) = struct.unpack(self.order + "i", raw)
            if not 1 <= slot <= _MAT_MAX_FIELD_SLOT:
                self.corrupt(f"struct field names of length {slot}")
            mdtype, names = self.element(source, limit=_MAT_MAX_FIELDS * slot)
            if mdtype not in (_MI_INT8, _MI_UTF8):
                self.corrupt("struct field names that are not text")
            fields = len(names) // slot
            # Each element is an object even without fields, then one array per field.
            self.count_arrays(count, then=count * fields)
            for _ in range(count * fields):
                self.child(source, depth + 1)
        else:
            kind = _MX_NAMES.get(mclass, f"arrays of the unknown class {mclass}")
            self.corrupt(f"it holds {kind}, which a network file does not use")

    def child(self, source: _MatSource, depth: int) -> None:
        # An element of a cell or a struct field: scipy reads a full tag and
        # only checks its type, and an empty array is the tag alone.
        mdtype, nbytes = struct.unpack(self.order + "II", source.read(8))
        if mdtype != _MI_MATRIX:
            self.corrupt("a cell or field that is not an array")
        if nbytes == 0:
            self.count_arrays(1)
            return
        self.body(source, self.header(source), depth)


class _MatSource:
    """Where scipy reads one variable from: the file itself, or an inflated compressed element."""

    def __init__(self, walk: _MatWalk, stream: IO[bytes]) -> None:
        self.walk = walk
        self.stream = stream

    def read(self, count: int) -> bytes:
        raise NotImplementedError

    def skip(self, count: int) -> None:
        raise NotImplementedError

    def skip_padding(self, count: int) -> None:
        """To the next 8-byte boundary; like scipy's seek, not an error at the end."""
        raise NotImplementedError


class _FileSource(_MatSource):
    def __init__(self, walk: _MatWalk, stream: IO[bytes], start: int, end: int) -> None:
        super().__init__(walk, stream)
        self.position = start
        self.end = end

    def read(self, count: int) -> bytes:
        self.walk.spend(count)
        if self.position + count > self.end:
            self.walk.truncated()
        self.stream.seek(self.position)
        data = self.stream.read(count)
        if len(data) != count:
            self.walk.truncated()
        self.position += count
        return data

    def skip(self, count: int) -> None:
        self.walk.spend(count)
        if self.position + count > self.end:
            self.walk.truncated()
        self.position += count

    def skip_padding(self, count: int) -> None:
        self.position += -count % 8


class _InflatingSource(_MatSource):
    """A miCOMPRESSED element inflated on demand, never more than asked for."""

    def __init__(self, walk: _MatWalk, stream: IO[bytes], start: int, length: int) -> None:
        super().__init__(walk, stream)
        self.decompressor = zlib.decompressobj()
        self.position = start
        self.left = length
        self.pending = b""

    def inflate(self, count: int) -> bytes:
        """Up to ``count`` inflated bytes; fewer only at the end of the element."""
        out = bytearray()
        while len(out) < count:
            if not self.pending:
                if self.decompressor.eof or self.left <= 0:
                    break
                self.stream.seek(self.position)
                self.pending = self.stream.read(min(self.left, 1 << 16))
                if not self.pending:
                    break
                self.position += len(self.pending)
                self.left -= len(self.pending)
            before = len(out), len(self.pending)
            try:
                out += self.decompressor.decompress(self.pending, count - len(out))
            except zlib.error as error:
                self.walk.corrupt(f"its compressed data is damaged: {error}")
            self.pending = b"" if self.decompressor.eof else self.decompressor.unconsumed_tail
            if (len(out), len(self.pending)) == before:  # no progress: never loop on it
                break
        return bytes(out)

    def read(self, count: int) -> bytes:
        self.walk.spend(count)
        data = self.inflate(count)
        if len(data) != count:
            self.walk.truncated()
        return data

    def skip(self, count: int) -> None:
        self.walk.spend(count)  # before inflating a byte of it
        while count:
            piece = self.inflate(min(count, 1 << 20))
            if not piece:
                self.walk.truncated()
            count -= len(piece)

    def skip_padding(self, count: int) -> None:
        self.inflate(-count % 8)


def check_matlab(stream: IO[bytes], path: Path, variables: Sequence[str]) -> None:
    """Walk a MATLAB 5 file as scipy.io.loadmat would read it; a WeightsError if it is too much.

    ``variables`` are the names scipy will be asked for: only those are walked beyond their header.
    """
    try:
        _walk_matlab(stream, path, variables)
    except WeightsError:
        raise
    except Exception as error:  # struct and zlib errors from a damaged file
        raise WeightsError(f"is not a readable MATLAB file ({first_line(error)})", path) from None


def _walk_matlab(stream: IO[bytes], path: Path, variables: Sequence[str]) -> None:
    size = stream_size(stream)
    stream.seek(0)
    head = stream.read(128)
    if len(head) < 128:
        raise WeightsError("is not a readable MATLAB file (truncated within its header)", path)
    order = {b"IM": "<", b"MI": ">"}.get(head[126:128])
    if order is None:
        raise WeightsError("is not a readable MATLAB file (no byte order mark in its header)", path)
    (version,) = struct.unpack(order + "H", head[124:126])
    if version == 0x0200:
        raise WeightsError(
            "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`", path
        )
    if version != 0x0100:
        raise WeightsError(f"is not a readable MATLAB file (unknown version {version:#06x})", path)
    if head[116:124].strip(b"\0 "):
        # Subsystem data holds MATLAB objects and function workspaces; newer
        # scipy versions read it from this offset, past what is walked here.
        raise WeightsError(
            "is a MATLAB file with objects or function handles (subsystem data), which a network "
            "file does not use",
            path,
        )
    walk = _MatWalk(path, order)
    position = 128
    while position < size:
        if size - position < 8:
            walk.corrupt("trailing bytes after the last variable")
        stream.seek(position)
        mdtype, nbytes = struct.unpack(order + "II", stream.read(8))
        if nbytes == 0 or position + 8 + nbytes > size:
            walk.corrupt("a variable that runs past the end of the file" if nbytes else "an empty variable")
        source: _MatSource
        if mdtype == _MI_COMPRESSED:
            source = _InflatingSource(walk, stream, position + 8, nbytes)
            if struct.unpack(order + "I", source.read(8)[:4])[0] != _MI_MATRIX:
                walk.corrupt("a compressed variable that is not an array")
        elif mdtype == _MI_MATRIX:
            # scipy reads an uncompressed variable on to wherever its contents end.
            source = _FileSource(walk, stream, position + 8, size)
        else:
            walk.corrupt(f"a variable of data type {mdtype} where an array belongs")
        header = walk.header(source)
        if header.name.decode("latin-1") in variables:
            walk.body(source, header, depth=1)
            if isinstance(source, _InflatingSource) and source.inflate(1):
                walk.corrupt("a compressed variable with more data than its array")
        position += 8 + nbytes
