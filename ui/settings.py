"""Where the studio keeps its settings, autosave and imported images; and the settings themselves.

Tests and portable installs point everything at one folder, either through
``AppLocations.under(folder)`` or the ``PAINTERLY_CONFIG_DIR`` environment
variable, so a test never touches the user's real settings.

None of these folders has to be writable: a read-only home, a full disk or a path that cannot be
created only means the studio keeps its settings in memory (``Settings.persistent`` is False),
turns crash recovery off and keeps pasted images in a temporary folder. ``AppLocations.ensure``
says which folders are unusable and why; the window says so once, in its message bar.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from engine.errors import InputError
from engine.files import TEMP_PREFIX, describe_os_error
from engine.params import StyleParams
from engine.recipe import EMBED_DEFAULT, Embed
from engine.text import printable

log = logging.getLogger(__name__)

# JPEG and WebP quality of an export (what the command line writes too: engine.results.OutputSpec).
DEFAULT_EXPORT_QUALITY = 95
# The kept session's disk, by default: forty 1024 px results as 16-bit PNGs are about 180 MB, so
# 2 GB keeps a long day's work (a few hundred results) without surprising anyone's disk.
DEFAULT_SESSION_LIMIT_MB = 2048
MIN_SESSION_LIMIT_MB = 50

ORGANIZATION = "Painterly"
APPLICATION = "Painterly"
CONFIG_ENV = "PAINTERLY_CONFIG_DIR"


@dataclass(frozen=True)
class AppLocations:
    # None: the platform's usual settings store (registry, plist, ~/.config).
    config_dir: Path | None
    # Autosave (crash recovery), the kept session (History, photo, styles) and the log.
    data_dir: Path
    # Copies of dropped or pasted image data, so every job input is a file a recipe can name.
    cache_dir: Path

    @classmethod
    def under(cls, root: str | Path) -> AppLocations:
        root = Path(root)
        return cls(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")

    @classmethod
    def from_environment(cls) -> AppLocations:
        root = os.environ.get(CONFIG_ENV)
        if root:
            return cls.under(root)
        data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        cache = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
        try:
            fallback = Path.home() / ".painterly"
        except RuntimeError:  # no HOME and no password entry: the folder checks will say what is wrong
            fallback = Path(tempfile.gettempdir()) / "painterly"
        return cls(
            config_dir=None,
            data_dir=Path(data) if data else fallback / "data",
            cache_dir=Path(cache) if cache else fallback / "cache",
        )

    def settings_file(self) -> Path:
        """The settings file: ours under ``config_dir``, else where Qt keeps this user's settings."""
        if self.config_dir is not None:
            return self.config_dir / "painterly.ini"
        return Path(_platform_settings().fileName())

    def ensure(self) -> list[FolderProblem]:
        """Create the folders; the ones that cannot be created or written to, with the reason.

        Never raises: a read-only home must not stop the studio from starting.
        """
        problems = []
        for role, folder in (
            (SETTINGS, self.settings_file().parent),
            (DATA, self.data_dir),
            (CACHE, self.cache_dir),
        ):
            reason = folder_problem(folder)
            if reason is not None:
                log.warning("cannot use %s for %s: %s", printable(folder), role, reason)
                problems.append(FolderProblem(role, folder, reason))
        return problems


# What each folder is for (FolderProblem.role).
SETTINGS = "settings"
DATA = "autosave"
CACHE = "imports"


@dataclass(frozen=True)
class FolderProblem:
    role: str  # SETTINGS, DATA or CACHE
    folder: Path
    reason: str  # "Read-only file system", "Permission denied", ...


def folder_problem(folder: Path) -> str | None:
    """None when ``folder`` exists (it is made if needed) and a file can be created in it; else why not.

    Creating a file is the real test: permission bits say nothing to root, nor about a read-only
    mount or a network share. The probe is an anonymous temporary file, so nothing is left behind.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=TEMP_PREFIX):
            pass
    except FileExistsError:
        return "a file of that name is in the way"
    except OSError as error:
        return describe_os_error(error)
    except ValueError:  # a NUL character in the path (a hand-edited environment variable)
        return "the folder name is not usable"
    return None


def storage_banner(problems: list[FolderProblem]) -> str:
    """One line for the message bar: what cannot be kept, where and why, and that all else works."""
    if not problems:
        return ""
    roles = {problem.role for problem in problems}
    lost = [text for role, text in ((SETTINGS, "settings"), (DATA, "crash-recovery copies")) if role in roles]
    consequences = [
        text
        for role, text in (
            (SETTINGS, "settings last until it closes"),
            (DATA, "autosave is off and History is not kept after it closes"),
            (CACHE, "pasted images go to a temporary folder"),
        )
        if role in roles
    ]
    what = " and ".join(lost).capitalize() + " cannot be saved" if lost else "Pasted images cannot be kept"
    then = (
        ", ".join(consequences[:-1]) + " and " + consequences[-1]
        if len(consequences) > 1
        else consequences[0]
    )
    first = problems[0]
    return f"{what} ({printable(first.folder)}: {printable(first.reason)}). Painterly works as usual; {then}."


def _platform_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


class Settings:
    """Typed access to the persisted settings.

    When the settings folder cannot be written (``persistent`` is False) the values still read from
    an existing file, and changes are kept in memory for this session: nothing is ever written.
    """

    def __init__(self, locations: AppLocations) -> None:
        path = locations.settings_file()
        self.problem = folder_problem(path.parent)
        self.persistent = self.problem is None
        if locations.config_dir is not None:
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qs = _platform_settings()
        self._memory: dict[str, Any] = {}

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def sync(self) -> bool:
        """Write the settings to disk; False (and a log line) when they could not be."""
        if not self.persistent:
            return False
        self._qs.sync()
        if self._qs.status() != QSettings.Status.NoError:
            log.warning("could not save the settings to %s", printable(self.file_name))
            return False
        return True

    def _value(self, key: str, default: Any = None) -> Any:
        if key in self._memory:
            return self._memory[key]
        return self._qs.value(key, default)

    def _set(self, key: str, value: Any) -> None:
        if self.persistent:
            self._qs.setValue(key, value)
        else:
            # QSettings would try (and fail) to write the file on its own at some later moment.
            self._memory[key] = value

    # -- raw values -----------------------------------------------------------
    def _bytes(self, key: str) -> QByteArray | None:
        value = self._value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def _str(self, key: str, default: str = "") -> str:
        value = self._value(key, default)
        return value if isinstance(value, str) else default

    # -- window ---------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def set_geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)

    def splitter_state(self, name: str) -> QByteArray | None:
        return self._bytes(f"window/splitter_{name}")

    def set_splitter_state(self, name: str, value: QByteArray) -> None:
        self._set(f"window/splitter_{name}", value)

    def advanced_open(self) -> bool:
        return self._str("window/advanced_open", "false") == "true"

    def set_advanced_open(self, value: bool) -> None:
        self._set("window/advanced_open", "true" if value else "false")

    # -- folders --------------------------------------------------------------
    def last_folder(self, kind: str) -> Path | None:
        """The folder the user last used for ``kind`` (content, style, export, recipe)."""
        text = self._str(f"folders/{kind}")
        try:
            return Path(text) if text and Path(text).is_dir() else None
        except (OSError, ValueError):  # a name too long, a NUL in a hand-edited file
            return None

    def set_last_folder(self, kind: str, folder: str | Path) -> None:
        folder = Path(folder)
        try:
            if folder.is_file():
                folder = folder.parent
        except (OSError, ValueError):
            return
        self._set(f"folders/{kind}", str(folder))

    # -- parameters -----------------------------------------------------------
    def last_params(self) -> StyleParams | None:
        text = self._str("params/last")
        if not text:
            return None
        try:
            data: Any = json.loads(text)
            return StyleParams.from_dict(data)
        except (ValueError, TypeError, InputError) as error:
            # Settings from an older or newer version must never stop the app from starting.
            log.warning("ignoring saved parameters: %s", error)
            return None

    def set_last_params(self, params: StyleParams) -> None:
        self._set("params/last", json.dumps(params.to_dict()))

    # -- export ---------------------------------------------------------------
    def export_quality(self) -> int:
        """JPEG and WebP quality, 1..100 (100: lossless WebP)."""
        return self._int("export/quality", DEFAULT_EXPORT_QUALITY, 1, 100)

    def set_export_quality(self, value: int) -> None:
        self._set("export/quality", str(int(value)))

    def export_embed(self) -> Embed:
        """What an exported file tells about its inputs (engine.recipe.Embed)."""
        try:
            return Embed(self._str("export/embed", EMBED_DEFAULT.value))
        except ValueError:
            return EMBED_DEFAULT

    def set_export_embed(self, value: Embed) -> None:
        self._set("export/embed", Embed(value).value)

    # -- the kept session -----------------------------------------------------
    def session_limit_mb(self) -> int:
        """How much disk the kept session (History's pictures, the inputs) may use, in MiB."""
        return self._int("session/limit_mb", DEFAULT_SESSION_LIMIT_MB, MIN_SESSION_LIMIT_MB, 10_000_000)

    def set_session_limit_mb(self, value: int) -> None:
        self._set("session/limit_mb", str(int(value)))

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        value = self._value(key, default)
        try:
            number = int(str(value))
        except ValueError:
            return default
        return min(max(number, low), high)
