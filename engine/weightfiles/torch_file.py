"""PyTorch files (torch.save's zip format or its legacy pickles): declared sizes checked, then ``torch.load``.

Read only with ``torch.load(weights_only=True)``, which never runs code from
the file; before that, the zip directory's sizes and the pickles' operations
are checked against ``limits``, so a hostile file is refused before torch
inflates or allocates anything.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any, BinaryIO, NoReturn

import torch

from engine.errors import WeightsError
from engine.weightfiles import limits
from engine.weightfiles.limits import bytes_text, first_line, stream_size


def torch_load(stream: BinaryIO, path: Path) -> Any:
    """``torch.load`` restricted to plain data; every failure is a WeightsError."""
    check_torch_file(stream, path)
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            # torch warns that it would hand a TorchScript archive to torch.jit.load;
            # with weights_only it refuses instead, and we say so below.
            warnings.filterwarnings("ignore", message=".*TorchScript archive.*")
            return torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Weights only load failed" in message or "Unsupported global" in message:
            raise WeightsError(
                "refused: the file holds Python objects, not just tensors, and reading it would "
                "mean running code from it (save the model's state_dict() instead)",
                path,
            ) from None
        raise WeightsError(f"is truncated or corrupt ({first_line(error)})", path) from None
    except MemoryError:
        raise WeightsError("is too large to load into memory", path) from None
    except Exception as error:  # a damaged file can fail in many ways inside torch
        raise WeightsError(_torch_failure(stream, error), path) from None


def check_torch_file(stream: IO[bytes], path: Path) -> None:
    """Refuse a PyTorch file whose declared sizes could not be a VGG-19, before torch reads it.

    torch.save's zip format: torch allocates each entry at the size the zip's
    central directory declares and inflates into it, so a 2-3 MB zip of
    compressed zeros became 3-4 GB before anything could refuse it; those
    sizes are checked here.  Both formats: the pickles' operations are counted.
    The legacy (non-zip) format's storages are read straight from the file, so
    ``limits.WEIGHTS_FILE_LIMIT`` bounds them.
    """
    stream.seek(0)
    if stream.read(4) == b"PK\x03\x04":  # how torch.load tells the zip format
        _check_zip(stream, path)
    else:
        _check_legacy_pickles(stream, path)


def _zip_corrupt(path: Path, why: str) -> NoReturn:
    raise WeightsError(f"is truncated or corrupt ({why})", path)


# End of central directory, its zip64 locator and the zip64 record.
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _check_zip(stream: IO[bytes], path: Path) -> None:
    size = stream_size(stream)
    # The end-of-central-directory record, found as zipfile and torch's miniz
    # both find it: the last signature within its 64 KiB comment of the end.
    tail_length = min(size, _EOCD.size + 0xFFFF)
    stream.seek(size - tail_length)
    tail = stream.read(tail_length)
    found = tail.rfind(b"PK\x05\x06")
    if found < 0 or len(tail) - found < _EOCD.size:
        _zip_corrupt(path, "an incomplete zip archive")
    eocd = size - tail_length + found
    _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, found)
    if eocd + _EOCD.size + comment != size:
        _zip_corrupt(path, "data after the end of the zip archive")
    if disk or cd_disk or disk_entries != entries:
        _zip_corrupt(path, "a zip archive split over several disks")
    cd_end = eocd
    if eocd >= _ZIP64_LOCATOR.size + _ZIP64_EOCD.size:
        stream.seek(eocd - _ZIP64_LOCATOR.size)
        signature, _, record_at, disks = _ZIP64_LOCATOR.unpack(stream.read(_ZIP64_LOCATOR.size))
        if signature == b"PK\x06\x07":
            # zipfile looks for the zip64 record just before its locator and
            # miniz where the locator says: they must be the same place.
            if record_at != eocd - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size or disks > 1:
                _zip_corrupt(path, "a misplaced zip64 directory record")
            stream.seek(record_at)
            record = _ZIP64_EOCD.unpack(stream.read(_ZIP64_EOCD.size))
            signature, record_size, _, _, disk, cd_disk, disk_entries64, entries64, cd_size64, offset64 = (
                record
            )
            if signature != b"PK\x06\x06" or record_size != _ZIP64_EOCD.size - 12 or disk or cd_disk:
                _zip_corrupt(path, "a damaged zip64 directory record")
            if disk_entries64 != entries64:
                _zip_corrupt(path, "a zip archive split over several disks")
            for short, long, sentinel in (
                (entries, entries64, 0xFFFF),
                (cd_size, cd_size64, 0xFFFFFFFF),
                (cd_offset, offset64, 0xFFFFFFFF),
            ):
                if short not in (long, sentinel):
                    _zip_corrupt(path, "zip and zip64 directory records disagree")
            entries, cd_size, cd_offset = entries64, cd_size64, offset64
            cd_end = record_at
    if entries > limits.ZIP_MAX_ENTRIES or cd_size > limits.ZIP_MAX_DIRECTORY:
        raise WeightsError(
            f"is a zip archive of {entries} entries ({bytes_text(cd_size)} of directory); a VGG-19 "
            f"checkpoint has about 50 (the limit is {limits.ZIP_MAX_ENTRIES})",
            path,
        )
    # Nothing before the archive: zipfile would then read the directory just
    # before its end record and miniz where the record says, two places.
    if cd_offset + cd_size != cd_end:
        _zip_corrupt(path, "a zip directory that is not where its end record says")

    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
            if len(infos) > limits.ZIP_MAX_ENTRIES or len({info.filename for info in infos}) != len(infos):
                _zip_corrupt(path, "a zip directory with repeated or too many entries")
            total = 0
            for info in infos:
                if info.file_size > limits.TENSOR_BYTES_LIMIT:
                    raise WeightsError(
                        f"declares a {bytes_text(info.file_size)} entry ({info.filename[:80]!r}), larger "
                        "than any VGG-19 tensor "
                        f"({bytes_text(limits.TENSOR_BYTES_LIMIT)} at most in float64)",
                        path,
                    )
                total += info.file_size
            if total > limits.DECODED_LIMIT:
                raise WeightsError(
                    f"declares {bytes_text(total)} of data once unzipped, more than a whole VGG-19 "
                    f"needs (the limit is {bytes_text(limits.DECODED_LIMIT)})",
                    path,
                )
            scan = _PickleScan(path)
            for info in infos:
                if info.filename.endswith(".pkl"):
                    with archive.open(info) as member:
                        scan.scan(member, info.file_size)
    except WeightsError:
        raise
    except Exception as error:  # zipfile has many ways to say a directory is damaged
        _zip_corrupt(path, f"a damaged zip archive: {first_line(error)}")


class _PickleScan:
    """What the pickles of one PyTorch file would cost torch's unpickler, refused past the limits.

    pickletools reads each operation and its argument without running
    anything; this is the stream it reads from, and charges every byte before
    reading it, so a length declared in the pickle (a string's, a bytes
    object's) or a line without an end is refused rather than allocated.
    A pickle that is merely malformed is left to torch.load to report in its
    own words: its unpickler reads the same bytes in the same order and stops
    no later than this scan.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.operations = 0
        self.bytes = 0
        self._stream: IO[bytes] = io.BytesIO()
        self._available = 0

    def _charge(self, count: int) -> None:
        self.bytes += count
        if self.bytes > limits.PICKLE_MAX_BYTES:
            raise WeightsError(
                f"holds pickles of more than {bytes_text(limits.PICKLE_MAX_BYTES)}; "
                "a VGG-19 state dict's are a few KiB (refused: unpickling it could take unbounded memory)",
                self.path,
            )

    def read(self, count: int) -> bytes:
        if count > self._available:
            if count > limits.PICKLE_LINE_LIMIT:  # torch would allocate it before finding the file short
                left = self._available
                raise WeightsError(
                    f"is truncated or corrupt (a pickle declares {count} bytes where {left} remain)",
                    self.path,
                )
            count = self._available  # pickletools finds the data short, and so will torch
        self._charge(count)
        data = self._stream.read(count)
        self._available -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._stream.readline(min(self._available, limits.PICKLE_LINE_LIMIT))
        self._charge(len(line))
        self._available -= len(line)
        if len(line) == limits.PICKLE_LINE_LIMIT and not line.endswith(b"\n"):
            raise WeightsError(
                f"is truncated or corrupt (a pickle line longer than {bytes_text(limits.PICKLE_LINE_LIMIT)})",
                self.path,
            )
        return line

    def scan(self, stream: IO[bytes], available: int) -> None:
        """Count one pickle of at most ``available`` bytes, from the stream's position."""
        self._stream, self._available = stream, available
        try:
            for _ in pickletools.genops(self):
                self.operations += 1
                if self.operations > limits.PICKLE_MAX_OPERATIONS:
                    raise WeightsError(
                        f"holds pickles of more than {limits.PICKLE_MAX_OPERATIONS:,} operations; "
                        "a VGG-19 state dict's have a few thousand "
                        "(refused: unpickling it could take unbounded memory)",
                        self.path,
                    )
        except WeightsError:  # a ValueError too
            raise
        except (ValueError, EOFError, struct.error):
            pass  # malformed: torch.load says how


def _check_legacy_pickles(stream: IO[bytes], path: Path) -> None:
    # torch.save's legacy format: five pickles (magic number, protocol,
    # system info, the object, the storage keys), then the storages' bytes.
    size = stream_size(stream)
    stream.seek(0)
    scan = _PickleScan(path)
    for _ in range(5):
        position = stream.tell()
        if position >= size:
            break
        scan.scan(stream, size - position)


def _torch_failure(stream: IO[bytes], error: Exception) -> str:
    """Words for why torch.load could not read a file."""
    if "TorchScript" in str(error):
        return "is a TorchScript archive, which is not read (it holds code); save the state_dict() instead"
    if zipfile.is_zipfile(stream):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            names = []
        if names and not any(name.endswith("data.pkl") for name in names):
            return "is a zip archive but not a PyTorch checkpoint"
    else:
        stream.seek(0)
        if stream.read(2) == b"PK":
            # Starts like a zip but has no readable central directory: cut short.
            return "is truncated or corrupt (an incomplete zip archive)"
    return f"is truncated or corrupt ({type(error).__name__}: {first_line(error)})"
