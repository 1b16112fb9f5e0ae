"""Coarse-to-fine levels, memory planning, tiles and out-of-memory recovery (tiny CPU runs)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.memory import GiB, estimate_peak_bytes, plan_memory
from engine.params import Optimizer, StyleJob, StyleParams
from engine.plan import plan_levels
from engine.records import Finished, Progress, StopReason
from engine.stylize import is_out_of_memory, stylize
from engine.tiles import tile_grid
from engine.vgg import VGGFeatures
from engine.weights import random_weights


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    photo = np.stack([xx / 160, yy / 120, 0.5 + 0 * xx], -1) + rng.normal(0, 0.1, (120, 160, 3))
    Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "paint.png")
    return tmp_path / "photo.png", tmp_path / "paint.png"


def _run(job: StyleJob, weights) -> tuple[list[Progress], Finished]:
    records = list(stylize(job, weights=weights))
    assert isinstance(records[-1], Finished)
    return [r for r in records if isinstance(r, Progress)], records[-1]


def test_levels_grow_by_at_most_2x_and_share_the_iterations() -> None:
    levels = plan_levels(StyleParams(size=2048, iterations=400, start_size=256))
    sizes = [level.size for level in levels]
    assert sizes[0] == 256 and sizes[-1] == 2048
    assert all(1 < b / a <= 2.0001 for a, b in itertools.pairwise(sizes))
    counts = [level.iterations for level in levels]
    assert sum(counts) == 400 and counts == sorted(counts, reverse=True)
    assert len(plan_levels(StyleParams(size=300, start_size=256))) == 1
    assert len(plan_levels(StyleParams(size=2048, coarse_to_fine=False))) == 1
    explicit = plan_levels(StyleParams(levels=((128, 30), (256, 10))))
    assert [(lv.size, lv.iterations) for lv in explicit] == [(128, 30), (256, 10)]


def test_levels_must_grow() -> None:
    from engine.errors import InputError

    with pytest.raises(InputError):
        StyleParams(levels=((256, 10), (128, 10)))


def test_coarse_to_fine_run_reports_levels_and_ends_at_full_size(images, weights) -> None:
    params = StyleParams(size=96, start_size=48, iterations=9, device="cpu")
    progress, finished = _run(StyleJob(images[0], (images[1],), params), weights)
    assert [p.level for p in progress] == [1] * 6 + [2] * 3
    assert {p.levels for p in progress} == {2}
    assert progress[0].size == (48, 36) and progress[-1].size == (96, 72)
    assert finished.image.shape == (72, 96, 3) and finished.completed


def test_tile_grid_covers_every_pixel_once() -> None:
    for offset in [(0, 0), (16, 48), (112, 32)]:
        cover = np.zeros((150, 230), int)
        for tile in tile_grid(230, 150, 128, offset, margin=32):
            y0, y1, x0, x1 = tile.core
            cover[y0:y1, x0:x1] += 1
            cy0, cy1, cx0, cx1 = tile.crop
            assert cy0 <= y0 and cy1 >= y1 and cx0 <= x0 and cx1 >= x1
            assert (y0 - cy0) % 16 == 0 and (x0 - cx0) % 16 == 0
        assert (cover == 1).all()


def test_tiled_run_reduces_the_loss_without_seams(images, weights) -> None:
    params = StyleParams(
        size=128, iterations=12, coarse_to_fine=False, tile_size=64, device="cpu", learning_rate=0.05
    )
    progress, finished = _run(StyleJob(images[0], (images[1],), params), weights)
    assert finished.completed and finished.image.shape == (96, 128, 3)
    assert progress[-1].losses["total"] < 0.8 * progress[0].losses["total"]
    # No grid: jumps across any column are no larger at multiples of 64 than elsewhere.
    image = finished.image
    jumps = np.abs(np.diff(image, axis=1)).mean(axis=(0, 2))
    at_64 = jumps[63]
    assert at_64 < 2.0 * np.median(jumps)


def _network(weights, params: StyleParams):
    from engine.run.network import Network

    return Network.build(weights, params, torch.device("cpu"), torch.float32)


def test_tiled_style_targets_match_whole_image_grams(images, weights) -> None:
    from engine.imageio import load_image
    from engine.run.targets import style_targets

    params = StyleParams(size=160, iterations=1, coarse_to_fine=False, device="cpu")
    network, styles = _network(weights, params), [load_image(images[1])]
    whole = style_targets(network, styles, (1.0,), params, 256, 0)
    tiled = style_targets(network, styles, (1.0,), params, 256, 64)
    for name in whole:
        relative = (whole[name].gram - tiled[name].gram).norm() / whole[name].gram.norm()
        assert relative < 0.15, name  # only tile borders differ
        relative = (whole[name].mean - tiled[name].mean).norm() / whole[name].mean.norm()
        assert relative < 0.15, name


def test_tiled_content_target_is_the_whole_image_features(images, weights) -> None:
    """Stitched tile by tile, relu4_2 equals the whole-image features: its receptive field
    (42 px radius) fits in the 64 px margin, so moving tiles read exactly the untiled target."""
    from engine.imageio import load_image
    from engine.run.targets import stitched_features
    from engine.run.tensors import resize, to_tensor

    params = StyleParams(size=200, iterations=1, coarse_to_fine=False, device="cpu")
    network = _network(weights, params)
    content = resize(to_tensor(load_image(images[0]).rgb), (200, 150))
    whole = network.features(content, {"relu4_2", "relu2_1"})
    stitched = stitched_features(network, content, {"relu4_2", "relu2_1"}, 64)
    for name, value in whole.items():
        assert stitched[name].shape == value.shape, name
        torch.testing.assert_close(stitched[name], value, rtol=1e-4, atol=1e-5)
    # Every moving tile's window into the stitched map has the shape its own features have.
    for offset in [(0, 0), (16, 48), (48, 32)]:
        for part in tile_grid(200, 150, 64, offset):
            y0, y1, x0, x1 = part.crop
            with torch.no_grad():
                local = part.core_features(network(content[..., y0:y1, x0:x1], {"relu4_2"}))["relu4_2"]
            top, bottom, left, right = part.in_whole_image(200, 150).feature_window("relu4_2", 18, 25)
            assert local.shape[-2:] == (bottom - top, right - left)
            torch.testing.assert_close(
                local, stitched["relu4_2"][..., top:bottom, left:right], rtol=1e-4, atol=1e-5
            )


def test_out_of_memory_mid_run_falls_back_and_continues(images, weights, monkeypatch) -> None:
    original = VGGFeatures.forward
    calls = {"n": 0}

    def flaky(self, image, wanted):
        if torch.is_grad_enabled() and image.requires_grad:
            calls["n"] += 1
            if calls["n"] == 4:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, image, wanted)

    monkeypatch.setattr(VGGFeatures, "forward", flaky)
    params = StyleParams(size=64, iterations=8, coarse_to_fine=False, device="cpu", optimizer=Optimizer.LBFGS)
    progress, finished = _run(StyleJob(images[0], (images[1],), params), weights)
    assert finished.completed and finished.iterations == 8
    assert [p.iteration for p in progress] == list(range(1, 9))
    notices = [p.message for p in progress if p.message]
    assert any("out of memory" in m and "L-BFGS" in m for m in notices)
    assert finished.extra["fallbacks"] == ["remember fewer L-BFGS steps (history 5)"]


def test_out_of_memory_everywhere_keeps_the_last_image(images, weights, monkeypatch) -> None:
    original = VGGFeatures.forward
    calls = {"n": 0}

    def failing(self, image, wanted):
        if torch.is_grad_enabled() and image.requires_grad:
            calls["n"] += 1
            if calls["n"] > 3:  # iteration 1 (line-searched: 2 evaluations) and 2 succeed
                raise MemoryError("host out of memory")
        return original(self, image, wanted)

    monkeypatch.setattr(VGGFeatures, "forward", failing)
    params = StyleParams(size=300, iterations=10, coarse_to_fine=False, device="cpu")
    _, finished = _run(StyleJob(images[0], (images[1],), params), weights)
    assert finished.reason is StopReason.OUT_OF_MEMORY
    assert finished.iterations == 2 and "out of memory" in finished.message
    assert np.isfinite(finished.image).all() and finished.image.shape == (225, 300, 3)


def test_is_out_of_memory_recognises_each_backend() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_memory_estimate_grows_with_size_and_optimizer_state() -> None:
    small = estimate_peak_bytes(StyleParams(size=512, coarse_to_fine=False), (1024, 768))
    big = estimate_peak_bytes(StyleParams(size=1024, coarse_to_fine=False), (1024, 768))
    adam = estimate_peak_bytes(StyleParams(size=1024, coarse_to_fine=False, optimizer="adam"), (1024, 768))
    tiled = estimate_peak_bytes(StyleParams(size=4096, tile_size=512, optimizer="adam"), (1024, 768))
    assert small < big and adam < big
    assert tiled < estimate_peak_bytes(StyleParams(size=4096, optimizer="adam"), (1024, 768)) / 4


def test_memory_estimate_reserves_only_the_lbfgs_history_a_level_can_fill() -> None:
    def one_level(iterations: int, history: int = 50) -> int:
        params = StyleParams(size=1024, iterations=iterations, lbfgs_history=history, coarse_to_fine=False)
        return estimate_peak_bytes(params, (1024, 768))

    step = 2 * 3 * 1024 * 768 * 4  # two float32 image-sized vectors per remembered step
    assert one_level(11) - one_level(1) == 10 * step
    assert one_level(51) == one_level(500)  # the history is full after 51 iterations
    assert one_level(500, history=5) == one_level(6)
    # A pyramid's peak is its largest level's: 2048 px with a 10-iteration top level reserves ten
    # steps there, not fifty.
    pyramid = StyleParams(size=2048, iterations=150)
    top = StyleParams(size=2048, iterations=10, coarse_to_fine=False)
    assert estimate_peak_bytes(pyramid, (2048, 1536)) == estimate_peak_bytes(top, (2048, 1536))


def test_memory_plan_says_what_would_fit() -> None:
    fits = plan_memory(StyleParams(size=512), (1024, 768), "cpu", available=16 * GiB)
    assert fits.fits and "fits" in fits.describe()
    tight = plan_memory(StyleParams(size=4096), (1024, 768), "cpu", available=12 * GiB)
    assert not tight.fits and tight.suggested is not None
    assert "tiles" in tight.suggestion
    assert estimate_peak_bytes(tight.suggested, (1024, 768)) <= 12 * GiB * 0.85


def test_run_adopts_the_memory_plan_when_it_would_not_fit(images, weights, monkeypatch) -> None:
    import engine.run.fallback as stylize_module

    # Eight iterations can fill more than five L-BFGS steps of history, so history 5 is smaller.
    # float32: the layout plan_memory assumes is then the one estimate_peak_bytes counts by default.
    params = StyleParams(size=160, iterations=8, coarse_to_fine=False, device="cpu", precision="float32")
    whole = estimate_peak_bytes(params, (160, 120))
    smaller = estimate_peak_bytes(params.replace(lbfgs_history=5), (160, 120))
    budget = (whole + smaller) / 2 / 0.85  # room for the smaller footprint only
    real = stylize_module.plan_memory
    monkeypatch.setattr(
        stylize_module, "plan_memory", lambda p, size, device: real(p, size, device, available=int(budget))
    )
    progress, finished = _run(StyleJob(images[0], (images[1],), params), weights)
    assert finished.completed
    assert "does NOT fit" in progress[0].message and "history 5" in progress[0].message
