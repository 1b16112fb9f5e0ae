from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.losses import (
    ContentLoss,
    FeatureStats,
    MeanCovarianceStyleLoss,
    StyleLoss,
    StyleTransferLoss,
    TVLoss,
    blended_stats,
    feature_stats,
    gram_matrix,
)
from engine.params import LossConvention, TVNorm


def test_gram_matrix_matches_a_hand_computation() -> None:
    # Two channels over 2x2 positions: F = [[1, 2, 3, 4], [0, 1, 0, 1]].
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = np.array([[1 + 4 + 9 + 16, 2 + 4], [2 + 4, 2]]) / 4.0
    np.testing.assert_allclose(gram_matrix(features).numpy(), expected)


def test_gram_matrix_is_float32_for_half_precision_features() -> None:
    features = torch.randn(1, 8, 5, 5).to(torch.bfloat16)
    assert gram_matrix(features).dtype == torch.float32


@pytest.mark.parametrize("convention", list(LossConvention))
def test_terms_are_zero_at_their_target_and_positive_elsewhere(convention: LossConvention) -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 4, 6, 6)
    content = ContentLoss("relu1_1", target, convention)
    style = StyleLoss("relu1_1", feature_stats(target), convention)
    assert content({"relu1_1": target}).item() == pytest.approx(0.0, abs=1e-9)
    assert style({"relu1_1": target}).item() == pytest.approx(0.0, abs=1e-9)
    other = {"relu1_1": torch.rand(1, 4, 6, 6)}
    assert content(other).item() > 0
    assert style(other).item() > 0


def test_gatys_convention_matches_the_paper_formulas() -> None:
    torch.manual_seed(1)
    f, p = torch.rand(1, 3, 4, 5), torch.rand(1, 3, 4, 5)
    content = ContentLoss("x", p, LossConvention.GATYS)({"x": f})
    assert content.item() == pytest.approx(0.5 * ((f - p) ** 2).sum().item(), rel=1e-5)
    n, m = 3, 20
    g = f.reshape(n, m) @ f.reshape(n, m).T
    a = p.reshape(n, m) @ p.reshape(n, m).T
    style = StyleLoss("x", feature_stats(p), LossConvention.GATYS)({"x": f})
    assert style.item() == pytest.approx(((g - a) ** 2).sum().item() / (4 * n**2 * m**2), rel=1e-5)


def test_udacity_style_term_matches_the_tutorial() -> None:
    torch.manual_seed(2)
    f, p = torch.rand(1, 3, 4, 5), torch.rand(1, 3, 4, 5)
    d, h, w = 3, 4, 5
    g = f.view(d, h * w) @ f.view(d, h * w).T
    a = p.view(d, h * w) @ p.view(d, h * w).T
    expected = torch.mean((g - a) ** 2) / (d * h * w)
    style = StyleLoss("x", feature_stats(p), LossConvention.UDACITY)({"x": f})
    assert style.item() == pytest.approx(expected.item(), rel=1e-5)


def test_normalized_terms_do_not_depend_on_image_size() -> None:
    # The same texture at two sizes gives (nearly) the same normalised style loss.
    torch.manual_seed(3)
    tile_a, tile_b = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    small = StyleLoss("x", feature_stats(tile_a), LossConvention.NORMALIZED)({"x": tile_b})
    big = StyleLoss("x", feature_stats(tile_a.repeat(1, 1, 4, 4)), LossConvention.NORMALIZED)(
        {"x": tile_b.repeat(1, 1, 4, 4)}
    )
    assert big.item() == pytest.approx(small.item(), rel=1e-4)


@pytest.mark.parametrize("norm", list(TVNorm))
def test_tv_is_zero_on_flat_images_and_falls_under_optimisation(norm: TVNorm) -> None:
    tv = TVLoss(norm)
    assert tv(torch.full((1, 3, 8, 8), 0.3)).item() == pytest.approx(0.0, abs=2e-3)
    torch.manual_seed(4)
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    first = tv(image).item()
    optimizer = torch.optim.Adam([image], lr=0.02)
    for _ in range(30):
        optimizer.zero_grad()
        tv(image).backward()
        optimizer.step()
    assert tv(image).item() < 0.7 * first


def test_style_loss_falls_under_optimisation() -> None:
    torch.manual_seed(5)
    target = torch.rand(1, 4, 8, 8)
    loss = StyleLoss("x", feature_stats(target), LossConvention.NORMALIZED)
    x = torch.rand(1, 4, 8, 8, requires_grad=True)
    first = loss({"x": x}).item()
    optimizer = torch.optim.Adam([x], lr=0.05)
    for _ in range(50):
        optimizer.zero_grad()
        loss({"x": x}).backward()
        optimizer.step()
    assert loss({"x": x}).item() < 0.2 * first


def test_blended_stats_are_the_moments_of_the_mixture() -> None:
    # Half the positions from one painting, half from another: the blend at 0.5/0.5 is exactly the
    # statistics of the two side by side.
    torch.manual_seed(6)
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    mixed = blended_stats([feature_stats(a), feature_stats(b)], [0.5, 0.5])
    whole = feature_stats(torch.cat([a, b], dim=-1))
    torch.testing.assert_close(mixed.mean, whole.mean)
    torch.testing.assert_close(mixed.gram, whole.gram)
    torch.testing.assert_close(mixed.covariance, whole.covariance)


def test_mean_covariance_loss_is_the_gaussian_wasserstein_distance() -> None:
    # Hand computation for diagonal covariances: W2² = |μ-μs|² + Σ (σ - σs)².
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # mean (2, 2), variances (1, 0)
    target = torch.tensor([[[[0.0, 0.0]], [[1.0, 5.0]]]])  # mean (0, 3), variances (0, 4)
    loss = MeanCovarianceStyleLoss("x", feature_stats(target), LossConvention.KERAS)
    expected = (2**2 + 1**2) + (1 - 0) ** 2 + (0 - 2) ** 2
    assert loss({"x": features}).item() == pytest.approx(expected, rel=1e-3)
    normalized = MeanCovarianceStyleLoss("x", feature_stats(target), LossConvention.NORMALIZED)
    energy = 3**2 + 4  # |μs|² + tr Σs
    assert normalized({"x": features}).item() == pytest.approx(expected / energy, rel=1e-3)


def test_mean_covariance_loss_is_zero_at_its_target_and_falls_under_optimisation() -> None:
    torch.manual_seed(7)
    target = torch.rand(1, 8, 6, 6)
    loss = MeanCovarianceStyleLoss("x", feature_stats(target), LossConvention.NORMALIZED)
    assert loss({"x": target}).item() == pytest.approx(0.0, abs=1e-3)
    x = torch.rand(1, 8, 6, 6, requires_grad=True)
    first = loss({"x": x}).item()
    optimizer = torch.optim.Adam([x], lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        loss({"x": x}).backward()
        assert torch.isfinite(x.grad).all()
        optimizer.step()
    assert loss({"x": x}).item() < 0.2 * first


def test_mean_covariance_gradient_is_finite_for_degenerate_covariances() -> None:
    # ReLU features are often all zero in some channels: a covariance with repeated zero eigenvalues.
    target = torch.zeros(1, 4, 3, 3)
    target[:, 0] = torch.arange(9.0).reshape(3, 3)
    x = torch.zeros(1, 4, 3, 3, requires_grad=True)
    MeanCovarianceStyleLoss("x", feature_stats(target), LossConvention.NORMALIZED)({"x": x}).backward()
    assert torch.isfinite(x.grad).all()


def test_feature_stats_covariance_matches_numpy() -> None:
    torch.manual_seed(8)
    features = torch.rand(1, 3, 5, 4)
    stats = feature_stats(features)
    flat = features.reshape(3, -1).double().numpy()
    np.testing.assert_allclose(stats.covariance.numpy(), np.cov(flat, bias=True), rtol=1e-4, atol=1e-6)
    assert isinstance(stats, FeatureStats)



def test_combined_loss_reports_weighted_terms() -> None:
    target = torch.rand(1, 2, 4, 4)
    combined = StyleTransferLoss(
        [(ContentLoss("x", target, LossConvention.KERAS), 1.0)],
        [(StyleLoss("x", feature_stats(target), LossConvention.KERAS), 1.0)],
        TVLoss(TVNorm.SQUARED_MEAN),
        content_weight=2.0,
        style_weight=3.0,
        tv_weight=5.0,
    )
    image = torch.rand(1, 3, 4, 4)
    total, terms = combined({"x": target + 1}, image)
    assert terms["content"].item() == pytest.approx(2.0 * 1.0)
    assert terms["tv"].item() == pytest.approx(5.0 * TVLoss(TVNorm.SQUARED_MEAN)(image).item())
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()))
