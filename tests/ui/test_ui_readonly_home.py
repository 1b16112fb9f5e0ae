"""A home (or settings folder) that cannot be written: the studio starts, says so once, works in memory.

Three ways to make a folder unusable, so the tests mean something whoever runs them: a path whose
parent is a regular file (mkdir fails with ENOTDIR, even for root), permission bits (only when not
root: root writes anywhere), and, when the suite runs as root, a real unprivileged user in a
subprocess facing a home owned by root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication, QImage
from uihelpers import load_inputs, tiny_params, wait_for_run

from engine.params import StyleParams
from ui.imports import ImageImporter
from ui.message_bar import Level
from ui.settings import CACHE, DATA, SETTINGS, AppLocations, FolderProblem, Settings, storage_banner
from ui.worker import Throttle

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def blocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A regular file where the home folder should be: nothing below it can ever be created."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("HOME", str(blocker))
    monkeypatch.setenv("PAINTERLY_CONFIG_DIR", str(blocker / "painterly"))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(blocker / name.lower()))
    return blocker


@pytest.fixture
def readonly_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home folder with write permission taken away (meaningful only when not root)."""
    if IS_ROOT or os.name == "nt":
        pytest.skip("permission bits do not stop root (the ENOTDIR and unprivileged-user tests cover it)")
    home = tmp_path / "home"
    (home / "painterly" / "config").mkdir(parents=True)
    settings = Settings(AppLocations.under(home / "painterly"))
    settings.set_last_params(StyleParams(seed=77))
    assert settings.sync()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PAINTERLY_CONFIG_DIR", str(home / "painterly"))
    for folder in (home / "painterly" / "config", home / "painterly", home):
        folder.chmod(0o555)
    yield home
    for folder in (home, home / "painterly", home / "painterly" / "config"):
        folder.chmod(0o755)


@pytest.fixture(autouse=True)
def _keep_excepthook() -> Iterator[None]:
    previous = sys.excepthook
    yield
    sys.excepthook = previous


def _window(qtbot: Any, prompter: Any, tiny_weights: Any, **options: Any) -> Any:
    """The window as ``python main.py`` builds it: locations from the environment."""
    from ui.app import create_window

    window = create_window(
        None,
        prompter=prompter,
        weights_factory=lambda: tiny_weights,
        temp_dirs=[],
        device_probe=None,
        **options,
    )
    qtbot.addWidget(window)
    return window


def _assert_storage_banner(window: Any) -> str:
    bar = window.message_bar
    assert not bar.isHidden()
    assert bar.level is Level.WARNING
    text = bar.text
    assert "cannot be saved" in text and "Painterly works as usual" in text, text
    assert "\n" not in text and text.isprintable()
    assert "Traceback" not in text
    assert window.storage_label is not None and not window.storage_label.isHidden()
    return text


def test_starts_says_so_once_and_keeps_working_when_no_folder_can_be_made(
    qtbot: Any, prompter: Any, tiny_weights: Any, warm_engine: None, blocked: Path, tmp_path: Path
) -> None:
    window = _window(qtbot, prompter, tiny_weights)
    try:
        assert {p.role for p in window.storage_problems} == {SETTINGS, DATA, CACHE}
        text = _assert_storage_banner(window)
        assert str(blocked / "painterly") in text and "Not a directory" in text
        assert "settings last until it closes" in text and "autosave is off" in text
        assert not window.settings.persistent and not window.autosave_enabled

        # Said once: settings written in the session are kept in memory without another word.
        window.message_bar.dismiss()
        window.params_panel.set_params(StyleParams(seed=1234))
        window.save_settings()
        window.settings.set_last_folder("content", tmp_path)
        assert window.settings.last_folder("content") == tmp_path
        assert window.settings.last_params() == window.params_panel.last_valid
        assert window.message_bar.isHidden()

        # A pasted image needs a file the engine can read: a temporary folder stands in for the cache.
        image = QImage(24, 16, QImage.Format.Format_RGB888)
        image.fill(0x336699)
        QGuiApplication.clipboard().setImage(image)
        window.commands.paste.trigger()
        pasted = window.content_pane.image
        assert pasted is not None, window.message_bar.text
        assert pasted.path.is_file() and not pasted.path.is_relative_to(blocked)
        assert pasted.path.is_relative_to(Path(tempfile.gettempdir()))

        window.close()  # the close path saves settings: a no-op here, never an exception
    finally:
        window.shutdown()
        shutil.rmtree(window.importer._fallback or tmp_path / "none", ignore_errors=True)
    assert blocked.is_file()


def test_a_run_without_a_data_folder_takes_no_autosave(
    make_window: Any, images: dict[str, Path], qtbot: Any, blocked: Path, caplog: pytest.LogCaptureFixture
) -> None:
    window = make_window(
        locations=AppLocations.under(blocked / "app"),
        autosave_interval=0.0,
        throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0),
    )
    assert not window.autosave_enabled
    given: list[Any] = []
    start = window.model.start

    def recording_start(job: Any, snapshotter: Any = None) -> None:
        given.append(snapshotter)
        start(job, snapshotter)

    window.model.start = recording_start
    load_inputs(window, images)
    tiny_params(window)
    window.start_run()
    wait_for_run(qtbot, window)
    assert given == [None]
    assert window.history.entries, window.message_bar.text
    assert not [r for r in caplog.records if "autosave" in r.getMessage().lower() and r.exc_info]


def test_settings_in_a_folder_that_cannot_be_written_read_what_is_there_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locations = AppLocations.under(tmp_path / "portable")
    saved = Settings(locations)
    saved.set_last_params(StyleParams(seed=5))
    assert saved.sync()
    ini = Path(saved.file_name)
    before = ini.read_bytes()
    # As on a read-only mount: the folder exists and its file reads, but nothing can be created.
    monkeypatch.setattr("ui.settings.folder_problem", lambda folder: "Read-only file system")
    settings = Settings(locations)
    assert not settings.persistent and settings.problem == "Read-only file system"
    assert settings.last_params() == StyleParams(seed=5)
    settings.set_last_params(StyleParams(seed=6))
    settings.set_advanced_open(True)
    assert settings.last_params() == StyleParams(seed=6) and settings.advanced_open()
    assert settings.sync() is False
    del settings
    assert ini.read_bytes() == before


def test_permission_denied_home(
    qtbot: Any, prompter: Any, tiny_weights: Any, warm_engine: None, readonly_home: Path
) -> None:
    window = _window(qtbot, prompter, tiny_weights)
    try:
        assert {p.role for p in window.storage_problems} == {SETTINGS, DATA, CACHE}
        assert "Permission denied" in _assert_storage_banner(window)
        # What was saved before the folder became read-only still applies.
        assert window.params_panel.last_valid.seed == 77
        window.close()
    finally:
        window.shutdown()
    assert not (readonly_home / "painterly" / "data").exists()


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_an_unprivileged_user_with_a_home_owned_by_root(tmp_path: Path) -> None:
    # The real thing: a user who may not write to their home. Runs the window in a subprocess as
    # 'nobody' with HOME (and the platform's config, data and cache folders) in a root-owned folder.
    base = Path(tempfile.mkdtemp(prefix="painterly-ro-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir()
        script = (
            "import sys\n"
            "from ui.app import create_application, create_window\n"
            "app = create_application(sys.argv[:1])\n"
            "window = create_window(device_probe=None)\n"
            "app.processEvents()\n"
            "print('BANNER:', window.message_bar.text)\n"
            "print('PERSISTENT:', window.settings.persistent)\n"
            "window.close()\n"
            "window.shutdown()\n"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHONPATH": str(ROOT),
        }
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c"]
        # A checkout inside a private folder (mktemp -d makes it 0700) cannot be read by 'nobody' at all.
        readable = f"open({str(ROOT / 'ui' / 'app.py')!r}).close()"
        probe = subprocess.run([*as_nobody, readable], env=env, capture_output=True, timeout=60)
        if probe.returncode != 0:
            pytest.skip("the unprivileged user cannot read this checkout (or run this Python)")
        result = subprocess.run(
            [*as_nobody, script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0 and "Permission denied" in result.stderr and "python" in result.stderr:
            pytest.skip(f"the unprivileged user cannot run this Python: {result.stderr[-300:]}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "BANNER: Settings and crash-recovery copies cannot be saved" in result.stdout, result.stdout
        assert "Permission denied" in result.stdout
        assert "PERSISTENT: False" in result.stdout
        assert list(home.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_python_main_starts_with_an_unusable_config_folder(blocked: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PAINTERLY_QUIT_AFTER_MS="300")
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "cannot use" in result.stderr  # the log says which folder, once
    assert blocked.is_file()


def test_the_cache_failing_later_falls_back_to_a_temporary_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    importer = ImageImporter(cache, temp_dirs=[])
    cache.write_text("the cache folder was replaced by a file")
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    image.fill(0x112233)
    try:
        first = importer.from_qimage(image)
        assert first.path.is_file() and first.path.parent.parent == importer._fallback
        assert not importer.cache_usable
        again = importer.from_qimage(image)
        assert again.path == first.path
    finally:
        shutil.rmtree(importer._fallback or tmp_path / "none", ignore_errors=True)


@pytest.mark.parametrize(
    "roles",
    [{SETTINGS}, {DATA}, {CACHE}, {SETTINGS, DATA}, {SETTINGS, DATA, CACHE}],
)
def test_the_banner_is_one_line_naming_the_folder_and_what_is_lost(roles: set[str]) -> None:
    folder = Path("/home/artist/.config/\x1b]0;x\x07Painterly")
    order = [SETTINGS, DATA, CACHE]
    problems = [FolderProblem(role, folder, "Read-only file system") for role in order if role in roles]
    text = storage_banner(problems)
    assert "\n" not in text and text.isprintable()
    assert "\\x1b]0;x\\x07Painterly" in text and "Read-only file system" in text
    assert ("settings last until it closes" in text) == (SETTINGS in roles)
    assert ("autosave is off" in text) == (DATA in roles)
    assert ("temporary folder" in text) == (CACHE in roles)
    assert storage_banner([]) == ""
