"""A random VGG-19-shaped network for fast tests and benchmarks (``random_weights``)."""

from __future__ import annotations

import math
from types import MappingProxyType

import torch

from engine.layers import CONV_LAYERS, VGG19_WIDTHS
from engine.weightfiles.record import CAFFE, Preprocessing, VGGWeights


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
