#!/usr/bin/env bash
# Build the Linux application: dist/Painterly/ (PyInstaller one-folder) and
# dist/Painterly-<version>-linux-x86_64.tar.gz.
#
#   installer/build-linux.sh            # build (reuses build/venv when present)
#   PYTHON=python3.12 installer/build-linux.sh
#   PAINTERLY_NO_PRUNE=1 installer/build-linux.sh   # keep everything, to measure what pruning saves
#   PAINTERLY_NO_TARBALL=1 installer/build-linux.sh # skip the tarball (saves minutes while iterating)
#
# It makes its own virtual environment in build/venv (git ignores /build/)
# rather than using the developer's .venv: the bundle must hold exactly what
# `pip install .` resolves from pyproject.toml, nothing a developer added by hand.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

python=${PYTHON:-python3}
venv=build/venv

# Qt's X11 plugin needs these xcb helpers; PyInstaller bundles them only if this
# machine has them, and many desktops lack libxcb-cursor0 in particular.
for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxkbcommon-x11.so.0; do
    if ! ldconfig -p | grep -q "$lib"; then
        echo "warning: $lib is not installed, so the bundle will not carry it (see installer/README.md)" >&2
    fi
done

if [[ ! -x $venv/bin/python ]]; then
    echo "== creating $venv with $($python --version)"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" - <<'EOF'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"build/venv has Python {sys.version.split()[0]}; Painterly needs 3.11+ (set PYTHON=python3.11)")
EOF

echo "== installing Painterly and PyInstaller into $venv"
# torch comes from wherever pip's configuration points (on the build machine a
# local mirror, capped by its constraint file; elsewhere PyPI, whose Linux
# wheel is the CUDA build).  --force-reinstall --no-deps on the second line
# refreshes the painterly dist-info the bundle copies (version for the About box
# and recipes) without reinstalling torch.
"$venv/bin/python" -m pip install --quiet . "pyinstaller>=6.10,<7"
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps .
# pip builds the project in-tree; its leftovers are not part of the sources.
rm -rf build/lib build/bdist.* ./*.egg-info

echo "== PyInstaller"
start=$(date +%s)
"$venv/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/painterly.spec
echo "PyInstaller took $(( $(date +%s) - start )) s"

# The desktop-entry installer travels inside the folder, so an unpacked
# tarball can register itself with the desktop without the source tree (the
# entry and icons it installs are in _internal/resources/).
install -m 755 installer/linux/install-desktop-entry.sh dist/Painterly/install-desktop-entry.sh

echo "== bundle size"
du -sh dist/Painterly

if [[ -z ${PAINTERLY_NO_TARBALL:-} ]]; then
    version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("painterly"))')
    tarball=dist/Painterly-$version-linux-x86_64.tar.gz
    echo "== $tarball"
    # pigz uses both cores when it is installed; plain gzip otherwise.
    compressor=gzip
    command -v pigz >/dev/null && compressor=pigz
    tar -C dist -cf - Painterly | "$compressor" -6 > "$tarball"
    du -sh "$tarball"
fi
echo "== done: dist/Painterly/Painterly (window), dist/Painterly/painterly-cli (command line)"
