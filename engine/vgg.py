"""VGG-19's convolutional part as a feature extractor addressed by layer name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from engine.params import VGG19_LAYERS, Pooling

if TYPE_CHECKING:
    from engine.weightfiles.record import VGGWeights


class VGGFeatures(nn.Module):
    """Frozen VGG-19 cut after ``last_layer``; ``forward`` returns the requested layers by name.

    Channel widths come from the weights, so the same class runs the real network
    and the tiny random one the tests use.
    """

    def __init__(
        self, weights: VGGWeights, pooling: Pooling, last_layer: str, keep: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.preprocess = weights.preprocessing
        self.names: list[str] = list(VGG19_LAYERS[: VGG19_LAYERS.index(last_layer) + 1])
        keep = set(keep)
        layers: list[nn.Module] = []
        for name in self.names:
            if name.startswith("conv"):
                weight, bias = weights.layers[name]
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=weight.shape[2:], padding=1)
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    conv.bias.copy_(bias)
                layers.append(conv)
            elif name.startswith("relu"):
                # In place saves one activation map per layer, but would overwrite a conv
                # output that a loss asked for (e.g. conv4_2 in the Udacity recipe).
                conv_name = "conv" + name[4:]
                layers.append(nn.ReLU(inplace=conv_name not in keep))
            else:
                # Gatys et al. replace max pooling by average pooling for "slightly more appealing
                # results"; max is kept for recipes that use it.
                pool = nn.AvgPool2d if pooling is Pooling.AVERAGE else nn.MaxPool2d
                layers.append(pool(kernel_size=2, stride=2))
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: Tensor, wanted: Iterable[str]) -> dict[str, Tensor]:
        """``image`` is RGB in [0, 1], (1, 3, H, W); returns {layer name: features}."""
        wanted = set(wanted)
        out: dict[str, Tensor] = {}
        x = self.preprocess(image)
        for name, layer in zip(self.names, self.layers, strict=True):
            if isinstance(layer, nn.Conv2d):
                # Each conv computes in its weights' dtype: the network's precision, except that the
                # first convolutions stay float32 in reduced precision (engine.run.network).
                x = x.to(layer.weight.dtype)
            x = layer(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out
