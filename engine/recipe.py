"""The recipe: a JSON description of how an image was made.

Every saved result carries one (see engine.imageio): the job with all its
parameters, the inputs with their SHA-256 so a later reader can tell whether
they changed, the network weights, device, timing, final losses and the
versions of everything that affects the numbers.  ``job_from_recipe`` turns it
back into a ``StyleJob`` so a result can be re-made; ``format_recipe`` prints
it for ``painterly info FILE``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.metadata
import json
import logging
import math
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine import files
from engine.errors import InputError
from engine.params import StyleJob, StyleParams
from engine.records import Finished
from engine.text import printable

log = logging.getLogger(__name__)

RECIPE_VERSION = 1

# (distribution name, module name) of the packages whose versions go into a recipe.
_VERSIONED = (
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("pillow", "PIL"),
)
# Inputs are only hashed, a piece at a time, so any real image is admitted; what this refuses is
# a FIFO (which would block), a device (which never ends) or a folder.
_HASH_FILE_LIMIT = 4 << 30


class Embed(StrEnum):
    """What a saved picture tells about where its inputs live (the command line's ``--embed``)."""

    # The recipe with each input's file name and SHA-256, never a folder: a picture shared with
    # others does not reveal the user's name or folder layout (/home/anna/Clients/...).
    NAMES = "names"
    # The recipe with every input's absolute path: reopening it on this computer finds the inputs.
    PATHS = "paths"
    # No recipe at all (the ICC profile and print resolution are still written).
    NONE = "none"


# What a file made for people carries unless they choose otherwise (the window and the command line).
EMBED_DEFAULT = Embed.NAMES


def build_recipe(
    finished: Finished,
    *,
    inputs: Mapping[str | Path, str] | None = None,
    embed: Embed = Embed.PATHS,
) -> dict[str, Any]:
    """The recipe for a finished run.

    ``inputs`` maps input paths to the SHA-256 the engine computed when it
    loaded them (by default ``finished.extra["inputs"]``, where
    engine.stylize puts them); inputs missing from it are hashed from disk
    (or recorded without a hash if the file is gone).

    ``embed`` is ``Embed.PATHS`` (the default: Painterly's own copies, such as the autosave, must
    find their inputs again) or ``Embed.NAMES`` (file names only; see ``without_folders``).
    ``Embed.NONE`` means no recipe, so there is nothing to build.
    """
    if embed is Embed.NONE:
        raise ValueError("Embed.NONE writes no recipe; there is nothing to build")
    recipe = _full_recipe(finished, inputs)
    return without_folders(recipe) if embed is Embed.NAMES else recipe


def without_folders(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """``recipe`` with every input named by its file name alone, and no folder anywhere.

    The inputs keep their names and SHA-256 (so a reader can still tell which files were used
    and whether they changed); the job's paths become bare names, and any full path of an input
    quoted in a message is cut to its name. ``find_input`` looks for such inputs beside the result.
    """
    out = copy.deepcopy(dict(recipe))
    folders_of: dict[str, str] = {}

    def remember(path: Any) -> None:
        if isinstance(path, str) and path and path not in ("default", "torchvision"):
            name = _name_of(path)
            if name != path:
                folders_of[path] = name

    inputs = out.get("inputs")
    for entry in _input_entries(inputs):
        remember(entry.pop("path", None))
    job = out.get("job")
    if isinstance(job, dict):
        for key in ("content", "styles", "masks", "style_masks"):
            value = job.get(key)
            for item in value if isinstance(value, list) else [value]:
                remember(item)
        params = job.get("params")
        if isinstance(params, dict):
            remember(params.get("init_image"))
            remember(params.get("weights"))
    if not folders_of:
        return out
    # The inputs' folders too (with their separator), so a message about another file there, such
    # as a failed save beside the photo, loses its folder as well; never a bare root such as "/".
    for path in list(folders_of):
        folder = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[0]
        if folder.strip("/") and len(folder) < len(path):
            separator = path[len(folder)]
            folders_of.setdefault(folder + separator, "")
    # Longest first: "/a/b/photo.png" is cut before "/a/b/" could be.
    known = sorted(folders_of, key=len, reverse=True)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            if value in folders_of:
                return folders_of[value]
            for path in known:
                if path in value:
                    value = value.replace(path, folders_of[path])
            return value
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        return value

    for key in ("job", "message", "extra"):
        if key in out:
            out[key] = scrub(out[key])
    out["embed"] = Embed.NAMES.value
    return out


def _name_of(path: str) -> str:
    # A recipe written on Windows and read on Linux (or the reverse) still loses its folders.
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path


def _input_entries(inputs: Any) -> list[dict[str, Any]]:
    """Every input description ({"name", "path", "sha256"}) of a recipe's "inputs" section."""
    entries: list[dict[str, Any]] = []
    if not isinstance(inputs, dict):
        return entries
    for value in inputs.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                entries.append(item)
    return entries


def _full_recipe(finished: Finished, inputs: Mapping[str | Path, str] | None) -> dict[str, Any]:
    job = finished.job
    if inputs is None:
        from_run = finished.extra.get("inputs")
        inputs = from_run if isinstance(from_run, Mapping) else {}
    known = _Hashes(inputs)
    styles = []
    for style, blend in zip(job.styles, job.blend, strict=True):
        styles.append({**_describe(style, known), "blend": blend})
    described: dict[str, Any] = {"content": _describe(job.content, known), "styles": styles}
    if job.params.init_image:
        described["init_image"] = _describe(Path(job.params.init_image), known)
    if job.masks:
        described["masks"] = [_describe(mask, known) for mask in job.masks]
    if job.style_masks:
        described["style_masks"] = [None if m is None else _describe(m, known) for m in job.style_masks]

    height, width = finished.image.shape[:2]
    recipe: dict[str, Any] = {
        "painterly": painterly_version(),
        "recipe_version": RECIPE_VERSION,
        "job": job.to_dict(),
        "inputs": described,
        "output": {"width": int(width), "height": int(height), "alpha": finished.alpha is not None},
        "weights_id": finished.weights_id,
        "device": finished.device,
        "iterations": int(finished.iterations),
        "seconds": round(float(finished.seconds), 3),
        "reason": str(finished.reason),
        "losses": {str(name): _finite_or_none(value) for name, value in finished.losses.items()},
        "versions": library_versions(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if finished.message:
        recipe["message"] = finished.message
    # "inputs" is already in the recipe, hashed; anything not plain JSON (arrays, objects) is left out.
    extra = {str(k): v for k, v in finished.extra.items() if k != "inputs" and _is_plain_json(v)}
    if extra:
        recipe["extra"] = extra
    return recipe


def painterly_version() -> str:
    try:
        return importlib.metadata.version("painterly")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        engine = importlib.import_module("engine")
    except ImportError:
        return "unknown"
    return str(getattr(engine, "__version__", "unknown"))


def library_versions() -> dict[str, str]:
    """Versions of Python and the numerical libraries, without importing any that are not loaded yet."""
    versions = {"python": platform.python_version()}
    for dist, module_name in _VERSIONED:
        # A loaded module's own version is more telling (torch's says "+cu128" or "+cpu").
        module = sys.modules.get(module_name)
        version = getattr(module, "__version__", None) if module is not None else None
        if version is None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                version = "not installed"
        versions[dist] = str(version)
    return versions


class _Hashes:
    """Look up caller-supplied hashes by path as given or as resolved."""

    def __init__(self, hashes: Mapping[str | Path, str]) -> None:
        self._by_name = {str(Path(p)): h for p, h in hashes.items()}
        self._by_resolved: dict[str, str] | None = None

    def get(self, path: Path) -> str | None:
        found = self._by_name.get(str(path))
        if found is not None:
            return found
        if self._by_resolved is None:
            self._by_resolved = {_resolved(p): h for p, h in self._by_name.items()}
        return self._by_resolved.get(_resolved(str(path)))


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return path


def _describe(path: Path, known: _Hashes) -> dict[str, Any]:
    path = Path(path)
    sha256 = known.get(path) or _hash_file(path)
    return {"name": path.name, "path": str(path.absolute()), "sha256": sha256}


def _hash_file(path: Path) -> str | None:
    try:
        with files.open_regular_file(path, limit=_HASH_FILE_LIMIT, what="input") as stream:
            return files.file_sha256(stream)
    except (InputError, OSError):
        log.warning("%s: cannot read it to record its hash in the recipe", path)
        return None


def _finite_or_none(value: Any) -> float | None:
    # JSON has no NaN or infinity; a run stopped by a numerical error still gets a readable recipe.
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_plain_json(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    return False


def job_from_recipe(recipe: Mapping[str, Any], *, source: str | Path | None = None) -> StyleJob:
    """Rebuild the job a recipe describes; ``source`` names the file in error messages.

    Any recipe, whatever its shape (it may come from a stranger's file), gives a ``StyleJob`` or
    one ``InputError`` line.
    """

    def bad(problem: str) -> InputError:
        return InputError(f"the recipe is not valid: {_clip(problem)}", source)

    if not isinstance(recipe, Mapping):
        raise bad("it is not a JSON object")
    version = recipe.get("recipe_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > RECIPE_VERSION:
        log.warning(
            "recipe version %s is newer than this Painterly understands (%d); reading what it can",
            _shown(version, limit=20),
            RECIPE_VERSION,
        )
    job = recipe.get("job")
    if not isinstance(job, Mapping):
        raise bad("it has no 'job' section")
    content = job.get("content")
    if not isinstance(content, str) or not content:
        raise bad("the job names no content image")
    styles = job.get("styles")
    if isinstance(styles, str):
        styles = [styles]
    if not isinstance(styles, list) or not styles or not all(isinstance(s, str) and s for s in styles):
        raise bad("the job needs a list of style image paths")
    blend = job.get("blend", [])
    if not isinstance(blend, list):
        raise bad("the blend weights must be a list of numbers")
    params = job.get("params", {})
    if not isinstance(params, Mapping):
        raise bad("the job's parameters must be a JSON object")
    masks = job.get("masks", [])
    if not isinstance(masks, list) or not all(isinstance(m, str) and m for m in masks):
        raise bad("the masks must be a list of image paths")
    style_masks = job.get("style_masks", [])
    if not isinstance(style_masks, list) or not all(
        m is None or (isinstance(m, str) and m) for m in style_masks
    ):
        raise bad("the style masks must be a list of image paths or nulls")
    known = {f.name for f in dataclasses.fields(StyleParams)}
    unknown = [str(name) for name in params if name not in known]
    if unknown:
        # Logged here rather than by StyleParams.from_dict, with the names made inert and few:
        # they come from the file, and a log line is read on a terminal too.
        listed = ", ".join(_shown(name, limit=40) for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        log.warning("ignoring unknown parameters in recipe: %s%s", listed, more)
    try:
        return StyleJob(
            content=Path(content),
            styles=tuple(Path(s) for s in styles),
            params=StyleParams.from_dict({name: value for name, value in params.items() if name in known}),
            blend=tuple(blend),
            masks=tuple(Path(m) for m in masks),
            style_masks=tuple(None if m is None else Path(m) for m in style_masks),
        )
    except InputError as exc:
        raise bad(str(exc)) from None
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        # Wrongly shaped values (a number where a list of layers belongs, an integer too large for
        # a float, ...) fail inside the constructors.
        raise bad(str(exc) or type(exc).__name__) from None
    except RecursionError:
        raise bad("a value is nested too deeply") from None


# How much of one value ``format_recipe`` shows: a file path fits easily, while a hostile recipe's
# megabyte-long string does not flood the terminal.
_SHOWN_CHARS = 1000
# Parameter names are padded to line up; one long (hostile) name must not pad every line.
_NAME_WIDTH = 24


def find_input(
    recipe: Mapping[str, Any], kind: str, path: Path, index: int = 0, beside: Path | None = None
) -> Path | None:
    """Where an input of a recipe's job is now, or None.

    Tried in order: the job's path (when it has a folder, or no ``beside`` is given), the absolute
    path the recipe recorded, then the file of that name in ``beside`` (the folder of the result
    the recipe came from: a result saved with file names only, moved with its inputs).
    """
    path = Path(path)
    bare = path.parent == Path(".")
    candidates: list[Path] = []
    if not bare or beside is None:
        candidates.append(path)
    inputs = recipe.get("inputs") if isinstance(recipe.get("inputs"), Mapping) else {}
    entry = inputs.get(kind) if isinstance(inputs, Mapping) else None
    if isinstance(entry, list):
        entry = entry[index] if index < len(entry) else None
    recorded = entry.get("path") if isinstance(entry, Mapping) else None
    if isinstance(recorded, str) and recorded:
        candidates.append(Path(recorded))
    if beside is not None:
        candidates.append(Path(beside) / path.name)
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError):  # a name too long or with a NUL: a recipe is untrusted text
            continue
    return None


def recorded_input(
    recipe: Mapping[str, Any], kind: str, path: Path, index: int = 0, beside: Path | None = None
) -> Path:
    """An input of a recipe's job as a file that exists now (see ``find_input``).

    Raises one ``InputError`` naming the file when it is nowhere to be found.
    """
    found = find_input(recipe, kind, path, index, beside=beside)
    if found is not None:
        return found
    what, flag = _INPUT_KINDS.get(kind, ("input", ""))
    where = f" beside {printable(Path(beside))}" if beside is not None else ""
    instead = f"; put it there or name it with {flag}" if flag else ""
    raise InputError(
        f"the {what} this result was made from is not found{where} nor where its recipe says{instead}", path
    )


# A recipe's kinds of input: what to call each, and the command line's flag that names one instead.
_INPUT_KINDS = {
    "content": ("photo", "--content"),
    "styles": ("painting", "--style"),
    "masks": ("mask", "--mask"),
    "style_masks": ("style mask", "--style-mask"),
    "init_image": ("start image", "--init"),
}


def relocated_job(recipe: Mapping[str, Any], job: StyleJob, beside: Path | None) -> StyleJob:
    """``job`` with each photo and painting found now (``find_input``) in place of its recorded
    path; an input that is nowhere keeps its recorded path, for the caller to report."""
    content = find_input(recipe, "content", job.content, beside=beside) or job.content
    styles = tuple(
        find_input(recipe, "styles", style, index, beside) or style for index, style in enumerate(job.styles)
    )
    return dataclasses.replace(job, content=content, styles=styles)


def format_recipe(recipe: Mapping[str, Any]) -> str:
    """Human-readable text for ``painterly info FILE`` and the window.

    Tolerant of missing or oddly shaped entries. Everything taken from the recipe is shown through
    ``_shown``: control characters escaped (a recipe must not retitle the terminal, clear the
    screen or forge lines), long values cut short. Raises only ``InputError``.
    """
    if not isinstance(recipe, Mapping):
        raise InputError("the recipe is not valid: it is not a JSON object")
    try:
        return "\n".join(_recipe_lines(recipe))
    except (RecursionError, MemoryError):
        raise InputError("the recipe is too large or too deeply nested to show") from None


def _recipe_lines(recipe: Mapping[str, Any]) -> list[str]:
    def section(name: str) -> Mapping[Any, Any]:
        value = recipe.get(name)
        return value if isinstance(value, Mapping) else {}

    lines: list[str] = []
    header = (
        f"Painterly {_shown(recipe.get('painterly'))} recipe (format {_shown(recipe.get('recipe_version'))})"
    )
    if recipe.get("created"):
        header += f", created {_shown(recipe['created'])}"
    lines.append(header)
    # A variations sheet (engine.variation_sheet) holds one recipe per tile under this key.
    if isinstance(recipe.get("variations"), list):
        return lines + _sheet_lines(section("sheet"), recipe["variations"])

    job = section("job")
    inputs = section("inputs")
    lines.append("")
    lines.append("Inputs:")
    content = inputs.get("content")
    if isinstance(content, Mapping):
        lines.append(f"  content   {_input_line(content)}")
    elif job.get("content"):
        lines.append(f"  content   {_shown(job['content'])}")
    styles = inputs.get("styles")
    if isinstance(styles, list) and styles:
        for number, style in enumerate(styles, start=1):
            if isinstance(style, Mapping):
                blend = f"  blend {_number(style['blend'])}" if "blend" in style else ""
                lines.append(f"  style {number:<4d}{_input_line(style)}{blend}")
    elif isinstance(job.get("styles"), list):
        for number, style in enumerate(job["styles"], start=1):
            lines.append(f"  style {number:<4d}{_shown(style)}")
    init_image = inputs.get("init_image")
    if isinstance(init_image, Mapping):
        lines.append(f"  init      {_input_line(init_image)}")
    for kind, label in (("masks", "mask"), ("style_masks", "style mask")):
        entries = inputs.get(kind)
        if isinstance(entries, list):
            for number, entry in enumerate(entries, start=1):
                if isinstance(entry, Mapping):
                    lines.append(f"  {f'{label} {number}':<10}{_input_line(entry)}")

    params = job.get("params")
    params = params if isinstance(params, Mapping) else {}
    lines.append("")
    lines.append(f"Preset: {_shown(params.get('preset'))}")
    if params:
        lines.append("Parameters:")
        names = {name: _shown(str(name).replace("_", " ")) for name in params}
        width = min(max(len(shown) for shown in names.values()), _NAME_WIDTH)
        for name, value in params.items():
            lines.append(f"  {names[name]:<{width}}  {_value(value)}")

    output = recipe.get("output")
    lines.append("")
    if isinstance(output, Mapping) and "width" in output and "height" in output:
        alpha = " with transparency" if output.get("alpha") else ""
        lines.append(f"Output: {_shown(output['width'])} x {_shown(output['height'])}{alpha}")
    weights_id = recipe.get("weights_id")
    weights_id_text = _shown(weights_id) if weights_id else "no id recorded"
    lines.append(f"Weights: {_shown(params.get('weights'))} ({weights_id_text})")
    lines.append(f"Device: {_shown(recipe.get('device'))}")
    seconds = recipe.get("seconds")
    timing = f" in {_number(seconds)} s" if isinstance(seconds, (int, float)) else ""
    lines.append(
        f"Run: {_shown(recipe.get('iterations'))} iterations{timing}, {_shown(recipe.get('reason'))}"
    )
    if recipe.get("message"):
        lines.append(f"Note: {_shown(recipe['message'])}")
    losses = recipe.get("losses")
    if isinstance(losses, Mapping) and losses:
        shown = ", ".join(f"{_shown(name)} {_number(value)}" for name, value in losses.items())
        lines.append(f"Losses: {shown}")
    versions = recipe.get("versions")
    if isinstance(versions, Mapping) and versions:
        listed = ", ".join(f"{_shown(name)} {_shown(version)}" for name, version in versions.items())
        lines.append(f"Versions: {listed}")
    return lines


# Tiles listed by ``painterly info``: a sheet has at most 9; a stranger's file may claim millions.
_SHEET_LINES = 20


def _sheet_lines(sheet: Mapping[Any, Any], entries: list[Any]) -> list[str]:
    """A variations sheet: its grid, then each tile's label and the settings that set its look."""
    grid = f", {_shown(sheet.get('columns'))} x {_shown(sheet.get('rows'))}" if sheet else ""
    lines = ["", f"Variations sheet: {len(entries)} tiles{grid} (each tile's recipe: info --json)"]
    for number, entry in enumerate(entries[:_SHEET_LINES], start=1):
        entry = entry if isinstance(entry, Mapping) else {}
        variation = entry.get("variation") if isinstance(entry.get("variation"), Mapping) else {}
        job = entry.get("job") if isinstance(entry.get("job"), Mapping) else {}
        params = job.get("params") if isinstance(job.get("params"), Mapping) else {}
        looks = ", ".join(
            f"{name.replace('_', ' ')} {_value(params[name])}"
            for name in ("preset", "strength", "style_scale", "colors", "init", "seed")
            if name in params
        )
        lines.append(f"  {number:>2}. {_shown(variation.get('label'), limit=80)}: {looks}")
    if len(entries) > _SHEET_LINES:
        lines.append(f"  ... and {len(entries) - _SHEET_LINES} more")
    return lines


def _input_line(entry: Mapping[Any, Any]) -> str:
    name = entry.get("name")
    if not name:
        path = entry.get("path")
        name = Path(path).name if isinstance(path, str) and "\x00" not in path else "?"
    sha = entry.get("sha256")
    parts = [_shown(name), f"sha256 {_shown(sha)}" if sha else "sha256 unknown"]
    if entry.get("path"):
        parts.append(f"({_shown(entry['path'])})")
    return "  ".join(parts)


def _shown(value: Any, *, limit: int = _SHOWN_CHARS) -> str:
    """Any value from a recipe as inert text on one line, at most about ``limit`` characters.

    None and a missing entry show as "?"; a list or object as compact JSON.
    """
    if value is None:
        return "?"
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, int):
        text = _int_text(value)
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (ValueError, TypeError, RecursionError):
            text = f"(a {type(value).__name__} that cannot be shown)"
    return _clip(text, limit)


def _clip(text: str, limit: int = _SHOWN_CHARS) -> str:
    # Cut first, then escape: escaping can only lengthen what is left.
    if len(text) > limit:
        return printable(text[:limit]) + f"... ({len(text) - limit:,} more characters)"
    return printable(text)


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # over Python's 4300-digit limit for int-to-text conversion
        return "(a whole number too long to show)"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else _shown(value)
    try:
        return f"{value:.6g}"
    except OverflowError:  # an integer too large for a float
        return _shown(value)


def _value(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, list) and len(v) == 2 for v in value):
        # Layer weights: [["relu1_1", 1.0], ...]
        return ", ".join(f"{_shown(layer)} {_number(weight)}" for layer, weight in value)
    if isinstance(value, float):
        return _number(value)
    return "none" if value is None else _shown(value)
