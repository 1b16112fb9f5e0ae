"""Precision and layout: what ``auto`` picks, that it is reported and recorded, and that a bfloat16
network keeps the losses and the optimiser in float32 and paints about the same picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
from engine import device as device_module
from engine.device import network_dtype, network_setup
from engine.memory import estimate_peak_bytes, plan_memory
from engine.params import Precision, StyleJob, StyleParams
from engine.recipe import build_recipe
from engine.records import Finished
from engine.run.network import Network
from engine.run.targets import content_features, make_loss, style_targets, style_terms
from engine.stylize import stylize
from engine.weights import random_weights

CPU = torch.device("cpu")
GiB = 1024**3


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def fast_bf16_cpu(monkeypatch):
    """A CPU with bfloat16 instructions that runs them twice as fast as float32 (a Zen 4 EPYC)."""
    monkeypatch.setattr(device_module, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(device_module, "cpu_bfloat16_speedup", lambda: 2.0)


@pytest.fixture
def slow_bf16_cpu(monkeypatch):
    """bfloat16 instructions that are slower than float32 (a Xeon whose AMX the hypervisor hides)."""
    monkeypatch.setattr(device_module, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(device_module, "cpu_bfloat16_speedup", lambda: 0.7)


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    def never_measured() -> float:
        raise AssertionError("a CPU without bfloat16 instructions must not be measured")

    monkeypatch.setattr(device_module, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(device_module, "cpu_bfloat16_speedup", never_measured)


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:36, 0:48]
    photo = np.stack([xx / 48, yy / 36, 0.5 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "paint.png")
    return tmp_path / "photo.png", tmp_path / "paint.png"


def test_auto_picks_bfloat16_and_channels_last_where_the_cpu_runs_it_faster(fast_bf16_cpu) -> None:
    setup = network_setup(Precision.AUTO, CPU)
    assert setup.precision is Precision.BFLOAT16 and setup.channels_last
    assert setup.describe() == "bfloat16, channels-last" and "2.00x" in setup.reason
    assert network_dtype("auto", CPU) is torch.bfloat16


@pytest.mark.parametrize("cpu", ["slow_bf16_cpu", "no_bf16_cpu"])
def test_auto_stays_float32_where_bfloat16_is_missing_or_slower(cpu, request) -> None:
    request.getfixturevalue(cpu)
    setup = network_setup(Precision.AUTO, CPU)
    assert setup.precision is Precision.FLOAT32 and setup.dtype is torch.float32
    assert setup.channels_last is torch.backends.mkldnn.is_available()  # the layout helps float32 too


def test_float32_forces_the_old_path(fast_bf16_cpu) -> None:
    setup = network_setup(Precision.FLOAT32, CPU)
    assert (setup.precision, setup.channels_last) == (Precision.FLOAT32, False)
    assert network_dtype("float32", CPU) is torch.float32
    assert network_setup("bfloat16", CPU).precision is Precision.BFLOAT16  # asked for is kept


def test_auto_on_a_gpu_stays_float32_without_measuring(no_bf16_cpu) -> None:
    setup = network_setup(Precision.AUTO, torch.device("cuda"))
    assert (setup.precision, setup.channels_last) == (Precision.FLOAT32, True)


def test_the_measurement_runs_once_and_leaves_the_threads_alone() -> None:
    threads = torch.get_num_threads()
    device_module.cpu_bfloat16_speedup.cache_clear()
    try:
        speedup = device_module.cpu_bfloat16_speedup()
        assert speedup > 0 and np.isfinite(speedup)
        assert device_module.cpu_bfloat16_speedup() == speedup  # cached, not measured again
        assert torch.get_num_threads() == threads
    finally:
        device_module.cpu_bfloat16_speedup.cache_clear()


def test_a_bfloat16_network_keeps_its_first_convolution_float32(weights) -> None:
    network = Network.build(weights, StyleParams(), CPU, torch.bfloat16, channels_last=True)
    convs = [layer for layer in network.module.layers if isinstance(layer, torch.nn.Conv2d)]
    assert convs[0].weight.dtype is torch.float32
    assert {conv.weight.dtype for conv in convs[1:]} == {torch.bfloat16}
    features = network(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    assert features["relu1_1"].dtype is torch.float32 and features["relu2_1"].dtype is torch.bfloat16
    assert network.setup.describe() == "bfloat16, channels-last"


def test_losses_stay_float32_under_a_bfloat16_network(weights, pictures) -> None:
    from engine.imageio import load_image

    params = StyleParams(size=48)
    network = Network.build(weights, params, CPU, torch.bfloat16, channels_last=True)
    photo, painting = load_image(pictures[0]), load_image(pictures[1])
    targets = style_targets(network, [painting], [1.0], params, 48)
    content = content_features(network, photo, params, (48, 36))
    loss_fn = make_loss(network, params, content, style_terms(targets, params))
    x = torch.rand(1, 3, 36, 48, requires_grad=True)
    total, terms = loss_fn(network(x), x)
    assert total.dtype is torch.float32 and {t.dtype for t in terms.values()} == {torch.float32}
    total.backward()
    assert x.grad is not None and x.grad.dtype is torch.float32 and torch.isfinite(x.grad).all()


def test_a_tiny_bfloat16_run_ends_close_to_float32_with_float32_optimiser_state(weights, pictures) -> None:
    photo, painting = pictures
    finals: dict[str, Finished] = {}
    for precision in ("float32", "bfloat16"):
        job = StyleJob(photo, (painting,), StyleParams(size=48, iterations=12, precision=precision))
        finals[precision] = [r for r in stylize(job, weights=weights) if isinstance(r, Finished)][0]
    f32, bf16 = finals["float32"], finals["bfloat16"]
    assert bf16.iterations == 12 and np.isfinite(bf16.losses["total"])
    assert bf16.losses["total"] == pytest.approx(f32.losses["total"], rel=0.1)
    assert bf16.extra["network"] == {"precision": "bfloat16", "channels_last": True}
    assert f32.extra["network"] == {"precision": "float32", "channels_last": False}
    # L-BFGS's history is float32: stop a bfloat16 run mid-level and look at what it kept.
    count = iter(range(100))
    job = StyleJob(photo, (painting,), StyleParams(size=48, iterations=12, precision="bfloat16"))
    stopped = [r for r in stylize(job, weights=weights, should_stop=lambda: next(count) > 4)][-1]
    assert isinstance(stopped, Finished) and stopped.resume is not None
    tensors = _tensors(stopped.resume.state.optimiser)
    assert tensors and {t.dtype for t in tensors if t.is_floating_point()} == {torch.float32}


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    return []


def test_the_recipe_records_the_resolved_choice(fast_bf16_cpu, weights, pictures) -> None:
    job = StyleJob(pictures[0], (pictures[1],), StyleParams(size=32, iterations=2))
    finished = [r for r in stylize(job, weights=weights) if isinstance(r, Finished)][0]
    assert finished.job.params.precision is Precision.AUTO
    recipe = build_recipe(finished)
    assert recipe["extra"]["network"] == {"precision": "bfloat16", "channels_last": True}
    assert recipe["device"].endswith("bfloat16, channels-last")


def test_the_plan_line_reports_the_resolved_choice(fast_bf16_cpu, pictures, tmp_path, capsys) -> None:
    out = tmp_path / "result.png"
    code = cli.main(
        ["stylize", "--content", str(pictures[0]), "--style", str(pictures[1]), "--out", str(out),
         "--size", "32", "--iterations", "1", "--device", "cpu", "--json"]
    )  # fmt: skip
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "plan" and events[0]["network"] == "bfloat16, channels-last"
    assert events[-1]["device"].endswith("bfloat16, channels-last")


def test_the_memory_plan_counts_bfloat16_activations(fast_bf16_cpu) -> None:
    params = StyleParams(size=1024, coarse_to_fine=False)
    auto = plan_memory(params, (1024, 768), "cpu", available=64 * GiB)
    assert auto.network == "bfloat16, channels-last"
    assert auto.estimate == estimate_peak_bytes(params, (1024, 768), "cpu", Precision.BFLOAT16, True)
    in_float32 = params.replace(precision="float32")
    float32 = estimate_peak_bytes(in_float32, (1024, 768))
    float32_channels_last = estimate_peak_bytes(in_float32, (1024, 768), "cpu", None, True)
    # Measured at 1024 px (Adam): bfloat16 2710 MiB, float32 channels-last 3104 MiB.
    assert auto.estimate < float32 < float32_channels_last
    assert estimate_peak_bytes(params, (1024, 768)) == float32  # unresolved AUTO counts as float32
