"""Presets carry a look name and a group for the window, and each has an example thumbnail."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.presets import GROUP_BY_LOOK, GROUP_LITERATURE, PRESET_GROUPS, PRESETS, presets_by_group

THUMBNAILS = Path(__file__).resolve().parents[2] / "resources" / "presets"


def test_every_preset_has_a_known_group_and_a_name() -> None:
    for preset in PRESETS.values():
        assert preset.group in PRESET_GROUPS
        assert preset.display_name
    grouped = [p.name for _, presets in presets_by_group() for p in presets]
    assert sorted(grouped) == sorted(PRESETS)


def test_by_look_names_and_literature_titles() -> None:
    assert PRESETS["default"].display_name == "Balanced"
    assert PRESETS["instant"].display_name == "Instant"
    assert PRESETS["bold-texture"].display_name == "Bold texture"
    assert PRESETS["faithful-photo"].display_name == "Faithful photo"
    by_look = {"default", "bold-texture", "faithful-photo", "instant"}
    assert {p.name for p in PRESETS.values() if p.group == GROUP_BY_LOOK} == by_look
    literature = {"gatys2016", "tf-matconvnet", "deeplearning-ai", "pytorch-udacity", "tf-tutorial"}
    assert {p.name for p in PRESETS.values() if p.group == GROUP_LITERATURE} == literature
    for name in literature:
        assert PRESETS[name].display_name == PRESETS[name].title


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_a_thumbnail_that_decodes(name: str) -> None:
    path = THUMBNAILS / f"{name}.png"
    assert path.is_file(), f"{path} missing: run benchmarks/preset_thumbnails.py"
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        assert max(image.size) <= 128 and min(image.size) > 0


def test_the_looks_differ_from_balanced_the_way_their_names_say() -> None:
    names = ("default", "bold-texture", "faithful-photo")
    balanced, bold, faithful = (PRESETS[name].params for name in names)
    assert bold.effective_style_weight > balanced.effective_style_weight and bold.style_scale > 1
    assert faithful.effective_style_weight < balanced.effective_style_weight
    assert faithful.colors.value == "photo"
