"""The session's manifest: what a kept session (or a .painterly file) holds, as plain data.

The same JSON describes the session kept in the app data folder and the one inside a session file,
and both are read as hostile input: ``parse_manifest`` takes any bytes and returns a ``Manifest``
or raises one ``InputError`` line. Every file name it carries must match ``MEMBER_NAME`` (a fixed
folder and a plain name), so nothing read from it can point outside the session's folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.metadata import parse_recipe
from engine.params import StyleParams

FORMAT = "painterly-session"
VERSION = 1
MANIFEST_NAME = "session.json"
# Where each kind of file lives in a session, and the only names a manifest may use:
# inputs/<sha256><suffix>, results/<number>.png, thumbnails/<number>.png.
INPUTS, RESULTS, THUMBNAILS = "inputs", "results", "thumbnails"
MEMBER_NAME = re.compile(
    r"\A(?:inputs/[0-9a-f]{64}\.(?:png|jpg|jpeg|webp|tif|tiff|bmp)"
    r"|(?:results|thumbnails)/[0-9]{1,9}\.png)\Z"
)
# Beyond these a manifest is not one Painterly wrote.
ENTRY_LIMIT = 10_000
STYLE_LIMIT = 100
NAME_LIMIT = 1000


@dataclass(frozen=True)
class StoredInput:
    """The photo or a painting: shown as ``name``, kept as ``file``, read from ``original``."""

    name: str
    file: str  # a MEMBER_NAME under inputs/
    sha256: str
    original: str = ""  # the path it was imported from ("" when unknown or not recorded)
    blend: float = 100.0  # a style's blend slider

    def to_json(self, *, with_original: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "file": self.file,
            "sha256": self.sha256,
            "blend": self.blend,
        }
        if with_original and self.original:
            data["original"] = self.original
        return data


@dataclass
class EntryRecord:
    """One History entry on disk: its picture (a PNG), thumbnail and full recipe."""

    number: int
    created: float
    recipe: dict[str, Any]
    label: str = ""
    exported: bool = False

    @property
    def image(self) -> str:
        return f"{RESULTS}/{self.number}.png"

    @property
    def thumbnail(self) -> str:
        return f"{THUMBNAILS}/{self.number}.png"

    def to_json(self, recipe: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "number": self.number,
            "created": self.created,
            "label": self.label,
            "exported": self.exported,
            "recipe": self.recipe if recipe is None else recipe,
        }


@dataclass
class Manifest:
    photo: StoredInput | None = None
    styles: list[StoredInput] = field(default_factory=list)
    params: StyleParams | None = None
    entries: list[EntryRecord] = field(default_factory=list)

    def to_json(self, *, with_originals: bool = True, recipe: Any = None) -> dict[str, Any]:
        """The manifest as JSON data; ``recipe(record)`` may rewrite each entry's recipe."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "photo": self.photo.to_json(with_original=with_originals) if self.photo else None,
            "styles": [style.to_json(with_original=with_originals) for style in self.styles],
            "params": self.params.to_dict() if self.params is not None else None,
            "entries": [entry.to_json(recipe(entry) if recipe else None) for entry in self.entries],
        }

    def files(self) -> list[str]:
        """Every member file the manifest refers to (inputs, results, thumbnails)."""
        names = [item.file for item in (self.photo, *self.styles) if item is not None]
        for entry in self.entries:
            names += [entry.image, entry.thumbnail]
        return names


def parse_manifest(data: bytes, source: str | Path) -> Manifest:
    """The manifest in ``data``; anything else is one ``InputError`` naming ``source``."""

    def bad(problem: str) -> InputError:
        return InputError(f"not a usable Painterly session: {problem}", source)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("its manifest is not UTF-8 text") from None
    try:
        raw = parse_recipe(text, source)
    except InputError as error:
        problem = str(error).split("the recipe is damaged: ", 1)[-1]
        raise bad(f"its manifest is damaged: {problem}") from None
    if raw.get("format") != FORMAT:
        raise bad("its manifest does not say it is one")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("its manifest has no version")
    if version > VERSION:
        raise bad(f"it was written by a newer Painterly (format {version}; this one reads {VERSION})")
    photo = _input(raw.get("photo"), "the photo", bad) if raw.get("photo") is not None else None
    styles_raw = raw.get("styles", [])
    if not isinstance(styles_raw, list) or len(styles_raw) > STYLE_LIMIT:
        raise bad(f"its styles must be a list of at most {STYLE_LIMIT}")
    styles = [_input(item, f"style {index + 1}", bad) for index, item in enumerate(styles_raw)]
    params = None
    if raw.get("params") is not None:
        if not isinstance(raw["params"], dict):
            raise bad("its parameters are not an object")
        try:
            known = {
                name: value
                for name, value in raw["params"].items()
                if name in StyleParams.__dataclass_fields__
            }
            params = StyleParams.from_dict(known)
        except (InputError, TypeError, ValueError, ArithmeticError) as error:
            raise bad(f"its parameters are not valid ({error})") from None
    entries_raw = raw.get("entries", [])
    if not isinstance(entries_raw, list) or len(entries_raw) > ENTRY_LIMIT:
        raise bad(f"its results must be a list of at most {ENTRY_LIMIT}")
    entries: list[EntryRecord] = []
    seen: set[int] = set()
    for index, item in enumerate(entries_raw):
        entry = _entry(item, index, bad)
        if entry.number in seen:
            raise bad(f"result #{entry.number} appears twice")
        seen.add(entry.number)
        entries.append(entry)
    return Manifest(photo, styles, params, entries)


def _text(value: Any, what: str, bad: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or len(value) > NAME_LIMIT:
        raise bad(f"{what} is not a name")
    return value


def _input(value: Any, what: str, bad: Any) -> StoredInput:
    if not isinstance(value, dict):
        raise bad(f"{what} is not described")
    file = _text(value.get("file"), f"{what}'s file", bad)
    if not MEMBER_NAME.match(file) or not file.startswith(f"{INPUTS}/"):
        raise bad(f"{what}'s file name is not one Painterly writes")
    sha256 = _text(value.get("sha256"), f"{what}'s fingerprint", bad)
    if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not file.startswith(f"{INPUTS}/{sha256}."):
        raise bad(f"{what}'s fingerprint does not match its file name")
    blend = value.get("blend", 100.0)
    if (
        isinstance(blend, bool)
        or not isinstance(blend, (int, float))
        or not math.isfinite(blend)
        or blend < 0
    ):
        raise bad(f"{what}'s blend is not a number of 0 or more")
    original = value.get("original", "")
    original = _text(original, f"{what}'s original path", bad, empty=True) if original else ""
    return StoredInput(
        name=_text(value.get("name"), f"{what}'s name", bad),
        file=file,
        sha256=sha256,
        original=original,
        blend=float(min(blend, 1e6)),
    )


def _entry(value: Any, index: int, bad: Any) -> EntryRecord:
    what = f"result {index + 1}"
    if not isinstance(value, dict):
        raise bad(f"{what} is not described")
    number = value.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number < 10**9:
        raise bad(f"{what} has no number")
    created = value.get("created", 0.0)
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created):
        raise bad(f"{what} has no time")
    recipe = value.get("recipe")
    if not isinstance(recipe, dict):
        raise bad(f"{what} has no recipe")
    label = value.get("label", "")
    exported = value.get("exported", False)
    return EntryRecord(
        number=number,
        created=float(created),
        recipe=recipe,
        label=_text(label, f"{what}'s label", bad, empty=True)[:40] if label else "",
        exported=exported is True,
    )
