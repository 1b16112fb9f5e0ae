"""The painted regions: one grey mask per style, the brush that paints them and the undo of strokes.

No widgets here (the canvas and its tools are ``ui.mask_editor``). ``RegionMasks`` holds one
8-bit layer per style, keyed by the style row's ``region_id``, at the photo's proportions (its long
edge at most ``MASK_EDGE``: masks are scaled to the output by the engine, and a soft brush needs no
more). Every change is a ``QUndoCommand`` on its own ``QUndoStack``, holding the pixels before and
after over the rectangle it touched.

Painting one style's region takes the place of the others there (a pixel painted fully for the sky
is no longer the ground's), so regions painted next to each other partition the picture; the
eraser only lowers the region being painted, and what no region covers keeps the photo.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QRect, Signal, Slot
from PySide6.QtGui import QColor, QImage, QUndoCommand, QUndoStack

from engine.files import atomic_write
from engine.regions import load_mask, resized_weight

log = logging.getLogger(__name__)

# Long edge of the painted masks. A 2048 x 1536 layer is 3 MiB; the engine scales masks to every
# level, and brush edges are soft, so a finer mask would not show in the picture.
MASK_EDGE = 2048
# Colours of the regions, in the order styles take them: distinct on the photo and for the common
# forms of colour blindness (Okabe and Ito's palette, with the black replaced by white).
REGION_COLOURS = (
    "#e69f00",  # orange
    "#56b4e9",  # sky blue
    "#009e73",  # bluish green
    "#f0e442",  # yellow
    "#0072b2",  # blue
    "#d55e00",  # vermillion
    "#cc79a7",  # reddish purple
    "#ffffff",  # white
)
# Dabs along a stroke are this share of the brush's radius apart: closer changes nothing visible.
DAB_SPACING = 0.25
UNDO_LIMIT = 100


def mask_size(width: int, height: int, edge: int = MASK_EDGE) -> tuple[int, int]:
    """The painted masks' (width, height) for a photo of that size."""
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class Brush:
    """How a stroke paints: diameter in mask pixels, softness 0 (hard) .. 1 (all falloff), eraser."""

    size: float = 40.0
    softness: float = 0.5
    erase: bool = False


def dab_profile(radius: float, softness: float, cx: float, cy: float, shape: tuple[int, int]):
    """One round dab centred at (cx, cy) in pixel units (pixel (r, c) covers [c, c+1) x [r, r+1)):
    the rectangle it touches (QRect, clipped to ``shape``) and its coverage 0..1 there (float32).

    Inside (1 - softness) of the radius the dab is full; beyond, it falls off with a smoothstep to
    nothing at the radius. A hard brush still fades over one pixel, so its edge is antialiased.
    """
    height, width = shape
    radius = max(radius, 0.5)
    x0, x1 = max(0, math.floor(cx - radius)), min(width, math.ceil(cx + radius) + 1)
    y0, y1 = max(0, math.floor(cy - radius)), min(height, math.ceil(cy + radius) + 1)
    if x1 <= x0 or y1 <= y0:
        return QRect(), np.zeros((0, 0), np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    distance = np.sqrt(xs * xs + ys * ys) / radius
    ramp = max(min(1.0, max(softness, 0.0)), 1.0 / radius)
    t = np.clip((distance - (1.0 - ramp)) / ramp, 0.0, 1.0)
    profile = 1.0 - t * t * (3.0 - 2.0 * t)
    return QRect(x0, y0, x1 - x0, y1 - y0), profile.astype(np.float32)


def render_overlay(
    layers: Sequence[np.ndarray],
    colours: Sequence[QColor],
    opacity: float,
    out: np.ndarray,
    rect: QRect | None = None,
) -> None:
    """Composite the regions' colours into ``out`` (H x W x 4 uint8, premultiplied BGRA as Qt's
    ARGB32_Premultiplied lies in memory on little-endian machines) over ``rect`` (all of it: None)."""
    height, width = out.shape[:2]
    area = rect if rect is not None else QRect(0, 0, width, height)
    area = area.intersected(QRect(0, 0, width, height))
    if area.isEmpty():
        return
    rows = slice(area.top(), area.top() + area.height())
    cols = slice(area.left(), area.left() + area.width())
    shape = (area.height(), area.width())
    premultiplied = np.zeros((*shape, 3), np.float32)
    alpha = np.zeros(shape, np.float32)
    for layer, colour in zip(layers, colours, strict=True):
        cover = layer[rows, cols].astype(np.float32) * np.float32(opacity / 255.0)
        rgb = np.array([colour.blueF(), colour.greenF(), colour.redF()], np.float32)
        keep = 1.0 - cover
        premultiplied = premultiplied * keep[:, :, None] + cover[:, :, None] * rgb
        alpha = alpha * keep + cover
    out[rows, cols, :3] = np.clip(premultiplied * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[rows, cols, 3] = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)


class _Change(QUndoCommand):
    """Pixels of some layers over one rectangle, before and after a change."""

    def __init__(
        self,
        masks: RegionMasks,
        text: str,
        rect: QRect,
        before: dict[int, np.ndarray],
        after: dict[int, np.ndarray],
        applied: bool,
    ) -> None:
        super().__init__(text)
        self.masks, self.rect, self.before, self.after = masks, QRect(rect), before, after
        self._skip_redo = applied  # a stroke is painted as the pen moves; pushing must not repeat it

    def rekey(self, old: int, new: int) -> None:
        for pixels in (self.before, self.after):
            if old in pixels:
                pixels[new] = pixels.pop(old)

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.masks._put(self.after, self.rect)

    def undo(self) -> None:
        self.masks._put(self.before, self.rect)


class RegionMasks(QObject):
    """One grey layer per region (a style row's ``region_id``), the stroke being painted, and undo."""

    # The rectangle (mask pixels) whose pixels changed; emitted for every dab while painting.
    changed = Signal(QRect)
    # A change is complete (a stroke ended, a fill, an undo): the job's masks are different now.
    edited = Signal()
    resized = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._size = (0, 0)  # (width, height)
        self.layers: dict[int, np.ndarray] = {}
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self.undo_stack.indexChanged.connect(self._after_edit)
        self._stroke: _Stroke | None = None
        self.version = 0  # grows with every completed change
        self._written: dict[tuple[int, int], Path] = {}

    # ------------------------------------------------------------------ shape
    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def shape(self) -> tuple[int, int]:
        return self._size[1], self._size[0]

    def set_photo_size(self, width: int, height: int) -> None:
        """Fit the masks to a photo: a new size stretches what was painted (the history of strokes,
        drawn at the old size, is let go)."""
        size = mask_size(width, height)
        if size == self._size:
            return
        old = self._size
        self._size = size
        for key, layer in list(self.layers.items()):
            if old[0] and layer.any():
                weight = resized_weight(layer.astype(np.float32) / 255.0, size)
                self.layers[key] = np.round(weight * 255.0).astype(np.uint8)
            else:
                self.layers[key] = np.zeros(self.shape, np.uint8)
        self.undo_stack.clear()
        self.version += 1
        self.resized.emit()
        self.edited.emit()

    def layer(self, key: int) -> np.ndarray:
        """Region ``key``'s layer (H x W uint8, 255 = that style fully), created empty when new."""
        if key not in self.layers:
            self.layers[key] = np.zeros(self.shape, np.uint8)
        return self.layers[key]

    def painted(self, key: int) -> bool:
        layer = self.layers.get(key)
        return layer is not None and bool(layer.any())

    def any_painted(self, keys: Iterable[int] | None = None) -> bool:
        return any(self.painted(key) for key in (self.layers if keys is None else keys))

    def rekey(self, old: int, new: int) -> None:
        """Region ``old`` is now called ``new`` (its style's row was made anew): its layer and its
        strokes' undo go with it."""
        if old == new or old not in self.layers:
            return
        self.layers[new] = self.layers.pop(old)
        for index in range(self.undo_stack.count()):
            command = self.undo_stack.command(index)
            if isinstance(command, _Change):
                command.rekey(old, new)

    def forget(self, keys_kept: Iterable[int]) -> None:
        """Drop the layers of every region not in ``keys_kept`` (their strokes can no longer be undone)."""
        kept = set(keys_kept)
        gone = [key for key in self.layers if key not in kept]
        for key in gone:
            del self.layers[key]
        if gone:
            # Their strokes' undo would paint layers that no longer exist.
            self.undo_stack.clear()

    # ---------------------------------------------------------------- strokes
    @property
    def painting(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, key: int, brush: Brush, x: float, y: float, pressure: float = 1.0) -> None:
        """Start a stroke for region ``key`` at (x, y) in mask pixels; ``pressure`` 0..1 (a pen's)."""
        if self._size == (0, 0):
            return
        self.layer(key)
        self._stroke = _Stroke(key, brush, {k: layer.copy() for k, layer in self.layers.items()})
        self._dab(x, y, pressure)

    def stroke_to(self, x: float, y: float, pressure: float = 1.0) -> None:
        """Continue the stroke to (x, y): dabs a quarter of the brush's radius apart."""
        stroke = self._stroke
        if stroke is None or stroke.last is None:
            return
        (px, py, pp) = stroke.last
        radius = max(0.5, stroke.brush.size / 2 * _pressure_size(min(pp, pressure)))
        distance = math.hypot(x - px, y - py)
        steps = max(1, math.ceil(distance / max(1.0, radius * DAB_SPACING)))
        for step in range(1, steps + 1):
            t = step / steps
            self._dab(px + (x - px) * t, py + (y - py) * t, pp + (pressure - pp) * t)

    def end_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke.dirty.isEmpty():
            return
        text = "Erase" if stroke.brush.erase else "Paint"
        self._push(text, stroke.dirty, stroke.before, applied=True)

    def cancel_stroke(self) -> None:
        """Put back what the stroke in progress painted (the pen left the canvas oddly, Esc)."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke.dirty.isEmpty():
            return
        self._put({k: v[_slices(stroke.dirty)] for k, v in stroke.before.items()}, stroke.dirty)

    def _dab(self, x: float, y: float, pressure: float) -> None:
        stroke = self._stroke
        assert stroke is not None
        stroke.last = (x, y, pressure)
        radius = stroke.brush.size / 2 * _pressure_size(pressure)
        rect, profile = dab_profile(radius, stroke.brush.softness, x, y, self.shape)
        if rect.isEmpty():
            return
        amount = profile * np.float32(_pressure_opacity(pressure))
        where = _slices(rect)
        if stroke.brush.erase:
            layer = self.layers[stroke.key]
            np.minimum(layer[where], _to_level(1.0 - amount), out=layer[where])
        else:
            for key, layer in self.layers.items():
                if key == stroke.key:
                    np.maximum(layer[where], _to_level(amount), out=layer[where])
                else:
                    # Painted here for this style: the others give way by as much.
                    np.minimum(layer[where], _to_level(1.0 - amount), out=layer[where])
        stroke.dirty = stroke.dirty.united(rect)
        self.changed.emit(rect)

    # ------------------------------------------------------------ whole layers
    def fill(self, key: int) -> None:
        """Give region ``key`` every place the other regions leave free (all of it when none is painted)."""
        others = [layer for k, layer in self.layers.items() if k != key]
        taken = np.zeros(self.shape, np.int32)
        for layer in others:
            taken += layer
        free = np.clip(255 - taken, 0, 255).astype(np.uint8)
        self._replace("Fill", {key: np.maximum(self.layer(key), free)})

    def clear(self, key: int) -> None:
        self._replace("Clear", {key: np.zeros(self.shape, np.uint8)})

    def invert(self, key: int) -> None:
        """Region ``key`` everywhere it was not, and nowhere it was (the other regions stay)."""
        self._replace("Invert", {key: 255 - self.layer(key)})

    def load_layer(self, key: int, weight: np.ndarray, text: str = "Load mask") -> None:
        """Put a mask (float 0..1 at any size, scaled here) into region ``key``, as one undoable step."""
        resized = resized_weight(np.asarray(weight, np.float32), self._size)
        self._replace(text, {key: np.round(resized * 255.0).astype(np.uint8)})

    def set_layers(self, layers: dict[int, np.ndarray]) -> None:
        """Replace every layer at once without undo (a restored job brings its own masks)."""
        self.layers = {key: np.ascontiguousarray(layer, np.uint8) for key, layer in layers.items()}
        self.undo_stack.clear()
        self.version += 1
        self.changed.emit(QRect(0, 0, *self._size))
        self.edited.emit()

    def _replace(self, text: str, new: dict[int, np.ndarray]) -> None:
        if self._size == (0, 0):
            return
        before = {key: self.layer(key).copy() for key in new}
        changed = {k: v for k, v in new.items() if not np.array_equal(v, before[k])}
        if not changed:
            return
        whole = QRect(0, 0, *self._size)
        after = {key: np.ascontiguousarray(value, np.uint8) for key, value in changed.items()}
        self.undo_stack.push(_Change(self, text, whole, {k: before[k] for k in changed}, after, False))

    def _push(self, text: str, rect: QRect, before: dict[int, np.ndarray], applied: bool) -> None:
        where = _slices(rect)
        crops_before = {k: v[where].copy() for k, v in before.items() if k in self.layers}
        crops_after = {k: self.layers[k][where].copy() for k in crops_before}
        changed = [k for k in crops_before if not np.array_equal(crops_before[k], crops_after[k])]
        if not changed:
            return
        self.undo_stack.push(
            _Change(
                self, text, rect, {k: crops_before[k] for k in changed}, {k: crops_after[k] for k in changed},
                applied,
            )
        )  # fmt: skip

    def _put(self, pixels: dict[int, np.ndarray], rect: QRect) -> None:
        where = _slices(rect)
        for key, value in pixels.items():
            self.layer(key)[where] = value
        self.changed.emit(QRect(rect))

    @Slot(int)
    def _after_edit(self, _index: int = 0) -> None:
        self.version += 1
        self.edited.emit()

    # ------------------------------------------------------------------ files
    def png_bytes(self, key: int) -> bytes:
        """Region ``key`` as an 8-bit grey PNG."""
        from ui.qtutil import qimage_png_bytes

        return qimage_png_bytes(self.qimage(key))

    def qimage(self, key: int) -> QImage:
        layer = np.ascontiguousarray(self.layer(key))
        height, width = layer.shape
        return QImage(layer.data, width, height, width, QImage.Format.Format_Grayscale8).copy()

    def read_file(self, key: int, path: Path) -> None:
        """Load a mask file into region ``key`` (undoable); any problem is an ``InputError`` naming it."""
        self.load_layer(key, load_mask(path).weight, f"Load {path.name}")

    def save_file(self, key: int, path: Path, *, overwrite: bool) -> Path:
        """Save region ``key`` as an 8-bit grey PNG, atomically (engine.files): one channel, quickly
        compressed, so writing a 2048 px mask at the start of a run takes milliseconds."""
        picture = Image.fromarray(np.ascontiguousarray(self.layer(key), dtype=np.uint8))
        atomic_write(
            path, lambda stream: picture.save(stream, format="PNG", compress_level=1), overwrite=overwrite
        )
        return path

    def write_for_job(self, keys: Sequence[int], folder: Path) -> tuple[Path, ...]:
        """The regions of ``keys`` as mask files a job can read, one per style (empty: black).

        Named by their content in ``folder`` (``<sha256>.png``): a file once written never changes,
        so a history entry's job, an autosave or an exported recipe keeps naming the mask it ran
        with; the same mask is written once.
        """
        paths = []
        for key in keys:
            cache_key = (key, self.version)
            known = self._written.get(cache_key)
            if known is not None and known.is_file():
                paths.append(known)
                continue
            layer = np.ascontiguousarray(self.layer(key))
            digest = hashlib.sha256(layer.tobytes() + repr(layer.shape).encode()).hexdigest()[:24]
            path = _writable(folder) / f"mask-{digest}.png"
            if not path.is_file():
                self.save_file(key, path, overwrite=True)
            self._written[cache_key] = path
            paths.append(path)
        return tuple(paths)


@dataclass
class _Stroke:
    key: int
    brush: Brush
    before: dict[int, np.ndarray]
    dirty: QRect = field(default_factory=QRect)
    last: tuple[float, float, float] | None = None


def _pressure_size(pressure: float) -> float:
    # A light touch still leaves a quarter-width line: a pen's first contact reads near zero.
    return 0.25 + 0.75 * min(max(pressure, 0.0), 1.0)


def _pressure_opacity(pressure: float) -> float:
    return 0.25 + 0.75 * min(max(pressure, 0.0), 1.0)


def _to_level(amount: np.ndarray) -> np.ndarray:
    return np.clip(amount * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _slices(rect: QRect) -> tuple[slice, slice]:
    return slice(rect.top(), rect.top() + rect.height()), slice(rect.left(), rect.left() + rect.width())


_FALLBACK: list[Path] = []


def _writable(folder: Path) -> Path:
    """``folder``, created; else this session's temporary folder (a read-only cache)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".painterly-probe"
        probe.touch()
        probe.unlink()
        return folder
    except OSError as error:
        if not _FALLBACK:
            _FALLBACK.append(Path(tempfile.mkdtemp(prefix="painterly-masks-")))
            log.warning("cannot keep masks in %s (%s); using %s", folder, error, _FALLBACK[0])
        return _FALLBACK[0]
