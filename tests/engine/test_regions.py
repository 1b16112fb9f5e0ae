"""Regions (Gatys et al. 2017 spatial control): masks read and scaled, statistics within a region,
guided terms, and whole runs on tiny images with a tiny random network (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import InputError
from engine.guided import (
    GuidedStyleLoss,
    layer_guides,
    level_style_terms,
    masked_stats_of,
    weighted_stats,
    windowed_terms,
)
from engine.imageio import load_image
from engine.layers import STRIDE
from engine.losses import FeatureStats, StyleLoss, feature_stats
from engine.params import LossConvention, StyleJob, StyleParams, StyleStatistic
from engine.recipe import build_recipe, job_from_recipe
from engine.records import Finished
from engine.regions import Mask, Regions, composite, load_mask, load_regions, region_weights
from engine.run.network import Network
from engine.run.targets import stats_of
from engine.stylize import stylize
from engine.tiles import tile_grid
from engine.weights import random_weights

CPU = torch.device("cpu")
RUN = dict(size=48, iterations=15, device="cpu", coarse_to_fine=False, tv_weight=0.0)


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture(scope="module")
def network(weights) -> Network:
    return Network.build(weights, StyleParams(device="cpu"), CPU, torch.float32)


def _photo(path: Path, size: tuple[int, int] = (48, 32)) -> Path:
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([0.3 + 0.4 * xx / width, 0.3 + 0.4 * yy / height, 0.5 + 0 * xx], axis=-1)
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    return path


def _painting(path: Path, seed: int, size: tuple[int, int] = (40, 40)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _mask(path: Path, rows: slice, size: tuple[int, int] = (48, 32), value: int = 255) -> Path:
    pixels = np.zeros((size[1], size[0]), np.uint8)
    pixels[rows] = value
    Image.fromarray(pixels).save(path)
    return path


def _run(job: StyleJob, weights) -> Finished:
    records = list(stylize(job, weights=weights))
    finished = records[-1]
    assert isinstance(finished, Finished)
    return finished


# -- masks ------------------------------------------------------------------------------------------


def test_a_mask_is_its_grey_times_its_opacity(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = [[0], [64], [128], [255]]
    Image.fromarray(rgba).save(tmp_path / "layer.png")
    mask = load_mask(tmp_path / "layer.png")
    assert np.allclose(mask.weight[:, 0], [0, 64 / 255, 128 / 255, 1], atol=1e-6)
    grey = np.full((3, 5), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.allclose(load_mask(tmp_path / "grey.png").weight, 128 / 255, atol=1e-3)
    assert load_mask(tmp_path / "grey.png").size == (5, 3)


def test_overlapping_regions_share_a_pixel_and_uncovered_places_stay_empty() -> None:
    both = np.ones((2, 2), np.float32)
    half = np.array([[0.5, 0.5], [0.0, 0.0]], np.float32)
    weights = region_weights([Mask(None, both, ""), Mask(None, half, "")], (2, 2))
    assert np.allclose(weights[:, 0, 0], [1 / 1.5, 0.5 / 1.5])  # summed to more than one: shared
    assert np.allclose(weights[:, 1, 0], [1.0, 0.0])
    alone = region_weights([Mask(None, half, "")], (4, 4))
    assert alone.shape == (1, 4, 4) and alone.max() <= 0.5 + 1e-6 and alone[0, 3].max() == 0.0


def test_the_instant_draft_lays_each_picture_over_the_photo_through_its_mask() -> None:
    photo = np.zeros((2, 2, 3), np.float32)
    pictures = [np.ones((2, 2, 3), np.float32), np.full((2, 2, 3), 0.5, np.float32)]
    weights = np.array([[[1, 0.5], [0, 0]], [[0, 0.5], [1, 0]]], np.float32)
    out = composite(pictures, photo, weights, [1.0, 0.5])
    assert np.allclose(out[..., 0], [[1.0, 0.5 + 0.125], [0.25, 0.0]])


# -- statistics within a region ---------------------------------------------------------------------


def test_region_statistics_are_weighted_means_over_its_positions_by_hand() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 3, 2, 3)).astype(np.float32)
    weight = np.array([[1.0, 0.5, 0.0], [0.0, 0.25, 1.0]], np.float32)
    stats = weighted_stats(torch.from_numpy(features), torch.from_numpy(weight))
    vectors = [features[0, :, r, c] for r in range(2) for c in range(3)]
    ws = [weight[r, c] for r in range(2) for c in range(3)]
    mean = sum(w * v for w, v in zip(ws, vectors, strict=True)) / sum(ws)
    gram = sum(w * np.outer(v, v) for w, v in zip(ws, vectors, strict=True)) / sum(ws)
    assert np.allclose(stats.mean.numpy(), mean, atol=1e-5)
    assert np.allclose(stats.gram.numpy(), gram, atol=1e-5)
    everywhere = weighted_stats(torch.from_numpy(features), torch.ones(2, 3))
    plain = feature_stats(torch.from_numpy(features))
    assert torch.allclose(everywhere.mean, plain.mean) and torch.allclose(everywhere.gram, plain.gram)


@pytest.mark.parametrize("statistic", list(StyleStatistic))
def test_a_guided_term_is_each_regions_own_term_times_its_share_and_strength(statistic) -> None:
    from engine.losses import STYLE_LOSSES

    rng = torch.Generator().manual_seed(2)
    features = torch.rand(1, 4, 3, 4, generator=rng)
    targets = [feature_stats(torch.rand(1, 4, 5, 5, generator=rng)) for _ in range(2)]
    guides = torch.zeros(2, 3, 4)
    guides[0, :, :2] = 1.0  # the left half: region 0
    guides[1, :, 2:] = 0.5  # the right half at half weight: region 1
    guides[1, 0, 1] = 0.25  # and a touch of it inside region 0
    loss_type = STYLE_LOSSES[statistic]
    terms = [loss_type("relu1_1", target, LossConvention.NORMALIZED) for target in targets]
    strengths = (1.0, 0.4)
    guided = GuidedStyleLoss("relu1_1", terms, guides, strengths, statistic is not StyleStatistic.GRAM)
    expected = 0.0
    for region in range(2):
        weight = guides[region]
        stats = weighted_stats(features, weight)
        share = float(weight.sum()) / 12
        expected += strengths[region] * share * float(terms[region].distance(stats, float(weight.sum())))
    assert float(guided({"relu1_1": features})) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("statistic", list(StyleStatistic))
@pytest.mark.parametrize("gather_cost", [0.01, 100.0])  # each region on its own; the largest as the rest
@pytest.mark.parametrize("channels_last", [False, True])
def test_guided_terms_and_their_gradients_match_the_statistics_by_autograd(
    statistic, gather_cost, channels_last, monkeypatch
) -> None:
    import engine.guided as guided_module
    from engine.losses import STYLE_LOSSES

    monkeypatch.setattr(guided_module, "_GATHER_COST", gather_cost)
    rng = torch.Generator().manual_seed(6)
    weights = torch.zeros(3, 10, 12)
    weights[0, :4] = 1.0  # sky
    weights[0, 4] = 0.5  # a soft edge...
    weights[1, 4] = 0.5  # ...shared with the ground
    weights[1, 5:, :8] = 1.0  # ground, except a corner nobody paints (the photo)
    weights[2, 5:, 8:] = 0.7  # a third region, partly covering the corner
    targets = [feature_stats(torch.rand(1, 6, 5, 5, generator=rng)) for _ in range(3)]
    loss_type = STYLE_LOSSES[statistic]
    terms = [loss_type("relu2_1", target, LossConvention.NORMALIZED) for target in targets]
    strengths = (1.0, 0.5, 0.8)
    needs_mean = statistic is not StyleStatistic.GRAM
    guided = GuidedStyleLoss("relu2_1", terms, weights, strengths, needs_mean)
    features = torch.rand(1, 6, 10, 12, generator=rng)
    if channels_last:  # as the network gives them on the CPU: read position by position
        features = features.contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    loss = guided({"relu2_1": features})
    (gradient,) = torch.autograd.grad(loss, features)
    reference = features.detach().clone().requires_grad_(True)
    expected = sum(
        strengths[r] * float(weights[r].sum()) / 120
        * terms[r].distance(weighted_stats(reference, weights[r]), float(weights[r].sum()))
        for r in range(3)
    )  # fmt: skip
    (expected_gradient,) = torch.autograd.grad(expected, reference)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)
    assert torch.allclose(gradient, expected_gradient, rtol=1e-3, atol=1e-6)
    assert (guided.plan(CPU).derived is not None) == (gather_cost > 1)


def test_a_full_mask_gives_exactly_the_unmasked_term() -> None:
    rng = torch.Generator().manual_seed(3)
    features = torch.rand(1, 8, 6, 5, generator=rng)
    target = feature_stats(torch.rand(1, 8, 7, 7, generator=rng))
    plain = StyleLoss("relu2_1", target, LossConvention.NORMALIZED)
    guided = GuidedStyleLoss("relu2_1", [plain], torch.ones(1, 6, 5), (1.0,), False)
    unmasked = float(plain({"relu2_1": features}))
    assert float(guided({"relu2_1": features})) == pytest.approx(unmasked, rel=1e-6)


def test_masks_reach_each_layer_on_its_grid_as_area_averages() -> None:
    weights = torch.zeros(1, 100, 70)
    weights[0, :50] = 1.0  # the top half of a 70 x 100 picture
    names = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    guides = layer_guides(weights, names, (70, 100))
    for name in names:
        step = STRIDE[name]
        assert guides[name].shape == (1, 100 // step, 70 // step)
        column = guides[name][0, :, 0]
        assert column.max() == 1.0 and column.min() == 0.0
        assert float(guides[name].mean()) == pytest.approx(0.5, abs=0.05)
    # Over a tile's core the term reads that core's window of each layer's grid.
    term = GuidedStyleLoss("relu3_1", [torch.nn.Identity()], guides["relu3_1"], (1.0,), False)
    whole = tile_grid(70, 100, 64, (16, 32))[0].in_whole_image(70, 100)
    (tiled, _), = windowed_terms([(term, 1.0)], whole)
    top, bottom, left, right = whole.feature_window("relu3_1", *guides["relu3_1"].shape[-2:])
    assert tiled.window == (top, bottom, left, right)
    plan = tiled.plan(CPU)
    (part,) = plan.explicit if plan.derived is None else (plan.derived,)
    assert part.total == pytest.approx(float(guides["relu3_1"][0, top:bottom, left:right].sum()))


def test_a_paintings_masked_statistics_are_the_same_whole_or_in_tiles(network: Network) -> None:
    rng = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 96, 160, generator=rng)
    weight = torch.zeros(96, 160)
    weight[20:70, 30:120] = 1.0
    names = {"relu1_1", "relu2_1"}  # receptive fields within the tiles' margin: exact features
    whole = masked_stats_of(network, image, weight, names)
    tiled = masked_stats_of(network, image, weight, names, tile=64)
    for name in names:
        assert torch.allclose(whole[name].gram, tiled[name].gram, rtol=1e-4, atol=1e-6)
        assert torch.allclose(whole[name].mean, tiled[name].mean, rtol=1e-4, atol=1e-6)
    # Without a mask it is the plain statistics.
    plain = stats_of(network, image, names)
    assert torch.allclose(masked_stats_of(network, image, None, names)["relu1_1"].gram, plain["relu1_1"].gram)


def test_level_terms_are_guided_only_when_the_job_has_region_masks(network: Network, tmp_path: Path) -> None:
    style = load_image(_painting(tmp_path / "p.png", 1))
    params = StyleParams(device="cpu")
    plain = level_style_terms(network, [style], [1.0], Regions(), (1.0,), params, 48, (48, 32))
    assert all(isinstance(term, StyleLoss) for term, _ in plain)
    half = Mask(None, np.vstack([np.ones((16, 48)), np.zeros((16, 48))]).astype(np.float32), "")
    guided = level_style_terms(network, [style], [1.0], Regions((half,)), (1.0,), params, 48, (48, 32))
    assert all(isinstance(term, GuidedStyleLoss) for term, _ in guided)
    assert [w for _, w in guided] == [w for _, w in params.active_style_layers]


# -- whole runs ------------------------------------------------------------------------------------


def test_a_half_mask_paints_its_half_and_leaves_the_other_close_to_the_photo(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    painting = _painting(tmp_path / "painting.png", 7)
    top = _mask(tmp_path / "top.png", slice(0, 16))
    params = StyleParams(**RUN, style_weight=100.0)
    finished = _run(StyleJob(photo, (painting,), params, masks=(top,)), weights)
    original = load_image(photo).rgb
    change = np.abs(finished.image - original).mean(axis=2)
    painted, kept = change[:12].mean(), change[20:].mean()  # away from the border
    # Unpainted pixels keep the photo (engine.guided.with_photo_outside); without the mask they move.
    assert painted > 0.05 and kept < 1e-3, (painted, kept)
    unmasked = _run(StyleJob(photo, (painting,), params), weights)
    assert np.abs(unmasked.image - original).mean(axis=2)[20:].mean() > 0.05
    # The loss alone is guided too: the painted half moves as far as it does without a mask.
    assert painted > 0.5 * np.abs(unmasked.image - original).mean(axis=2)[:12].mean()
    assert "top.png" in next(iter(k for k in finished.extra["inputs"] if k.endswith("top.png")))


def test_a_full_mask_paints_the_same_picture_as_no_mask(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    painting = _painting(tmp_path / "painting.png", 8)
    full = _mask(tmp_path / "full.png", slice(None), size=(24, 16))  # another size: scaled
    params = StyleParams(**{**RUN, "iterations": 12})
    masked = _run(StyleJob(photo, (painting,), params, masks=(full,)), weights)
    plain = _run(StyleJob(photo, (painting,), params), weights)
    assert np.abs(masked.image - plain.image).max() < 2e-3


def test_two_regions_each_take_their_own_painting(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 230
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[..., 2] = 230
    Image.fromarray(red).save(tmp_path / "red.png")
    Image.fromarray(blue).save(tmp_path / "blue.png")
    top = _mask(tmp_path / "top.png", slice(0, 16))
    bottom = _mask(tmp_path / "bottom.png", slice(16, 32))
    params = StyleParams(**{**RUN, "iterations": 40}, style_weight=1000.0)
    job = StyleJob(photo, (tmp_path / "red.png", tmp_path / "blue.png"), params, masks=(top, bottom))
    image = _run(job, weights).image
    upper, lower = image[:12].mean(axis=(0, 1)), image[20:].mean(axis=(0, 1))
    assert upper[0] - upper[2] > lower[0] - lower[2] + 0.1  # redder above, bluer below


def test_a_style_mask_takes_the_style_from_its_part_of_the_painting(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    halves = np.zeros((40, 40, 3), np.uint8)
    halves[:20, :, 0] = 230  # red above
    halves[20:, :, 2] = 230  # blue below
    Image.fromarray(halves).save(tmp_path / "halves.png")
    upper = _mask(tmp_path / "upper.png", slice(0, 20), size=(40, 40))
    lower = _mask(tmp_path / "lower.png", slice(20, 40), size=(40, 40))
    params = StyleParams(**{**RUN, "iterations": 15}, style_weight=1000.0)
    reds = _run(StyleJob(photo, (tmp_path / "halves.png",), params, style_masks=(upper,)), weights).image
    blues = _run(StyleJob(photo, (tmp_path / "halves.png",), params, style_masks=(lower,)), weights).image
    assert (reds[..., 0] - reds[..., 2]).mean() > (blues[..., 0] - blues[..., 2]).mean() + 0.1


def test_a_tiled_run_keeps_its_regions(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png", (96, 64))
    painting = _painting(tmp_path / "painting.png", 9)
    top = _mask(tmp_path / "top.png", slice(0, 32), size=(96, 64))
    params = StyleParams(
        **{**RUN, "size": 96, "iterations": 25}, optimizer="adam", learning_rate=0.05, tile_size=64,
        style_weight=100.0,
    )  # fmt: skip
    finished = _run(StyleJob(photo, (painting,), params, masks=(top,)), weights)
    change = np.abs(finished.image - load_image(photo).rgb).mean(axis=2)
    assert change[:24].mean() > 0.03 and change[40:].mean() < 1e-3


# -- jobs and recipes -------------------------------------------------------------------------------


def test_masks_count_as_styles_do(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="2 masks for 1 style image: give one mask per style"):
        StyleJob(tmp_path / "p.png", (tmp_path / "s.png",), masks=(tmp_path / "a.png", tmp_path / "b.png"))
    with pytest.raises(InputError, match="1 style mask for 2 style images"):
        StyleJob(tmp_path / "p.png", (tmp_path / "s.png", tmp_path / "t.png"), style_masks=(None,))
    job = StyleJob(tmp_path / "p.png", (tmp_path / "s.png", tmp_path / "t.png"), blend=(3.0, 1.0))
    assert job.region_strengths == (1.0, 1 / 3)
    assert "masks" not in job.to_dict()  # a job without regions writes the recipe it always wrote


def test_the_recipe_records_the_masks_and_reopens_them(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    painting = _painting(tmp_path / "painting.png", 1)
    top = _mask(tmp_path / "top.png", slice(0, 16))
    part = _mask(tmp_path / "part.png", slice(0, 20), size=(40, 40))
    params = StyleParams(**{**RUN, "iterations": 2})
    job = StyleJob(photo, (painting,), params, masks=(top,), style_masks=(part,))
    recipe = build_recipe(_run(job, weights))
    assert recipe["inputs"]["masks"][0]["sha256"] == load_mask(top).sha256
    assert recipe["inputs"]["style_masks"][0]["sha256"] == load_mask(part).sha256
    again = job_from_recipe(recipe)
    assert again.masks == (top,) and again.style_masks == (part,)
    assert load_regions(again.masks, again.style_masks).guided


def test_a_black_style_mask_is_refused_before_the_run(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    painting = _painting(tmp_path / "painting.png", 1)
    black = _mask(tmp_path / "black.png", slice(0, 0))
    job = StyleJob(photo, (painting,), StyleParams(**RUN), style_masks=(black,))
    with pytest.raises(InputError, match="black.png: the style mask is black everywhere"):
        next(iter(stylize(job, weights=weights)))


def test_a_mask_that_is_not_an_image_is_one_line_naming_it(weights, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    painting = _painting(tmp_path / "painting.png", 1)
    (tmp_path / "notes.png").write_text("not a picture")
    job = StyleJob(photo, (painting,), StyleParams(**RUN), masks=(tmp_path / "notes.png",))
    with pytest.raises(InputError, match="notes.png: not an image"):
        next(iter(stylize(job, weights=weights)))


def test_feature_stats_scaled_region_area_is_not_drowned() -> None:
    """A region's statistics are normalised by its own area: a small region matches its painting's
    statistics exactly when its features are the painting's, however small it is."""
    rng = torch.Generator().manual_seed(5)
    pattern = torch.rand(1, 4, 2, 2, generator=rng)
    features = torch.zeros(1, 4, 20, 20)
    features[..., :2, :2] = pattern  # the painting's features in a 4-position region of 400
    weight = torch.zeros(20, 20)
    weight[:2, :2] = 1.0
    stats = weighted_stats(features, weight)
    target = feature_stats(pattern)
    assert torch.allclose(stats.gram, target.gram, atol=1e-6)
    assert isinstance(stats, FeatureStats)
