"""Writing weights: as a flat state dict, or as a ``.safetensors`` file that records its preprocessing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from engine.layers import CONV_LAYERS
from engine.weightfiles.key_schemes import TORCHVISION_FEATURE_INDEX
from engine.weightfiles.record import PREPROCESSINGS, VGGWeights
from engine.weightfiles.safetensors_file import SAFETENSORS_PREPROCESSING_KEY

# All weights messages under one logger, as engine.weights.
log = logging.getLogger("engine.weights")


def state_dict(weights: VGGWeights, naming: str = "ours") -> dict[str, torch.Tensor]:
    """The layers as a flat state dict: ``naming`` "ours" (conv1_1.weight) or "torchvision"."""
    if naming not in ("ours", "torchvision"):
        raise ValueError(f"naming must be 'ours' or 'torchvision', got {naming!r}")
    result: dict[str, torch.Tensor] = {}
    for name in CONV_LAYERS:
        if name not in weights.layers:
            continue
        weight, bias = weights.layers[name]
        stem = name if naming == "ours" else f"features.{TORCHVISION_FEATURE_INDEX[name]}"
        result[f"{stem}.weight"] = weight.detach().contiguous()
        result[f"{stem}.bias"] = bias.detach().contiguous()
    return result


def save_weights_safetensors(weights: VGGWeights, path: str | os.PathLike[str]) -> Path:
    """Write ``weights`` as ``.safetensors`` with our names and its preprocessing in the metadata."""
    from safetensors.torch import save_file

    if weights.preprocessing != PREPROCESSINGS.get(weights.preprocessing.name):
        raise ValueError(f"preprocessing {weights.preprocessing} has no registered name to record")
    path = Path(path)
    tensors = {key: value.to(torch.float32).contiguous() for key, value in state_dict(weights).items()}
    metadata = {
        SAFETENSORS_PREPROCESSING_KEY: weights.preprocessing.name,
        "painterly.source_id": weights.id,
    }
    save_file(tensors, str(path), metadata=metadata)
    log.info(
        "wrote %d conv layers (%s preprocessing) to %s", len(tensors) // 2, weights.preprocessing.name, path
    )
    return path
