"""Variations: the same photo and paintings under a handful of different settings, small and quick.

Finding good settings by full runs is blind and slow (neural-style's users asked for "a preview mode
that does 8 small thumbnails using a variety of options"). ``choose_variations`` picks, from the
job's own settings, a few that differ in what changes the look most: strength, style scale (the size
of the brush marks), the "By look" presets, a noisy start with its own seed, and whose colours.
Each is a full ``StyleParams`` with a short label saying what differs ("Strength 0.5",
"Photo colours", "Brush 1.5x"), so a tile can be made the current settings and painted at full size.

``render_variations`` paints them one after another on the job's device, small (``TILE_SIZE``):
the instant method as it is (about a tenth of a second), the optimisation as a short run at the
tile's size (``TILE_ITERATIONS``, one level). Like ``engine.stylize.stylize`` it is a generator of
immutable records: ``TileProgress`` per iteration, a ``Tile`` as each is done, and one
``VariationsFinished`` at the end, also when stopped (``should_stop`` is polled between iterations,
so a stop ends within one; a tile cut short is not shown, as it would not show its settings' look).

    for record in render_variations(job, choose_variations(job.params, 8)):
        if isinstance(record, Tile): ...
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError
from engine.imageio import LoadedImage, load_image
from engine.params import ColorMode, InitMode, Method, StyleJob, StyleParams
from engine.plan import check_output_shape, check_style_shape
from engine.presets import GROUP_BY_LOOK, PRESETS, apply_preset
from engine.records import Finished, Progress, StopReason

if TYPE_CHECKING:
    from engine.weights import VGGWeights

log = logging.getLogger(__name__)

COUNT_LIMITS = (4, 9)
# A tile's long edge: the network needs 16 px on the short side; above 1024 px a tile is no longer quick.
TILE_SIZE_LIMITS = (32, 1024)
TILE_ITERATION_LIMITS = (1, 1000)
# Long edge of a tile: large enough to judge the marks and colours, small enough to be quick. A
# 40-iteration default-preset tile at 160 x 120 px takes 5.5-7.9 s on the idle 2-core CPU, eight tiles
# 51 s (docs/images/variations-tubingen-starry.png); on that CPU shared with several other jobs the
# same tiles took 128-324 s each.
TILE_SIZE = 160
# Iterations of an optimised tile, in one level at the tile's size: enough for the default preset's
# L-BFGS to settle the look (its full run spends 100 at 256 px before refining), not to finish it.
TILE_ITERATIONS = 40

STRENGTH_LADDER = (0.5, 1.0, 0.75, 0.25)  # tried in this order, skipping any close to the job's own
BRUSH_FACTORS = (1.5, 1 / 1.5)
# A noisy start: half noise, half photo, so the seed shows in the marks while the photo still holds.
NOISY_START_RATIO = 0.5
# The artist's choices about the look that a preset variation keeps (a preset changes the recipe).
_KEPT_LOOK = ("strength", "colors", "style_scale", "photo_colors")
COLOUR_LABELS = {
    ColorMode.PAINTING: "Painting colours",
    ColorMode.PHOTO: "Photo colours",
    ColorMode.MATCH: "Matched colours",
}


@dataclass(frozen=True)
class Variation:
    """One tile's settings: the full ``params`` (the job's size and iterations), what differs from
    the job's own settings (``changed``: StyleParams field names) and a label saying it in words."""

    label: str
    params: StyleParams
    changed: tuple[str, ...] = ()

    def tile_params(self, size: int = TILE_SIZE, iterations: int = TILE_ITERATIONS) -> StyleParams:
        """The settings of its small, quick picture: the same look at ``size``, one short level."""
        return tile_params(self.params, size, iterations)


def tile_params(params: StyleParams, size: int = TILE_SIZE, iterations: int = TILE_ITERATIONS) -> StyleParams:
    if params.method is Method.INSTANT:
        return params.replace(size=size, max_seconds=0.0, dpi=0.0)
    return params.replace(
        size=size,
        iterations=min(iterations, params.iterations),
        coarse_to_fine=False,
        levels=(),
        tile_size=0,
        max_seconds=0.0,
        dpi=0.0,
    )


def changed_fields(base: StyleParams, params: StyleParams) -> tuple[str, ...]:
    """The StyleParams fields whose values differ, in declaration order."""
    return tuple(f.name for f in fields(StyleParams) if getattr(base, f.name) != getattr(params, f.name))


def check_count(count: int) -> int:
    low, high = COUNT_LIMITS
    if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
        raise InputError(
            f"the number of variations must be a whole number from {low} to {high}, got {count!r}"
        )
    return count


def check_tile(size: int, iterations: int) -> None:
    """One ``InputError`` line for a tile size or iteration count outside the limits."""
    for what, value, (low, high) in (
        ("tile size", size, TILE_SIZE_LIMITS),
        ("iterations per tile", iterations, TILE_ITERATION_LIMITS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"the {what} must be a whole number from {low} to {high}, got {value!r}")


def choose_variations(params: StyleParams, count: int, *, instant_available: bool = True) -> list[Variation]:
    """``count`` settings to compare: the job's own first ("As set"), then one change each, taken in
    turn from each kind of change (strength, brush, colours, preset, seed) so that a few tiles
    already cover every kind. ``instant_available`` False leaves out what needs the instant network.
    """
    check_count(count)
    kinds = [
        _strengths(params),
        _brushes(params),
        _colours(params),
        _presets(params, instant_available),
        _seeds(params),
    ]
    chosen = [Variation("As set", params)]
    seen = {params}
    for candidate in _round_robin(kinds):
        if len(chosen) == count:
            break
        if candidate.params in seen:
            continue
        seen.add(candidate.params)
        chosen.append(candidate)
    if len(chosen) < count:
        # Every kind is spent (an instant job at the limits of its controls): more seeds can always be had.
        for number in range(len(chosen), 100):
            if len(chosen) == count:
                break
            extra = _seed_variation(params, number)
            if extra is not None and extra.params not in seen:
                seen.add(extra.params)
                chosen.append(extra)
    if len(chosen) < count:
        raise InputError(f"these settings give only {len(chosen)} different variations; ask for fewer")
    return chosen


def _round_robin(kinds: Sequence[Sequence[Variation]]) -> Iterator[Variation]:
    for index in range(max(len(kind) for kind in kinds)):
        for kind in kinds:
            if index < len(kind):
                yield kind[index]


def _variation(base: StyleParams, label: str, **changes: object) -> Variation:
    params = base.replace(**changes)
    return Variation(label, params, changed_fields(base, params))


def _strengths(base: StyleParams) -> list[Variation]:
    return [
        _variation(base, f"Strength {value:g}", strength=value)
        for value in STRENGTH_LADDER
        if abs(value - base.strength) > 0.1
    ]


def _brushes(base: StyleParams) -> list[Variation]:
    out = []
    for factor in BRUSH_FACTORS:
        # Two decimals, as the Style scale control shows it: the tile is exactly what the control says.
        scale = round(min(8.0, max(0.05, base.style_scale * factor)), 2)
        if abs(scale - base.style_scale) > 1e-6:
            out.append(_variation(base, f"Brush {factor:.2g}x", style_scale=scale))
    return out


def _colours(base: StyleParams) -> list[Variation]:
    order = (ColorMode.PHOTO, ColorMode.MATCH, ColorMode.PAINTING)
    return [_variation(base, COLOUR_LABELS[mode], colors=mode) for mode in order if mode is not base.colors]


def _presets(base: StyleParams, instant_available: bool) -> list[Variation]:
    out = []
    for name, preset in PRESETS.items():
        if preset.group != GROUP_BY_LOOK or name == base.preset:
            continue
        if preset.params.method is Method.INSTANT and not instant_available:
            continue
        params = apply_preset(base, name).replace(**{f: getattr(base, f) for f in _KEPT_LOOK})
        out.append(Variation(f"{preset.display_name} preset", params, changed_fields(base, params)))
    return out


def _seeds(base: StyleParams) -> list[Variation]:
    return [v for v in (_seed_variation(base, number) for number in (1, 2)) if v is not None]


def _seed_variation(base: StyleParams, number: int) -> Variation | None:
    """A start with noise in it and a seed of its own: the same settings, marks laid differently.

    The seeds follow from the job's own, so the same job always offers the same variations.
    """
    if base.method is Method.INSTANT:
        return None  # one pass of a network: nothing random to vary
    seed = random.Random(f"{base.seed}/{number}").randrange(1, 2**32)
    if base.init is InitMode.NOISE:
        return _variation(base, f"Seed {seed}", seed=seed)
    return _variation(
        base, f"Noisy start, seed {seed}", init=InitMode.NOISE, noise_ratio=NOISY_START_RATIO, seed=seed
    )


def describe(params: StyleParams) -> str:
    """The settings that set a tile's look, in a few words (written under it on a sheet)."""
    preset = PRESETS.get(params.preset)
    parts = [preset.display_name if preset is not None else params.preset, f"strength {params.strength:g}"]
    parts.append(f"brush {params.style_scale:g}")
    parts.append(COLOUR_LABELS[params.colors].lower())
    if params.method is Method.OPTIMISE and params.init is InitMode.NOISE:
        parts.append(f"{params.noise_ratio:.0%} noise, seed {params.seed}")
    return " · ".join(parts)


# -- rendering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileProgress:
    """An iteration of the tile being painted (``index`` of ``count``, 0-based)."""

    index: int
    count: int
    variation: Variation
    progress: Progress


@dataclass(frozen=True)
class Tile:
    """A finished tile: its variation and the engine's record of its small picture."""

    index: int
    count: int
    variation: Variation
    finished: Finished

    @property
    def job(self) -> StyleJob:
        """The job at full size with this tile's settings (what "Paint this at full size" runs)."""
        return dataclasses.replace(self.finished.job, params=self.variation.params)


@dataclass(frozen=True)
class VariationsFinished:
    """The last record: every tile made, in order, and why it ended."""

    tiles: tuple[Tile, ...]
    count: int
    reason: StopReason = StopReason.COMPLETED
    seconds: float = 0.0

    @property
    def completed(self) -> bool:
        return self.reason is StopReason.COMPLETED


VariationRecord = TileProgress | Tile | VariationsFinished
StylizeFn = Callable[..., Iterator[Progress | Finished]]


def render_variations(
    job: StyleJob,
    variations: Sequence[Variation],
    *,
    size: int = TILE_SIZE,
    iterations: int = TILE_ITERATIONS,
    should_stop: Callable[[], bool] | None = None,
    weights: VGGWeights | None = None,
    decoded: Mapping[Path, LoadedImage] | None = None,
    stylize: StylizeFn | None = None,
) -> Iterator[VariationRecord]:
    """Paint each variation of ``job``'s inputs small, one after another; see the module docstring.

    The inputs are read and every tile's settings checked against them before the first record
    (an ``InputError`` from the first ``next()``); the network weights load once for all tiles.
    """
    check_tile(size, iterations)
    if stylize is None:
        from engine.stylize import stylize as engine_stylize

        stylize = engine_stylize
    stop = should_stop or (lambda: False)
    started = time.perf_counter()
    jobs = [dataclasses.replace(job, params=v.tile_params(size, iterations)) for v in variations]
    images = _decode(job, decoded, jobs)
    if weights is None and any(j.params.method is Method.OPTIMISE for j in jobs):
        from engine.weights import load_weights

        weights = load_weights(job.params.weights)
    if any(j.params.method is Method.INSTANT or j.params.init is InitMode.DRAFT for j in jobs):
        from engine.instant import find_models

        find_models()  # a missing network is said before the first tile, not after some
    count = len(variations)
    tiles: list[Tile] = []
    reason = StopReason.COMPLETED
    for index, (variation, tile_job) in enumerate(zip(variations, jobs, strict=True)):
        if stop():
            reason = StopReason.STOPPED
            break
        finished: Finished | None = None
        for record in stylize(
            tile_job, should_stop=stop, weights=weights, decoded=images, preview_interval=math.inf
        ):
            if isinstance(record, Finished):
                finished = record
            else:
                yield TileProgress(index, count, variation, record)
        if finished is None:
            raise RuntimeError("the engine ended a tile without a result")
        if finished.reason is StopReason.STOPPED:
            reason = StopReason.STOPPED
            break
        if not finished.completed:
            log.warning("tile %d (%s) ended early: %s", index + 1, variation.label, finished.message)
        tile = Tile(index, count, variation, finished)
        tiles.append(tile)
        yield tile
    yield VariationsFinished(tuple(tiles), count, reason, time.perf_counter() - started)


def _decode(
    job: StyleJob, decoded: Mapping[Path, LoadedImage] | None, jobs: Sequence[StyleJob]
) -> dict[Path, LoadedImage]:
    """Every input read once, and every tile's size checked against the photo."""
    images: dict[Path, LoadedImage] = dict(decoded or {})
    paths = [job.content, *job.styles]
    paths += [
        Path(j.params.init_image) for j in jobs if j.params.init is InitMode.IMAGE and j.params.init_image
    ]
    for path in paths:
        if path not in images:
            images[path] = load_image(path)
    content = images[job.content]
    for tile_job in jobs:
        check_output_shape(content.size, tile_job.params, job.content)
    for path in job.styles:
        check_style_shape(images[path].size, path)
    return images
