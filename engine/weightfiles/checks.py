"""Validation of layers: each tensor as float32 on the CPU, and the 16 convs chaining as VGG-19's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from engine.errors import WeightsError
from engine.layers import CONV_LAYERS


def as_float32(conv: str, part: str, value: Any, path: Path) -> torch.Tensor:
    """A conv's weight or bias as a contiguous float32 tensor on the CPU; a WeightsError if it is none."""
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"{conv} {part} is a {type(value).__name__}, not a tensor", path)
    if not value.is_floating_point():
        raise WeightsError(f"{conv} {part} has dtype {value.dtype}, expected floating point", path)
    return value.detach().to(device="cpu", dtype=torch.float32).contiguous()


def _list_names(names: Sequence[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def _all_finite(tensor: torch.Tensor) -> bool:
    # A sum is non-finite whenever any element is, and is five times cheaper
    # than an element-wise test; only a suspicious sum (possibly mere overflow)
    # gets the exact test.
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def validate_layers(
    layers: Mapping[str, tuple[torch.Tensor, torch.Tensor]], expected_widths: Sequence[int] | None, path: Path
) -> None:
    """All 16 convs, 3x3 kernels chaining from 3 input channels, finite values."""
    if expected_widths is not None and len(expected_widths) != len(CONV_LAYERS):
        raise ValueError(f"expected_widths needs {len(CONV_LAYERS)} entries, got {len(expected_widths)}")
    missing = [name for name in CONV_LAYERS if name not in layers]
    if missing:
        raise WeightsError(
            f"missing {_list_names(missing)} "
            f"(found {len(layers)} of VGG-19's {len(CONV_LAYERS)} conv layers)",
            path,
        )
    in_channels = 3
    for index, name in enumerate(CONV_LAYERS):
        weight, bias = layers[name]
        if weight.dim() != 4:
            raise WeightsError(
                f"{name} weight has shape {tuple(weight.shape)} but a conv layer needs 4 dimensions", path
            )
        out_channels = expected_widths[index] if expected_widths is not None else weight.shape[0]
        needed = (out_channels, in_channels, 3, 3)
        if tuple(weight.shape) != needed:
            network = "VGG-19" if expected_widths is not None else "the layer chain"
            raise WeightsError(
                f"{name} weight has shape {tuple(weight.shape)} but {network} needs {needed}", path
            )
        if tuple(bias.shape) != (out_channels,):
            raise WeightsError(f"{name} bias has shape {tuple(bias.shape)}, expected ({out_channels},)", path)
        if not _all_finite(weight) or not _all_finite(bias):
            raise WeightsError(f"{name} holds NaN or infinite values", path)
        in_channels = out_channels
