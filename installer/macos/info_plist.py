"""Info.plist settings for the macOS app bundle (imported by installer/painterly.spec on macOS)."""

from __future__ import annotations

import tomllib
from pathlib import Path

_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
VERSION = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]

INFO_PLIST: dict[str, object] = {
    "CFBundleName": "Painterly",
    "CFBundleDisplayName": "Painterly",
    "CFBundleIdentifier": "org.painterly.Painterly",
    "CFBundleShortVersionString": VERSION,
    "CFBundleVersion": VERSION,
    "CFBundleExecutable": "Painterly",
    # Retina rendering for Qt.
    "NSHighResolutionCapable": True,
    # Lets macOS pick the window's light/dark appearance itself.
    "NSRequiresAquaSystemAppearance": False,
    # arm64 wheels of torch need macOS 11+ (MPS: 12.3+).
    "LSMinimumSystemVersion": "12.3",
    "LSApplicationCategoryType": "public.app-category.graphics-design",
    # Open images dropped on the Dock icon / "Open With".
    "CFBundleDocumentTypes": [
        {
            "CFBundleTypeName": "Image",
            "CFBundleTypeRole": "Viewer",
            "LSHandlerRank": "Alternate",
            "LSItemContentTypes": ["public.png", "public.jpeg", "public.tiff", "org.webmproject.webp"],
        }
    ],
}
