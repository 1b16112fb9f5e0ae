"""Export: the JPEG/WebP quality reaches the file, the privacy choice decides what the file embeds
(file names only by default, full paths, or no recipe), the dialog says what, and "Show in folder"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtGui import QDesktopServices
from uihelpers import FakePrompter, load_inputs, tiny_params, wait_for_run

from engine.errors import InputError
from engine.metadata import read_recipe
from engine.recipe import Embed
from ui.export import ExportOptions
from ui.message_bar import Level


def _finished_window(make_window: Any, images: dict[str, Path], qtbot: Any) -> Any:
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, size=96)  # large enough for JPEG quality to show in the file size
    window.start_run()
    wait_for_run(qtbot, window)
    assert window.history.entries, window.message_bar.text
    return window


class ChoosingPrompter(FakePrompter):
    """Answers the Save dialog as an artist would: a name, a format, and the export's choices."""

    def __init__(self) -> None:
        super().__init__()
        self.quality: int | None = None
        self.embed: Embed | None = None

    def save_file(
        self, title: str, suggested: Path, filters: list[str], selected: str, options: Any = None
    ) -> tuple[Path | None, str]:
        assert isinstance(options, ExportOptions)
        if self.quality is not None:
            options.quality_slider.setValue(self.quality)
        if self.embed is not None:
            options.embed.setCurrentIndex(options.embed.findData(self.embed.value))
        return super().save_file(title, suggested, filters, selected, options)


@pytest.fixture
def prompter() -> ChoosingPrompter:
    return ChoosingPrompter()


def test_jpeg_and_webp_quality_reach_the_file(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: ChoosingPrompter, tmp_path: Path
) -> None:
    window = _finished_window(make_window, images, qtbot)
    sizes: dict[tuple[str, int], int] = {}
    tables: dict[int, int] = {}
    for quality in (95, 20):
        prompter.quality = quality
        for suffix, chosen in ((".jpg", "JPEG image (*.jpg *.jpeg)"), (".webp", "WebP image (*.webp)")):
            target = tmp_path / f"q{quality}{suffix}"
            prompter.save_answer = (target, chosen)
            assert window.export_result() == target
            sizes[(suffix, quality)] = target.stat().st_size
        with Image.open(tmp_path / f"q{quality}.jpg") as jpeg:
            tables[quality] = sum(jpeg.quantization[0])  # coarser steps at lower quality
    assert window.settings.export_quality() == 20  # remembered for next time
    assert sizes[(".jpg", 20)] < sizes[(".jpg", 95)]
    assert sizes[(".webp", 20)] < sizes[(".webp", 95)]
    assert tables[20] > 2 * tables[95]
    # PNG is lossless: the quality setting does not change it.
    for name in ("a.png", "b.png"):
        prompter.quality = 20 if name == "a.png" else 95
        prompter.save_answer = (tmp_path / name, "PNG image (*.png)")
        window.export_result()
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_privacy_modes_embed_what_they_say(
    make_window: Any,
    images: dict[str, Path],
    qtbot: Any,
    prompter: ChoosingPrompter,
    tmp_path: Path,
    suffix: str,
) -> None:
    window = _finished_window(make_window, images, qtbot)
    chosen = {
        ".png": "PNG image (*.png)",
        ".jpg": "JPEG image (*.jpg *.jpeg)",
        ".webp": "WebP image (*.webp)",
    }
    folder = str(images["content"].parent)

    # The default: file names only, no folder anywhere in the recipe.
    prompter.save_answer = (tmp_path / f"names{suffix}", chosen.get(suffix, "TIFF image (*.tif *.tiff)"))
    names = window.export_result()
    assert names is not None and window.settings.export_embed() is Embed.NAMES
    recipe = read_recipe(names)
    text = json.dumps(recipe)
    assert folder not in text and str(tmp_path) not in text
    assert recipe["inputs"]["content"]["name"] == "photo.png" and recipe["job"]["content"] == "photo.png"
    assert "names" in window.message_bar.text or "file names" in window.message_bar.text

    prompter.embed = Embed.PATHS
    prompter.save_answer = (tmp_path / f"paths{suffix}", chosen.get(suffix, "TIFF image (*.tif *.tiff)"))
    paths = window.export_result()
    assert paths is not None and read_recipe(paths)["job"]["content"] == str(images["content"])
    assert window.settings.export_embed() is Embed.PATHS

    prompter.embed = Embed.NONE
    prompter.save_answer = (tmp_path / f"none{suffix}", chosen.get(suffix, "TIFF image (*.tif *.tiff)"))
    bare = window.export_result()
    assert bare is not None and bare.is_file()
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(bare)
    assert b"photo.png" not in bare.read_bytes()
    assert "without a recipe" in window.message_bar.text


def test_the_dialog_says_what_is_embedded_and_when_quality_matters(qtbot: Any) -> None:
    options = ExportOptions(80, Embed.NAMES)
    qtbot.addWidget(options)
    assert "file name and SHA-256" in options.embedded.text() and "no folders" in options.embedded.text()
    options.embed.setCurrentIndex(options.embed.findData("paths"))
    assert "full path" in options.embedded.text() and "user name" in options.embedded.text()
    options.embed.setCurrentIndex(options.embed.findData("none"))
    assert "no recipe" in options.embedded.text()
    assert all(options.embed.itemData(i, 3) for i in range(options.embed.count()))  # tooltips
    assert options.chosen_quality == 80 and options.quality_slider.value() == 80
    options.set_filter("PNG image (*.png)")
    assert not options.quality.isEnabled()
    options.set_filter("WebP image (*.webp)")
    assert options.quality.isEnabled() and "lossless" in options.quality.toolTip()


def test_the_real_save_dialog_holds_the_options(qtbot: Any, tmp_path: Path) -> None:
    from ui.prompts import EXPORT_FORMATS, save_dialog

    options = ExportOptions(90, Embed.NAMES)
    filters = [text for text, _, _ in EXPORT_FORMATS]
    dialog = save_dialog(
        None, "Export the painting", tmp_path / "photo-painterly-1.png", filters, filters[0], options
    )
    qtbot.addWidget(dialog)
    assert options.parent() is not None and options.isVisibleTo(dialog)
    assert not options.quality.isEnabled()  # PNG chosen
    dialog.selectNameFilter("JPEG image (*.jpg *.jpeg)")
    dialog.filterSelected.emit("JPEG image (*.jpg *.jpeg)")
    assert options.quality.isEnabled()


def test_show_in_folder_after_export_and_export_marks_the_entry(
    make_window: Any,
    images: dict[str, Path],
    qtbot: Any,
    prompter: ChoosingPrompter,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    window = _finished_window(make_window, images, qtbot)
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    entry = window.model.history[-1]
    assert not entry.exported
    target = tmp_path / "shown" / "painting.png"
    target.parent.mkdir()
    prompter.save_answer = (target, "PNG image (*.png)")
    assert window.export_entry(entry) == target
    assert entry.exported
    assert window.message_bar.level is Level.INFO
    action = window.message_bar._action
    assert action.text() == "Show in folder" and not action.isHidden()
    action.click()
    assert opened == [str(target.parent)]


def test_a_names_only_export_reopens_with_the_inputs_beside_it(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: ChoosingPrompter, tmp_path: Path
) -> None:
    window = _finished_window(make_window, images, qtbot)
    moved = tmp_path / "moved"
    moved.mkdir()
    prompter.save_answer = (moved / "result.png", "PNG image (*.png)")
    saved = window.export_result()
    assert saved is not None
    for name in ("photo.png", "painting.png"):
        (moved / name).write_bytes(images["content" if name == "photo.png" else "style"].read_bytes())
    fresh = make_window(restore_settings=False)
    fresh.open_recipe_file(saved)
    assert fresh.content_pane.image is not None and fresh.content_pane.image.path == moved / "photo.png"
    assert [image.path for image in fresh.style_list.images()] == [moved / "painting.png"]
    assert fresh.message_bar.level is Level.INFO, fresh.message_bar.text
