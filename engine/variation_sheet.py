"""The variations contact sheet: the tiles in a grid, each tile's settings written under it, and
every tile's recipe in the sheet's own.

The sheet is saved by the one writer of results (engine.results) with a recipe of its own kind: in
place of a single job it has, under the key ``variations`` (``SHEET_KEY``), a JSON list with one entry
per tile, in reading order. Each entry is the tile's full recipe (engine.recipe.build_recipe: the
small job it was painted with, its inputs and their SHA-256, device, losses) plus a ``variation``
object: ``label`` (what differs, as written on the sheet), ``changed`` (the StyleParams fields that
differ from the job's own settings), ``row`` and ``column``, and ``full_size``: the parameters whose
values at full size differ from the tile's (size, iterations, the levels), so the tile's job with
them is the job "Paint this at full size" runs. ``sheet`` says how the grid is laid out.
``sheet_jobs`` reads the full-size jobs back. With ``Embed.NAMES`` every tile's recipe names its
inputs by file name only, as any result's does (engine.recipe.without_folders).

The text is drawn with Pillow's default font (a scalable one since Pillow 10.1), sized to the tile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.errors import InputError
from engine.params import StyleJob, StyleParams
from engine.recipe import RECIPE_VERSION, Embed, build_recipe, job_from_recipe, painterly_version
from engine.records import Finished, StopReason
from engine.text import printable
from engine.variations import Tile, VariationsFinished, describe

SHEET_KEY = "variations"
SHEET_KIND = "variations-sheet"
BACKGROUND = (255, 255, 255)
LABEL_COLOUR = (20, 20, 20)
DETAIL_COLOUR = (90, 90, 90)
PLACEHOLDER = (225, 225, 225)  # where a tile was not made (the run was stopped)
MAX_TITLE_LINES = 3
SEPARATORS = ("·", "-", "–")


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a sheet of ``count`` tiles of at most ``tile`` (width, height)."""

    count: int
    tile: tuple[int, int]
    columns: int
    rows: int
    font_size: int
    # Lines of caption under the tiles of each row (each row as tall as its longest caption).
    caption_lines: tuple[int, ...]
    title_lines: int = 0

    @property
    def gap(self) -> int:
        return max(6, round(max(self.tile) * 0.06))

    @property
    def line_height(self) -> int:
        return round(self.font_size * 1.3)

    @property
    def cell_width(self) -> int:
        # As wide as the tile's long edge, so portrait tiles still get a readable caption width.
        return max(self.tile)

    def row_height(self, row: int) -> int:
        return self.tile[1] + self.gap // 2 + self.caption_lines[row] * self.line_height

    @property
    def title_height(self) -> int:
        return self.title_lines * self.line_height + (self.gap if self.title_lines else 0)

    @property
    def size(self) -> tuple[int, int]:
        gap = self.gap
        return (
            self.columns * self.cell_width + (self.columns + 1) * gap,
            self.title_height + sum(self.row_height(row) for row in range(self.rows)) + (self.rows + 1) * gap,
        )

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of cell ``index`` (reading order)."""
        row, column = divmod(index, self.columns)
        gap = self.gap
        above = sum(self.row_height(r) + gap for r in range(row))
        return gap + column * (self.cell_width + gap), self.title_height + gap + above


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows): as square as the count allows, wider than tall (4: 2 x 2, 6: 3 x 2, 8: 3 x 3)."""
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


def font_size_for(tile: tuple[int, int]) -> int:
    # About 13 characters' height across a tile's long edge: 12 px at 160 px, never under 11 px.
    return max(11, round(max(tile) / 13))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: Any, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    """Words onto lines no wider than ``width`` (a word longer than a line is cut into pieces)."""
    lines: list[str] = []
    line = ""
    words: list[str] = []
    for word in text.split():
        if word in SEPARATORS and words:
            words[-1] += f" {word}"  # a line never starts with a separator
        else:
            words.append(word)
    for word in words:
        while draw.textlength(word, font=font) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def captions(tile: Tile) -> tuple[str, str]:
    """What is written under a tile: what differs, then its settings in a few words."""
    finished = tile.finished
    note = "" if finished.completed else f" ({finished.reason.value.replace('_', ' ')})"
    return tile.variation.label + note, describe(tile.variation.params)


def layout_for(tiles: Sequence[Tile], count: int, title: str = "") -> SheetLayout:
    if not tiles:
        raise ValueError("a sheet needs at least one tile")
    shapes = [t.finished.image.shape[:2] for t in tiles]
    tile = (max(w for _, w in shapes), max(h for h, _ in shapes))
    columns, rows = grid_shape(count)
    font_size = font_size_for(tile)
    font = _font(font_size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(tile) - 4
    lines = [2] * rows  # the label and one line of settings at least, also for a row not painted
    for t in tiles:
        row = t.index // columns
        lines[row] = max(lines[row], sum(len(_wrap(text, font, width, draw)) for text in captions(t)))
    layout = SheetLayout(count, tile, columns, rows, font_size, tuple(lines))
    if not title:
        return layout
    title_lines = len(_wrap(printable(title), font, layout.size[0] - 2 * layout.gap, draw))
    return replace(layout, title_lines=min(title_lines, MAX_TITLE_LINES))


def draw_sheet(tiles: Sequence[Tile], count: int, title: str = "") -> np.ndarray:
    """The sheet as float32 H x W x 3 in [0, 1]: the tiles in reading order, captions under each,
    ``title`` across the top; a cell whose tile was not made (a stopped run) is left grey."""
    layout = layout_for(tiles, count, title)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(layout.font_size)
    gap = layout.gap
    lines = _wrap(printable(title), font, layout.size[0] - 2 * gap, draw)[: layout.title_lines]
    for number, line in enumerate(lines):
        draw.text((gap, gap + number * layout.line_height), line, fill=LABEL_COLOUR, font=font)
    made = {tile.index: tile for tile in tiles}
    cell_w = layout.cell_width
    tile_w, tile_h = layout.tile
    for index in range(count):
        left, top = layout.origin(index)
        tile = made.get(index)
        if tile is None:
            draw.rectangle((left, top, left + tile_w - 1, top + tile_h - 1), fill=PLACEHOLDER)
            continue
        pixels = np.clip(tile.finished.image, 0.0, 1.0) * 255.0 + 0.5
        picture = Image.fromarray(pixels.astype(np.uint8))
        sheet.paste(picture, (left + (cell_w - picture.width) // 2, top))
        y = top + tile_h + gap // 2
        label, details = captions(tile)
        for text, colour in ((label, LABEL_COLOUR), (details, DETAIL_COLOUR)):
            for line in _wrap(text, font, cell_w - 4, draw):
                draw.text((left + 2, y), line, fill=colour, font=font)
                y += layout.line_height
    return np.asarray(sheet, dtype=np.float32) / np.float32(255.0)


def sheet_recipe(
    result: VariationsFinished, layout: SheetLayout, embed: Embed = Embed.PATHS
) -> dict[str, Any]:
    """The sheet's recipe: every tile's recipe and full-size settings (see the module docstring)."""
    entries = []
    for tile in result.tiles:
        row, column = divmod(tile.index, layout.columns)
        recipe = build_recipe(tile.finished, embed=embed)
        small, full = tile.finished.job.params.to_dict(), tile.variation.params.to_dict()
        recipe["variation"] = {
            "label": tile.variation.label,
            "changed": list(tile.variation.changed),
            "row": row,
            "column": column,
            "full_size": {name: value for name, value in full.items() if small[name] != value},
        }
        entries.append(recipe)
    return {
        "painterly": painterly_version(),
        "recipe_version": RECIPE_VERSION,
        "kind": SHEET_KIND,
        "sheet": {
            "count": result.count,
            "made": len(result.tiles),
            "columns": layout.columns,
            "rows": layout.rows,
            "tile_width": layout.tile[0],
            "tile_height": layout.tile[1],
            "reason": str(result.reason),
        },
        SHEET_KEY: entries,
        "seconds": round(float(result.seconds), 3),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sheet_record(job: StyleJob, result: VariationsFinished, image: np.ndarray) -> Finished:
    """The sheet as a ``Finished`` record, for engine.results to save (with ``sheet_recipe``)."""
    tiles = result.tiles
    inputs: dict[str, str] = {}
    for tile in tiles:
        hashes = tile.finished.extra.get("inputs")
        if isinstance(hashes, Mapping):
            inputs.update({str(k): str(v) for k, v in hashes.items()})
    return Finished(
        job=job,
        image=image,
        iterations=sum(t.finished.iterations for t in tiles),
        seconds=result.seconds,
        device=tiles[0].finished.device if tiles else "",
        losses={},
        reason=StopReason.COMPLETED if result.completed else result.reason,
        message=f"{len(tiles)} of {result.count} variations",
        weights_id=tiles[0].finished.weights_id if tiles else "",
        extra={"inputs": inputs},
    )


def sheet_jobs(recipe: Mapping[str, Any], *, source: str | Path | None = None) -> list[tuple[str, StyleJob]]:
    """Each tile's label and full-size job, read back from a sheet's recipe; one ``InputError`` line
    for anything that is not a sheet or not valid (a recipe may come from a stranger's file)."""
    entries = recipe.get(SHEET_KEY) if isinstance(recipe, Mapping) else None
    if not isinstance(entries, list):
        raise InputError(f"is not a variations sheet: its recipe has no '{SHEET_KEY}' list", source)
    jobs = []
    for number, entry in enumerate(entries, start=1):
        small = job_from_recipe(entry, source=source)
        variation = entry.get("variation") if isinstance(entry, Mapping) else None
        if not isinstance(variation, Mapping) or not isinstance(variation.get("full_size"), Mapping):
            raise InputError(f"variation {number} has no full-size settings", source)
        known = {f.name for f in fields(StyleParams)}
        try:
            changes = {k: v for k, v in variation["full_size"].items() if k in known}
            params = StyleParams.from_dict({**small.params.to_dict(), **changes})
        except InputError as error:
            raise InputError(f"variation {number}: {error}", source) from None
        except (TypeError, ValueError, AttributeError, ArithmeticError) as error:
            raise InputError(f"variation {number}: {error or type(error).__name__}", source) from None
        label = variation.get("label")
        jobs.append(
            (label if isinstance(label, str) else f"Variation {number}", replace(small, params=params))
        )
    return jobs
