"""The session kept on disk, in the app data folder: ``session.json`` and the files it names.

    session/session.json          the manifest (ui.session.manifest): photo, styles, parameters,
                                  History's entries with their full recipes
    session/inputs/<sha256>.<ext> a copy of every photo and painting in use or in a result's recipe
    session/results/<n>.png       each entry's picture, PNG with a names-only recipe
    session/thumbnails/<n>.png    History's thumbnail of each entry

Every write goes through one background thread in order (a 1024 px PNG takes about half a second
to encode on a 2-core CPU), each file atomically (engine.files / engine.results), and the manifest is
written after the files it names, so a crash at any moment leaves a session that restores.
Without a writable data folder the store is not ``persistent`` and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from engine.errors import InputError
from engine.files import (
    TEXT_FILE_LIMIT,
    atomic_write,
    atomic_write_text,
    describe_os_error,
    read_regular_file,
)
from engine.imageio import IMAGE_FILE_LIMIT
from engine.recipe import Embed
from engine.records import Finished
from engine.results import OutputSpec, write_result
from ui.qtutil import qimage_png_bytes, shrink
from ui.session.manifest import (
    INPUTS,
    MANIFEST_NAME,
    RESULTS,
    THUMBNAILS,
    EntryRecord,
    Manifest,
    StoredInput,
    parse_manifest,
)

log = logging.getLogger(__name__)

# History's thumbnails are 96 x 72 logical pixels; kept at twice that for high-DPI screens.
THUMBNAIL_EDGE = 192
SHA256 = re.compile(r"[0-9a-f]{64}")
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class InputFile:
    """An input as the window holds it: the file the engine reads, and what the artist sees."""

    path: Path
    name: str
    blend: float = 100.0
    # Whether ``path`` is the artist's own file (recorded as the original) or Painterly's copy
    # of pasted or dragged data.
    own_file: bool = True


class SessionStore:
    """The files of the kept session; every method returns at once and the writing happens in order."""

    def __init__(self, folder: Path, persistent: bool = True) -> None:
        self.folder = Path(folder)
        self.persistent = persistent
        self.problem = ""  # the last write that failed, for the window to say
        self.on_stored: Callable[[int, int], None] | None = None  # (entry number, bytes used); worker thread
        self.on_failed: Callable[[str], None] | None = None  # a write failed; worker thread
        self._executor: ThreadPoolExecutor | None = None
        # sha256 of each file copied (or known to be copied), by (path, size, mtime): no rehashing.
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------------
    def path(self, member: str) -> Path:
        return self.folder / member

    def load(self) -> Manifest | None:
        """The kept session, or None when there is none (or it cannot be read: logged, never raised)."""
        manifest = self.folder / MANIFEST_NAME
        if not self.persistent or not manifest.is_file():
            return None
        try:
            return parse_manifest(
                read_regular_file(manifest, limit=TEXT_FILE_LIMIT, what="session"), manifest
            )
        except InputError as error:
            log.warning("the kept session cannot be restored: %s", error)
            self.problem = str(error)
            return None

    def input_file(self, sha256: str) -> Path | None:
        """The kept copy of the input with this fingerprint, if there is one."""
        return input_in(self.folder, sha256)

    def usage(self) -> int:
        """Bytes the session's files take on disk."""
        total = 0
        for root, _dirs, names in os.walk(self.folder):
            for name in names:
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:
                    continue
        return total

    # -- writing ------------------------------------------------------------------------------
    def _submit(self, work: Callable[[], Any], what: str) -> Future[Any] | None:
        if not self.persistent:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="painterly-session")

        def run() -> Any:
            try:
                return work()
            except (InputError, OSError, ValueError, MemoryError) as error:
                text = describe_os_error(error) if isinstance(error, OSError) else str(error)
                self.problem = f"{what}: {text}"
                log.warning("session: could not %s: %s", what, text)
                if self.on_failed is not None:
                    self.on_failed(self.problem)
                return None

        return self._executor.submit(run)

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until everything asked so far is written (at quit and in tests)."""
        future = self._submit(lambda: None, "finish writing")
        if future is None:
            return True
        try:
            future.result(timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Finish the writes asked so far and stop the writer thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def store_entry(self, record: EntryRecord, finished: Finished, picture: QImage) -> None:
        """Write an entry's picture and its thumbnail (the manifest naming them is written after).

        The thumbnail is scaled and encoded here too (QImage is safe off the GUI thread): about
        35 ms of the GUI thread's time per 1024 px entry, measured, given to the writer instead.
        """

        def work() -> None:
            for folder in (RESULTS, THUMBNAILS):
                (self.folder / folder).mkdir(parents=True, exist_ok=True)
            # 8 bits per channel: what the screen shows and an 8-bit export writes. (16 would keep
            # more for a 16-bit export, but Pillow reads a 16-bit RGB PNG back as 8 bits, and it
            # takes 1.3 s instead of 0.45 s to write and 2.6 times the disk at 1024 px, measured.)
            # The file's own recipe names the inputs without folders; the full one is in the manifest.
            spec = OutputSpec(self.path(record.image), overwrite=True, embed=Embed.NAMES)
            write_result(finished, spec)
            thumbnail_png = qimage_png_bytes(shrink(picture, THUMBNAIL_EDGE))
            atomic_write(self.path(record.thumbnail), lambda fp: fp.write(thumbnail_png), overwrite=True)
            if self.on_stored is not None:
                self.on_stored(record.number, self.usage())

        self._submit(work, f"keep result #{record.number}")

    def remove_entry(self, record: EntryRecord) -> None:
        def work() -> None:
            for member in (record.image, record.thumbnail):
                self.path(member).unlink(missing_ok=True)

        self._submit(work, f"delete result #{record.number}")

    def write_manifest(
        self,
        photo: InputFile | None,
        styles: list[InputFile],
        params: dict[str, Any] | None,
        entries: list[EntryRecord],
        done: Callable[[Manifest], None] | None = None,
    ) -> None:
        """Copy the inputs not kept yet, then write the manifest, then remove what nothing names."""
        entries = [EntryRecord(e.number, e.created, e.recipe, e.label, e.exported) for e in entries]

        def work() -> None:
            stored_photo = self._keep_input(photo) if photo is not None else None
            stored_styles = [
                kept for kept in (self._keep_input(style) for style in styles) if kept is not None
            ]
            manifest = Manifest(stored_photo, stored_styles, None, entries)
            data = manifest.to_json()
            data["params"] = params
            self.folder.mkdir(parents=True, exist_ok=True)
            # ASCII: a file name that is not UTF-8 (kept as escapes) survives the round trip exactly.
            text = json.dumps(data, ensure_ascii=True, default=str)
            atomic_write_text(self.folder / MANIFEST_NAME, text)
            self._remove_unnamed(manifest)
            if done is not None:
                done(manifest)

        self._submit(work, "keep the session")

    def discard(self) -> None:
        """Forget the kept session: every file of it goes."""

        def work() -> None:
            if self.folder.is_dir():
                shutil.rmtree(self.folder)

        self._submit(work, "discard the session")

    # -- in the writer thread -------------------------------------------------------------------
    def _keep_input(self, source: InputFile) -> StoredInput | None:
        """A copy of the input in inputs/, named by the SHA-256 of its bytes."""
        try:
            info = source.path.stat()
        except OSError as error:
            log.warning("session: the input %s is gone (%s); not kept", source.path, describe_os_error(error))
            return None
        key = (str(source.path), info.st_size, info.st_mtime_ns)
        with self._lock:
            sha256 = self._hashes.get(key)
        suffix = source.path.suffix.lower() if source.path.suffix.lower() in INPUT_SUFFIXES else ".png"
        if sha256 is None or self.input_file(sha256) is None:
            data = read_regular_file(source.path, limit=IMAGE_FILE_LIMIT, what="image")
            sha256 = hashlib.sha256(data).hexdigest()
            if self.input_file(sha256) is None:
                (self.folder / INPUTS).mkdir(parents=True, exist_ok=True)
                atomic_write(
                    self.folder / INPUTS / f"{sha256}{suffix}", lambda fp: fp.write(data), overwrite=True
                )
            with self._lock:
                self._hashes[key] = sha256
        kept = self.input_file(sha256)
        if kept is None:
            return None
        return StoredInput(
            name=source.name,
            file=f"{INPUTS}/{kept.name}",
            sha256=sha256,
            original=str(source.path.absolute()) if source.own_file else "",
            blend=source.blend,
        )

    def _remove_unnamed(self, manifest: Manifest) -> None:
        """Delete files no entry and no input of the manifest names (left by deletions or a crash)."""
        named = set(manifest.files())
        # An entry's inputs are kept as long as the entry is: its recipe names them by fingerprint.
        for entry in manifest.entries:
            named.update(
                f"{INPUTS}/{path.name}" for path in map(self.input_file, recipe_hashes(entry.recipe)) if path
            )
        for folder in (INPUTS, RESULTS, THUMBNAILS):
            directory = self.folder / folder
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if f"{folder}/{path.name}" not in named and path.is_file() and not path.name.startswith("."):
                    try:
                        path.unlink()
                    except OSError as error:
                        log.warning("session: could not remove %s: %s", path, describe_os_error(error))


def input_in(folder: Path, sha256: str) -> Path | None:
    """The copy of the input with this fingerprint in a session's folder, if there is one."""
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
        return None  # a recipe's text never becomes a path
    for suffix in INPUT_SUFFIXES:
        candidate = folder / INPUTS / f"{sha256}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def recipe_hashes(recipe: dict[str, Any]) -> list[str]:
    """The SHA-256 of each input a recipe records."""
    hashes: list[str] = []
    inputs = recipe.get("inputs")
    if not isinstance(inputs, dict):
        return hashes
    for value in inputs.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("sha256"), str):
                hashes.append(item["sha256"])
    return hashes
