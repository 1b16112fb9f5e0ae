"""Drops, pastes and the style list: every way an image gets in, and every way it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from uihelpers import bytes_mime, drop, file_mime, make_image

from ui.imports import ImageImporter
from ui.message_bar import Level
from ui.style_list import ROW_MIME


def test_file_url_dropped_on_the_photo_pane(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    assert drop(window.content_pane, file_mime(images["content"]))
    image = window.content_pane.image
    assert image is not None and image.path == images["content"]
    assert (image.width, image.height) == (40, 30)
    assert window.content_pane.name_label.full_text() == "photo.png"
    assert "40 × 30 px" in window.content_pane.caption.text()
    assert window.message_bar.isHidden()


def test_raw_image_data_dropped_on_each_pane_becomes_a_cached_png(
    make_window: Any, images: dict[str, Path], locations: Any
) -> None:
    window = make_window()
    data = images["style"].read_bytes()
    assert drop(window.content_pane, bytes_mime(data, "image/png"))
    content = window.content_pane.image
    assert content is not None
    assert content.path.parent.parent == locations.cache_dir / "imports"
    assert content.path.suffix == ".png" and content.path.is_file()
    assert drop(window.style_list, bytes_mime(images["style2"].read_bytes(), "image/jpeg"))
    assert len(window.style_list.rows) == 1
    assert window.style_list.rows[0].image.path.parent.parent == locations.cache_dir / "imports"


def test_qimage_data_from_a_browser_or_the_clipboard(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setImageData(QImage(str(images["content"])))
    assert drop(window.content_pane, mime)
    assert window.content_pane.image is not None
    assert window.content_pane.image.width == 40


def test_unsupported_file_gets_a_message_naming_it(make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4 not really")
    assert drop(window.content_pane, file_mime(text))
    assert window.content_pane.image is None
    assert window.message_bar.level is Level.ERROR
    assert "notes.txt" in window.message_bar.text
    assert drop(window.style_list, file_mime(pdf))
    assert not window.style_list.rows
    assert "scan.pdf" in window.message_bar.text
    assert "PDF" in window.message_bar.text


def test_broken_image_data_and_remote_urls_get_messages(make_window: Any) -> None:
    window = make_window()
    assert drop(window.style_list, bytes_mime(b"\x89PNG\r\n\x1a\n garbage", "image/png"))
    assert not window.style_list.rows
    assert window.message_bar.level is Level.ERROR
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/painting.jpg")])
    assert drop(window.content_pane, mime)
    assert "does not download" in window.message_bar.text


def test_unrelated_drag_is_refused(make_window: Any) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setData("application/x-something", QByteArray(b"1"))
    assert not drop(window.content_pane, mime)


def test_several_files_dropped_on_styles_become_several_styles(
    make_window: Any, images: dict[str, Path]
) -> None:
    window = make_window()
    assert drop(window.style_list, file_mime(images["style"], images["style2"]))
    assert [row.image.name for row in window.style_list.rows] == ["painting.png", "painting2.jpg"]
    assert window.style_list.blend() == (50.0, 50.0)  # each its share of the blend
    assert window.style_list.rows[0].share.text() == "50%"


def test_browser_temp_file_is_copied_because_the_browser_deletes_it(
    make_window: Any, tmp_path: Path, locations: Any
) -> None:
    temp_root = tmp_path / "tmp"
    (temp_root / ".org.chromium.Chromium.abc").mkdir(parents=True)
    dragged = make_image(temp_root / ".org.chromium.Chromium.abc" / "starry.png", seed=4)
    window = make_window(temp_dirs=[temp_root])
    assert drop(window.style_list, file_mime(dragged))
    kept = window.style_list.rows[0].image
    assert kept.path.parent.parent == locations.cache_dir / "imports"
    assert kept.name == "starry.png"
    dragged.unlink()
    assert kept.path.is_file()


def test_paste_from_the_clipboard(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    QGuiApplication.clipboard().setImage(QImage(str(images["style"])))
    window.commands.paste.trigger()
    assert window.content_pane.image is not None
    # One name everywhere: the pane, the job (so the recipe and History) and the file are the same.
    assert window.content_pane.image.name == "Pasted image.png"
    assert window.content_pane.image.path.name == "Pasted image.png"
    window.commands.paste_style.trigger()
    assert len(window.style_list.rows) == 1


def test_styles_reorder_by_buttons_and_by_dragging_and_can_be_removed(
    make_window: Any, images: dict[str, Path]
) -> None:
    window = make_window()
    styles = window.style_list
    drop(styles, file_mime(images["style"], images["style2"], images["content"]))
    names = lambda: [row.image.name for row in styles.rows]  # noqa: E731
    assert names() == ["painting.png", "painting2.jpg", "photo.png"]
    styles.rows[2].up.click()
    assert names() == ["painting.png", "photo.png", "painting2.jpg"]
    styles.rows[0].down.click()
    assert names() == ["photo.png", "painting.png", "painting2.jpg"]
    assert not styles.rows[0].up.isEnabled() and not styles.rows[2].down.isEnabled()
    # Drag the first row below the last one.
    mime = QMimeData()
    mime.setData(ROW_MIME, QByteArray(b"0"))
    window.show()
    bottom = styles._rows_widget.mapTo(styles, styles.rows[2].geometry().bottomLeft())
    bottom.setY(bottom.y() - 2)
    assert drop(styles, mime, bottom)
    assert names() == ["painting.png", "painting2.jpg", "photo.png"]
    styles.rows[1].remove.click()
    assert names() == ["painting.png", "photo.png"]
    styles.rows[0].slider.setValue(0)
    assert styles.rows[1].share.text() == "100%"


def test_the_blend_never_reaches_zero_everywhere(make_window: Any, images: dict[str, Path]) -> None:
    """The shares always add up to 100%: the last style at zero takes the whole blend, so Run stays on."""
    window = make_window()
    drop(window.content_pane, file_mime(images["content"]))
    drop(window.style_list, file_mime(images["style"], images["style2"]))
    assert window.run_button.isEnabled()
    rows = window.style_list.rows
    rows[0].slider.setValue(0)
    assert window.style_list.blend() == (0.0, 100.0)
    rows[1].slider.setValue(0)
    assert window.style_list.blend() == (100.0, 0.0)
    assert window.run_button.isEnabled()


def test_importer_revalidates_only_changed_files(tmp_path: Path) -> None:
    importer = ImageImporter(tmp_path / "cache", temp_dirs=[])
    path = make_image(tmp_path / "a.png")
    image = importer.from_path(path)
    assert importer.revalidate(image) is image
    make_image(path, 50, 20, seed=9)
    changed = importer.revalidate(image)
    assert (changed.width, changed.height) == (50, 20)
    path.unlink()
    try:
        importer.revalidate(changed)
    except Exception as error:  # noqa: BLE001
        assert "a.png" in str(error)
    else:
        raise AssertionError("a deleted file must not validate")
