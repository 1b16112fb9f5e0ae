"""The one writer of results: every picture a run produces is published here.

The command line's output and intermediates, the window's export and preview saves, and the
autosave all describe where a picture goes with an ``OutputSpec`` and hand it to ``save_result``
(or ``write_result``). The rules are the same for all of them:

- an input file (the photo, a painting, the start image, a mask) is never written, whatever the
  flags: the target is compared with every input by resolved path and by inode;
- an existing file is replaced only with ``overwrite``;
- everything that can be checked before a run is checked by ``check_output`` before it starts;
- a finished picture is never lost: if it cannot be written where asked, ``save_result`` writes
  it to a recovery file and says where.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.encode import check_encodable, check_output_path, save_image
from engine.errors import InputError, OutputExistsError, PainterlyError
from engine.files import safe_exists, same_file
from engine.metadata import sidecar_path
from engine.params import StyleJob
from engine.recipe import EMBED_DEFAULT, Embed, build_recipe
from engine.records import Finished, Progress, StopReason

log = logging.getLogger(__name__)

# Intermediates are named <stem>.<iteration><suffix>, the iteration at least this many digits wide.
INTERMEDIATE_DIGITS = 5


class SaveError(PainterlyError):
    """A finished picture could be saved neither where asked nor to a recovery file."""


@dataclass(frozen=True)
class OutputSpec:
    """Where and how a picture is written."""

    path: Path
    bit_depth: int = 8
    # Print resolution written into the file (0 = none).
    dpi: float = 0.0
    # JPEG and WebP quality (100 = lossless WebP).
    quality: int = 95
    overwrite: bool = False
    # Whether the recipe (parameters, input names and hashes) goes into the file.
    embed_recipe: bool = True
    # What the recipe says about where the inputs are: file names only (the default for files made
    # for people), full paths (Painterly's own copies), or no recipe (``embed_recipe`` then False).
    embed: Embed = EMBED_DEFAULT

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())
        object.__setattr__(self, "embed", Embed(self.embed))
        if self.embed is Embed.NONE:
            object.__setattr__(self, "embed_recipe", False)

    def intermediate(self, iteration: int) -> OutputSpec:
        """The spec of the picture saved at ``iteration``: ``result.00040.png`` beside ``result.png``."""
        name = f"{self.path.stem}.{iteration:0{INTERMEDIATE_DIGITS}d}{self.path.suffix}"
        return dataclasses.replace(self, path=self.path.with_name(name))


def output_path(text: str) -> Path:
    """The path a user typed for an output, refusing what can only name a folder."""
    if not text or not text.strip():
        raise InputError("the output file name is empty; give one such as result.png")
    if text.endswith(("/", os.sep)) or (os.altsep and text.endswith(os.altsep)):
        raise InputError("names a folder; give a file name such as result.png", text)
    path = Path(text).expanduser()
    if path.name in ("", ".", ".."):
        raise InputError("names a folder; give a file name such as result.png", text)
    return path


def _refuse_inputs(path: Path, inputs: Iterable[Path]) -> None:
    for candidate in (path, sidecar_path(path)):
        for source in inputs:
            if same_file(candidate, Path(source)):
                what = "is" if candidate == path else f"would need {candidate.name}, which is"
                raise InputError(
                    f"{what} also an input ({Path(source).name}); Painterly never writes over an input",
                    path,
                )


def check_output(
    spec: OutputSpec,
    *,
    inputs: Sequence[Path] = (),
    size: tuple[int, int] | None = None,
    intermediates: Iterable[int] = (),
) -> None:
    """Everything about saving that can be checked before a run, for the output and each intermediate.

    ``size`` is the output's (width, height) when known; ``intermediates`` are the iterations at
    which intermediate pictures will be saved (each obeys exactly the rules of the output).
    """
    check_encodable(spec.path, size=size, bit_depth=spec.bit_depth, quality=spec.quality, dpi=spec.dpi)
    check_output_path(spec.path, overwrite=spec.overwrite)
    _refuse_inputs(spec.path, inputs)
    iterations = sorted(set(intermediates))
    if iterations:
        # The last has the longest name; the full check (which creates a file) once is enough.
        check_output_path(spec.intermediate(iterations[-1]).path, overwrite=spec.overwrite)
    for iteration in iterations:
        path = spec.intermediate(iteration).path
        if not spec.overwrite and safe_exists(path):
            raise OutputExistsError("already exists; pass --overwrite to replace it", path)
        _refuse_inputs(path, inputs)


def write_result(
    finished: Finished,
    spec: OutputSpec,
    *,
    inputs: Sequence[Path] = (),
    recipe: Mapping[str, Any] | None = None,
) -> Path:
    """Publish one picture; raises ``InputError`` (the file is then untouched) on any problem."""
    _refuse_inputs(spec.path, inputs)
    if spec.embed_recipe and recipe is None:
        recipe = build_recipe(
            finished,
            inputs=finished.extra.get("inputs"),  # type: ignore[arg-type]
            embed=spec.embed,
        )
    return save_image(
        spec.path,
        finished.image,
        recipe=recipe if spec.embed_recipe else None,
        alpha=finished.alpha,
        overwrite=spec.overwrite,
        bit_depth=spec.bit_depth,
        quality=spec.quality,
        dpi=spec.dpi,
    )


@dataclass(frozen=True)
class SaveOutcome:
    path: Path
    # True when the picture went to a recovery file because ``problem`` stopped the real save.
    recovered: bool = False
    problem: str = ""


def save_result(
    finished: Finished,
    spec: OutputSpec,
    *,
    inputs: Sequence[Path] = (),
    recipe: Mapping[str, Any] | None = None,
) -> SaveOutcome:
    """Publish a finished picture, and if that fails, save it to a recovery file instead.

    ``recipe`` replaces the one built from ``finished`` (a variations sheet carries its tiles').
    ``SaveError`` only when no recovery file could be written anywhere either.
    """
    try:
        return SaveOutcome(write_result(finished, spec, inputs=inputs, recipe=recipe))
    except (InputError, OSError, ValueError, MemoryError, UnicodeError) as error:
        problem = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
        log.warning("could not save %s: %s; writing a recovery file", spec.path, problem)
        recovered = write_recovery(finished, spec, inputs=inputs, problem=problem, recipe=recipe)
        return SaveOutcome(recovered, True, problem)


def recovery_folders(spec: OutputSpec) -> list[Path]:
    """Where a recovery file is tried, in order: beside the output, here, home, the temporary folder."""
    candidates = [spec.path.parent, Path.cwd(), Path.home(), Path(tempfile.gettempdir())]
    folders: list[Path] = []
    for folder in candidates:
        try:
            if folder.is_dir() and folder not in folders:
                folders.append(folder)
        except OSError:
            continue
    return folders


def _safe_stem(path: Path) -> str:
    # The output's own name may be what failed (too long, not encodable): keep a short, plain one.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem, flags=re.ASCII).strip("._")[:80]
    return stem or "painterly"


def write_recovery(
    finished: Finished,
    spec: OutputSpec,
    *,
    inputs: Sequence[Path] = (),
    problem: str = "",
    recipe: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``finished`` as a PNG with a new, plain name in the first folder that takes it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    bit_depth = 16 if spec.bit_depth == 16 else 8
    errors = [problem] if problem else []
    for folder in recovery_folders(spec):
        for with_recipe in (True, False):
            recovery = OutputSpec(
                path=folder / f"{_safe_stem(spec.path)}.recovered-{stamp}-{os.getpid()}.png",
                bit_depth=bit_depth,
                dpi=spec.dpi,
                overwrite=False,
                embed_recipe=with_recipe and spec.embed_recipe,
                embed=spec.embed,  # a recovery file reveals no more than the file asked for
            )
            try:
                return write_result(finished, recovery, inputs=inputs, recipe=recipe)
            except OutputExistsError:
                continue
            except (InputError, OSError, ValueError, MemoryError, UnicodeError) as error:
                errors.append(str(error))
    raise SaveError("the picture could not be saved, not even to a recovery file: " + "; ".join(errors))


def snapshot(
    job: StyleJob,
    progress: Progress,
    image: np.ndarray | None = None,
    *,
    device: str = "",
    weights_id: str = "",
    inputs: Mapping[str, str] | None = None,
    message: str = "",
) -> Finished:
    """A ``Finished`` record for the picture of a run in progress (an intermediate, an autosave).

    ``image`` defaults to the record's preview (uint8); float pixels in [0, 1] are taken as they are.
    """
    pixels = progress.preview if image is None else image
    if pixels is None:
        raise ValueError(f"iteration {progress.iteration} has no preview image to save")
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.float32) / np.float32(255.0)
    return Finished(
        job=job,
        image=np.ascontiguousarray(pixels, dtype=np.float32),
        iterations=progress.iteration,
        seconds=progress.elapsed,
        device=device or str(job.params.device),
        losses=dict(progress.losses),
        reason=StopReason.STOPPED,
        message=message or f"snapshot at iteration {progress.iteration} of {progress.total}",
        weights_id=weights_id,
        extra={"inputs": dict(inputs)} if inputs else {},
    )


def job_inputs(job: StyleJob, extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """Every file a job reads: no result may be written over one of them."""
    paths = [job.content, *job.styles, *job.masks, *(m for m in job.style_masks if m is not None), *extra]
    if job.params.init_image:
        paths.append(Path(job.params.init_image))
    if job.params.weights not in ("default", "torchvision"):
        paths.append(Path(job.params.weights))  # a weights file may be named anything, even x.png
    return tuple(Path(p) for p in paths)
