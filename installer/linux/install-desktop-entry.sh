#!/usr/bin/env bash
# Register this unpacked Painterly folder with the desktop (menu entry + icon),
# for the current user only; no root needed.  Run it from the folder it sits in:
#   ./install-desktop-entry.sh            # install
#   ./install-desktop-entry.sh --remove   # undo
# The entry is the project's own resources/painterly.desktop, with Exec pointed here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
resources=$here/_internal/resources
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry=$data/applications/painterly.desktop
icons=$data/icons/hicolor
# (file in the bundle, size folder of the icon theme)
sizes=("painterly-256.png 256x256" "painterly.png 512x512")

if [[ ${1:-} == --remove ]]; then
    rm -f "$entry"
    for pair in "${sizes[@]}"; do rm -f "$icons/${pair#* }/apps/painterly.png"; done
    action=removed
else
    [[ -x $here/Painterly && -f $resources/painterly.desktop ]] || {
        echo "run this from an unpacked Painterly folder (no Painterly or _internal/resources here)" >&2
        exit 1
    }
    for pair in "${sizes[@]}"; do
        file=${pair% *} size=${pair#* }
        if [[ -f $resources/$file ]]; then
            mkdir -p "$icons/$size/apps"
            install -m 644 "$resources/$file" "$icons/$size/apps/painterly.png"
        fi
    done
    mkdir -p "$(dirname "$entry")"
    # Exec must be absolute: the folder is wherever the user unpacked it.  Quoted,
    # as the desktop-entry spec splits Exec on spaces.
    sed -e "s|^Exec=.*|Exec=\"$here/Painterly\" %F|" -e "s|^TryExec=.*||" \
        "$resources/painterly.desktop" > "$entry"
    chmod 644 "$entry"
    action=installed
fi
# Refresh the menu and icon caches where the tools exist (they are optional).
if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$data/applications" || true; fi
if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -q -t "$icons" || true; fi
echo "$action: $entry"
