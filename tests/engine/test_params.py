from __future__ import annotations

import math

import pytest

from engine.errors import InputError
from engine.params import VGG19_LAYERS, InitMode, Optimizer, StyleJob, StyleParams
from engine.presets import PRESETS, apply_preset, get_preset


def test_layer_names_cover_vgg19() -> None:
    assert VGG19_LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert VGG19_LAYERS[-1] == "pool5"
    assert sum(name.startswith("conv") for name in VGG19_LAYERS) == 16
    assert len(VGG19_LAYERS) == 16 * 2 + 5


def test_defaults_are_the_default_preset() -> None:
    assert get_preset("default").params == StyleParams()


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 0},
        {"size": -5},
        {"size": math.nan},
        {"size": 10**9},
        {"size": 12.5},
        {"iterations": 0},
        {"iterations": -1},
        {"iterations": math.inf},
        {"content_weight": -1},
        {"style_weight": math.nan},
        {"tv_weight": math.inf},
        {"content_weight": 0, "style_weight": 0},
        {"style_layers": (("relu9_9", 1.0),)},
        {"style_layers": (("relu1_1", -1.0),)},
        {"style_scale": 0},
        {"learning_rate": 0},
        {"optimizer": "sgd"},
        {"init": InitMode.IMAGE},
        {"seed": -1},
        {"size": True},
    ],
)
def test_bad_values_are_one_line_input_errors(changes: dict) -> None:
    with pytest.raises(InputError) as caught:
        StyleParams(**changes)
    assert "\n" not in str(caught.value)


def test_strings_become_enums_and_round_trip() -> None:
    params = StyleParams(optimizer="adam", size=256.0, style_layers={"relu1_1": 1, "relu2_1": 0.5})
    assert params.optimizer is Optimizer.ADAM
    assert params.size == 256 and isinstance(params.size, int)
    assert params.style_layers == (("relu1_1", 1.0), ("relu2_1", 0.5))
    assert StyleParams.from_dict(params.to_dict()) == params


def test_from_dict_ignores_unknown_keys() -> None:
    data = StyleParams().to_dict() | {"from_the_future": 1}
    assert StyleParams.from_dict(data) == StyleParams()


def test_deepest_layer_ignores_unused_layers() -> None:
    params = StyleParams(
        content_layers=(("relu2_2", 1.0),), style_layers=(("relu1_1", 1.0), ("relu5_1", 0.0))
    )
    assert params.deepest_layer == "relu2_2"


def test_job_blend_validation(tmp_path) -> None:
    with pytest.raises(InputError):
        StyleJob(content=tmp_path / "c.png", styles=(tmp_path / "a.png", tmp_path / "b.png"), blend=(1.0,))
    with pytest.raises(InputError):
        StyleJob(content=tmp_path / "c.png", styles=(tmp_path / "a.png",), blend=(0.0,))
    with pytest.raises(InputError):
        StyleJob(content=tmp_path / "c.png", styles=())
    job = StyleJob(content=tmp_path / "c.png", styles=(tmp_path / "a.png", tmp_path / "b.png"), blend=(3, 1))
    assert job.normalized_blend == (0.75, 0.25)


def test_presets_are_valid_and_distinct() -> None:
    assert {
        "default",
        "gatys2016",
        "tf-tutorial",
        "pytorch-udacity",
        "deeplearning-ai",
        "tf-matconvnet",
    } <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.params.preset == name
        assert preset.description and preset.source
    assert len({p.params for p in PRESETS.values()}) == len(PRESETS)


def test_gatys_preset_matches_the_paper() -> None:
    params = get_preset("gatys2016").params
    assert params.content_layers == (("relu4_2", 1.0),)
    assert [n for n, _ in params.style_layers] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert all(w == pytest.approx(0.2) for _, w in params.style_layers)
    assert params.content_weight / params.style_weight == pytest.approx(1e-3)
    assert params.pooling.value == "avg" and params.optimizer is Optimizer.LBFGS


def test_apply_preset_keeps_machine_settings() -> None:
    mine = StyleParams(seed=42, device="cpu", size=777, weights="/tmp/x.pth")
    changed = apply_preset(mine, "tf-tutorial")
    assert (changed.seed, changed.device.value, changed.size, changed.weights) == (
        42,
        "cpu",
        777,
        "/tmp/x.pth",
    )
    assert changed.optimizer is Optimizer.ADAM and changed.preset == "tf-tutorial"
    with pytest.raises(InputError):
        apply_preset(mine, "nope")


def test_large_seeds_are_kept_exactly() -> None:
    assert StyleParams(seed=2**62 + 5).seed == 2**62 + 5
