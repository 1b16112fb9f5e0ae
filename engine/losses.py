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
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.params import LossConvention, StyleStatistic, TVNorm

_EPS = 1e-8


def gram_matrix(features: Tensor) -> Tensor:
    """Per-position Gram matrix Ĝ = F Fᵀ / M of a (1, N, H, W) feature map, in float32."""
    _, channels, height, width = features.shape
    flat = features.reshape(channels, height * width).float()
    return (flat @ flat.T) / (height * width)


@dataclass(frozen=True)
class FeatureStats:
    """What a style term matches in one layer: the features' mean (N,) and per-position Gram (N, N).

    Both are averages over positions, so the statistics of a blend of paintings, of a painting
    seen tile by tile, or of a masked region are weighted sums of these (the moments of a mixture).
    """

    mean: Tensor
    gram: Tensor

    @property
    def covariance(self) -> Tensor:
        return self.gram - torch.outer(self.mean, self.mean)

    def scaled(self, factor: float) -> FeatureStats:
        return FeatureStats(self.mean * factor, self.gram * factor)

    def plus(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats(self.mean + other.mean, self.gram + other.gram)


def feature_stats(features: Tensor) -> FeatureStats:
    """Mean and per-position Gram matrix of a (1, N, H, W) feature map, in float32."""
    channels = features.shape[1]
    return FeatureStats(features.reshape(channels, -1).float().mean(dim=1), gram_matrix(features))


def blended_stats(stats: Sequence[FeatureStats], blend: Sequence[float]) -> FeatureStats:
    """The statistics of a mix of paintings, ``blend`` summing to 1.

    Blending the targets (not the losses) makes the result match *one* mixed style, as
    neural-style does, instead of a compromise that matches none of them.
    """
    pairs = list(zip(stats, blend, strict=True))
    mixed = pairs[0][0].scaled(pairs[0][1])
    for part, weight in pairs[1:]:
        mixed = mixed.plus(part.scaled(weight))
    return mixed


class _TraceSqrt(torch.autograd.Function):
    """tr(√M) of a symmetric positive semi-definite matrix, with a gradient that stays finite.

    Differentiating through ``eigh`` involves 1/(λᵢ - λⱼ), which explodes for the many nearly
    equal (near-zero) eigenvalues of a VGG covariance; the trace needs no eigenvector derivative:
    d tr(√M) = ½ M^(-½), built from the same decomposition. That is still unbounded where M is
    singular (dead ReLU channels make it so), and in float32 rounding turns those zero eigenvalues
    into ±1e-7 noise that ½ λ^(-½) amplifies thousands of times: a 256 px Escher run with it went
    from a total loss of 2 to 2e5 (L-BFGS threw the image away). So the decomposition is done in
    float64 and the eigenvalues are floored at a millionth of the largest before the inverse root.
    """

    @staticmethod
    def forward(ctx, matrix: Tensor) -> Tensor:  # type: ignore[override]
        values, vectors = torch.linalg.eigh(matrix.double())
        floor = values.max().clamp_min(_EPS) * 1e-6
        values = values.clamp_min(floor)
        ctx.save_for_backward(vectors, values.sqrt())
        return values.sqrt().sum().to(matrix.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        vectors, roots = ctx.saved_tensors
        return (grad.double() * (vectors * (0.5 / roots)) @ vectors.T).to(grad.dtype)


def _symmetric_sqrt(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix.double())
    return ((vectors * values.clamp_min(0).sqrt()) @ vectors.T).to(matrix.dtype)


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
    """Distance of one layer's Gram matrix from the painting's (Gatys et al.)."""

    def __init__(self, layer: str, target: FeatureStats, convention: LossConvention) -> None:
        super().__init__()
        self.layer = layer
        self.convention = convention
        self.register_buffer("target", target.gram.detach().float())
        self.register_buffer("target_energy", self.target.pow(2).mean())

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        current = features[self.layer]
        _, channels, height, width = current.shape
        return self.distance(FeatureStats(current.new_zeros(()), gram_matrix(current)), height * width)

    def distance(self, stats: FeatureStats, positions: float) -> Tensor:
        """The term for features with these statistics over ``positions`` positions (a region's
        weighted statistics work the same way: see engine.regions)."""
        error = (stats.gram - self.target).pow(2).mean()
        if self.convention is LossConvention.NORMALIZED:
            return error / (self.target_energy + _EPS)
        return error * _style_factor(self.convention, self.target.shape[0], int(positions))


class MeanCovarianceStyleLoss(nn.Module):
    """Wasserstein-2 distance between Gaussians with the features' and the painting's mean and covariance.

    W₂² = |μ - μₛ|² + tr Σ + tr Σₛ - 2 tr √(√Σₛ Σ √Σₛ). Unlike the Gram error it separates the mean
    from the covariance and weighs every direction of the feature distribution by its own spread,
    not by the square of the strongest correlations, which is what lets an object's part features
    dominate the Gram error of the deep layers. Normalised by the target's energy |μₛ|² + tr Σₛ (the
    distance of the painting from silence), it is a relative error like our other terms.
    """

    def __init__(self, layer: str, target: FeatureStats, convention: LossConvention) -> None:
        super().__init__()
        self.layer = layer
        self.convention = convention
        covariance = target.covariance.detach().float()
        self.register_buffer("mean", target.mean.detach().float())
        self.register_buffer("covariance_root", _symmetric_sqrt(covariance))
        self.register_buffer("covariance_trace", covariance.trace())
        self.register_buffer("target_energy", self.mean.pow(2).sum() + self.covariance_trace)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        return self.distance(feature_stats(features[self.layer]))

    def distance(self, stats: FeatureStats, positions: float = 0.0) -> Tensor:
        """The term for features with these statistics (``positions`` is not needed here)."""
        del positions
        covariance = stats.covariance
        cross = self.covariance_root @ covariance @ self.covariance_root
        distance = (
            (stats.mean - self.mean).pow(2).sum()
            + covariance.trace()
            + self.covariance_trace
            - 2 * _TraceSqrt.apply((cross + cross.T) / 2)
        )
        if self.convention is LossConvention.NORMALIZED:
            return distance / (self.target_energy + _EPS)
        return distance


STYLE_LOSSES: dict[StyleStatistic, type[StyleLoss] | type[MeanCovarianceStyleLoss]] = {
    StyleStatistic.GRAM: StyleLoss,
    StyleStatistic.MEAN_COVARIANCE: MeanCovarianceStyleLoss,
}


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
        style: Sequence[tuple[nn.Module, float]],
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
