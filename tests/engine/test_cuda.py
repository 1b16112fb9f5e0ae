"""GPU-only checks; they skip where there is no CUDA (CI never has one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.device import choose_device
from engine.params import Precision, StyleJob, StyleParams
from engine.records import Finished
from engine.stylize import stylize
from engine.weights import random_weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def job_files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    return tmp_path / "c.png", tmp_path / "s.png"


def test_auto_picks_cuda() -> None:
    assert choose_device("auto").device.type == "cuda"


@pytest.mark.parametrize("precision", [Precision.FLOAT32, Precision.BFLOAT16, Precision.FLOAT16])
def test_runs_on_cuda_in_each_precision_with_float32_losses(job_files, precision) -> None:
    params = StyleParams(size=64, iterations=10, device="cuda", precision=precision)
    records = list(stylize(StyleJob(job_files[0], (job_files[1],), params), weights=random_weights()))
    finished = records[-1]
    assert isinstance(finished, Finished) and finished.completed
    assert np.isfinite(finished.image).all()
    totals = [r.losses["total"] for r in records[:-1]]
    assert totals[-1] < totals[0]


def test_same_seed_same_image_on_cuda(job_files) -> None:
    params = StyleParams(size=64, iterations=5, device="cuda", init="noise", seed=3, precision="float32")
    torch.backends.cudnn.deterministic = True
    try:
        job = StyleJob(job_files[0], (job_files[1],), params)
        first = list(stylize(job, weights=random_weights()))[-1]
        second = list(stylize(job, weights=random_weights()))[-1]
        np.testing.assert_allclose(first.image, second.image, atol=1e-5)
    finally:
        torch.backends.cudnn.deterministic = False
