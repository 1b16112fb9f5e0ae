"""The recipe: a JSON description of how an image was made.

Every saved result carries one (see engine.imageio): the job with all its
parameters, the inputs with their SHA-256 so a later reader can tell whether
they changed, the network weights, device, timing, final losses and the
versions of everything that affects the numbers.  ``job_from_recipe`` turns it
back into a ``StyleJob`` so a result can be re-made; ``format_recipe`` prints
it for ``painterly info FILE``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import math
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.params import StyleJob, StyleParams
from engine.records import Finished

log = logging.getLogger(__name__)

RECIPE_VERSION = 1

# (distribution name, module name) of the packages whose versions go into a recipe.
_VERSIONED = (
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("pillow", "PIL"),
)
_HASH_CHUNK = 1 << 20


def build_recipe(finished: Finished, *, inputs: Mapping[str | Path, str] | None = None) -> dict[str, Any]:
    """The recipe for a finished run.

    ``inputs`` maps input paths to the SHA-256 the engine computed when it
    loaded them (by default ``finished.extra["inputs"]``, where
    engine.stylize puts them); inputs missing from it are hashed from disk
    (or recorded without a hash if the file is gone).
    """
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
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        log.warning("%s: cannot read it to record its hash in the recipe", path)
        return None
    return digest.hexdigest()


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
    """Rebuild the job a recipe describes; ``source`` names the file in error messages."""

    def bad(problem: str) -> InputError:
        return InputError(f"the recipe is not valid: {problem}", source)

    if not isinstance(recipe, Mapping):
        raise bad("it is not a JSON object")
    version = recipe.get("recipe_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > RECIPE_VERSION:
        log.warning(
            "recipe version %d is newer than this Painterly understands (%d); reading what it can",
            version,
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
    try:
        return StyleJob(
            content=Path(content),
            styles=tuple(Path(s) for s in styles),
            params=StyleParams.from_dict(params),
            blend=tuple(blend),
        )
    except InputError as exc:
        raise bad(str(exc)) from None
    except (TypeError, ValueError, AttributeError) as exc:
        # Wrongly shaped values (a number where a list of layers belongs, ...) fail inside the constructors.
        raise bad(str(exc) or type(exc).__name__) from None


def format_recipe(recipe: Mapping[str, Any]) -> str:
    """Human-readable text for ``painterly info FILE``; tolerant of missing or odd entries."""
    if not isinstance(recipe, Mapping):
        raise InputError("the recipe is not valid: it is not a JSON object")
    lines: list[str] = []
    header = f"Painterly {recipe.get('painterly', '?')} recipe (format {recipe.get('recipe_version', '?')})"
    if recipe.get("created"):
        header += f", created {recipe['created']}"
    lines.append(header)

    job = recipe.get("job") if isinstance(recipe.get("job"), Mapping) else {}
    inputs = recipe.get("inputs") if isinstance(recipe.get("inputs"), Mapping) else {}
    lines.append("")
    lines.append("Inputs:")
    content = inputs.get("content")
    if isinstance(content, Mapping):
        lines.append(f"  content   {_input_line(content)}")
    elif job.get("content"):
        lines.append(f"  content   {job['content']}")
    styles = inputs.get("styles")
    if isinstance(styles, list) and styles:
        for number, style in enumerate(styles, start=1):
            if isinstance(style, Mapping):
                blend = f"  blend {_number(style['blend'])}" if "blend" in style else ""
                lines.append(f"  style {number:<4d}{_input_line(style)}{blend}")
    elif isinstance(job.get("styles"), list):
        for number, style in enumerate(job["styles"], start=1):
            lines.append(f"  style {number:<4d}{style}")
    init_image = inputs.get("init_image")
    if isinstance(init_image, Mapping):
        lines.append(f"  init      {_input_line(init_image)}")

    params = job.get("params") if isinstance(job.get("params"), Mapping) else {}
    lines.append("")
    lines.append(f"Preset: {params.get('preset', '?')}")
    if params:
        lines.append("Parameters:")
        width = max(len(str(name)) for name in params)
        for name, value in params.items():
            lines.append(f"  {str(name).replace('_', ' '):<{width}}  {_value(value)}")

    output = recipe.get("output")
    lines.append("")
    if isinstance(output, Mapping) and "width" in output and "height" in output:
        alpha = " with transparency" if output.get("alpha") else ""
        lines.append(f"Output: {output['width']} x {output['height']}{alpha}")
    lines.append(f"Weights: {params.get('weights', '?')} ({recipe.get('weights_id') or 'no id recorded'})")
    lines.append(f"Device: {recipe.get('device', '?')}")
    seconds = recipe.get("seconds")
    timing = f" in {_number(seconds)} s" if isinstance(seconds, (int, float)) else ""
    lines.append(f"Run: {recipe.get('iterations', '?')} iterations{timing}, {recipe.get('reason', '?')}")
    if recipe.get("message"):
        lines.append(f"Note: {recipe['message']}")
    losses = recipe.get("losses")
    if isinstance(losses, Mapping) and losses:
        shown = ", ".join(f"{name} {_number(value)}" for name, value in losses.items())
        lines.append(f"Losses: {shown}")
    versions = recipe.get("versions")
    if isinstance(versions, Mapping) and versions:
        lines.append("Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()))
    return "\n".join(lines)


def _input_line(entry: Mapping[str, Any]) -> str:
    name = entry.get("name") or Path(str(entry.get("path", "?"))).name
    sha = entry.get("sha256")
    parts = [str(name), f"sha256 {sha}" if sha else "sha256 unknown"]
    if entry.get("path"):
        parts.append(f"({entry['path']})")
    return "  ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else str(value)
    return f"{value:.6g}"


def _value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, list) and len(v) == 2 for v in value):
        # Layer weights: [["relu1_1", 1.0], ...]
        return ", ".join(f"{layer} {_number(weight)}" for layer, weight in value)
    if isinstance(value, float):
        return _number(value)
    return "none" if value is None else str(value)
