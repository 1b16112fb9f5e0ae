"""Files on disk: reading what a stranger may hand us, and publishing what we make.

Everything that opens a path a user (or a recipe, or a drag) supplied goes through
``read_regular_file`` / ``open_regular_file``: only regular files are read, never a FIFO (which
would block forever), a device (``/dev/zero`` never ends) or a folder, and never more bytes than
the caller's limit. Opening uses ``O_NONBLOCK`` so even the open of a FIFO returns at once.

Everything Painterly writes goes through ``atomic_write``: a temporary file in the target folder,
fsynced, then linked or renamed into place, so a crash, a full disk or SIGKILL never leaves a
half-written file or destroys the one that was there. Temporary files carry the writer's process
id in their name, so the next save into the same folder can tell a dead writer's leftovers from
a live writer's work in progress, and removes the former.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from engine.errors import InputError, OutputExistsError

log = logging.getLogger(__name__)

TEMP_PREFIX = ".painterly-"
# ".painterly-<pid>-<random>[suffix]": what ``atomic_write`` creates and ``remove_stale_temporaries``
# may delete. Anything else in the folder, whatever its name, is never touched.
_TEMP_NAME = re.compile(r"\.painterly-(\d{1,10})-[A-Za-z0-9_]{4,16}(\.[A-Za-z0-9]{1,8})?\Z")
# What versions before the pid was in the name left: tempfile's 8 random characters. Their writer
# cannot be known, so only their age makes them stale.
_LEGACY_TEMP_NAME = re.compile(r"\.painterly-[a-z0-9_]{8}(\.[A-Za-z0-9]{1,8})?\Z")
# A temporary file whose writer is alive is left alone unless it is this old: a pid can be reused
# by an unrelated process, and no save takes a day.
_STALE_AGE = 24 * 3600.0

# Recipes, sidecars and other small text files: nothing we write comes close.
TEXT_FILE_LIMIT = 64 << 20


def describe_os_error(error: OSError) -> str:
    """The short reason of an OS error (``Permission denied``), without the path."""
    return error.strerror or str(error) or type(error).__name__


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def _open_error(error: OSError, path: Path) -> InputError:
    if isinstance(error, FileNotFoundError):
        return InputError("file not found", path)
    if isinstance(error, PermissionError):
        return InputError("cannot read the file: permission denied", path)
    if isinstance(error, IsADirectoryError):
        return InputError("is a folder, not a file", path)
    if error.errno == errno.ENAMETOOLONG:
        return InputError("the file name is too long", path)
    if error.errno == errno.ELOOP:
        return InputError("cannot read the file: too many levels of symbolic links", path)
    return InputError(f"cannot read the file: {describe_os_error(error)}", path)


@contextlib.contextmanager
def open_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> Iterator[BinaryIO]:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes.

    Any problem is an ``InputError`` naming the file: missing, unreadable, a folder, a FIFO, a
    device, or too large (``what`` names the kind of file in that message).
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise _open_error(error, path) from None
    except ValueError:  # an embedded NUL byte
        raise InputError("the file name contains a NUL character", path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(_kind_of(info.st_mode), path)
        if info.st_size > limit:
            raise InputError(
                f"the {what} is too large ({_size_text(info.st_size)}; the limit is {_size_text(limit)})",
                path,
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def read_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> bytes:
    """All bytes of a regular file of at most ``limit`` bytes (see ``open_regular_file``)."""
    path = Path(path)
    with open_regular_file(path, limit=limit, what=what) as stream:
        try:
            # One byte more than the file's size, not the limit: read() reserves what it is asked
            # for up front (a 2 GiB reservation for a 1 KB file fails under a memory cap). A file
            # that grows while we read it is still caught at the limit.
            size = os.fstat(stream.fileno()).st_size
            data = stream.read(min(limit, size) + 1)
            if len(data) > size:
                data += stream.read(limit + 1 - len(data))
        except OSError as error:
            raise _open_error(error, path) from None
    if len(data) > limit:
        raise InputError(f"the {what} is too large (it grew past {_size_text(limit)} while read)", path)
    return data


def check_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> None:
    """Raise the ``InputError`` that ``open_regular_file`` would, without reading anything."""
    with open_regular_file(path, limit=limit, what=what):
        pass


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def file_sha256(stream: IO[bytes]) -> str:
    """SHA-256 (hex) of an open binary file, read from its current position."""
    return hashlib.file_digest(stream, "sha256").hexdigest()


def safe_exists(path: Path) -> bool:
    """Whether anything (a dangling symlink included) is at ``path``; an unusable name is not there."""
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: equal once resolved, or the same inode (hard links)."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError, ValueError):
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the folder's filesystem allows (255 where it cannot say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


# -- writing ---------------------------------------------------------------------------------------


@functools.cache
def _default_file_mode() -> int:
    """rw for everyone minus the umask, as a plain open() would give (temp files start at 0600)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool) -> None:
    """Write through a temporary file in the same folder, then move it onto ``path``.

    Without ``overwrite`` an existing name is refused atomically (``OutputExistsError``). On any
    failure the temporary file is removed and whatever was at ``path`` is untouched; encoder and
    disk errors become one-line ``InputError``s. ``KeyboardInterrupt`` and the like pass through
    after the same clean-up.
    """
    remove_stale_temporaries(path.parent)
    try:
        tmp = tempfile.NamedTemporaryFile(
            delete=False, dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=_temp_suffix(path)
        )
    except OSError as exc:
        reason = describe_os_error(exc)
        raise InputError(f"cannot write to the folder {path.parent}: {reason}", path) from None
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        if os.name != "nt":
            # Temporary files start private (0600); the result gets the permissions a plain save would.
            mode = path.stat().st_mode & 0o7777 if overwrite and path.is_file() else _default_file_mode()
            os.chmod(tmp_path, mode)
        _publish(tmp_path, path, overwrite=overwrite)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, InputError) or not isinstance(exc, Exception) or isinstance(exc, MemoryError):
            raise
        log.debug("writing %s failed", path, exc_info=True)
        reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__
        raise InputError(f"could not save the file: {reason}", path) from None
    _fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True) -> None:
    payload = text.encode("utf-8")
    atomic_write(path, lambda stream: stream.write(payload), overwrite=overwrite)


def _temp_suffix(path: Path) -> str:
    # Keeps the extension (some encoders look at it) but never a long or odd one.
    suffix = path.suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


def _publish(tmp_path: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp_path, path)
        return
    try:
        # link() refuses an existing name atomically, unlike replace().
        os.link(tmp_path, path)
    except FileExistsError:
        raise OutputExistsError("already exists; pass --overwrite to replace it", path) from None
    except OSError:
        # No hard links here (FAT, some network shares): check, then rename.
        if safe_exists(path):
            raise OutputExistsError("already exists; pass --overwrite to replace it", path) from None
        os.replace(tmp_path, path)
        return
    tmp_path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or we cannot tell: leave its files alone
    return True


def stale_temporaries(folder: Path, *, now: float | None = None) -> list[Path]:
    """Temporary files a killed save left in ``folder``: ours by name, regular, and their writer gone."""
    now = time.time() if now is None else now
    found = []
    try:
        entries: Iterable[os.DirEntry[str]] = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None and _LEGACY_TEMP_NAME.match(entry.name) is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            continue
        young = now - info.st_mtime < _STALE_AGE
        if young and (match is None or _process_alive(int(match.group(1)))):
            continue
        found.append(Path(entry.path))
    return found


def remove_stale_temporaries(folder: Path) -> None:
    for leftover in stale_temporaries(folder):
        try:
            leftover.unlink()
            log.info("removed %s, left by a save that was killed", leftover)
        except OSError as error:
            log.debug("could not remove %s: %s", leftover, error)
