"""How much a weights file may make us read, and opening one within that.

Only regular files up to ``WEIGHTS_FILE_LIMIT`` are opened (never a FIFO or a
device), and every size a file declares (a zip entry, a MATLAB element, a
safetensors shape, a pickle's length) is checked against the limits here,
which are what a real VGG-19 could need, before anything is inflated or
allocated.  Every failure is a one-line ``WeightsError``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from engine import files
from engine.errors import InputError, WeightsError

# The largest file opened at all.  Real VGG-19 files are about 0.55 GB
# (torchvision's vgg19-dcbb9e9d.pth is 548 MB and MatConvNet's
# imagenet-vgg-verydeep-19.mat 535 MB, both with the classifier in float32);
# 2 GiB also admits the whole network in float64 (1.07 GiB), and refuses a
# stray disk image or video before a byte of it is read.
WEIGHTS_FILE_LIMIT = 2 << 30

# VGG-19 has 143,667,240 parameters, 20,024,384 of them in the 16 conv layers
# we use; its largest tensor is the first classifier layer, 4096 x 25088.
_VGG19_LARGEST_TENSOR = 4096 * 25088
# The most a file's contents may become once decoded: the tensors of a zip or
# safetensors file, the inflated data of a MATLAB file.  The whole network in
# float64 is 1.07 GiB (float32: 0.54 GiB); 1.5 GiB leaves a margin.  A 2-3 MB
# zip or MATLAB file of compressed zeros declares 3-4 GB, and is refused here
# before it is inflated.
DECODED_LIMIT = 3 << 29
# The largest single tensor (or zip entry): the first classifier layer in
# float64, 784 MiB.
TENSOR_BYTES_LIMIT = _VGG19_LARGEST_TENSOR * 8

# torch.save's zip of a whole VGG-19 state dict has 44 entries and a 2.7 KB
# central directory (measured); zipfile makes a Python object per entry.
ZIP_MAX_ENTRIES = 4096
ZIP_MAX_DIRECTORY = 1 << 20
# Operations in the pickles of one PyTorch file.  A VGG-19 state dict's
# pickle has 1,285 (the built-in legacy file's five pickles 1,763, measured);
# torch's weights-only unpickler is a Python loop that can make an object per
# one-byte operation (an empty list is 1 byte in the file and 64 in memory),
# so a 100 MB pickle could become gigabytes.  Scanning a million operations
# takes 0.2 s.
PICKLE_MAX_OPERATIONS = 1_000_000
# Bytes of those pickles: 3.4 KB for a VGG-19 state dict (measured).  Each
# string in a pickle is read whole at its declared length, and decoded again.
PICKLE_MAX_BYTES = 64 << 20
# A pickle's text operations (a global's module name) end at a newline; the
# unpickler reads a line of any length.
PICKLE_LINE_LIMIT = 1 << 16

# A safetensors header is JSON: 2.7 KB for a VGG-19 (measured), and JSON of
# empty objects grows 24 times when parsed (measured), so 4 MiB keeps the
# parsed header under about 100 MB.
SAFETENSORS_HEADER_LIMIT = 4 << 20
SAFETENSORS_MAX_TENSORS = 4096

# A MatConvNet VGG-19 holds a few thousand arrays (43 layer structs and their
# fields, 2 x 1000 class-name strings); each becomes a Python object.
MAT_MAX_ARRAYS = 250_000
# MatConvNet nests five deep (net, layers, layer, weights, array).
MAT_MAX_DEPTH = 32


def bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an error's text, cut to ``limit`` characters: the reason in a one-line message."""
    text = str(error).strip().splitlines()
    line = text[0].strip() if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _as_weights_error(error: InputError) -> WeightsError:
    """The same one-line message, as a WeightsError."""
    if isinstance(error, WeightsError):
        return error
    # The text is already one printable line with the path in front; making
    # it again leaves it unchanged.
    converted = WeightsError(str(error))
    converted.path = error.path
    return converted


@contextlib.contextmanager
def open_weights_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` open for reading if it is a regular file within ``WEIGHTS_FILE_LIMIT``.

    Missing, unreadable, a folder, a FIFO (whose open would block), a device
    (``/dev/zero`` never ends) or too large: a one-line ``WeightsError``, as is
    an ``OSError`` while the file is read.
    """
    try:
        with files.open_regular_file(path, limit=WEIGHTS_FILE_LIMIT, what="weights file") as stream:
            yield stream
    except InputError as error:
        raise _as_weights_error(error) from None
    except OSError as error:
        raise WeightsError(f"cannot read the file: {files.describe_os_error(error)}", path) from None


def stream_size(stream: IO[bytes]) -> int:
    return os.fstat(stream.fileno()).st_size
