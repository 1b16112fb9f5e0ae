"""The run engine's parts, each alone: steppers, targets, the network, the fallback ladder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.imageio import load_image
from engine.params import Optimizer, StyleJob, StyleParams
from engine.plan import Level
from engine.records import Finished, StopReason
from engine.run import fallback
from engine.run.adam import adam_steps, tiled_adam_steps
from engine.run.lbfgs import lbfgs_steps, out_of_range_penalty
from engine.run.network import Network
from engine.run.steps import Control, non_finite_message
from engine.run.targets import make_loss, style_targets, style_terms
from engine.stylize import RunOptions, stylize
from engine.weights import random_weights
from tests.engine.steppers import drain

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


def quadratic(target: torch.Tensor):
    """A convex objective with a known minimum, in the shape the steppers expect."""

    def objective(x: torch.Tensor):
        total = ((x - target) ** 2).mean() * 100
        return total, {"content": total, "style": total * 0, "tv": total * 0}

    return objective


def control(stop=lambda: False, max_seconds: float = 0.0) -> Control:
    return Control(stop, time.perf_counter(), max_seconds)


def test_lbfgs_stepper_descends_and_keeps_measured_images() -> None:
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 3, 8, 8, requires_grad=True)
    steps, end = drain(lbfgs_steps(x, quadratic(target), StyleParams(), 6, control(), 1))
    assert len(steps) == 6 and end.reason is StopReason.COMPLETED
    totals = [s.losses["total"] for s in steps]
    assert totals[-1] < 0.01 * totals[0]
    assert torch.equal(end.image, steps[-1].kept) and end.image.device.type == "cpu"


def test_lbfgs_keeps_the_picture_in_range_and_reports_what_it_ends_with() -> None:
    # The unconstrained optimum lies outside 0..1 (half the pixels want -0.5, half 1.5): unbounded,
    # L-BFGS goes there, and the picture saved after clamping is not the one measured.
    target = torch.full((1, 3, 8, 8), -0.5)
    target[..., 4:] = 1.5

    def objective(x: torch.Tensor):  # of the size of a normalised style loss
        total = ((x - target) ** 2).mean()
        return total, {"content": total, "style": total * 0, "tv": total * 0}

    x = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    steps, end = drain(lbfgs_steps(x, objective, StyleParams(), 20, control(), 1))
    assert float(end.image.min()) > -0.002 and float(end.image.max()) < 1.002
    saved = end.image.clamp(0, 1)
    with torch.no_grad():
        measured = float(objective(saved)[0])
    assert steps[-1].losses["total"] == pytest.approx(measured, rel=1e-3)
    # The best picture in range: 0 and 1 where the optimum is beyond them.
    assert torch.allclose(saved, target.clamp(0, 1), atol=2e-3)


def test_the_range_penalty_is_zero_inside_and_grows_outside() -> None:
    inside = torch.rand(1, 3, 4, 4)
    assert float(out_of_range_penalty(inside)) == 0.0
    outside = inside.clone()
    outside[0, 0, 0, 0] = -0.1
    further = inside.clone()
    further[0, 0, 0, 0] = 1.2
    assert 0 < float(out_of_range_penalty(outside)) < float(out_of_range_penalty(further))


def test_lbfgs_stepper_undoes_an_overshoot() -> None:
    target = torch.full((1, 3, 4, 4), 0.5)
    calls = {"n": 0}

    def wild(x: torch.Tensor):
        calls["n"] += 1
        total = ((x - target) ** 2).mean() + 1.0
        if calls["n"] == 4:  # one evaluation reports a huge loss, as after a wild step
            total = total * 1e6
        return total, {"content": total, "style": total * 0, "tv": total * 0}

    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    steps, end = drain(lbfgs_steps(x, wild, StyleParams(), 5, control(), 1))
    notices = [s.notice for s in steps if s.notice]
    assert notices and "overshot" in notices[0]
    assert all(s.losses["total"] < 10 for s in steps)
    assert end.reason is StopReason.COMPLETED


def test_a_stop_inside_the_closure_ends_the_level_with_a_known_image() -> None:
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    asked = {"n": 0}

    def stop() -> bool:
        asked["n"] += 1
        return asked["n"] > 30  # past the first step's line search, inside a later closure

    objective = quadratic(torch.ones(1, 3, 4, 4))
    steps, end = drain(lbfgs_steps(x, objective, StyleParams(), 50, control(stop), 1))
    assert end.reason is StopReason.STOPPED and 0 < len(steps) < 50
    assert torch.equal(end.image, steps[-1].kept)


def test_a_non_finite_loss_ends_the_level_with_the_last_good_image() -> None:
    def poisoned(x: torch.Tensor):
        total = x.sum() * 0 + (float("nan") if poisoned.calls > 1 else 1.0)
        poisoned.calls += 1
        return total, {"content": total, "style": total * 0, "tv": total * 0}

    poisoned.calls = 0
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    steps, end = drain(adam_steps(x, poisoned, StyleParams(optimizer=Optimizer.ADAM), 5, control(), 7))
    assert end.reason is StopReason.NUMERICAL_ERROR and "iteration 9" in end.message
    assert len(steps) == 2 and torch.equal(end.image, steps[-1].kept)


def test_the_time_limit_ends_a_level() -> None:
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    started = Control(lambda: False, time.perf_counter() - 10, max_seconds=5)
    steps, end = drain(adam_steps(x, quadratic(x.detach() + 1), StyleParams(), 5, started, 1))
    assert steps == [] and end.reason is StopReason.TIME_LIMIT


def test_non_finite_message_names_the_term() -> None:
    assert non_finite_message({"total": 1.0, "style": 0.5}, 3) is None
    message = non_finite_message({"total": float("inf"), "style": float("inf"), "tv": 0.0}, 3)
    assert message is not None and "style" in message and "iteration 3" in message


def test_tiled_adam_moves_every_pixel_without_seams(weights) -> None:
    params = StyleParams(size=96, tile_size=64, optimizer=Optimizer.ADAM, learning_rate=0.05)
    network = Network.build(weights, params, CPU, torch.float32)
    rng = np.random.default_rng(0)
    painting = type("Painting", (), {})()
    painting.rgb, painting.size = rng.random((48, 48, 3)).astype(np.float32), (48, 48)
    targets = style_targets(network, [painting], (1.0,), params, 96, 64)
    image = torch.full((1, 3, 72, 96), 0.5)
    terms = style_terms(targets, params)
    steps, end = drain(tiled_adam_steps(image, network, params, {}, terms, 3, control(), 1, 0))
    assert len(steps) == 3 and end.image.shape == image.shape
    assert (end.image - image).abs().mean(dim=1).min() > 0  # every pixel was some tile's core


def test_channels_last_network_runs_lbfgs(weights, tmp_path: Path) -> None:
    """The optimised image stays in the standard layout even for a channels-last network, so
    L-BFGS's view() of the gradient works (it failed on channels-last strides)."""
    rng = np.random.default_rng(0)
    for name in ("photo.png", "paint.png"):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / name)
    job = StyleJob(tmp_path / "photo.png", (tmp_path / "paint.png",), StyleParams(size=32, iterations=3))
    records = list(stylize(job, weights=weights, options=RunOptions(channels_last=True)))
    assert isinstance(records[-1], Finished) and records[-1].iterations == 3


def test_network_with_dtype_is_a_new_network(weights) -> None:
    network = Network.build(weights, StyleParams(), CPU, torch.float32)
    half = network.with_dtype(torch.bfloat16)
    assert half is not network and half.dtype is torch.bfloat16
    assert network.with_dtype(torch.float32) is network
    assert half.module.layers[2].weight.dtype is torch.bfloat16  # conv1_2 (conv1_1 stays float32)


def test_the_ladder_continues_a_level_after_running_out_of_memory(weights, tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    params = StyleParams(size=32, iterations=6, coarse_to_fine=False)
    network = Network.build(weights, params, CPU, torch.float32)
    content = load_image(tmp_path / "p.png")
    inputs = fallback.LevelInputs(content, [content], (1.0,), control())
    real = fallback.lbfgs_steps

    def runs_out_after_two(x, objective, p, iterations, ctl, first, resume=None):
        stepper = real(x, objective, p, iterations, ctl, first, resume)
        yield next(stepper)
        yield next(stepper)
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(fallback, "lbfgs_steps", runs_out_after_two)
    image = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    steps, outcome = drain(fallback.run_level(image, Level(32, 6), 0, params, network, inputs, 1))
    assert len(steps) == 6  # two, then history 5 (two more), then Adam for the last two
    assert outcome.fallbacks == ("remember fewer L-BFGS steps (history 5)", "use Adam instead of L-BFGS")
    assert outcome.params.optimizer is Optimizer.ADAM
    assert any("ran out of memory" in s.notice for s in steps)


def test_make_loss_weights_each_term(weights) -> None:
    params = StyleParams(content_weight=2.0, style_weight=0.0, tv_weight=0.0)
    network = Network.build(weights, params, CPU, torch.float32)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    content = network.features(image, {"relu4_2"})
    loss = make_loss(network, params, content, [])
    total, terms = loss(network(image), image)
    assert float(total) == pytest.approx(0.0, abs=1e-6)
    shifted = (image + 0.1).clamp(0, 1)
    total, terms = loss(network(shifted), shifted)
    assert float(total) > 0
    assert float(total) == pytest.approx(sum(float(value) for value in terms.values()), rel=1e-5)
