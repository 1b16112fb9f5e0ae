"""Device choice: the one place that decides where the network runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from engine.errors import DeviceError
from engine.hostmemory import host_available_bytes
from engine.params import DeviceChoice, Precision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str  # human words, e.g. "NVIDIA H100 80GB HBM3 (cuda:0)" or "CPU (2 threads)"
    notice: str = ""  # set when we fell back from what was asked for

    @property
    def kind(self) -> str:
        return self.device.type


def _cuda_usable() -> tuple[bool, str]:
    """CUDA is present *and* this torch build has kernels for the GPU's architecture."""
    if not torch.cuda.is_available():
        return False, ""
    try:
        major, minor = torch.cuda.get_device_capability(0)
        arch = f"sm_{major}{minor}"
        built_for = torch.cuda.get_arch_list()
        # A build carries SASS for some archs and PTX (compute_XX) that newer GPUs can JIT;
        # an older GPU than every listed arch has no kernels at all.
        supported = {a.split("_", 1)[1] for a in built_for if "_" in a}
        newest_ptx = max((int(a.split("_")[1]) for a in built_for if a.startswith("compute_")), default=0)
        if built_for and f"{major}{minor}" not in supported and major * 10 + minor < newest_ptx:
            name = torch.cuda.get_device_name(0)
            return False, f"{name} ({arch}) is not supported by this PyTorch build ({' '.join(built_for)})"
        # A tiny kernel proves the driver and the build agree; errors here are exactly the
        # "no kernel image is available" class we must turn into a fallback.
        torch.ones(1, device="cuda").add_(1).item()
        return True, ""
    except Exception as error:  # noqa: BLE001 - any failure means "not usable", reported as a notice
        return False, f"CUDA is present but unusable: {str(error).splitlines()[0]}"


def _mps_usable() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(choice: DeviceChoice | str = DeviceChoice.AUTO) -> DeviceInfo:
    """AUTO prefers CUDA, then MPS, then CPU; an explicit choice that is unavailable is an error,
    except a GPU this torch was not built for, which falls back to the CPU with a notice."""
    choice = DeviceChoice(choice)
    if choice in (DeviceChoice.AUTO, DeviceChoice.CUDA):
        usable, problem = _cuda_usable()
        if usable:
            return DeviceInfo(torch.device("cuda", 0), f"{torch.cuda.get_device_name(0)} (cuda:0)")
        if problem:
            log.warning("%s; using the CPU", problem)
            return DeviceInfo(
                torch.device("cpu"), _cpu_name(), notice=f"{problem}; running on the CPU instead"
            )
        if choice is DeviceChoice.CUDA:
            raise DeviceError("CUDA was asked for but no CUDA GPU is available (use --device auto or cpu)")
    if choice in (DeviceChoice.AUTO, DeviceChoice.MPS):
        if _mps_usable():
            return DeviceInfo(torch.device("mps"), "Apple GPU (mps)")
        if choice is DeviceChoice.MPS:
            raise DeviceError("MPS was asked for but no Apple GPU is available (use --device auto or cpu)")
    return DeviceInfo(torch.device("cpu"), _cpu_name())


def _cpu_name() -> str:
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def available_devices() -> list[DeviceChoice]:
    found = [DeviceChoice.AUTO, DeviceChoice.CPU]
    if _cuda_usable()[0]:
        found.append(DeviceChoice.CUDA)
    if _mps_usable():
        found.append(DeviceChoice.MPS)
    return found


def network_dtype(precision: Precision | str, device: torch.device) -> torch.dtype:
    """The dtype the network runs in; Gram matrices and losses stay float32 regardless."""
    precision = Precision(precision)
    if precision is Precision.FLOAT32:
        return torch.float32
    if precision is Precision.BFLOAT16:
        return torch.bfloat16
    if precision is Precision.FLOAT16:
        return torch.float16
    # AUTO stays float32: on CUDA, convolutions already use TF32 tensor cores, and reduced
    # precision makes L-BFGS's line search noisier; it has not been measured to help on a GPU
    # yet (see benchmarks/gpu.py), so it is opt-in.
    del device
    return torch.float32


def available_bytes(device: torch.device | str) -> int:
    """Memory this process could still use on the device, in bytes."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        recommended = getattr(mps, "recommended_max_memory", None)
        if recommended is not None:
            return int(recommended() - mps.driver_allocated_memory())
    return host_available_bytes()
