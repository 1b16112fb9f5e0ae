"""The parameters of one style-transfer job.

``StyleParams`` is the single source of truth for every knob: the command line
builds one from its flags, the window binds its controls to one, presets are
named instances of it, and every result (and every saved file's recipe)
carries the one it was made with.  Defaults are written here once; the
``default`` preset *is* ``StyleParams()``.

``StyleJob`` adds the inputs (content file, style files and their blend) to
make one request for the engine.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.layers import VGG19_LAYERS

log = logging.getLogger(__name__)


class Method(StrEnum):
    """How the picture is made."""

    OPTIMISE = "optimise"  # Gatys et al.: the pixels are optimised against VGG-19's features
    INSTANT = "instant"  # Ghiasi et al. 2017: one pass of a feed-forward network (engine.instant)


class ColorMode(StrEnum):
    """Whose colours the picture has (engine.colour)."""

    PAINTING = "painting"  # the painting's, with its texture (the paper's plain method)
    PHOTO = "photo"  # the photo's: luminance-only transfer
    MATCH = "match"  # the painting recoloured to the photo's palette before the run


class Optimizer(StrEnum):
    LBFGS = "lbfgs"
    ADAM = "adam"


class InitMode(StrEnum):
    CONTENT = "content"
    NOISE = "noise"
    IMAGE = "image"
    DRAFT = "draft"  # the instant draft at the first level's size


class Pooling(StrEnum):
    AVERAGE = "avg"
    MAX = "max"


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class Precision(StrEnum):
    """Precision of the network's forward/backward pass.

    Gram matrices and losses are always float32 (see engine.losses).
    """

    AUTO = "auto"  # float32 for now (see engine.device.network_dtype)
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class LossConvention(StrEnum):
    """How raw feature differences become loss numbers.

    Recipes differ in how they scale their losses, and their weights only
    mean what they meant in their source under the same scaling; so each
    preset names its convention (formulas in engine.losses.CONVENTIONS).
    ``NORMALIZED`` is ours: every term is a relative squared error, so a
    weight means the same at any image size and for any layer width.
    """

    NORMALIZED = "normalized"
    GATYS = "gatys"  # Gatys et al. 2016: 1/2 sum for content, 1/(4 N^2 M^2) sum for style
    DEEPLEARNING_AI = "deeplearning-ai"  # 1/(4 nH nW nC) content, Gatys' style term
    UDACITY = "udacity"  # mean content; mean Gram error / (d h w) for style
    KERAS = "keras"  # TensorFlow tutorial: means of squared errors, Gram / (H W)


class StyleStatistic(StrEnum):
    """Which statistics of a painting's features the style terms match (engine.losses)."""

    GRAM = "gram"  # Gatys et al.: Gram matrices (second raw moments)
    MEAN_COVARIANCE = "mean-covariance"  # Wasserstein-2 between mean-and-covariance Gaussians


class TVNorm(StrEnum):
    """How neighbouring-pixel differences are penalised by the total-variation term."""

    ISOTROPIC = "isotropic"  # mean of sqrt(dx^2 + dy^2): smooths flat areas, keeps edges (ours)
    SQUARED_MEAN = "squared-mean"  # mean(dx^2) + mean(dy^2) (the 004 course report)
    ABS_SUM = "abs-sum"  # sum |dx| + sum |dy| (tf.image.total_variation)


LayerWeights = tuple[tuple[str, float], ...]

SIZE_LIMITS = (16, 16384)
ITERATION_LIMITS = (1, 100_000)
WEIGHT_LIMIT = 1e15


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut short (a recipe may hold megabytes)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long for Python to print
        text = f"<a number of about {value.bit_length() * 0.30103:.0f} digits>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite_in(name: str, value: float, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {_shown(value)}") from None
    if not math.isfinite(number) or not (low <= number <= high):
        raise InputError(f"{name} must be a finite number between {low:g} and {high:g}, got {_shown(value)}")
    return number


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, got {_shown(value)}")
    if isinstance(value, int):
        # Exact: going through float would round seeds above 2**53.
        if not (low <= value <= high):
            raise InputError(f"{name} must be a whole number between {low} and {high}, got {_shown(value)}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {_shown(value)}") from None
    if not math.isfinite(number) or number != int(number) or not (low <= number <= high):
        raise InputError(f"{name} must be a whole number between {low} and {high}, got {_shown(value)}")
    return int(number)


def _layer_weights(name: str, value: Any) -> LayerWeights:
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = [tuple(item) for item in value]
    result = []
    for item in items:
        if len(item) != 2:
            raise InputError(f"{name}: each entry must be (layer, weight), got {item!r}")
        layer, weight = item
        if layer not in VGG19_LAYERS:
            raise InputError(
                f"{name}: unknown layer {layer!r}; layers are named like conv4_2, relu4_2, pool4"
            )
        result.append((str(layer), _finite_in(f"{name} weight of {layer}", weight, 0.0, WEIGHT_LIMIT)))
    if len({layer for layer, _ in result}) != len(result):
        raise InputError(f"{name}: a layer is listed twice")
    return tuple(result)


def _levels(value: Any) -> tuple[tuple[int, int], ...]:
    levels = []
    for item in value or ():
        try:
            size, iterations = item
        except (TypeError, ValueError):
            raise InputError(f"levels: each level must be (size, iterations), got {item!r}") from None
        levels.append(
            (
                _int_in("level size", size, *SIZE_LIMITS),
                _int_in("level iterations", iterations, *ITERATION_LIMITS),
            )
        )
    if any(b[0] < a[0] for a, b in itertools.pairwise(levels)):
        raise InputError("levels: sizes must grow from one level to the next")
    return tuple(levels)


def _enum(enum_type: type[StrEnum], name: str, value: Any) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_type)
        raise InputError(f"{name} must be one of {choices}, got {_shown(value)}") from None


# Strength -> the share of the recipe's style weight, read off a measurement so that the slider moves the
# picture evenly (benchmarks/strength_evenness.py --mode ratios, default preset, 192 px, tubingen x
# starry_night and hoovertowernight x the_scream; benchmarks/results/strength-evenness-ratios.jsonl). At
# each share below, the picture has gone that strength's fraction of the way from the photo to the
# full-strength picture, by the mean of three measures: its VGG distance from the photo (relu4_2), its
# colour difference from the photo (CIELAB Delta E) and how much of the style error (log) it removed.
# The earlier mapping, 100 ** (strength - 1), put the first quarter of that way below strength 0.01
# (a jump off the slider's left end) and 41-46 % below strength 0.25. Between the knots the share is
# interpolated geometrically (the look follows the logarithm of the weight), from 0 linearly. The shares
# are the geometric mean of the two pairs' (they differ by 1.1-1.8x); the first knot is extrapolated
# linearly from the smallest share measured (0.003: 15-20 % of the way). Measured before L-BFGS kept
# the picture in 0..1; a re-measurement with it clamped after each step moved the knots by 3-18 %,
# less than the pairs differ (benchmarks/results/strength-evenness-ratios-clamped.jsonl).
STRENGTH_SHARES: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.125, 0.002),
    (0.25, 0.0063),
    (0.375, 0.0184),
    (0.5, 0.0515),
    (0.625, 0.114),
    (0.75, 0.234),
    (0.875, 0.467),
    (1.0, 1.0),
)


def style_share(strength: float) -> float:
    """The share of a recipe's style weight at ``strength`` (0..1), from ``STRENGTH_SHARES``."""
    strength = min(max(strength, 0.0), 1.0)
    for (s0, share0), (s1, share1) in itertools.pairwise(STRENGTH_SHARES):
        if strength == s1:
            return share1
        if strength < s1:
            t = (strength - s0) / (s1 - s0)
            if share0 == 0.0:
                return share1 * t
            return share0 * (share1 / share0) ** t
    return 1.0


@dataclass(frozen=True)
class StyleParams:
    """Every parameter of a job.  Defaults are the ``default`` preset."""

    preset: str = "default"
    method: Method = Method.OPTIMISE
    # How far toward the painting, 0..1. For the instant method it moves between the photo's own
    # style vector (0) and the painting's (1); for the optimisation it scales the style weight by a
    # measured curve that makes the steps look even (``style_share``).
    strength: float = 1.0
    colors: ColorMode = ColorMode.PAINTING
    # After the run, how much of the photo's chroma is blended into the result (0..1; 1 = all of it).
    photo_colors: float = 0.0
    # Long edge of the output in pixels.
    size: int = 512
    # Iterations in all, over every coarse-to-fine level.
    iterations: int = 150
    # Coarse-to-fine: optimise first at ``start_size``, then upscale and refine at sizes growing
    # by at most 2x up to ``size``; each level gets half the iterations of the one before.
    coarse_to_fine: bool = True
    start_size: int = 256
    # Explicit pyramid as ((long edge, iterations), ...); overrides the automatic plan.
    levels: tuple[tuple[int, int], ...] = ()
    # Tiled optimisation for outputs larger than memory: tile core size in pixels (0 = only when
    # the memory plan or an out-of-memory error calls for it).
    tile_size: int = 0
    optimizer: Optimizer = Optimizer.LBFGS
    # Adam only.  The image is optimised as RGB in [0, 1], so a rate of 0.02
    # moves a pixel by about 5 of 255 levels per step at most.
    learning_rate: float = 0.02
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    # L-BFGS only: how many past steps approximate the curvature.
    lbfgs_history: int = 50
    init: InitMode = InitMode.CONTENT
    init_image: str | None = None
    # For NOISE: the share of noise mixed with the content image (1 = pure noise).
    noise_ratio: float = 1.0
    content_layers: LayerWeights = (("relu4_2", 1.0),)
    # Not relu5_1, departing from Gatys et al.: its Gram matrix describes whole objects of the painting
    # (a relu5_1 position sees about 200 px of it), and matching it pastes them into the photo. With
    # figurative paintings at 256 px (tubingen; benchmarks/contact_sheet.py), relu1_1-relu5_1 pasted
    # Escher's sphere and hand and the seated nude's figure into the sky; relu5_1 at a quarter weight
    # still did; without it none appeared, while Starry Night keeps its flowing, curling strokes (its
    # largest spirals shrink: the Bold texture preset keeps relu5_1 for them). It also ends the network
    # at relu4_2, a block earlier: less work per iteration.
    style_layers: LayerWeights = (
        ("relu1_1", 1.0),
        ("relu2_1", 1.0),
        ("relu3_1", 1.0),
        ("relu4_1", 1.0),
    )
    style_statistic: StyleStatistic = StyleStatistic.GRAM
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 0.05
    tv_norm: TVNorm = TVNorm.ISOTROPIC
    loss_convention: LossConvention = LossConvention.NORMALIZED
    pooling: Pooling = Pooling.AVERAGE
    # Style image size relative to the output (1 = style resized so its long
    # edge equals the output's long edge).  Larger gives larger brush marks.
    style_scale: float = 1.0
    seed: int = 0
    device: DeviceChoice = DeviceChoice.AUTO
    precision: Precision = Precision.AUTO
    # "default" (embedded VGG-19), "torchvision", or a path to a weights file.
    weights: str = "default"
    # Stop after this much wall time (0 = no limit), keeping the current image.
    max_seconds: float = 0.0
    # Resolution written into the output file (0 = none); set from a print size.
    dpi: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "preset", str(self.preset))
        set_(self, "method", _enum(Method, "method", self.method))
        set_(self, "strength", _finite_in("strength", self.strength, 0.0, 1.0))
        set_(self, "colors", _enum(ColorMode, "colors", self.colors))
        set_(self, "photo_colors", _finite_in("photo colors", self.photo_colors, 0.0, 1.0))
        set_(self, "size", _int_in("size", self.size, *SIZE_LIMITS))
        set_(self, "iterations", _int_in("iterations", self.iterations, *ITERATION_LIMITS))
        set_(self, "coarse_to_fine", bool(self.coarse_to_fine))
        set_(self, "start_size", _int_in("start size", self.start_size, *SIZE_LIMITS))
        set_(self, "levels", _levels(self.levels))
        set_(self, "tile_size", _int_in("tile size", self.tile_size, 0, SIZE_LIMITS[1]))
        if 0 < self.tile_size < 64:
            raise InputError(f"tile size must be 0 (automatic) or at least 64 pixels, got {self.tile_size}")
        set_(self, "optimizer", _enum(Optimizer, "optimizer", self.optimizer))
        set_(self, "learning_rate", _finite_in("learning rate", self.learning_rate, 1e-9, 1e3))
        if self.learning_rate <= 0:
            raise InputError("learning rate must be positive")
        set_(self, "adam_beta1", _finite_in("adam beta1", self.adam_beta1, 0.0, 0.999999))
        set_(self, "adam_beta2", _finite_in("adam beta2", self.adam_beta2, 0.0, 0.999999))
        set_(self, "adam_eps", _finite_in("adam epsilon", self.adam_eps, 1e-12, 10.0))
        set_(self, "lbfgs_history", _int_in("L-BFGS history", self.lbfgs_history, 1, 1000))
        set_(self, "init", _enum(InitMode, "init", self.init))
        if self.init is InitMode.IMAGE and not self.init_image:
            raise InputError("init 'image' needs an init image file")
        set_(self, "init_image", None if self.init_image in (None, "") else str(self.init_image))
        set_(self, "noise_ratio", _finite_in("noise ratio", self.noise_ratio, 0.0, 1.0))
        set_(self, "content_layers", _layer_weights("content layers", self.content_layers))
        set_(self, "style_layers", _layer_weights("style layers", self.style_layers))
        for name in ("content_weight", "style_weight", "tv_weight"):
            set_(self, name, _finite_in(name.replace("_", " "), getattr(self, name), 0.0, WEIGHT_LIMIT))
        if self.content_weight == 0 and self.effective_style_weight == 0:
            if self.style_weight > 0:
                raise InputError("strength 0 turns the style off, so the content weight cannot be zero too")
            raise InputError("content weight and style weight cannot both be zero")
        if self.style_weight > 0 and not any(w > 0 for _, w in self.style_layers):
            raise InputError("style layers: at least one style layer needs a weight above zero")
        if self.content_weight > 0 and not any(w > 0 for _, w in self.content_layers):
            raise InputError("content layers: at least one content layer needs a weight above zero")
        set_(self, "style_statistic", _enum(StyleStatistic, "style statistic", self.style_statistic))
        set_(self, "tv_norm", _enum(TVNorm, "TV norm", self.tv_norm))
        set_(self, "loss_convention", _enum(LossConvention, "loss convention", self.loss_convention))
        set_(self, "pooling", _enum(Pooling, "pooling", self.pooling))
        set_(self, "style_scale", _finite_in("style scale", self.style_scale, 0.05, 8.0))
        set_(self, "seed", _int_in("seed", self.seed, 0, 2**63 - 1))
        set_(self, "device", _enum(DeviceChoice, "device", self.device))
        set_(self, "precision", _enum(Precision, "precision", self.precision))
        set_(self, "weights", str(self.weights) if self.weights else "default")
        set_(self, "max_seconds", _finite_in("max seconds", self.max_seconds, 0.0, 1e7))
        set_(self, "dpi", _finite_in("dpi", self.dpi, 0.0, 10000.0))

    # -- layers ---------------------------------------------------------------
    @property
    def effective_style_weight(self) -> float:
        """The style weight the optimisation uses at this strength: the recipe's, times
        ``style_share(strength)`` (1 at strength 1, 0 at strength 0)."""
        return self.style_weight * style_share(self.strength)

    @property
    def active_content_layers(self) -> LayerWeights:
        return tuple((n, w) for n, w in self.content_layers if w > 0) if self.content_weight > 0 else ()

    @property
    def active_style_layers(self) -> LayerWeights:
        return tuple((n, w) for n, w in self.style_layers if w > 0) if self.effective_style_weight > 0 else ()

    @property
    def deepest_layer(self) -> str:
        """The last layer the job needs: the network is cut after it."""
        used = {n for n, _ in self.active_content_layers + self.active_style_layers}
        return max(used, key=VGG19_LAYERS.index)

    # -- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StrEnum):
                value = value.value
            elif f.name in ("content_layers", "style_layers", "levels"):
                value = [list(pair) for pair in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleParams:
        """Build from a recipe; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            log.warning("ignoring unknown parameters in recipe: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> StyleParams:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class StyleJob:
    """One request: the inputs and the parameters."""

    content: Path
    styles: tuple[Path, ...]
    params: StyleParams = field(default_factory=StyleParams)
    # Relative weight of each style image; normalised to sum to 1.
    blend: tuple[float, ...] = ()
    # Where each style goes (engine.regions): one grey mask per style, white where it is painted;
    # none at all paints the blend everywhere.
    masks: tuple[Path, ...] = ()
    # Which part of each painting its style comes from: one per style (None: all of it), or none.
    style_masks: tuple[Path | None, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "content", Path(self.content))
        styles = (self.styles,) if isinstance(self.styles, (str, Path)) else self.styles
        set_(self, "styles", tuple(Path(s) for s in styles))
        if not self.styles:
            raise InputError("at least one style image is needed")
        blend: Sequence[float] = self.blend or (1.0,) * len(self.styles)
        if len(blend) != len(self.styles):
            raise InputError(f"blend has {len(blend)} weights for {len(self.styles)} style images")
        blend = tuple(_finite_in("blend weight", b, 0.0, WEIGHT_LIMIT) for b in blend)
        if sum(blend) <= 0:
            raise InputError("blend weights must not all be zero")
        set_(self, "blend", blend)
        set_(self, "masks", tuple(Path(m) for m in self.masks))
        set_(self, "style_masks", tuple(None if m is None else Path(m) for m in self.style_masks))
        for count, what in ((len(self.masks), "mask"), (len(self.style_masks), "style mask")):
            if count and count != len(self.styles):
                raise InputError(
                    f"{count} {what}{'s' * (count != 1)} for {len(self.styles)} style "
                    f"image{'s' * (len(self.styles) != 1)}: "
                    f"give one {what} per style, or none"
                )

    @property
    def normalized_blend(self) -> tuple[float, ...]:
        total = sum(self.blend)
        return tuple(b / total for b in self.blend)

    @property
    def region_strengths(self) -> tuple[float, ...]:
        """With masks each style keeps to its own region: its blend weight, relative to the largest,
        says how strongly it is painted there (1: the recipe's full style weight)."""
        top = max(self.blend)
        return tuple(b / top for b in self.blend)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "content": str(self.content),
            "styles": [str(s) for s in self.styles],
            "blend": list(self.blend),
            "params": self.params.to_dict(),
        }
        # Only when present, so a job without regions writes the recipe it always wrote.
        if self.masks:
            out["masks"] = [str(m) for m in self.masks]
        if self.style_masks:
            out["style_masks"] = [None if m is None else str(m) for m in self.style_masks]
        return out
