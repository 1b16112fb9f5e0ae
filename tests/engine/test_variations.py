"""Variations: which settings are chosen, and painting them small, one after another (tiny network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.params import ColorMode, InitMode, Method, StyleJob, StyleParams
from engine.presets import GROUP_BY_LOOK, PRESETS, get_preset
from engine.records import StopReason
from engine.variations import (
    COUNT_LIMITS,
    Tile,
    TileProgress,
    VariationsFinished,
    changed_fields,
    choose_variations,
    render_variations,
)
from engine.weights import random_weights

SIZE, ITERATIONS = 32, 2


def _write(path: Path, seed: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([xx / size[0], yy / size[1], (xx + yy) / sum(size)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 0.15, base.shape), 0, 1)
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def job(tmp_path: Path) -> StyleJob:
    content = _write(tmp_path / "content.png", 1, (40, 30))
    style = _write(tmp_path / "style.png", 2, (36, 36))
    return StyleJob(content, (style,), StyleParams(size=512, iterations=150, device="cpu"))


# -- choosing ----------------------------------------------------------------------------------------

KIND_OF_CHANGE = {"strength", "style_scale", "colors", "preset", "seed"}


def _kind(changed: tuple[str, ...]) -> str:
    if "preset" in changed:
        return "preset"
    if "seed" in changed:
        return "seed"
    (only,) = changed  # strength, brush and colour variations change that one field and nothing else
    return only


@pytest.mark.parametrize("base_preset", ["default", "instant", "gatys2016", "tf-tutorial"])
@pytest.mark.parametrize("count", range(COUNT_LIMITS[0], COUNT_LIMITS[1] + 1))
def test_each_variation_differs_in_its_own_field_and_says_so(base_preset: str, count: int) -> None:
    base = get_preset(base_preset).params.replace(size=777, seed=5)
    variations = choose_variations(base, count)
    assert len(variations) == count
    assert variations[0].label == "As set" and variations[0].params == base and variations[0].changed == ()
    assert len({v.params for v in variations}) == count  # no two tiles alike
    assert len({v.label for v in variations}) == count
    for variation in variations[1:]:
        assert variation.changed == changed_fields(base, variation.params) != ()
        kind = _kind(variation.changed)
        assert kind in KIND_OF_CHANGE
        if kind == "strength":
            assert variation.label == f"Strength {variation.params.strength:g}"
        elif kind == "style_scale":
            factor = variation.params.style_scale / base.style_scale
            assert variation.label in ("Brush 1.5x", "Brush 0.67x") and factor == pytest.approx(
                float(variation.label[6:-1]), abs=0.01
            )
        elif kind == "colors":
            assert variation.label.endswith("colours") and variation.params.colors is not base.colors
        elif kind == "preset":
            preset = PRESETS[variation.params.preset]
            assert preset.group == GROUP_BY_LOOK and variation.label == f"{preset.display_name} preset"
            # The artist's look choices go with them into the other recipe, and so does the size.
            assert variation.params.strength == base.strength and variation.params.size == 777
        else:
            assert base.method is Method.OPTIMISE and str(variation.params.seed) in variation.label
            assert variation.params.init is InitMode.NOISE  # so that the seed shows
        # Every tile's settings are valid, at full size and as painted small.
        assert StyleParams.from_dict(variation.params.to_dict()) == variation.params
        small = variation.tile_params(SIZE, ITERATIONS)
        assert small.size == SIZE and small.iterations <= max(ITERATIONS, 1)
        assert set(changed_fields(variation.params, small)) <= {
            "size", "iterations", "coarse_to_fine", "levels", "tile_size", "max_seconds", "dpi"
        }  # fmt: skip


def test_a_few_tiles_already_cover_every_kind_of_change() -> None:
    kinds = {_kind(v.changed) for v in choose_variations(StyleParams(), 6)[1:]}
    assert kinds == KIND_OF_CHANGE
    eight = choose_variations(StyleParams(), 8)
    assert [v.label for v in eight][:4] == ["As set", "Strength 0.5", "Brush 1.5x", "Photo colours"]


def test_the_same_job_offers_the_same_variations() -> None:
    assert choose_variations(StyleParams(seed=3), 9) == choose_variations(StyleParams(seed=3), 9)
    assert choose_variations(StyleParams(seed=3), 9) != choose_variations(StyleParams(seed=4), 9)


def test_an_instant_job_varies_no_seed_and_without_the_network_nothing_needs_it() -> None:
    instant = choose_variations(get_preset("instant").params, 9)
    assert all("seed" not in v.changed for v in instant)
    assert not any(
        v.params.method is Method.INSTANT
        for v in choose_variations(StyleParams(), 9, instant_available=False)
    )


@pytest.mark.parametrize("count", [0, 3, 10, -1, True, 4.0, "8"])
def test_count_out_of_bounds_is_refused_in_one_line(count) -> None:
    with pytest.raises(InputError, match="from 4 to 9") as caught:
        choose_variations(StyleParams(), count)
    assert "\n" not in str(caught.value)


def test_variations_of_the_colour_modes_offer_the_others() -> None:
    photo = choose_variations(StyleParams(colors=ColorMode.PHOTO), 9)
    colours = [v.params.colors for v in photo if v.changed == ("colors",)]
    assert colours == [ColorMode.MATCH, ColorMode.PAINTING]


# -- painting ----------------------------------------------------------------------------------------


def _render(job: StyleJob, weights, variations, **kwargs) -> list:
    return list(
        render_variations(job, variations, size=SIZE, iterations=ITERATIONS, weights=weights, **kwargs)
    )


def test_tiles_are_painted_small_in_order_and_keep_their_full_settings(job, weights) -> None:
    variations = choose_variations(job.params, 4, instant_available=False)
    records = _render(job, weights, variations)
    tiles = [r for r in records if isinstance(r, Tile)]
    final = records[-1]
    assert isinstance(final, VariationsFinished) and final.completed and final.tiles == tuple(tiles)
    assert sum(isinstance(r, VariationsFinished) for r in records) == 1
    assert [t.index for t in tiles] == [0, 1, 2, 3] and all(t.count == 4 for t in tiles)
    for tile, variation in zip(tiles, variations, strict=True):
        assert tile.variation == variation
        assert tile.finished.image.shape == (24, 32, 3)
        assert tile.finished.job.params == variation.tile_params(SIZE, ITERATIONS)
        assert tile.finished.iterations == ITERATIONS
        # What "Paint this at full size" runs: the same inputs with the variation's own settings.
        assert tile.job.params == variation.params and tile.job.params.size == 512
        assert tile.job.content == job.content and tile.job.styles == job.styles
    # Each tile's iterations come before it, and nothing of a tile comes after it.
    progress = [r for r in records if isinstance(r, TileProgress)]
    assert [(p.index, p.progress.iteration) for p in progress] == [(i, n) for i in range(4) for n in (1, 2)]
    assert records.index(tiles[0]) < records.index(progress[2])
    # The variations look different: strength 0.5 and photo colours are not the job's own picture.
    own = tiles[0].finished.image
    assert all(np.abs(t.finished.image - own).mean() > 2e-4 for t in tiles[1:])


def test_a_stop_between_tiles_ends_with_the_tiles_made(job, weights) -> None:
    variations = choose_variations(job.params, 4, instant_available=False)
    stop = {"now": False}
    records = []
    for record in render_variations(
        job, variations, size=SIZE, iterations=ITERATIONS, weights=weights, should_stop=lambda: stop["now"]
    ):
        records.append(record)
        if isinstance(record, Tile):
            stop["now"] = True  # asked while the first tile is on its way to the screen
    final = records[-1]
    assert isinstance(final, VariationsFinished)
    assert final.reason is StopReason.STOPPED and len(final.tiles) == 1 and final.count == 4
    assert not any(isinstance(r, TileProgress) and r.index > 0 for r in records)


def test_a_tile_cut_short_is_not_shown(job, weights) -> None:
    variations = choose_variations(job.params, 4, instant_available=False)
    stop = {"now": False}
    records = []
    for record in render_variations(
        job, variations, size=SIZE, iterations=3, weights=weights, should_stop=lambda: stop["now"]
    ):
        records.append(record)
        if isinstance(record, TileProgress) and record.index == 1:
            stop["now"] = True
    final = records[-1]
    assert final.reason is StopReason.STOPPED
    assert [t.index for t in final.tiles] == [0]


def test_bad_input_is_said_before_any_tile(job, weights, tmp_path) -> None:
    missing = StyleJob(tmp_path / "nope.png", job.styles, job.params)
    records = render_variations(missing, choose_variations(job.params, 4), size=SIZE, weights=weights)
    with pytest.raises(InputError, match="nope.png"):
        next(records)
    # A tile size too small for the network is refused by the engine's own rule, before any work too.
    tiny = render_variations(job, choose_variations(job.params, 4), size=16, weights=weights)
    with pytest.raises(InputError):
        next(tiny)


# -- the sheet ---------------------------------------------------------------------------------------


def _fake_tiles(count: int, size: tuple[int, int] = (40, 30)) -> list[Tile]:
    from engine.records import Finished

    tiles = []
    for index, variation in enumerate(choose_variations(StyleParams(), count)):
        image = np.random.default_rng(index).random((size[1], size[0], 3)).astype(np.float32)
        job = StyleJob(Path("photo.png"), (Path("painting.png"),), variation.tile_params(max(size), 2))
        finished = Finished(job=job, image=image, iterations=2, seconds=0.1, device="cpu", losses={})
        tiles.append(Tile(index, count, variation, finished))
    return tiles


@pytest.mark.parametrize("count", range(COUNT_LIMITS[0], COUNT_LIMITS[1] + 1))
def test_the_sheet_is_a_grid_of_tiles_with_their_captions_under_them(count: int) -> None:
    from PIL import ImageDraw

    from engine.variation_sheet import _font, _wrap, captions, draw_sheet, grid_shape, layout_for

    tiles = _fake_tiles(count)
    layout = layout_for(tiles, count, "photo.png x painting.png")
    columns, rows = grid_shape(count)
    assert (layout.columns, layout.rows) == (columns, rows) and columns >= rows
    assert columns * rows >= count > (columns - 1) * rows  # no empty column
    sheet = draw_sheet(tiles, count, "photo.png x painting.png")
    assert sheet.shape == (layout.size[1], layout.size[0], 3)
    for tile in tiles:  # each tile's pixels are where its cell is
        left, top = layout.origin(tile.index)
        left += (layout.cell_width - 40) // 2
        placed = sheet[top : top + 30, left : left + 40]
        assert np.abs(placed - tile.finished.image).max() <= 1 / 255 + 1e-6
    # Captions wrap within the cell, and no line starts with a separator.
    font = _font(layout.font_size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for tile in tiles:
        for text in captions(tile):
            for line in _wrap(text, font, layout.cell_width - 4, draw):
                assert draw.textlength(line, font=font) <= layout.cell_width - 4 or " " not in line
                assert not line.startswith("·")
    # A row is as tall as its own longest caption, not the sheet's.
    assert len(layout.caption_lines) == rows and min(layout.caption_lines) >= 2
