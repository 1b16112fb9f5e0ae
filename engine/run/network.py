"""The network a run uses: VGG-19 features on one device, in one precision, and its memory layout."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor

from engine.device import NetworkSetup, network_setup
from engine.params import Precision, StyleParams
from engine.vgg import VGGFeatures
from engine.weightfiles.record import VGGWeights

# How many of VGGFeatures' first layers (1: conv1_1) run in float32 when the network runs in reduced
# precision (benchmarks/precision_quality.py sets 0 to measure the all-bfloat16 network).
FLOAT32_LAYERS = 1


@dataclass(frozen=True)
class Network:
    """A placed feature extractor. ``with_dtype`` gives a new one (the out-of-memory ladder's bfloat16,
    the float32 finish of a reduced-precision run)."""

    module: VGGFeatures
    device: torch.device
    dtype: torch.dtype
    # The layers the losses read.
    wanted: frozenset[str]
    channels_last: bool
    # Builds the float32 module afresh from the weights (with_dtype back to float32).
    source: Callable[[], VGGFeatures] = field(compare=False, repr=False)

    @classmethod
    def build(
        cls,
        weights: VGGWeights,
        params: StyleParams,
        device: torch.device,
        dtype: torch.dtype,
        channels_last: bool | None = None,
    ) -> Network:
        """``channels_last`` None: the engine's choice (engine.device.network_setup)."""
        wanted = frozenset(name for name, _ in params.active_content_layers + params.active_style_layers)
        source = partial(VGGFeatures, weights, params.pooling, params.deepest_layer, keep=wanted)
        if channels_last is None:
            channels_last = network_setup(params.precision, device).channels_last
        return cls(source(), device, dtype, wanted, channels_last, source)._placed()

    def _placed(self) -> Network:
        module = self.module.to(device=self.device, dtype=self.dtype)
        # In reduced precision the first convolutions stay float32 (engine.vgg casts between them).
        # The photo enters the network as Caffe-scaled pixels (0-255 less the mean): in bfloat16's
        # 8 significant bits a pixel moves in steps of 0.5-1 grey level, so the network would not
        # see the small changes late L-BFGS steps make, and relu1_1's Gram matrix would be of a
        # posterised picture. conv1_1 is 0.4 % of the network's arithmetic.
        if self.dtype != torch.float32:
            for layer in module.layers[:FLOAT32_LAYERS]:
                layer.float()
        if self.device.type == "cuda":
            # Same-size inputs every iteration: let cuDNN pick the fastest kernels once.
            torch.backends.cudnn.benchmark = True
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        module = module.to(memory_format=memory_format)
        return Network(module, self.device, self.dtype, self.wanted, self.channels_last, self.source)

    @property
    def setup(self) -> NetworkSetup:
        """The precision and layout this network runs in (after any out-of-memory fallback)."""
        precision = {torch.bfloat16: Precision.BFLOAT16, torch.float16: Precision.FLOAT16}
        return NetworkSetup(precision.get(self.dtype, Precision.FLOAT32), self.channels_last)

    def with_dtype(self, dtype: torch.dtype) -> Network:
        """This network in ``dtype``. Down from float32 the module is cast in place (the ladder frees
        the float32 weights); back up to float32 it is built afresh from the weights, as casting
        bfloat16 weights back would keep them rounded to 8 bits, and leaves this network as it is."""
        if dtype == self.dtype:
            return self
        module = self.source() if dtype == torch.float32 else self.module
        return Network(module, self.device, dtype, self.wanted, self.channels_last, self.source)._placed()

    def prepare(self, image: Tensor) -> Tensor:
        """``image`` on the network's device, in the standard layout.

        The optimised image itself stays contiguous even for a channels-last network: its gradient
        takes the image's layout, and torch's L-BFGS flattens gradients with view(), which fails
        on channels-last strides. The layout changes inside ``__call__`` instead (one small copy).
        """
        return image.to(self.device)

    def __call__(self, image: Tensor, names: Iterable[str] | None = None) -> dict[str, Tensor]:
        """Features by layer name of an image already prepared (autograd flows through)."""
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return self.module(image, self.wanted if names is None else names)

    def features(self, image: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
        """Features of a CPU image, without gradients (targets)."""
        with torch.no_grad():
            return self(self.prepare(image), names)
