from __future__ import annotations

import pytest
import torch

from engine import device as device_module
from engine.device import choose_device, network_dtype
from engine.errors import DeviceError
from engine.params import DeviceChoice, Precision


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_usable", lambda: False)


def test_auto_falls_back_to_the_cpu(no_gpu) -> None:
    info = choose_device(DeviceChoice.AUTO)
    assert info.device.type == "cpu" and not info.notice and info.name.startswith("CPU")


def test_asking_for_a_missing_gpu_is_a_clear_error(no_gpu) -> None:
    with pytest.raises(DeviceError, match="CUDA"):
        choose_device("cuda")
    with pytest.raises(DeviceError, match="MPS"):
        choose_device("mps")


def test_a_gpu_this_torch_was_not_built_for_falls_back_with_a_notice(monkeypatch) -> None:
    # A Kepler card (sm_35) with a build that ships kernels for sm_80/sm_90 only.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (3, 5))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "sm_90", "compute_90"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla K80")
    info = choose_device("auto")
    assert info.device.type == "cpu"
    assert "Tesla K80" in info.notice and "CPU" in info.notice


def test_a_gpu_whose_kernels_fail_falls_back_with_a_notice(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_90"])

    def no_kernel(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(torch, "ones", no_kernel)
    info = choose_device("cuda")
    assert info.device.type == "cpu" and "no kernel image" in info.notice


def test_network_precision(monkeypatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_module, "cpu_has_bfloat16", lambda: False)  # see test_precision.py
    assert network_dtype(Precision.AUTO, cpu) is torch.float32
    assert network_dtype("bfloat16", cpu) is torch.bfloat16
    assert network_dtype("float16", cpu) is torch.float16
