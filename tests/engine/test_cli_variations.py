"""`main.py variations`: the contact sheet end to end (embedded weights, tiny tiles), its recipe, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.metadata import read_recipe
from engine.recipe import job_from_recipe
from engine.variation_sheet import SHEET_KEY, grid_shape, sheet_jobs

ROOT = Path(__file__).resolve().parents[2]


def painterly(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("variations")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:80]
    photo = np.stack([xx / 80, yy / 60, 0.4 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(folder / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / "painting.png")
    return {"photo": folder / "photo.jpg", "painting": folder / "painting.png"}


def _args(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "variations", "--content", str(inputs["photo"]), "--style", str(inputs["painting"]),
        "--out", str(out), "--size", "32", "--iterations", "1", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_the_sheet_holds_the_grid_its_captions_and_every_tiles_recipe(inputs, tmp_path) -> None:
    out = tmp_path / "sheet.png"
    result = painterly(*_args(inputs, out, "--count", "4", "--json"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["plan", "tile", "tile", "tile", "tile", "done"]
    labels = events[0]["labels"]
    assert labels[0] == "As set" and len(labels) == 4
    assert [e["label"] for e in events[1:5]] == labels
    done = events[-1]
    assert done["output"] == str(out) and done["tiles"] == 4 and (done["columns"], done["rows"]) == (2, 2)

    recipe = read_recipe(out)
    assert (recipe["sheet"]["columns"], recipe["sheet"]["rows"]) == grid_shape(4)
    tile_w, tile_h = recipe["sheet"]["tile_width"], recipe["sheet"]["tile_height"]
    assert (tile_w, tile_h) == (32, 24)  # the 80 x 60 photo at 32 px
    entries = recipe[SHEET_KEY]
    assert len(entries) == 4
    for entry, label in zip(entries, labels, strict=True):
        small = job_from_recipe(entry)  # each tile's recipe is a recipe like any result's
        assert small.params.size == 32 and small.params.iterations == 1
        assert entry["variation"]["label"] == label
        assert entry["output"]["width"] == 32
    full = sheet_jobs(recipe)
    assert [label for label, _ in full] == labels
    assert all(job.params.size == 512 and job.params.iterations == 150 for _, job in full)  # the preset's
    assert full[1][1].params.strength == 0.5 and full[0][1].params.strength == 1.0
    # A file made for people names its inputs by file name only (as stylize's --embed names).
    assert all(entry["job"]["content"] == "photo.jpg" for entry in entries)

    with Image.open(out) as opened:
        sheet = np.asarray(opened.convert("RGB"))
    height, width = sheet.shape[:2]
    gap = 6  # max(6, 6 % of the tile)
    # Two columns of cells as wide as a tile's long edge, with a gap around each.
    assert width == 2 * 32 + 3 * gap
    assert height > 2 * tile_h + 3 * gap
    # In each column, two tiles' rows are painted across the whole tile (a caption's never are);
    # the margin at the right is background.
    for left in (gap, gap + 32 + gap):
        painted = (sheet[:, left : left + 32] < 250).any(axis=-1).all(axis=-1)
        assert int(painted.sum()) == 2 * tile_h
    assert (sheet[:, width - gap + 1 :] == 255).all()

    info = painterly("info", str(out))
    assert info.returncode == 0 and "Variations sheet: 4 tiles, 2 x 2" in info.stdout
    assert "Strength 0.5" in info.stdout


@pytest.mark.parametrize("count", ["3", "10", "eight"])
def test_a_bad_count_is_one_line_and_exit_2(inputs, tmp_path, count) -> None:
    out = tmp_path / "sheet.png"
    result = painterly(*_args(inputs, out, "--count", count))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("painterly:")
    assert not out.exists()


def test_an_existing_sheet_or_an_input_is_never_written(inputs, tmp_path) -> None:
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    result = painterly(*_args(inputs, out, "--count", "4"))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    before = inputs["photo"].read_bytes()
    result = painterly(*_args(inputs, inputs["photo"], "--count", "4", "--overwrite"))
    assert result.returncode == 2 and "input" in result.stderr
    assert inputs["photo"].read_bytes() == before


def test_a_tile_too_small_for_the_network_is_refused_before_any_work(inputs, tmp_path) -> None:
    args = _args(inputs, tmp_path / "s.png", "--count", "4")
    args[args.index("--size") + 1] = "8"
    result = painterly(*args)
    assert result.returncode == 2 and "tile size" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
