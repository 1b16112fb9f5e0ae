"""A session as one file an artist can move to another computer: ``NAME.painterly``, a ZIP archive.

    session.json          the manifest (ui.session.manifest), recipes with file names only
    inputs/<sha256>.<ext> the photo, the paintings and every input a result's recipe names
    results/<n>.png       History's pictures (PNG, each with its recipe, names only)
    thumbnails/<n>.png    their thumbnails

Opening one is reading a stranger's file (``read_session``): only a regular file of bounded size is
opened; every member must have one of the names above (no folders of its own, no "..", no absolute
path, no link: nothing is written anywhere but the chosen folder, and only under those names); the
declared sizes are checked against per-file and total limits and against their compressed sizes (a
zip bomb declares gigabytes in a few kilobytes) before anything is inflated, and the bytes copied are
counted as they come; an input's bytes must hash to the SHA-256 in its name. Any problem is one
``InputError`` line naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from engine.errors import InputError
from engine.files import atomic_write, open_regular_file
from engine.imageio import IMAGE_FILE_LIMIT
from ui.session.manifest import INPUTS, MANIFEST_NAME, MEMBER_NAME, Manifest, parse_manifest

log = logging.getLogger(__name__)

SUFFIX = ".painterly"
FILTER = "Painterly sessions (*.painterly);;All files (*)"
# The session file itself, and all it may unpack to: far above any real session (forty 4096 px
# results are about 1.5 GiB as PNGs), far below what would fill a disk by surprise.
ARCHIVE_LIMIT = 16 << 30
UNPACKED_LIMIT = 16 << 30
MANIFEST_LIMIT = 16 << 20
MEMBER_COUNT_LIMIT = 25_000
# PNG and JPEG do not compress further; only the manifest's JSON shrinks (about 5:1 measured). A
# member that claims to inflate by more than this is a bomb, not a picture.
RATIO_LIMIT = 50
RATIO_FLOOR = 1 << 20  # below this a high ratio is harmless (a tiny manifest of repeated text)
FOLDERS = ("inputs/", "results/", "thumbnails/")
CHUNK = 1 << 20


def write_session(path: Path, manifest_json: str, members: dict[str, Path], *, overwrite: bool) -> Path:
    """Write ``members`` (name in the archive -> file on disk) and the manifest, atomically."""

    def write(stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, "w", allowZip64=True) as archive:
            archive.writestr(MANIFEST_NAME, manifest_json, compress_type=zipfile.ZIP_DEFLATED)
            for name, source in sorted(members.items()):
                # Pictures are compressed already: stored as they are, copied in one pass.
                archive.write(source, name, compress_type=zipfile.ZIP_STORED)

    atomic_write(path, write, overwrite=overwrite)
    return path


def read_session(path: Path, folder: Path, *, limit: int = UNPACKED_LIMIT) -> Manifest:
    """Check the session file at ``path`` and unpack what its manifest names into ``folder``."""

    def bad(problem: str) -> InputError:
        return InputError(f"not a usable Painterly session: {problem}", path)

    with open_regular_file(path, limit=ARCHIVE_LIMIT, what="session file") as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            raise bad("it is not a ZIP archive (a .painterly file is one)") from None
        with archive:
            infos = archive.infolist()
            if len(infos) > MEMBER_COUNT_LIMIT:
                raise bad(f"it holds {len(infos):,} files; a session has at most {MEMBER_COUNT_LIMIT:,}")
            members = _checked_members(infos, limit, bad)
            if MANIFEST_NAME not in members:
                raise bad(f"it has no {MANIFEST_NAME}")
            manifest = parse_manifest(
                _read_member(archive, members[MANIFEST_NAME], MANIFEST_LIMIT, bad), path
            )
            for name in dict.fromkeys(manifest.files()):
                if name not in members:
                    raise bad(f"its manifest names {name}, which it does not contain")
                _unpack(archive, members[name], folder / name, bad)
    return manifest


def _checked_members(
    infos: list[zipfile.ZipInfo], limit: int, bad: Callable[[str], InputError]
) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        shown = name if len(name) <= 80 and name.isprintable() else repr(name[:80])
        if info.is_dir() and name in FOLDERS:
            continue
        if name != MANIFEST_NAME and not MEMBER_NAME.match(name):
            # Covers "../x", "/etc/x", "C:\\x", "inputs/../../x", links and folders of its own.
            raise bad(f"it holds {shown}, which is not a name a session uses")
        if name in members:
            raise bad(f"it holds {shown} twice")
        if info.flag_bits & 0x1:
            raise bad(f"{shown} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise bad(f"{shown} is compressed in a way Painterly does not read")
        size_limit = MANIFEST_LIMIT if name == MANIFEST_NAME else IMAGE_FILE_LIMIT
        if info.file_size > size_limit:
            raise bad(f"{shown} would unpack to {info.file_size:,} bytes (the limit is {size_limit:,})")
        if info.file_size > RATIO_FLOOR and info.file_size > RATIO_LIMIT * max(1, info.compress_size):
            raise bad(
                f"{shown} would inflate {info.file_size // max(1, info.compress_size):,} times "
                "(a zip bomb, not a session)"
            )
        total += info.file_size
        if total > limit:
            raise bad(f"it would unpack to more than {limit >> 30} GiB")
        members[name] = info
    return members


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, bad: Callable[[str], InputError]
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > min(limit, info.file_size):
                    raise bad(f"{info.filename} is larger than it says")
                chunks.append(chunk)
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as error:
        raise bad(f"{info.filename} is damaged ({type(error).__name__})") from None
    return b"".join(chunks)


def _unpack(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, bad: Callable[[str], InputError]
) -> None:
    """Copy one member to ``target`` in pieces, counting; an input must match its SHA-256 name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0

    def write(out: IO[bytes]) -> None:
        nonlocal size
        try:
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    size += len(chunk)
                    if size > info.file_size:
                        raise bad(f"{info.filename} is larger than it says")
                    digest.update(chunk)
                    out.write(chunk)
        except InputError:
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as error:
            raise bad(f"{info.filename} is damaged ({type(error).__name__})") from None
        if info.filename.startswith(f"{INPUTS}/") and not Path(info.filename).name.startswith(
            digest.hexdigest()
        ):
            raise bad(f"{info.filename} does not match its fingerprint (the file was altered)")

    atomic_write(target, write, overwrite=True)
    log.debug("unpacked %s (%d bytes)", info.filename, size)
