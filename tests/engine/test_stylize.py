"""The optimisation loop on tiny images and a tiny random network (CPU, seconds)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.params import InitMode, Optimizer, StyleJob, StyleParams
from engine.records import Finished, Progress, StopReason
from engine.stylize import stylize
from engine.weights import random_weights

TINY = dict(size=32, iterations=6, device="cpu")


def _write(path: Path, seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    # Smooth gradients plus noise: something with both structure and texture.
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([xx / size[0], yy / size[1], (xx + yy) / sum(size)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 0.15, base.shape), 0, 1)
    image = Image.fromarray((pixels * 255).astype(np.uint8))
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    return {
        "content": _write(tmp_path / "content.png", 1),
        "style": _write(tmp_path / "style.png", 2, (36, 36)),
        "style2": _write(tmp_path / "style2.jpg", 3, (30, 44)),
    }


def _run(job: StyleJob, weights, **kwargs) -> tuple[list[Progress], Finished]:
    records = list(stylize(job, weights=weights, **kwargs))
    progress = [r for r in records if isinstance(r, Progress)]
    finished = records[-1]
    assert isinstance(finished, Finished)
    assert sum(isinstance(r, Finished) for r in records) == 1
    return progress, finished


@pytest.mark.parametrize("optimizer", [Optimizer.LBFGS, Optimizer.ADAM])
def test_both_optimizers_reduce_the_total_loss(images, weights, optimizer) -> None:
    params = StyleParams(**(TINY | {"iterations": 25}), optimizer=optimizer, learning_rate=0.03)
    progress, finished = _run(StyleJob(images["content"], (images["style"],), params), weights)
    totals = [p.losses["total"] for p in progress]
    assert len(progress) == 25 and finished.iterations == 25
    assert totals[-1] < 0.7 * totals[0]
    assert finished.reason is StopReason.COMPLETED
    assert finished.image.shape == (24, 32, 3) and finished.image.dtype == np.float32
    assert 0.0 <= finished.image.min() and finished.image.max() <= 1.0


def test_records_are_immutable_and_complete(images, weights) -> None:
    progress, finished = _run(StyleJob(images["content"], (images["style"],), StyleParams(**TINY)), weights)
    first = progress[0]
    assert [p.iteration for p in progress] == list(range(1, 7))
    assert all(p.total == 6 for p in progress)
    assert set(first.losses) == {"content", "style", "tv", "total"}
    assert (
        first.preview is not None and first.preview.dtype == np.uint8 and first.preview.shape == (24, 32, 3)
    )
    assert progress[-1].preview is not None
    with pytest.raises(AttributeError):
        first.iteration = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.losses["total"] = 0.0  # type: ignore[index]
    with pytest.raises(ValueError):
        first.preview[0, 0, 0] = 1
    assert [p.elapsed for p in progress] == sorted(p.elapsed for p in progress)
    assert finished.job.params.size == 32 and finished.weights_id == random_weights().id


def test_same_seed_same_image(images, weights) -> None:
    params = StyleParams(**TINY, init=InitMode.NOISE, seed=7)
    job = StyleJob(images["content"], (images["style"],), params)
    _, first = _run(job, weights)
    _, second = _run(job, weights)
    np.testing.assert_array_equal(first.image, second.image)
    _, other = _run(StyleJob(images["content"], (images["style"],), params.replace(seed=8)), weights)
    assert not np.array_equal(first.image, other.image)


def test_stop_inside_lbfgs_returns_within_one_iteration(images, weights) -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 7  # polled before each step and inside each closure

    params = StyleParams(**(TINY | {"iterations": 50}))
    progress, finished = _run(
        StyleJob(images["content"], (images["style"],), params), weights, should_stop=should_stop
    )
    assert finished.reason is StopReason.STOPPED
    assert len(progress) <= 4
    assert finished.iterations == len(progress)
    assert finished.image.shape == (24, 32, 3)


def test_stop_from_the_closure_itself(images, weights) -> None:
    # Stop flag flips while the closure is running: the step is abandoned, the last image kept.
    state = {"armed": False}

    def should_stop() -> bool:
        return state["armed"]

    params = StyleParams(**(TINY | {"iterations": 50}))
    gen = stylize(
        StyleJob(images["content"], (images["style"],), params), weights=weights, should_stop=should_stop
    )
    first = next(gen)
    assert isinstance(first, Progress)
    state["armed"] = True
    rest = list(gen)
    assert isinstance(rest[-1], Finished) and rest[-1].reason is StopReason.STOPPED
    assert len(rest) == 1


def test_several_styles_with_blend(images, weights) -> None:
    job = StyleJob(
        images["content"], (images["style"], images["style2"]), StyleParams(**TINY), blend=(0.7, 0.3)
    )
    _, finished = _run(job, weights)
    assert finished.completed
    assert set(finished.extra["inputs"]) == {str(images[k]) for k in ("content", "style", "style2")}


def _poison_tv_loss(monkeypatch, from_call: int) -> None:
    """The TV loss is NaN from its ``from_call``-th evaluation on."""
    import engine.losses as losses

    original = losses.TVLoss.forward
    calls = {"n": 0}

    def poisoned(self, image):
        calls["n"] += 1
        value = original(self, image)
        return value * math.nan if calls["n"] >= from_call else value

    monkeypatch.setattr(losses.TVLoss, "forward", poisoned)


def test_nan_loss_stops_and_keeps_the_last_good_image(images, weights, monkeypatch) -> None:
    _poison_tv_loss(monkeypatch, from_call=4)
    params = StyleParams(**(TINY | {"iterations": 20}), optimizer=Optimizer.ADAM)
    progress, finished = _run(StyleJob(images["content"], (images["style"],), params), weights)
    assert finished.reason is StopReason.NUMERICAL_ERROR
    assert "tv" in finished.message and "last good image" in finished.message
    assert len(progress) == 3
    assert np.isfinite(finished.image).all()


def test_time_limit(images, weights) -> None:
    params = StyleParams(**(TINY | {"iterations": 100_000}), max_seconds=0.5)
    started = time.perf_counter()
    _, finished = _run(StyleJob(images["content"], (images["style"],), params), weights)
    assert finished.reason is StopReason.TIME_LIMIT
    assert time.perf_counter() - started < 5


def test_alpha_is_carried_through(tmp_path, images, weights) -> None:
    rgba = Image.open(images["content"]).convert("RGBA")
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "rgba.png")
    _, finished = _run(StyleJob(tmp_path / "rgba.png", (images["style"],), StyleParams(**TINY)), weights)
    assert finished.alpha is not None and finished.alpha.shape == (24, 32)
    assert finished.alpha[:, :10].max() < 0.1 and finished.alpha[:, -10:].min() > 0.9


def test_bad_input_fails_before_any_progress(tmp_path, images, weights) -> None:
    from engine.errors import InputError

    (tmp_path / "notes.png").write_text("not an image")
    job = StyleJob(tmp_path / "notes.png", (images["style"],), StyleParams(**TINY))
    with pytest.raises(InputError, match="notes.png"):
        next(stylize(job, weights=weights))


def test_lbfgs_sees_large_losses_rescaled_and_small_ones_untouched() -> None:
    # Gatys' convention gives first losses around 1e11 with the real VGG-19 (tubingen/starry_night at
    # 128 px from the photo diverged to inf at iteration 3 before this rescaling, converges after).
    from engine.stylize import lbfgs_loss_scale

    assert lbfgs_loss_scale(3.07e11) == pytest.approx(1 / 3.07e11)
    assert lbfgs_loss_scale(26.6) == 1.0  # our normalised losses keep their tuned behaviour
    assert lbfgs_loss_scale(math.nan) == 1.0 and lbfgs_loss_scale(math.inf) == 1.0


def test_the_papers_convention_runs_from_the_photo(images) -> None:
    from engine.presets import get_preset

    weights = random_weights(width_divisor=16, seed=0)
    params = get_preset("gatys2016").params.replace(size=32, iterations=15, init="content", device="cpu")
    progress, finished = _run(
        StyleJob(images["content"], (images["style"],), params.replace(style_weight=1e9)), weights
    )
    assert progress[0].losses["total"] > 1e3
    assert finished.completed, finished.message
    assert progress[-1].losses["total"] < progress[0].losses["total"]


def test_images_the_caller_decoded_are_not_read_again(images, weights) -> None:
    """The command line validates its inputs before the run and hands them over: the run uses
    exactly those pixels, even if the file changes (here: disappears) in between."""
    from engine.imageio import load_image

    decoded = {path: load_image(path) for path in (images["content"], images["style"])}
    job = StyleJob(images["content"], (images["style"],), StyleParams(**TINY))
    expected = _run(job, weights)[1].image
    images["content"].unlink()
    images["style"].unlink()
    _, finished = _run(job, weights, decoded=decoded)
    assert finished.completed
    np.testing.assert_allclose(finished.image, expected, atol=1e-5)


def test_a_step_is_called_an_overshoot_only_when_it_multiplies_the_loss_tenfold() -> None:
    from engine.stylize import diverged

    assert not diverged(10.0, 9.0) and not diverged(10.0, 25.0) and not diverged(10.0, 100.0)
    assert diverged(10.0, 100.1) and diverged(26.6, 1.3e6)
    assert diverged(10.0, math.nan) and diverged(10.0, math.inf)


def _overshoot_on(monkeypatch, calls: set[int]) -> list[np.ndarray]:
    """Make torch's L-BFGS throw the image far off on the given step() calls (1-based); returns
    the thrown images as previews would show them."""
    import torch

    from engine.records import to_uint8

    original = torch.optim.LBFGS.step
    count = {"n": 0}
    thrown: list[np.ndarray] = []

    def step(self, closure):
        loss = original(self, closure)
        count["n"] += 1
        if count["n"] in calls:
            x = self.param_groups[0]["params"][0]
            with torch.no_grad():
                x.add_(torch.randn(x.shape, generator=torch.Generator().manual_seed(count["n"])) * 4)
            thrown.append(to_uint8(x.detach()[0].permute(1, 2, 0).numpy()))
        return loss

    monkeypatch.setattr(torch.optim.LBFGS, "step", step)
    return thrown


def _lbfgs_job(images, iterations: int) -> StyleJob:
    params = StyleParams(**(TINY | {"iterations": iterations}), coarse_to_fine=False)
    return StyleJob(images["content"], (images["style"],), params)


def test_an_lbfgs_overshoot_is_undone_and_never_shown(images, weights, monkeypatch) -> None:
    thrown = _overshoot_on(monkeypatch, {4})
    progress, finished = _run(_lbfgs_job(images, 12), weights, preview_every=1)
    assert len(thrown) == 1 and finished.completed and len(progress) == 12
    assert any("overshot" in p.message for p in progress)
    first = progress[0].losses["total"]
    # Without the undo the thrown image's loss (hundreds of times the first) would be reported. An
    # ordinary step without a line search may still rise a few-fold (5.45 from 0.58 here, under the
    # 10x undo threshold) before L-BFGS recovers.
    assert all(p.losses["total"] < 5 * first for p in progress)
    assert all(p.preview is not None and not np.array_equal(p.preview, thrown[0]) for p in progress)
    assert finished.losses["total"] < first
    assert np.abs(finished.image - 0.5).max() < 0.5 + 1e-6  # in range, not the thrown image


def test_an_overshoot_on_the_last_step_is_not_saved(images, weights, monkeypatch) -> None:
    thrown = _overshoot_on(monkeypatch, {8})
    progress, finished = _run(_lbfgs_job(images, 8), weights, preview_every=1)
    assert len(thrown) == 1 and finished.completed
    assert "overshot" in progress[-1].message
    # The result is the image the last step started from (its loss was measured in that step),
    # which is also what the last preview showed.
    np.testing.assert_array_equal(to_uint8_image(finished.image), progress[-1].preview)
    assert finished.losses == progress[-1].losses
    assert finished.losses["total"] < progress[0].losses["total"]
    assert not np.array_equal(to_uint8_image(finished.image), thrown[0])


def test_lbfgs_result_losses_are_measured_on_the_saved_image(images, weights) -> None:
    progress, finished = _run(_lbfgs_job(images, 8), weights, preview_every=1)
    # Each record's preview is the image its losses were measured on; the last one is measured
    # after the final step, so it is lower than the one before and it is what gets saved.
    assert finished.losses == progress[-1].losses
    assert progress[-1].losses["total"] < progress[-2].losses["total"]
    np.testing.assert_array_equal(to_uint8_image(finished.image), progress[-1].preview)


def test_a_persistent_nan_with_lbfgs_is_tried_once_more_then_stops(images, weights, monkeypatch) -> None:
    _poison_tv_loss(monkeypatch, from_call=4)
    progress, finished = _run(_lbfgs_job(images, 20), weights)
    assert finished.reason is StopReason.NUMERICAL_ERROR
    # The first NaN is undone (and reported); the same NaN right after the restart stops the run.
    assert "overshot" in progress[-1].message and "nan" in progress[-1].message
    assert all("overshot" not in p.message for p in progress[:-1])
    assert all(math.isfinite(p.losses["total"]) for p in progress)
    assert np.isfinite(finished.image).all()


def to_uint8_image(image: np.ndarray) -> np.ndarray:
    from engine.records import to_uint8

    return to_uint8(image)


def test_the_first_lbfgs_step_of_every_level_makes_real_progress(images, weights) -> None:
    # torch's own first step is 1/|g|_1 long, which leaves the loss where it was; ours is line-searched.
    params = StyleParams(**(TINY | {"iterations": 12, "size": 48}), levels=((32, 6), (48, 6)))
    progress, finished = _run(StyleJob(images["content"], (images["style"],), params), weights)
    assert finished.completed
    # torch's step moves pixels by about a millionth of a grey level, so the loss stays put to many
    # digits; a line-searched one cuts it by 3 to 30 % here (level 2 ranged 0.72-0.97 of its first
    # loss over the start-noise seeds 0-4, level 1 0.82).
    for level in (1, 2):
        first, second = [p.losses["total"] for p in progress if p.level == level][:2]
        assert second < 0.99 * first, (level, first, second)
