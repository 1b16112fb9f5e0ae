"""The session that lasts: History, the photo, the styles and the settings kept between starts,
deleted entries, the disk limit, the quit prompt, and the session as one .painterly file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from uihelpers import load_inputs, tiny_params, wait_for_picture, wait_for_run

from engine.metadata import read_recipe
from engine.records import StopReason
from ui.message_bar import Level
from ui.prompts import Prompter
from ui.session import Decision
from ui.session.archive import MANIFEST_NAME
from ui.session.entries import StoredEntry
from ui.session.manifest import FORMAT
from ui.settings import AppLocations
from ui.worker import Throttle

FAST = Throttle(preview=0.0, progress=0.0, engine_preview=0.0)


def _run(window: Any, qtbot: Any, **params: Any) -> Any:
    tiny_params(window, **params)
    window.start_run()
    wait_for_run(qtbot, window)
    return window.model.history[-1]


def _session_with_two_runs(make_window: Any, images: dict[str, Path], qtbot: Any) -> Any:
    window = make_window()
    load_inputs(window, images, styles=("style", "style2"))
    _run(window, qtbot, seed=11)
    _run(window, qtbot, seed=12, style_weight=3.5)
    window.session.write_manifest()
    assert window.session.store.flush()
    return window


def _kept(locations: AppLocations) -> dict[str, Any]:
    return json.loads((locations.data_dir / "session" / "session.json").read_text())


def test_the_session_is_restored_after_a_restart(
    make_window: Any, images: dict[str, Path], qtbot: Any, locations: AppLocations, prompter: Any
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    made = [entry.finished for entry in window.model.history]
    params = window.params_panel.params()
    blend = window.style_list.blend()
    window.close()
    assert prompter.chosen and prompter.chosen[-1][2][0] == "Keep for next time"
    assert not window.isVisible()
    window.shutdown()

    kept = _kept(locations)
    assert kept["format"] == FORMAT and [e["number"] for e in kept["entries"]] == [1, 2]
    assert (locations.data_dir / "session" / "results" / "2.png").is_file()

    again = make_window()
    assert again.model.history == []
    assert again.session.restore()
    assert again.content_pane.image is not None and again.content_pane.image.path == images["content"]
    assert [image.path for image in again.style_list.images()] == [images["style"], images["style2"]]
    assert again.style_list.blend() == blend
    assert again.params_panel.params() == params
    # Restoring put no step on the undo stack: the restored state is where undo starts.
    assert not again.edits.stack.canUndo()
    restored = again.model.history
    assert [entry.number for entry in restored] == [1, 2]
    assert all(isinstance(entry, StoredEntry) and not entry.loaded for entry in restored)
    assert [item.text() for item in map(again.history.list.item, range(2))] == [e.title for e in restored]
    # The pixels come back (an 8-bit PNG: within half a step of 1/255) once they are needed.
    for original, entry in zip(made, restored, strict=True):
        assert np.abs(entry.finished.image - original.image).max() < 0.5 / 255 + 1e-6
        assert entry.finished.job.params == original.job.params
        assert entry.finished.iterations == original.iterations
        assert entry.image.width() == original.image.shape[1]
    # Numbering goes on after the restored runs.
    assert _run(again, qtbot).number == 3


def test_restored_inputs_come_from_the_sessions_copies_when_the_originals_are_gone(
    make_window: Any, images: dict[str, Path], qtbot: Any
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    window.close()
    window.shutdown()
    images["content"].unlink()
    images["style2"].unlink()
    again = make_window()
    again.session.restore()
    photo = again.content_pane.image
    assert (
        photo is not None
        and photo.name == "photo.png"
        and photo.path.is_relative_to(again.session.store.folder)
    )
    assert [image.name for image in again.style_list.images()] == ["painting.png", "painting2.jpg"]
    # An entry's job finds its inputs there too, so Continue and Run still work.
    entry = again.model.history[0]
    assert entry.job.content.is_file() and all(style.is_file() for style in entry.job.styles)
    again.restore_entry(entry)
    again.start_run()
    wait_for_run(qtbot, again)
    assert len(again.model.history) == 3, again.message_bar.text


def test_delete_an_entry_by_button_key_and_menu(
    make_window: Any,
    images: dict[str, Path],
    qtbot: Any,
    prompter: Any,
    locations: AppLocations,
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    _run(window, qtbot, seed=13)
    strip = window.history
    assert strip.delete_button.text() == "Delete" and "Delete" in strip.delete_button.toolTip()
    results = locations.data_dir / "session" / "results"

    strip.select(0)
    prompter.ask_answer = False  # never exported: asked first, and Cancel keeps it
    strip.delete_button.click()
    assert [e.number for e in window.model.history] == [1, 2, 3]
    assert prompter.asked[-1][0] == "Delete run #1?"
    prompter.ask_answer = True
    strip.delete_button.click()
    assert [e.number for e in window.model.history] == [2, 3]
    assert [e.number for e in strip.entries] == [2, 3]

    strip.select(0)
    strip.list.setFocus()
    window.show()
    qtbot.waitExposed(window)
    strip.list.setFocus()
    qtbot.keyClick(strip.list, Qt.Key.Key_Delete)
    assert [e.number for e in window.model.history] == [3]

    menu = strip.context_menu(window.model.history[0])
    chosen = [action.text() for action in menu.actions()]
    next(action for action in menu.actions() if action.text() == "Delete").trigger()
    assert "Delete" in chosen and window.model.history == []

    window.session.write_manifest()
    window.session.store.flush()
    assert _kept(locations)["entries"] == []
    assert list(results.iterdir()) == []


def test_the_disk_limit_drops_the_oldest_exported_first_then_unexported_with_a_message(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    prompter.save_answer = (tmp_path / "second.png", "PNG image (*.png)")
    window.export_entry(window.model.history[1])
    assert window.model.history[1].exported
    _run(window, qtbot, seed=14)
    window.session.store.flush()
    session = window.session
    usage = session.store.usage()
    entry_bytes = (session.store.folder / "results" / "2.png").stat().st_size

    # Just over the limit: the exported run #2 goes, quietly; #1 (never exported) stays.
    monkeypatch.setattr(type(session), "limit", property(lambda self: usage - entry_bytes // 2))
    window.message_bar.dismiss()
    dropped = session.trim()
    assert [e.number for e in dropped] == [2]
    assert [e.number for e in window.model.history] == [1, 3]
    assert window.message_bar.isHidden()

    # Far over: #1 goes too, and the message says it was never exported; the newest always stays.
    monkeypatch.setattr(type(session), "limit", property(lambda self: 1))
    dropped = session.trim()
    assert [e.number for e in dropped] == [1]
    assert [e.number for e in window.model.history] == [3]
    assert window.message_bar.level is Level.WARNING
    assert "#1, never exported" in window.message_bar.text and "Preferences" in window.message_bar.text

    # The setting itself: 2 GB unless chosen otherwise, from Edit > Preferences.
    monkeypatch.undo()
    assert window.settings.session_limit_mb() == 2048
    dialog = window.session.show_preferences()
    dialog.limit.setValue(0.5)
    dialog.accept()
    assert window.settings.session_limit_mb() == 512


def test_trimming_follows_a_write_that_goes_over_the_limit(
    make_window: Any, images: dict[str, Path], qtbot: Any, monkeypatch: Any
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    monkeypatch.setattr(type(window.session), "limit", property(lambda self: 1))
    _run(window, qtbot, seed=15)
    window.session.store.flush()
    qtbot.waitUntil(lambda: [e.number for e in window.model.history] == [3], timeout=5000)


@pytest.mark.parametrize("answer", [0, 1, 2])
def test_quitting_with_results_never_exported_asks_and_does_what_it_says(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, locations: AppLocations, answer: int
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    window.show()
    prompter.choose_answer = answer
    window.commands.quit.trigger()  # Ctrl+Q
    title, text, choices = prompter.chosen[-1]
    assert choices == ["Keep for next time", "Discard", "Cancel"]
    assert "2 results never exported" in text
    folder = locations.data_dir / "session"
    if answer == 2:
        assert window.isVisible() and window.session.decision is None
        assert len(window.model.history) == 2
        return
    assert not window.isVisible()
    window.shutdown()
    if answer == 0:
        assert window.session.decision is Decision.KEEP
        assert [e["number"] for e in _kept(locations)["entries"]] == [1, 2]
        again = make_window()
        assert again.session.restore() and len(again.model.history) == 2
    else:
        assert window.session.decision is Decision.DISCARD
        assert not folder.exists()
        again = make_window()
        assert not again.session.restore() and again.model.history == []
        assert again.content_pane.image is None


def test_nothing_is_asked_when_everything_was_exported_or_kept(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window = make_window()
    load_inputs(window, images)
    entry = _run(window, qtbot)
    prompter.save_answer = (tmp_path / "out.jpg", "JPEG image (*.jpg *.jpeg)")
    window.export_result()
    assert entry.exported
    window.show()
    window.close()  # the window's close button
    assert prompter.chosen == [] and not window.isVisible()
    window.shutdown()
    # Restored entries were decided on last time: quitting again does not ask about them.
    again = make_window()
    again.session.restore()
    again.show()
    again.close()
    assert prompter.chosen == [] and not again.isVisible()


@pytest.mark.parametrize("answer", [0, 1, 2])
def test_quitting_during_a_run_asks_and_keep_stops_it_keeping_its_picture(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, locations: AppLocations, answer: int
) -> None:
    window = make_window(throttle=FAST)
    load_inputs(window, images)
    tiny_params(window, iterations=2000)
    window.show()
    with wait_for_picture(qtbot, window):
        window.start_run()
    prompter.choose_answer = answer
    window.close()
    assert "A run is in progress" in prompter.chosen[-1][1]
    if answer == 2:
        assert window.is_running and window.isVisible()
        window.stop_run()
        wait_for_run(qtbot, window)
        return
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15_000)
    assert not window.is_running
    stopped = window.model.history[-1]
    assert stopped.finished.reason is StopReason.STOPPED
    window.shutdown()
    if answer == 0:
        again = make_window()
        again.session.restore()
        assert [e.finished.reason for e in again.model.history] == [StopReason.STOPPED]
        assert np.abs(again.model.history[0].finished.image - stopped.finished.image).max() < 0.5 / 255 + 1e-6
    else:
        assert not (locations.data_dir / "session").exists()


def test_the_real_prompt_offers_three_buttons_and_returns_the_one_pressed(
    qtbot: Any, monkeypatch: Any
) -> None:
    seen: list[list[str]] = []

    def press(box: QMessageBox, text: str) -> int:
        seen.append([button.text() for button in box.buttons()])
        next(button for button in box.buttons() if button.text() == text).click()
        return 0

    prompter = Prompter(None)
    for label, index in (("Keep for next time", 0), ("Discard", 1), ("Cancel", 2)):
        monkeypatch.setattr(QMessageBox, "exec", lambda box, label=label: press(box, label))
        assert (
            prompter.choose("Keep?", "text", ["Keep for next time", "Discard", "Cancel"], cancel=2) == index
        )
    # (Their order on screen is the platform's: Discard and Cancel sit where each platform puts them.)
    assert sorted(seen[0]) == sorted(["Keep for next time", "Discard", "Cancel"])
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)  # closed with Escape / the title bar
    assert prompter.choose("Keep?", "text", ["Keep for next time", "Discard", "Cancel"], cancel=2) == 2


# -- the session as one file -----------------------------------------------------------------------


def test_save_and_open_a_session_file(
    make_window: Any,
    images: dict[str, Path],
    qtbot: Any,
    prompter: Any,
    tmp_path: Path,
    locations: AppLocations,
) -> None:
    window = _session_with_two_runs(make_window, images, qtbot)
    made = [entry.finished for entry in window.model.history]
    params = window.params_panel.params()
    target = tmp_path / "moving" / "evening"
    target.parent.mkdir()
    prompter.save_answer = (target, "")
    saved = window.session.save_file()
    assert saved == target.with_name("evening.painterly") and saved.is_file()
    assert window.message_bar.level is Level.INFO and "Show in folder" in window.message_bar._action.text()

    with zipfile.ZipFile(saved) as archive:
        names = set(archive.namelist())
        manifest_text = archive.read(MANIFEST_NAME).decode()
    assert {"results/1.png", "results/2.png", "thumbnails/1.png", MANIFEST_NAME} <= names
    assert sum(name.startswith("inputs/") for name in names) == 3
    # For another computer: no folder of this one anywhere in the manifest or the results' recipes.
    assert str(tmp_path) not in manifest_text and "original" not in manifest_text
    with zipfile.ZipFile(saved) as archive:
        assert str(tmp_path).encode() not in archive.read("results/1.png")

    # Another computer: the inputs are gone from where they were, and its data folder is empty.
    for path in images.values():
        path.unlink()
    other = make_window(locations=AppLocations.under(tmp_path / "other-computer"))
    prompter.file_answer = saved
    assert other.session.open_file() is True
    assert other.content_pane.image is not None and other.content_pane.image.name == "photo.png"
    assert [image.name for image in other.style_list.images()] == ["painting.png", "painting2.jpg"]
    assert other.params_panel.params() == params
    assert [e.number for e in other.model.history] == [1, 2]
    for original, entry in zip(made, other.model.history, strict=True):
        assert np.abs(entry.finished.image - original.image).max() < 0.5 / 255 + 1e-6
        assert entry.job.content.is_file()
    # It is this computer's session now: kept, and it runs.
    other.start_run()
    wait_for_run(qtbot, other)
    assert len(other.model.history) == 3


def _zip(path: Path, members: dict[str, bytes], *, deflate: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _manifest(**changes: Any) -> bytes:
    data = {"format": FORMAT, "version": 1, "photo": None, "styles": [], "params": None, "entries": []}
    data.update(changes)
    return json.dumps(data).encode()


def _hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(png, "PNG")
    entry = {"number": 1, "created": 0, "recipe": {"job": {}}}
    bomb = tmp_path / "bomb.painterly"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_NAME, _manifest())
        archive.writestr("results/1.png", b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
    traversal = _zip(tmp_path / "traversal.painterly", {MANIFEST_NAME: _manifest(), "../../evil.png": b"x"})
    absolute = _zip(tmp_path / "absolute.painterly", {MANIFEST_NAME: _manifest(), "/tmp/evil.png": b"x"})
    wrong_sha = "0" * 64
    altered = _zip(
        tmp_path / "altered.painterly",
        {
            MANIFEST_NAME: _manifest(
                photo={"name": "p.png", "file": f"inputs/{wrong_sha}.png", "sha256": wrong_sha}
            ),
            f"inputs/{wrong_sha}.png": png.getvalue(),
        },
    )
    missing = _zip(tmp_path / "missing.painterly", {MANIFEST_NAME: _manifest(entries=[entry])})
    not_json = _zip(tmp_path / "notjson.painterly", {MANIFEST_NAME: b"{not json"})
    deep = _zip(
        tmp_path / "deep.painterly", {MANIFEST_NAME: b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"}
    )
    newer = _zip(tmp_path / "newer.painterly", {MANIFEST_NAME: _manifest(version=99)})
    sneaky_name = _zip(
        tmp_path / "sneaky.painterly",
        {MANIFEST_NAME: _manifest(photo={"name": "p", "file": "../../etc/passwd", "sha256": wrong_sha})},
    )
    no_zip = tmp_path / "photo.painterly"
    no_zip.write_bytes(png.getvalue())
    return {
        "bomb": (bomb, "zip bomb"),
        "traversal": (traversal, "not a name a session uses"),
        "absolute": (absolute, "not a name a session uses"),
        "altered": (altered, "does not match its fingerprint"),
        "missing": (missing, "which it does not contain"),
        "not_json": (not_json, "manifest is damaged"),
        "deep": (deep, "manifest is damaged"),
        "newer": (newer, "newer Painterly"),
        "sneaky": (sneaky_name, "not one Painterly writes"),
        "no_zip": (no_zip, "not a ZIP archive"),
        "folder": (tmp_path, "is a folder"),
    }


def test_a_hostile_session_file_is_refused_in_one_line_and_changes_nothing(
    make_window: Any, images: dict[str, Path], qtbot: Any, tmp_path: Path
) -> None:
    window = make_window()
    load_inputs(window, images)
    _run(window, qtbot)
    window.model.history[0].exported = True  # opening does not ask about it
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for name, (path, expected) in _hostile_files(hostile).items():
        window.message_bar.dismiss()
        assert window.session.open_file(path) is False, name
        text = window.message_bar.text
        assert window.message_bar.level is Level.ERROR, (name, text)
        assert text.startswith("Session not opened: ") and expected in text, (name, text)
        assert "\n" not in text and "Traceback" not in text and len(text) < 400, (name, text)
        assert len(window.model.history) == 1 and window.content_pane.image is not None, name
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    leftovers = [
        p for p in window.session.store.folder.parent.iterdir() if p.name.startswith(".painterly-opening")
    ]
    assert leftovers == []


# -- without a writable data folder ------------------------------------------------------------------


def test_without_a_data_folder_the_session_lives_in_memory_and_quitting_says_so(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    window = make_window(locations=AppLocations.under(blocker / "app"))
    assert not window.session.persistent
    load_inputs(window, images)
    entry = _run(window, qtbot)
    assert window.history.entries == [entry]
    # Saved as a file it still travels (the pictures are written at save time).
    prompter.save_answer = (tmp_path / "memory.painterly", "")
    saved = window.session.save_file()
    assert saved is not None and zipfile.is_zipfile(saved)
    other = make_window(locations=AppLocations.under(tmp_path / "elsewhere"))
    assert other.session.open_file(saved)
    assert np.abs(other.model.history[0].finished.image - entry.finished.image).max() < 0.5 / 255 + 1e-6
    recipe = read_recipe(other.model.history[0].picture)
    assert recipe["job"]["content"] == "photo.png"

    window.show()
    prompter.choose_answer = 1
    window.close()
    title, text, choices = prompter.chosen[-1]
    assert choices == ["Quit without keeping", "Cancel"] and "cannot be kept" in text
    assert window.isVisible()
    prompter.choose_answer = 0
    window.close()
    assert not window.isVisible()
    assert not (blocker / "app").exists()


def test_restoring_a_damaged_session_says_so_once_and_starts_empty(
    make_window: Any, locations: AppLocations
) -> None:
    folder = locations.data_dir / "session"
    folder.mkdir(parents=True)
    (folder / "session.json").write_text('{"format": "painterly-session", "version": 1, "entries": 5}')
    window = make_window()
    assert window.session.restore() is False
    assert window.message_bar.level is Level.WARNING
    assert "could not be restored" in window.message_bar.text and "\n" not in window.message_bar.text
    assert window.model.history == []


def test_the_models_limit_on_entries_says_when_it_lets_one_go(
    make_window: Any, images: dict[str, Path], qtbot: Any, monkeypatch: Any
) -> None:
    from ui import model as model_module
    from ui.session import controller

    monkeypatch.setattr(model_module, "HISTORY_LIMIT", 2)
    monkeypatch.setattr(controller, "HISTORY_LIMIT", 2)
    window = _session_with_two_runs(make_window, images, qtbot)
    window.message_bar.dismiss()
    _run(window, qtbot, seed=21)
    assert [e.number for e in window.model.history] == [2, 3]
    assert window.message_bar.level is Level.WARNING
    assert "at most 2 runs: run #1, never exported" in window.message_bar.text
