"""Where the studio keeps its settings, autosave and imported images; and the settings themselves.

Tests and portable installs point everything at one folder, either through
``AppLocations.under(folder)`` or the ``PAINTERLY_CONFIG_DIR`` environment
variable, so a test never touches the user's real settings.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from engine.errors import InputError
from engine.params import StyleParams

log = logging.getLogger(__name__)

ORGANIZATION = "Painterly"
APPLICATION = "Painterly"
CONFIG_ENV = "PAINTERLY_CONFIG_DIR"


@dataclass(frozen=True)
class AppLocations:
    # None: the platform's usual settings store (registry, plist, ~/.config).
    config_dir: Path | None
    # Autosave (crash recovery) and the log.
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
        fallback = Path.home() / ".painterly"
        return cls(
            config_dir=None,
            data_dir=Path(data) if data else fallback / "data",
            cache_dir=Path(cache) if cache else fallback / "cache",
        )

    def ensure(self) -> None:
        for folder in (self.config_dir, self.data_dir, self.cache_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)


class Settings:
    """Typed access to the persisted settings."""

    def __init__(self, locations: AppLocations) -> None:
        if locations.config_dir is not None:
            locations.config_dir.mkdir(parents=True, exist_ok=True)
            path = locations.config_dir / "painterly.ini"
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(
                QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
            )

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def sync(self) -> None:
        self._qs.sync()

    # -- raw values -----------------------------------------------------------
    def _bytes(self, key: str) -> QByteArray | None:
        value = self._qs.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def _str(self, key: str, default: str = "") -> str:
        value = self._qs.value(key, default)
        return value if isinstance(value, str) else default

    # -- window ---------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def set_geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    def set_window_state(self, value: QByteArray) -> None:
        self._qs.setValue("window/state", value)

    def splitter_state(self, name: str) -> QByteArray | None:
        return self._bytes(f"window/splitter_{name}")

    def set_splitter_state(self, name: str, value: QByteArray) -> None:
        self._qs.setValue(f"window/splitter_{name}", value)

    def advanced_open(self) -> bool:
        return self._str("window/advanced_open", "false") == "true"

    def set_advanced_open(self, value: bool) -> None:
        self._qs.setValue("window/advanced_open", "true" if value else "false")

    # -- folders --------------------------------------------------------------
    def last_folder(self, kind: str) -> Path | None:
        """The folder the user last used for ``kind`` (content, style, export, recipe)."""
        text = self._str(f"folders/{kind}")
        return Path(text) if text and Path(text).is_dir() else None

    def set_last_folder(self, kind: str, folder: str | Path) -> None:
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        self._qs.setValue(f"folders/{kind}", str(folder))

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
        self._qs.setValue("params/last", json.dumps(params.to_dict()))
