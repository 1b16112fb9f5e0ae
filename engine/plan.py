"""Planning a run: the coarse-to-fine levels and the size of every image, without torch.

Pure arithmetic on a job's parameters and the photo's size, so the window can show a plan at
once and the command line can check a job before loading the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import InputError
from engine.params import SIZE_LIMITS, StyleParams

# VGG-19 halves the image four times before relu5_1 (pool1..pool4): below 16 px on a side a
# feature map of the deepest style layer would be empty, and torch fails inside a pooling layer.
MIN_SIDE = 16


@dataclass(frozen=True)
class Level:
    """One step of the coarse-to-fine pyramid: optimise at this long edge for this many iterations."""

    size: int
    iterations: int


def plan_levels(params: StyleParams) -> tuple[Level, ...]:
    """The coarse-to-fine pyramid for a job.

    Sizes grow geometrically from ``start_size`` to ``size`` by at most 2x per level (a larger
    jump makes the upscaled image too blurry for the next level to recover detail). Level k gets
    a share of the iterations proportional to 2^-k: a coarse iteration costs a quarter of the
    next level's, and the coarse levels settle the composition, the fine ones only add detail.
    """
    if params.levels:
        return tuple(Level(size, iterations) for size, iterations in params.levels)
    if not params.coarse_to_fine or params.size <= params.start_size * 1.25:
        return (Level(params.size, params.iterations),)
    count = math.ceil(math.log2(params.size / params.start_size)) + 1
    ratio = (params.size / params.start_size) ** (1 / (count - 1))
    sizes = [round(params.start_size * ratio**k) for k in range(count - 1)] + [params.size]
    if params.iterations < count:
        # Fewer iterations than levels: one each for the finest levels, the output's size last.
        sizes = sizes[count - params.iterations :]
        return tuple(Level(size, 1) for size in sizes)
    shares = [0.5**k for k in range(count)]
    iterations = [max(1, math.floor(params.iterations * share / sum(shares))) for share in shares]
    iterations[0] += params.iterations - sum(iterations)
    return tuple(Level(size, n) for size, n in zip(sizes, iterations, strict=True))


def output_size(content_size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """(width, height) with the content's aspect ratio and the given long edge."""
    width, height = content_size
    scale = long_edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def smallest_long_edge(content_size: tuple[int, int]) -> int:
    """The smallest long edge at which an image of this shape has a short side of ``MIN_SIDE``."""
    width, height = content_size
    long_edge = math.ceil(MIN_SIDE * max(width, height) / min(width, height))
    while min(output_size(content_size, long_edge)) < MIN_SIDE:  # rounding can leave it 1 px short
        long_edge += 1
    return long_edge


def check_output_shape(content_size: tuple[int, int], params: StyleParams, content: object = None) -> None:
    """Refuse, before any work, an output too thin for the network; say which size would work."""
    width, height = output_size(content_size, params.size)
    if min(width, height) >= MIN_SIDE:
        return
    needed = smallest_long_edge(content_size)
    shape = f"{content_size[0]} x {content_size[1]} px"
    if needed > SIZE_LIMITS[1]:
        raise InputError(
            f"the photo ({shape}) is too narrow to repaint: the network needs {MIN_SIDE} px on the short "
            f"side, which would make the long side larger than {SIZE_LIMITS[1]} px",
            None if content is None else str(content),
        )
    raise InputError(
        f"at a long edge of {params.size} px the output would be {width} x {height} px, but the short "
        f"side must be at least {MIN_SIDE} px for this photo ({shape}): use a size of {needed} px or more",
        None if content is None else str(content),
    )


# A painting must keep its proportions and reach MIN_SIDE on its short side within this long edge:
# a 1:64 strip already needs 1024 px, and the style's Gram matrices cost memory like an image.
STYLE_MAX_LONG_EDGE = 4096


def check_style_shape(style_size: tuple[int, int], style: object = None) -> None:
    """Refuse, before any work, a painting too thin to describe a style."""
    if smallest_long_edge(style_size) > STYLE_MAX_LONG_EDGE:
        raise InputError(
            f"the painting ({style_size[0]} x {style_size[1]} px) is too narrow to use as a style: "
            f"its short side must be at least 1/{STYLE_MAX_LONG_EDGE // MIN_SIDE} of its long side",
            None if style is None else str(style),
        )


LevelSize = tuple[tuple[int, int], int]


def level_sizes(content_size: tuple[int, int], params: StyleParams) -> tuple[LevelSize, ...]:
    """((width, height), iterations) of every level of the run.

    A coarse level of a very wide or tall photo would be thinner than the network allows (a 20:1
    panorama at 256 px is 13 px tall), so such a level is raised to the smallest size that works,
    never above the output's own size.
    """
    floor = min(smallest_long_edge(content_size), params.size)
    return tuple(
        (output_size(content_size, max(level.size, floor)), level.iterations) for level in plan_levels(params)
    )
