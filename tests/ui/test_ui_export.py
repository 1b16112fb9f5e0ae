"""The window's export goes through the one writer of results: inputs are safe, dpi is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from engine import encode
from engine.metadata import read_recipe
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_run
from ui.prompts import EXPORT_FORMATS


def finished_run(make_window: Any, images: dict[str, Path], qtbot: Any, **params: Any) -> Any:
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, iterations=2, **params)
    window.start_run()
    wait_for_run(qtbot, window)
    assert window.history.entries
    return window


def test_export_over_the_photo_is_refused_and_the_photo_kept(make_window, images, qtbot, prompter) -> None:
    window = finished_run(make_window, images, qtbot)
    original = images["content"].read_bytes()
    prompter.save_answer = (images["content"], EXPORT_FORMATS[0][0])  # the dialog confirmed "replace"
    assert window.export_result() is None
    assert images["content"].read_bytes() == original
    assert "never writes over an input" in window.message_bar.text


def test_export_writes_the_print_resolution(make_window, images, qtbot, prompter, tmp_path) -> None:
    window = finished_run(make_window, images, qtbot, dpi=150.0)
    target = tmp_path / "print.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.export_result() == target
    with Image.open(target) as image:
        # PNG stores whole dots per metre: 150 dpi reads back as 150.012.
        assert abs(image.info["dpi"][0] - 150) < 0.05
    assert read_recipe(target)["job"]["params"]["dpi"] == 150.0


def test_a_failed_export_goes_to_a_recovery_file(make_window, images, qtbot, prompter, tmp_path, monkeypatch):
    window = finished_run(make_window, images, qtbot)
    real = encode.atomic_write

    def full_disk(path: Path, write, *, overwrite: bool) -> None:
        if path.name == "export.png":
            raise OSError(28, "No space left on device")
        real(path, write, overwrite=overwrite)

    monkeypatch.setattr(encode, "atomic_write", full_disk)
    prompter.save_answer = (tmp_path / "export.png", EXPORT_FORMATS[0][0])
    saved = window.export_result()
    assert saved is not None and saved.name.startswith("export.recovered-") and saved.exists()
    assert "No space left" in window.message_bar.text and saved.name in window.message_bar.text
