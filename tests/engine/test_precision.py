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
from engine.plan import Level
from engine.recipe import build_recipe
from engine.records import Finished, Progress, StopReason
from engine.resume import load_resume_point, save_resume_point
from engine.run import fallback
from engine.run.network import Network
from engine.run.steps import Control
from engine.run.targets import content_features, make_loss, style_targets, style_terms
from engine.stylize import stylize
from engine.weights import random_weights
from tests.engine.steppers import drain

CPU = torch.device("cpu")
GiB = 1024**3
FINISH = device_module.FLOAT32_FINISH_ITERATIONS


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
    assert setup.describe() == f"bfloat16, float32 for the last {FINISH} iterations, channels-last"
    assert "2.00x" in setup.reason
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
    assert bf16.extra["network"] == {"precision": "bfloat16", "channels_last": True, "float32_finish": FINISH}
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
    # Two iterations, both within the float32 finish: the recipe says how many ran in float32.
    assert recipe["extra"]["network"] == {"precision": "bfloat16", "channels_last": True, "float32_finish": 2}
    assert recipe["device"].endswith("bfloat16, float32 for the last 2 iterations, channels-last")


def test_the_plan_line_reports_the_resolved_choice(fast_bf16_cpu, pictures, tmp_path, capsys) -> None:
    out = tmp_path / "result.png"
    code = cli.main(
        ["stylize", "--content", str(pictures[0]), "--style", str(pictures[1]), "--out", str(out),
         "--size", "32", "--iterations", "1", "--device", "cpu", "--json"]
    )  # fmt: skip
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    planned = f"bfloat16, float32 for the last {FINISH} iterations, channels-last"
    assert events[0]["event"] == "plan" and events[0]["network"] == planned
    assert events[-1]["device"].endswith("bfloat16, float32 for the last 1 iteration, channels-last")


def test_the_memory_plan_counts_bfloat16_activations(fast_bf16_cpu) -> None:
    params = StyleParams(size=1024, coarse_to_fine=False)
    auto = plan_memory(params, (1024, 768), "cpu", available=64 * GiB)
    assert auto.network == f"bfloat16, float32 for the last {FINISH} iterations, channels-last"
    assert auto.estimate == estimate_peak_bytes(params, (1024, 768), "cpu", Precision.BFLOAT16, True)
    in_float32 = params.replace(precision="float32")
    float32 = estimate_peak_bytes(in_float32, (1024, 768))
    float32_channels_last = estimate_peak_bytes(in_float32, (1024, 768), "cpu", None, True)
    # Measured at 1024 px (Adam): bfloat16 2710 MiB, float32 channels-last 3104 MiB.
    assert auto.estimate < float32 < float32_channels_last
    assert estimate_peak_bytes(params, (1024, 768)) == float32  # unresolved AUTO counts as float32


# The float32 finish: a reduced-precision run's last iterations with the float32 network.


@pytest.fixture
def finish_of_three(monkeypatch) -> int:
    """A finish short enough for tiny runs (the engine's own is engine.device.FLOAT32_FINISH_ITERATIONS)."""
    monkeypatch.setattr(device_module, "FLOAT32_FINISH_ITERATIONS", 3)
    return 3


@pytest.fixture
def stepping_networks(monkeypatch) -> list[Network]:
    """The network every iteration of a run was stepped with, in order."""
    seen: list[Network] = []
    real = fallback.stepper_for

    def spying(image, network, *args, **kwargs):
        stepper = real(image, network, *args, **kwargs)
        while True:
            try:
                step = next(stepper)
            except StopIteration as end:
                return end.value
            seen.append(network)
            yield step

    monkeypatch.setattr(fallback, "stepper_for", spying)
    return seen


def _run(job: StyleJob, weights, **kwargs) -> tuple[list[Progress], Finished]:
    records = list(stylize(job, weights=weights, **kwargs))
    assert isinstance(records[-1], Finished)
    return [r for r in records if isinstance(r, Progress)], records[-1]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_last_iterations_of_the_final_level_run_with_the_float32_network(
    finish_of_three, stepping_networks, weights, pictures, optimizer
) -> None:
    params = StyleParams(
        size=48, levels=((32, 4), (48, 6)), iterations=10, precision="bfloat16", optimizer=optimizer
    )
    progress, finished = _run(StyleJob(*pictures[:1], pictures[1:], params), weights)
    dtypes = [network.dtype for network in stepping_networks]
    # The first level and the final level's first three in bfloat16, the final three in float32.
    assert dtypes == [torch.bfloat16] * 7 + [torch.float32] * 3
    assert [p.iteration for p in progress] == list(range(1, 11)) and finished.iterations == 10
    assert progress[-1].preview is not None and np.isfinite(finished.losses["total"])
    # The finish's network has the weights themselves, not bfloat16's rounding of them cast back.
    finishing = stepping_networks[-1].module.layers[2].weight
    assert torch.equal(finishing, weights.layers["conv1_2"][0])
    assert finished.device.endswith("bfloat16, float32 for the last 3 iterations, channels-last")
    assert finished.extra["network"]["float32_finish"] == 3


def test_a_float32_run_is_unchanged_by_the_finish(stepping_networks, weights, pictures, monkeypatch) -> None:
    job = StyleJob(*pictures[:1], pictures[1:], StyleParams(size=48, iterations=6, precision="float32"))
    finals = []
    for finish in (0, 3):
        monkeypatch.setattr(device_module, "FLOAT32_FINISH_ITERATIONS", finish)
        finals.append(_run(job, weights)[1])
    assert np.array_equal(finals[0].image, finals[1].image)
    assert finals[0].losses == finals[1].losses
    assert (
        finals[1].device.endswith("float32, contiguous")
        and "float32_finish" not in finals[1].extra["network"]
    )
    assert len(stepping_networks) == 12 and {n.dtype for n in stepping_networks} == {torch.float32}


def test_without_the_finish_bfloat16_runs_every_iteration_in_bfloat16(
    stepping_networks, weights, pictures, monkeypatch
) -> None:
    monkeypatch.setattr(device_module, "FLOAT32_FINISH_ITERATIONS", 0)  # as benchmarks/precision_quality.py
    job = StyleJob(*pictures[:1], pictures[1:], StyleParams(size=48, iterations=5, precision="bfloat16"))
    finished = _run(job, weights)[1]
    assert {n.dtype for n in stepping_networks} == {torch.bfloat16} and len(stepping_networks) == 5
    assert finished.device.endswith("bfloat16, channels-last")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("stop_after", [2, 5, 6])  # before the finish, where it starts, within it
def test_a_stop_and_resume_gives_the_pixels_of_an_unstopped_run(
    finish_of_three, weights, pictures, tmp_path, optimizer, stop_after
) -> None:
    params = StyleParams(
        size=48, iterations=8, precision="bfloat16", optimizer=optimizer, coarse_to_fine=False
    )
    job = StyleJob(*pictures[:1], pictures[1:], params)
    _, unstopped = _run(job, weights)

    seen: list[int] = []
    records = []
    for record in stylize(job, weights=weights, should_stop=lambda: bool(seen) and seen[-1] >= stop_after):
        records.append(record)
        if isinstance(record, Progress):
            seen.append(record.iteration)
    stopped = records[-1]
    assert isinstance(stopped, Finished) and stopped.reason is StopReason.STOPPED
    assert stopped.iterations == stop_after and stopped.resume is not None
    # The resume point keeps the run's own precision: the finish follows from the iteration count.
    assert stopped.resume.fallback_params["precision"] == "bfloat16"
    in_float32 = max(0, stop_after - 5)
    assert stopped.extra["network"].get("float32_finish", 0) == in_float32
    save_resume_point(stopped.resume, tmp_path / "state.painterly-resume")
    point = load_resume_point(tmp_path / "state.painterly-resume")

    progress, resumed = _run(job, weights, resume=point)
    assert [p.iteration for p in progress] == list(range(stop_after + 1, 9))
    assert resumed.iterations == 8 and resumed.reason is StopReason.COMPLETED
    assert np.array_equal(resumed.image, unstopped.image)
    assert resumed.losses == unstopped.losses
    assert resumed.device == unstopped.device and resumed.device.endswith(
        "float32 for the last 3 iterations, channels-last"
    )


def test_a_finish_that_runs_out_of_memory_finishes_in_bfloat16(
    finish_of_three, weights, pictures, monkeypatch
):
    real = fallback.stepper_for

    def float32_runs_out(image, network, *args, **kwargs):
        if network.dtype == torch.float32:
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return real(image, network, *args, **kwargs)

    monkeypatch.setattr(fallback, "stepper_for", float32_runs_out)
    params = StyleParams(size=48, iterations=6, precision="bfloat16", coarse_to_fine=False)
    progress, finished = _run(StyleJob(*pictures[:1], pictures[1:], params), weights)
    assert finished.iterations == 6 and finished.reason is StopReason.COMPLETED
    assert finished.extra["fallbacks"] == ["finish in bfloat16 (float32 does not fit)"]
    assert (
        finished.device.endswith("bfloat16, channels-last")
        and "float32_finish" not in finished.extra["network"]
    )
    assert any("float32 does not fit" in p.message for p in progress)


def test_a_paused_stepper_goes_on_as_if_it_never_paused(weights, pictures) -> None:
    """The mechanism under the finish: L-BFGS stepped 3 + 4 times through a paused state (the same
    network both times) takes the same steps as 7 at once."""
    from engine.imageio import load_image

    params = StyleParams(size=48)
    network = Network.build(weights, params, CPU, torch.float32)
    photo, painting = load_image(pictures[0]), load_image(pictures[1])
    inputs = fallback.LevelInputs(photo, [painting], (1.0,), Control(lambda: False, 0.0))
    level, start = Level(48, 7), torch.rand(1, 3, 36, 48, generator=torch.Generator().manual_seed(0))

    whole, whole_end = drain(fallback.stepper_for(start, network, params, inputs, level, 7, 1, 0))
    first, paused = drain(
        fallback.stepper_for(start, network, params, inputs, level, 3, 1, 0, level_ends=False)
    )
    assert paused.reason is StopReason.COMPLETED and paused.state is not None and paused.state.optimiser
    rest, rest_end = drain(fallback.stepper_for(start, network, params, inputs, level, 4, 4, 0, paused.state))
    assert [s.losses for s in first + rest] == [s.losses for s in whole]
    assert torch.equal(rest_end.image, whole_end.image)
