"""--mask and --style-mask on the command line: bad masks are one line and exit 2 before any work;
a result records its masks with their SHA-256 and --continue goes on with them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def painterly(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "main.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("regions-cli")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:80]
    photo = np.stack([xx / 80, yy / 60, 0.4 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(folder / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / "painting.png")
    sky = np.zeros((30, 40), np.uint8)
    sky[:15] = 255
    Image.fromarray(sky).save(folder / "sky.png")
    Image.fromarray(255 - sky).save(folder / "ground.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "black.png")
    (folder / "notes.png").write_text("this is text, not a picture")
    return {p.stem: p for p in folder.iterdir()} | {"dir": folder}


def _stylize(inputs: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return painterly(
        "stylize", "--content", str(inputs["photo"]), "--style", str(inputs["painting"]), "--out", str(out),
        "--size", "40", "--iterations", "2", "--device", "cpu", "--quiet", *extra,
    )  # fmt: skip


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_mask_that_is_not_an_image_is_refused_in_one_line(inputs, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    line = _one_line(_stylize(inputs, out, "--mask", str(inputs["notes"])))
    assert "notes.png" in line and "not an image" in line
    assert not out.exists()


def test_masks_and_styles_must_pair_up(inputs, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    line = _one_line(_stylize(inputs, out, "--mask", str(inputs["sky"]), "--mask", str(inputs["ground"])))
    assert "2 masks for 1 style image" in line
    line = _one_line(
        _stylize(inputs, out, "--style-mask", str(inputs["sky"]), "--style-mask", str(inputs["sky"]))
    )
    assert "2 style masks for 1 style image" in line
    assert not out.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_mask_is_refused_without_blocking(inputs, tmp_path: Path) -> None:
    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    for flag in ("--mask", "--style-mask"):
        line = _one_line(_stylize(inputs, tmp_path / "out.png", flag, str(fifo)))
        assert "mask.png" in line and "FIFO" in line


def test_a_black_style_mask_is_refused(inputs, tmp_path: Path) -> None:
    line = _one_line(_stylize(inputs, tmp_path / "out.png", "--style-mask", str(inputs["black"])))
    assert "black.png" in line and "black everywhere" in line


def test_the_recipe_records_the_masks_and_their_hashes_and_continue_keeps_them(inputs) -> None:
    # Beside its inputs: a result records their file names only, and --continue looks there.
    out = inputs["dir"] / "sky-result.png"
    result = _stylize(inputs, out, "--mask", str(inputs["sky"]), "--style-mask", "none")
    assert result.returncode == 0, result.stderr
    recipe = json.loads(painterly("info", "--json", str(out)).stdout)
    sha = hashlib.sha256(inputs["sky"].read_bytes()).hexdigest()
    assert [entry["sha256"] for entry in recipe["inputs"]["masks"]] == [sha]
    assert recipe["job"]["masks"] == ["sky.png"] or recipe["job"]["masks"] == [str(inputs["sky"])]
    assert recipe["job"]["style_masks"] == [None]
    info = painterly("info", str(out)).stdout
    assert "mask 1" in info and sha in info
    # The photo half under the unpainted "ground" is the photo, untouched.
    with Image.open(out) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255
    with Image.open(inputs["photo"]) as photo:
        original = np.asarray(photo.convert("RGB").resize(picture.size, Image.Resampling.BICUBIC)) / 255
    assert np.abs(pixels[20:] - original[20:]).mean() < 0.02

    more = inputs["dir"] / "more.png"
    result = painterly(
        "stylize", "--continue", str(out), "--out", str(more), "--iterations", "1", "--device", "cpu",
        "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    again = json.loads(painterly("info", "--json", str(more)).stdout)
    assert [entry["sha256"] for entry in again["inputs"]["masks"]] == [sha]
