"""What every weights source ends as: ``VGGWeights``, and the input ``Preprocessing`` it was trained with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from engine.errors import WeightsError
from engine.layers import CONV_LAYERS


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
