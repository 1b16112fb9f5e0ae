"""Images between numpy (H x W x 3, float32, [0, 1]) and torch ((1, 3, H, W)), and resizing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def to_tensor(rgb: np.ndarray) -> Tensor:
    # Contiguous NCHW: L-BFGS flattens gradients with view(), which needs standard strides.
    return (
        torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        .permute(2, 0, 1)
        .unsqueeze(0)
        .contiguous()
    )


def to_numpy(image: Tensor) -> np.ndarray:
    return image.detach().clamp(0, 1).squeeze(0).permute(1, 2, 0).float().cpu().numpy()


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a (1, C, H, W) tensor to (width, height); antialiased when shrinking."""
    width, height = size
    if image.shape[-2:] == (height, width):
        return image
    # contiguous(): from a 1 x 1 image, interpolate returns channels-last strides (both layouts fit a
    # 1 x 1 input), and L-BFGS's view() of the gradient fails on them.
    return (
        F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        .clamp(0, 1)
        .contiguous()
    )
