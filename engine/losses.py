"""The loss terms: small modules, each owning its target.

All arithmetic here is float32 whatever precision the network ran in:
Gram matrices sum over every pixel, and in bfloat16/float16 those sums lose
most of their digits (and overflow in float16 at print sizes).

Conventions (engine.params.LossConvention) differ only in constant factors
that depend on the layer's size: N channels, M = H x W positions. Writing
every term through the per-position Gram matrix Ĝ = F Fᵀ / M makes the
differences explicit:

=============== ============================== ===========================================
convention      content term                   style term (per layer)
=============== ============================== ===========================================
normalized      mean((F-P)²) / mean(P²)        mean((Ĝ-Â)²) / mean(Â²)
gatys           ½ Σ (F-P)²                     ¼ mean((Ĝ-Â)²)   (= Σ(G-A)² / 4N²M²)
deeplearning-ai ¼ mean((F-P)²)                 ¼ mean((Ĝ-Â)²)
udacity         mean((F-P)²)                   mean((Ĝ-Â)²) · M / N  (= mean((G-A)²) / NM)
keras           mean((F-P)²)                   mean((Ĝ-Â)²)
=============== ============================== ===========================================

Ours (``normalized``) departs from the paper on purpose: Gatys' sums grow
with the image area (content) and shrink with it relative to the style term,
so his α/β only means something at his image size. Dividing each term by the
energy of its own target makes every term a relative error: a weight means
the same at 256 px and 4096 px, and every style layer contributes on the same
scale whatever its width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.params import LossConvention, TVNorm

_EPS = 1e-8


def gram_matrix(features: Tensor) -> Tensor:
    """Per-position Gram matrix Ĝ = F Fᵀ / M of a (1, N, H, W) feature map, in float32."""
    _, channels, height, width = features.shape
    flat = features.reshape(channels, height * width).float()
    return (flat @ flat.T) / (height * width)


def _content_factor(convention: LossConvention, features: Tensor) -> float:
    if convention is LossConvention.GATYS:
        return 0.5 * features.numel()  # ½ Σ = ½ · numel · mean
    if convention is LossConvention.DEEPLEARNING_AI:
        return 0.25
    return 1.0


def _style_factor(convention: LossConvention, channels: int, positions: int) -> float:
    if convention in (LossConvention.GATYS, LossConvention.DEEPLEARNING_AI):
        return 0.25
    if convention is LossConvention.UDACITY:
        return positions / channels
    return 1.0


class ContentLoss(nn.Module):
    """Distance of one layer's features from the photo's."""

    def __init__(self, layer: str, target: Tensor, convention: LossConvention) -> None:
        super().__init__()
        self.layer = layer
        self.convention = convention
        self.register_buffer("target", target.detach().float())
        self.register_buffer("target_energy", self.target.pow(2).mean())

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        current = features[self.layer].float()
        error = (current - self.target).pow(2).mean()
        if self.convention is LossConvention.NORMALIZED:
            return error / (self.target_energy + _EPS)
        return error * _content_factor(self.convention, current)


class StyleLoss(nn.Module):
    """Distance of one layer's Gram matrix from the painting's (or a blend of paintings')."""

    def __init__(self, layer: str, target_gram: Tensor, convention: LossConvention) -> None:
        super().__init__()
        self.layer = layer
        self.convention = convention
        self.register_buffer("target", target_gram.detach().float())
        self.register_buffer("target_energy", self.target.pow(2).mean())

    @staticmethod
    def blended_target(grams: Sequence[Tensor], blend: Sequence[float]) -> Tensor:
        # Blending the targets (not the losses) makes the result match *one* mixed style,
        # as neural-style does, instead of a compromise that matches none of them.
        pairs = list(zip(grams, blend, strict=True))
        mixed = pairs[0][0] * pairs[0][1]
        for gram, weight in pairs[1:]:
            mixed = mixed + gram * weight
        return mixed

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        current = features[self.layer]
        _, channels, height, width = current.shape
        error = (gram_matrix(current) - self.target).pow(2).mean()
        if self.convention is LossConvention.NORMALIZED:
            return error / (self.target_energy + _EPS)
        return error * _style_factor(self.convention, channels, height * width)


class TVLoss(nn.Module):
    """Total variation of the image (RGB in [0, 1]): penalises pixel-to-pixel noise."""

    def __init__(self, norm: TVNorm) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, image: Tensor) -> Tensor:
        image = image.float()
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
        if self.norm is TVNorm.SQUARED_MEAN:
            return dx.pow(2).mean() + dy.pow(2).mean()
        if self.norm is TVNorm.ABS_SUM:
            return dx.abs().sum() + dy.abs().sum()
        # Isotropic (Charbonnier) form: the epsilon keeps the gradient finite on flat areas.
        return (dx[..., :-1, :].pow(2) + dy[..., :, :-1].pow(2) + 1e-6).sqrt().mean()


class StyleTransferLoss(nn.Module):
    """Weighted sum of content, style and TV terms; returns the total and each term."""

    def __init__(
        self,
        content: Sequence[tuple[ContentLoss, float]],
        style: Sequence[tuple[StyleLoss, float]],
        tv: TVLoss,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
    ) -> None:
        super().__init__()
        self.content_terms = nn.ModuleList(term for term, _ in content)
        self.content_layer_weights = [weight for _, weight in content]
        self.style_terms = nn.ModuleList(term for term, _ in style)
        self.style_layer_weights = [weight for _, weight in style]
        self.tv = tv
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight

    def forward(self, features: dict[str, Tensor], image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        zero = image.new_zeros((), dtype=torch.float32)
        content = sum(
            (
                w * term(features)
                for term, w in zip(self.content_terms, self.content_layer_weights, strict=True)
            ),
            zero,
        )
        style = sum(
            (w * term(features) for term, w in zip(self.style_terms, self.style_layer_weights, strict=True)),
            zero,
        )
        tv = self.tv(image) if self.tv_weight > 0 else zero
        terms = {
            "content": self.content_weight * content,
            "style": self.style_weight * style,
            "tv": self.tv_weight * tv,
        }
        total = terms["content"] + terms["style"] + terms["tv"]
        return total, terms
