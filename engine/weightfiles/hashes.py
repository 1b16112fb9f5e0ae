"""A weights file's SHA-256, computed once per process for each (path, size, modification time)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

from engine import files
from engine.weightfiles.limits import open_weights_file

_lock = threading.Lock()
_hash_cache: dict[tuple[str, int, int], str] = {}


def stat_key(path: Path) -> tuple[str, int, int]:
    """What tells one version of a file from another: its resolved path, size and mtime."""
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def stream_key(stream: IO[bytes], path: Path) -> tuple[str, int, int]:
    """``stat_key`` of the file actually open, which is the one read, rather than whatever the
    name points to by now."""
    st = os.fstat(stream.fileno())
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def stream_sha256(stream: IO[bytes], path: Path) -> str:
    """SHA-256 of the whole open file, remembered per (path, size, mtime)."""
    key = stream_key(stream, path)
    with _lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    stream.seek(0)
    digest = files.file_sha256(stream)
    with _lock:
        _hash_cache[key] = digest
    return digest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a weights file, hex; remembered per (path, size, mtime) for the process.

    Only a regular file within ``WEIGHTS_FILE_LIMIT`` is read; anything else
    is a one-line ``WeightsError``.
    """
    path = Path(path)
    with open_weights_file(path) as stream:
        return stream_sha256(stream, path)


def forget() -> None:
    """Forget every hash (tests; after replacing a file in place)."""
    with _lock:
        _hash_cache.clear()
