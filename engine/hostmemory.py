"""Host memory: how much is available, and keeping freed memory for the next iteration (glibc).

glibc hands every large block (above its mmap threshold, at most 32 MiB) straight back to the kernel
when it is freed, and the kernel zeroes the pages again when the next allocation touches them. A
CPU iteration frees and re-allocates all of VGG-19's activations, gigabytes at print sizes, so a
run spends a good part of its system time zeroing pages. Measured at 1024 px (tubingen /
starry_night, L-BFGS, 2-core EPYC): 9.8 million page faults and 20.6 s of system time over six
iterations, 19.3 s per iteration; with freed blocks kept in the heap, 0.8 million faults, 1.4 s and
18.0 s per iteration (7 % faster). The price is fragmentation: the peak resident size grew from
2768 to 3378 MiB (+22 %). So a run asks for it only when the memory plan leaves room for that price
(``REUSE_PEAK_FACTOR``), and the memory goes back to the system when the level ends.

Elsewhere (macOS, Windows, musl) this does nothing: their allocators behave differently and the
measurement was not made there.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# Measured peak with reuse / peak without, with margin (1.22 at 1024 px).
REUSE_PEAK_FACTOR = 1.3

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Larger than any tensor a run allocates: nothing is mmap'ed, so nothing is unmapped on free.
_KEEP_THRESHOLD = 2**30
_KEEP_TRIM = 2**31 - 1
# What glibc's dynamic threshold settles at on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); trim follows
# it at twice that, as glibc does when it adjusts the threshold itself.
_DEFAULT_THRESHOLD = 32 * 2**20
_DEFAULT_TRIM = 2 * _DEFAULT_THRESHOLD


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Any | None = _glibc()


def available() -> bool:
    """Whether this process's allocator can be told to keep freed memory."""
    return _LIBC is not None


@contextmanager
def reuse_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Inside, freed host blocks stay in the heap for the next allocation; yields whether that
    is in effect. On leaving, glibc's usual thresholds come back and the kept memory is released."""
    libc = _LIBC
    if not enabled or libc is None:
        yield False
        return
    if not (libc.mallopt(M_MMAP_THRESHOLD, _KEEP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, _KEEP_TRIM)):
        log.info("mallopt refused; host memory is not kept between iterations")
        yield False
        return
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, _DEFAULT_TRIM)
        libc.malloc_trim(0)


def host_available_bytes() -> int:
    """Memory the operating system says is available to a new allocation, in bytes."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
