#!/usr/bin/env bash
# Build Painterly for macOS: dist/Painterly.app and dist/Painterly-<version>-macos-<arch>.dmg.
#
#   installer/macos/build-macos.sh
#   CODESIGN_IDENTITY="Developer ID Application: ..." installer/macos/build-macos.sh
#
# The macOS twin of installer/build-linux.sh (same spec, same data list); the
# spec adds the .app (PyInstaller BUNDLE, Info.plist from info_plist.py).
# Written from the Linux build; not run on a Mac by the project so far.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
python=${PYTHON:-python3.11}
venv=build/venv

[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
# PyPI's macOS arm64 torch wheel is the one to ship: it has the MPS (Metal)
# backend.  There is no CUDA on macOS; Intel Macs get CPU only.
"$venv/bin/python" -m pip install --quiet . "pyinstaller>=6.10,<7"
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps .
rm -rf build/lib build/bdist.* ./*.egg-info
"$venv/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/painterly.spec

app=dist/Painterly.app
# PyInstaller signs ad hoc, enough to run locally; a release for other Macs
# needs a Developer ID signature with the hardened runtime, then notarisation
# (xcrun notarytool submit ... --wait; xcrun stapler staple "$app").
if [[ -n ${CODESIGN_IDENTITY:-} ]]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$app"
fi

version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("painterly"))')
dmg=dist/Painterly-$version-macos-$(uname -m).dmg
staging=build/dmg
rm -rf "$staging" "$dmg"
mkdir -p "$staging"
cp -R "$app" "$staging/"
# The usual drag-to-install window: the app beside a link to /Applications.
ln -s /Applications "$staging/Applications"
hdiutil create -volname Painterly -srcfolder "$staging" -ov -format UDZO "$dmg"
echo "built $app and $dmg"
