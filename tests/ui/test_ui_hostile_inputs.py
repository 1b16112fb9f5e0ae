"""Bad files through every door of the window: each ends in one inert line in the message bar.

FIFOs, devices, folders, empty and damaged files, names that are not UTF-8 or that carry terminal
escapes, bidi overrides or HTML, names too long, images that claim 40 GB, and hostile recipes. None
may crash the window, hang its thread (a FIFO is watched by another process, see hostile.fifo_watch),
reach the user as a traceback, or be interpreted as markup or control characters.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile import ESCAPES, NOT_UTF8, fifo_watch, hostile_files, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QByteArray, QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, Qt
from PySide6.QtWidgets import QLabel, QWidget
from uihelpers import drop

from ui.app import load_files
from ui.imports import ImageImporter
from ui.message_bar import MAX_LINES, Level

ROOT = Path(__file__).resolve().parents[2]
STEP_SECONDS = 5.0  # a refusal is immediate; this only catches something reading far too much


def file_url(path: Path) -> QUrl:
    """The URL a file manager sends: the name's bytes percent-encoded, whatever they are."""
    encoded = urllib.parse.quote_from_bytes(os.fsencode(path), safe="/")
    return QUrl.fromEncoded(QByteArray(b"file://" + encoded.encode("ascii")))


def url_mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([file_url(path)])
    return mime


def _open_photo(window: Any, prompter: Any, path: Path) -> None:
    prompter.open_answers = [[path]]
    window.commands.open.trigger()


def _add_style(window: Any, prompter: Any, path: Path) -> None:
    prompter.open_answers = [[path]]
    window.commands.add_style.trigger()


def _drop_photo(window: Any, prompter: Any, path: Path) -> None:
    assert drop(window.content_pane, url_mime(path))


def _drop_style(window: Any, prompter: Any, path: Path) -> None:
    assert drop(window.style_list, url_mime(path))


def _paste_photo(window: Any, prompter: Any, path: Path) -> None:
    QGuiApplication.clipboard().setMimeData(url_mime(path))
    window.commands.paste.trigger()


def _paste_style(window: Any, prompter: Any, path: Path) -> None:
    QGuiApplication.clipboard().setMimeData(url_mime(path))
    window.commands.paste_style.trigger()


def _drop_text(window: Any, prompter: Any, path: Path) -> None:
    mime = QMimeData()
    mime.setText(f"{path}\n")
    assert drop(window.content_pane, mime)


def _command_line(window: Any, prompter: Any, path: Path) -> None:
    load_files(window, [path])


ROUTES: dict[str, Callable[[Any, Any, Path], None]] = {
    "open photo": _open_photo,
    "add style": _add_style,
    "drop on photo": _drop_photo,
    "drop on styles": _drop_style,
    "paste photo": _paste_photo,
    "paste style": _paste_style,
    "text drop": _drop_text,
    "command line": _command_line,
}
# A text drop names existing files by their text: a name that is not UTF-8 or holds a line break
# cannot be written that way, and one that does not exist is skipped ("nothing usable was dropped").
NO_TEXT_ROUTE = {"not-utf8", "escapes", "missing", "too-long-name"}


def assert_one_inert_line(window: Any, needle: str) -> str:
    bar = window.message_bar
    assert not bar.isHidden(), "no message"
    text = bar.text
    assert bar.level is Level.ERROR, text
    assert needle in text, text
    assert "\n" not in text, f"more than one line: {text!r}"
    assert text.isprintable(), repr(text)
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in text), repr(text)
    assert "Traceback" not in text and "Unexpected error" not in text, text
    assert bar._text.textFormat() == Qt.TextFormat.PlainText
    return text


def assert_no_markup_anywhere(window: QWidget) -> None:
    """No label may be left to guess HTML, and no tooltip may carry a raw tag from a file name."""
    for label in window.findChildren(QLabel):
        if "<" in label.text():
            assert label.textFormat() == Qt.TextFormat.PlainText, label.text()
    for widget in [window, *window.findChildren(QWidget)]:
        tip = widget.toolTip()
        assert "<img" not in tip and "<b>" not in tip, tip
    for index in range(window.history.list.count()):
        tip = window.history.list.item(index).toolTip()
        assert "<img" not in tip and "<b>" not in tip, tip


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    return hostile_files(tmp_path / "hostile")


@pytest.mark.parametrize(
    "kind",
    [
        "fifo",
        "dev-zero",
        "folder",
        "empty",
        "truncated",
        "text",
        "not-utf8",
        "escapes",
        "bidi",
        "long-name",
        "too-long-name",
        "huge",
        "html",
        "missing",
    ],
)
def test_a_bad_file_through_every_door_ends_in_one_line(
    make_window: Any,
    prompter: Any,
    bad_files: dict[str, tuple[Path, str]],
    images: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    window = make_window()
    path, needle = bad_files[kind]
    fifo = bad_files["fifo"][0]
    with caplog.at_level(logging.WARNING), fifo_watch(fifo):
        for route, act in ROUTES.items():
            if route == "text drop" and kind in NO_TEXT_ROUTE:
                continue
            window.message_bar.dismiss()
            started = time.monotonic()
            act(window, prompter, path)
            assert time.monotonic() - started < STEP_SECONDS, route
            assert_one_inert_line(window, needle)
            assert window.content_pane.image is None, route
            assert not window.style_list.rows, route
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert window.windowTitle() == "Painterly"
    assert_no_markup_anywhere(window)
    # The window goes on working.
    _open_photo(window, prompter, images["content"])
    assert window.content_pane.image is not None
    assert window.content_pane.name_label.full_text() == "photo.png"


def test_many_bad_files_at_once_stay_a_few_lines_of_sensible_width(
    make_window: Any, bad_files: dict[str, tuple[Path, str]]
) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setUrls([file_url(path) for path, _ in bad_files.values()])
    with fifo_watch(bad_files["fifo"][0]):
        assert drop(window.style_list, mime)
    full = window.message_bar.text.split("\n")
    assert len(full) == len(bad_files)
    assert all(line.isprintable() for line in full)
    shown = window.message_bar.shown_text.split("\n")
    assert len(shown) == MAX_LINES and "more" in shown[-1]
    assert max(len(word) for line in shown for word in line.split()) <= 73
    # A message full of long names still leaves the window a size that fits a laptop screen.
    window.show()
    assert window.minimumSizeHint().width() < 1400


def test_a_name_that_looks_like_html_is_shown_literally_and_never_loads_what_it_names(
    make_window: Any, prompter: Any, tmp_path: Path, qtbot: Any
) -> None:
    # Qt renders a label or tooltip as HTML when its text starts like a tag; an <img> in a file name
    # would then be loaded, and a FIFO would hang the window. '/' cannot be in a name; "&#47;" can.
    folder = tmp_path / "html"
    folder.mkdir()
    fifo = folder / "trap"
    os.mkfifo(fifo)
    src = str(fifo).replace("/", "&#47;")
    good = folder / f'<img src="{src}">.png'
    good.write_bytes(png_bytes())
    bad = folder / f'<img src="{src}"> broken.png'
    bad.write_bytes(b"junk")
    window = make_window()
    window.show()
    with fifo_watch(fifo):
        try:
            _open_photo(window, prompter, good)
            _add_style(window, prompter, good)
            assert window.content_pane.image is not None and len(window.style_list.rows) == 1
            assert window.content_pane.name_label.full_text() == good.name
            assert window.style_list.rows[0].name.full_text() == good.name
            window.grab()
            _drop_style(window, prompter, bad)
            assert_one_inert_line(window, bad.name)
            window.grab()
            qtbot.wait(50)
        finally:
            if any(label.textFormat() != Qt.TextFormat.PlainText for label in window.findChildren(QLabel)):
                # Broken: leave nothing that would read the FIFO again once it is no longer watched.
                for label in window.findChildren(QLabel):
                    label.clear()
    assert_no_markup_anywhere(window)


def test_names_with_escapes_and_bytes_that_are_not_utf8_load_and_show_escaped(
    make_window: Any, prompter: Any, tmp_path: Path
) -> None:
    window = make_window()
    folder = tmp_path / "odd"
    folder.mkdir()
    odd = folder / ESCAPES
    odd.write_bytes(png_bytes())
    latin = folder / NOT_UTF8
    latin.write_bytes(png_bytes(10, 10))
    assert drop(window.content_pane, url_mime(odd))
    assert window.content_pane.image is not None and window.content_pane.image.path == odd
    assert window.content_pane.name_label.full_text() == "a\\x1b]0;pwned\\x07\\x0ab.png"
    assert drop(window.style_list, url_mime(latin))
    assert window.style_list.rows[0].image.path == latin
    assert window.style_list.rows[0].name.full_text() == "bad\\udce9.png"
    assert window.message_bar.isHidden()
    assert_no_markup_anywhere(window)


def test_a_browser_drag_file_that_is_a_fifo_is_never_read(
    make_window: Any, tmp_path: Path, bad_files: dict[str, tuple[Path, str]]
) -> None:
    # Files straight in a temporary folder are copied (the browser deletes them): that copy must
    # not read a FIFO either.
    window = make_window(temp_dirs=[bad_files["fifo"][0].parent])
    with fifo_watch(bad_files["fifo"][0]):
        assert drop(window.content_pane, url_mime(bad_files["fifo"][0]))
    assert_one_inert_line(window, "pipe")


def test_a_photo_replaced_by_a_fifo_before_the_run_is_refused(
    make_window: Any, images: dict[str, Path], tmp_path: Path
) -> None:
    window = make_window()
    window.content_pane.set_image(window.importer.from_path(images["content"]))
    window.style_list.add_images([window.importer.from_path(images["style"])])
    images["content"].unlink()
    os.mkfifo(images["content"])
    with fifo_watch(images["content"]):
        window.start_run()
    assert not window.is_running
    assert "pipe" in window.message_bar.text and "Traceback" not in window.message_bar.text


def test_text_drop_with_nul_bytes_and_a_novel_of_lines_is_a_message(make_window: Any) -> None:
    window = make_window()
    mime = QMimeData()
    lines = ["/tmp/a\x00b.png", "/" + "z" * 5000, *(f"/nope/{i}" for i in range(5000))]
    mime.setText("\n".join(lines))
    started = time.monotonic()
    assert drop(window.content_pane, mime)
    assert time.monotonic() - started < STEP_SECONDS
    assert "Nothing usable" in window.message_bar.text


# -- recipes ---------------------------------------------------------------------------------------


def _open_recipe(window: Any, prompter: Any, path: Path) -> None:
    prompter.file_answer = path
    window.commands.open_recipe.trigger()


@pytest.mark.parametrize(
    "kind", ["fifo", "dev-zero", "folder", "empty", "truncated", "text", "escapes", "too-long-name", "huge"]
)
def test_open_recipe_of_a_bad_file_is_one_line(
    make_window: Any, prompter: Any, bad_files: dict[str, tuple[Path, str]], kind: str
) -> None:
    window = make_window()
    path, _ = bad_files[kind]
    with fifo_watch(bad_files["fifo"][0]):
        started = time.monotonic()
        _open_recipe(window, prompter, path)
        assert time.monotonic() - started < STEP_SECONDS
    assert_one_inert_line(window, "No recipe restored")


def _with_sidecar(folder: Path, name: str, text: str | bytes) -> Path:
    """A picture without an embedded recipe and a JSON sidecar holding ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / name
    image.write_bytes(png_bytes())
    sidecar = image.with_name(image.name + ".json")
    sidecar.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return image


def _recipe(content: str, styles: list[str], **extra: Any) -> dict[str, Any]:
    return {"recipe_version": 1, "job": {"content": content, "styles": styles, "params": {}}, **extra}


HOSTILE_RECIPES: dict[str, str | bytes] = {
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "deep object": '{"job":' * 50_000 + "1" + "}" * 50_000,
    "not an object": "[1, 2, 3]",
    "not json": "\x1b]0;pwned\x07 <img src=x> not json",
    "not utf-8": b"\xff\xfe{\x00}",
    "huge number": '{"job": {"content": "a.png", "styles": ["b.png"], "params": {"size": 1e999}}}',
    "nan": '{"job": {"content": "a.png", "styles": ["b.png"], "params": {"style_weight": NaN}}}',
    "wrong types": '{"job": {"content": 5, "styles": {"a": 1}, "params": []}}',
    "escapes in names": json.dumps(
        _recipe("\x1b]0;pwned\x07\nphoto.png", ["<img src=x>\u202egnp.png", "\x00nul.png"])
    ),
    "hostile input records": json.dumps(
        _recipe(
            "/nope/a.png",
            ["/nope/b.png"],
            inputs={"content": {"path": "/dev/zero"}, "styles": [{"path": "y" * 5000}]},
        )
    ),
    "inputs not a mapping": json.dumps(_recipe("/nope/a.png", ["/nope/b.png"], inputs=["x"])),
    "hostile params": json.dumps(
        {
            "job": {
                "content": "/nope/a.png",
                "styles": ["/nope/b.png"],
                "params": {"preset": "<b>x\x1b[2J", "weights": "\x1b]0;t\x07<img src=y>", "seed": "x"},
            }
        }
    ),
    "unknown keys": json.dumps(
        {"job": {"content": "/a.png", "styles": ["/b.png"], "params": {"\x1b]0;pwned\x07": 1}}}
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE_RECIPES))
def test_a_hostile_recipe_is_one_line_and_nothing_else(
    make_window: Any, prompter: Any, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    window = make_window()
    image = _with_sidecar(tmp_path / "recipes", "made.png", HOSTILE_RECIPES[kind])
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        _open_recipe(window, prompter, image)
        assert time.monotonic() - started < STEP_SECONDS
    bar = window.message_bar
    assert not bar.isHidden()
    assert "\n" not in bar.text and bar.text.isprintable(), repr(bar.text)
    assert "Unexpected error" not in bar.text and "Traceback" not in bar.text
    if bar.level is not Level.ERROR:
        # Settings restored, inputs missing: a warning naming them, inert.
        assert bar.level is Level.WARNING and "Restored every setting" in bar.text
    assert window.windowTitle() == "Painterly"
    assert_no_markup_anywhere(window)
    window.grab()


def test_a_recipe_whose_sidecar_is_a_fifo_is_refused(make_window: Any, prompter: Any, tmp_path: Path) -> None:
    window = make_window()
    folder = tmp_path / "sidecar"
    folder.mkdir()
    image = folder / "made.png"
    image.write_bytes(png_bytes())
    sidecar = folder / "made.png.json"
    os.mkfifo(sidecar)
    with fifo_watch(sidecar):
        _open_recipe(window, prompter, image)
    assert_one_inert_line(window, "pipe")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
recipes = st.fixed_dictionaries(
    {},
    optional={
        "recipe_version": json_values,
        "job": st.fixed_dictionaries(
            {},
            optional={
                "content": st.text(max_size=60) | json_values,
                "styles": st.lists(st.text(max_size=60), max_size=3) | json_values,
                "blend": st.lists(st.floats() | st.integers(), max_size=3) | json_values,
                "params": st.dictionaries(
                    st.sampled_from(["size", "iterations", "seed", "preset", "weights", "style_weight"])
                    | st.text(max_size=10),
                    json_values,
                    max_size=4,
                )
                | json_values,
            },
        ),
        "inputs": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=recipes)
def test_fuzzed_recipes_end_in_a_message(
    make_window: Any, prompter: Any, tmp_path: Path, recipe: Any
) -> None:
    window = getattr(test_fuzzed_recipes_end_in_a_message, "window", None)
    if window is None or window.prompter is not prompter:
        window = make_window()
        test_fuzzed_recipes_end_in_a_message.window = window  # type: ignore[attr-defined]
    window.message_bar.dismiss()
    image = _with_sidecar(tmp_path / "fuzz", "made.png", json.dumps(recipe, allow_nan=True))
    _open_recipe(window, prompter, image)
    bar = window.message_bar
    assert not bar.isHidden()
    assert bar.text.isprintable() and "\n" not in bar.text, repr(bar.text)
    assert "Unexpected error" not in bar.text, bar.text


def test_importer_refuses_without_reading(tmp_path: Path, bad_files: dict[str, tuple[Path, str]]) -> None:
    importer = ImageImporter(tmp_path / "cache", temp_dirs=[bad_files["fifo"][0].parent])
    with fifo_watch(bad_files["fifo"][0]):
        for kind in ("fifo", "dev-zero", "folder", "too-long-name", "missing"):
            path, needle = bad_files[kind]
            with pytest.raises(Exception, match=re.escape(needle)) as caught:
                importer.from_path(path)
            assert type(caught.value).__name__ == "InputError"


def test_command_line_names_that_are_not_utf8_or_hold_escapes(tmp_path: Path) -> None:
    # PySide6 crashed (SIGSEGV) building QApplication from an argv holding a name that is not UTF-8.
    folder = tmp_path / "cli"
    folder.mkdir()
    photo = folder / ESCAPES
    photo.write_bytes(png_bytes())
    junk = folder / NOT_UTF8
    junk.write_bytes(b"junk")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ui.app import create_application, create_window, load_files\n"
        "app = create_application(sys.argv)\n"
        "window = create_window(device_probe=None)\n"
        "load_files(window, [Path(a) for a in sys.argv[1:]])\n"
        "print('PHOTO:', window.content_pane.name_label.full_text())\n"
        "print('BANNER:', window.message_bar.text)\n"
        "window.close()\n"
        "window.shutdown()\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PAINTERLY_CONFIG_DIR=str(tmp_path / "config"))
    result = subprocess.run(
        [sys.executable, "-c", script, os.fsencode(photo), os.fsencode(junk)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    out = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")[-3000:]
    assert "PHOTO: a\\x1b]0;pwned\\x07\\x0ab.png" in out, out
    assert "BANNER: bad\\udce9.png: not an image" in out, out
    assert b"\x1b" not in result.stdout + result.stderr  # nothing reached the terminal raw
