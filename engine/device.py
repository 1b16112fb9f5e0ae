"""Device choice: the one place that decides where the network runs."""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
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
    """The devices a job may ask for. Also measures the CPU's bfloat16 speed where it has bfloat16
    (once per process, about 0.3 s): the window probes its devices off the GUI thread, so its memory
    plan (plan_memory asks network_setup) never waits for the measurement."""
    found = [DeviceChoice.AUTO, DeviceChoice.CPU]
    if cpu_has_bfloat16():
        cpu_bfloat16_speedup()
    if _cuda_usable()[0]:
        found.append(DeviceChoice.CUDA)
    if _mps_usable():
        found.append(DeviceChoice.MPS)
    return found


def network_dtype(precision: Precision | str, device: torch.device) -> torch.dtype:
    """The dtype the network runs in; Gram matrices and losses stay float32 regardless."""
    return _DTYPES[resolved_precision(precision, device)]


_DTYPES = {
    Precision.FLOAT32: torch.float32,
    Precision.BFLOAT16: torch.bfloat16,
    Precision.FLOAT16: torch.float16,
}
# AUTO picks bfloat16 on a CPU only when it was measured at least this much faster than float32
# there: a run must gain clearly to be worth its (small) loss of precision.
_BF16_WORTH_IT = 1.25


# In reduced precision the last iterations of the final level run with the float32 network,
# continuing the same L-BFGS history (or Adam moments), to polish what bfloat16 gradients cannot
# resolve. Measured with benchmarks/precision_quality.py (one thread, default preset, scored by one
# float32 network; results/precision-quality-cpu-*-finish.json): at 512 px (256:50 + 512:25) the
# total against float32's was 1.0126 -> 1.0098 (tubingen x starry_night) and 0.9876 -> 0.9858
# (hoovertowernight x seated-nude) without -> with a 10-iteration finish; at 256 px (128:50 + 256:25)
# bfloat16 was already below float32 (0.997, 0.989) and a 5- or 10-iteration finish changed it by
# under 0.1 %. A small, consistent gain at 512 px, below the 0.7-1.0 % two float32 runs differ by;
# where bfloat16 runs twice as fast as float32, 10 of a default 512 px run's 50 final iterations in
# float32 cost about 13 % more network time (100 x 1/4 + 50 units of work become 85 for 75).
FLOAT32_FINISH_ITERATIONS = 10


@dataclass(frozen=True)
class NetworkSetup:
    """How the network runs on a device: its precision (never AUTO) and its memory layout, and why."""

    precision: Precision
    channels_last: bool
    reason: str = ""
    # How many of the final level's last iterations run with the float32 network (0: none).
    float32_finish: int = 0

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    def describe(self) -> str:
        """Short words for the plan, the window's status and the recipe: "bfloat16, channels-last",
        "bfloat16, float32 for the last 10 iterations, channels-last"."""
        finish = self.float32_finish
        words = [self.precision.value]
        if finish and self.precision is not Precision.FLOAT32:
            words.append(f"float32 for the last {finish} iteration{'s' if finish != 1 else ''}")
        words.append("channels-last" if self.channels_last else "contiguous")
        return ", ".join(words)


def network_setup(precision: Precision | str, device: torch.device) -> NetworkSetup:
    """The one place that decides the network's precision and layout on ``device``.

    An explicit precision is kept. ``float32`` is the old path: on the CPU also the old
    (contiguous) layout, so it stays a way back if the new path ever misbehaves. ``auto``:

    * CUDA: float32 (TF32 tensor cores already), channels-last for the tensor cores.
    * CPU: channels-last wherever oneDNN runs the convolutions (it computes in a blocked NHWC
      layout, so a contiguous NCHW network pays a reorder at every layer); measured on VGG-19 to
      relu5_1, forward and backward, 2 threads: 0.78x the time on a 2-core AMD EPYC (1.20 ->
      0.93 s at 512x384), 0.85x on a 2-core Intel Xeon (family 6 model 207). bfloat16 only where
      the processor has bfloat16 instructions *and* a quick measurement here finds them faster:
      on the EPYC (AVX512_BF16, Zen 4 runs its bf16 dot products at twice the float32 FMA rate)
      bfloat16 took 0.45 s against float32's 0.93 s; on the Xeon, whose hypervisor hides AMX,
      AVX512_BF16's dot product issues at half the float32 FMA rate and bfloat16 was 1.3x
      *slower*, so a capability flag alone would slow those machines down.
    """
    precision = Precision(precision)
    if device.type == "cpu":
        layout = precision is not Precision.FLOAT32 and torch.backends.mkldnn.is_available()
    else:
        layout = device.type == "cuda"
    if precision is not Precision.AUTO:
        finish = FLOAT32_FINISH_ITERATIONS if precision is not Precision.FLOAT32 else 0
        return NetworkSetup(precision, layout, "asked for", finish)
    if device.type != "cpu":
        return NetworkSetup(Precision.FLOAT32, layout, f"float32 on {device.type}")
    if not cpu_has_bfloat16():
        return NetworkSetup(Precision.FLOAT32, layout, "this CPU has no bfloat16 instructions")
    speedup = cpu_bfloat16_speedup()
    words = f"bfloat16 measured {speedup:.2f}x as fast as float32 on this CPU"
    if speedup >= _BF16_WORTH_IT:
        return NetworkSetup(Precision.BFLOAT16, layout, words, FLOAT32_FINISH_ITERATIONS)
    return NetworkSetup(Precision.FLOAT32, layout, words)


def resolved_precision(precision: Precision | str, device: torch.device) -> Precision:
    return network_setup(precision, device).precision


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic instructions for oneDNN's convolutions.

    /proc/cpuinfo where there is one (x86 AVX512_BF16 or AMX-BF16; Arm's "bf16"): torch's own
    check also says yes on plain AVX-512, where oneDNN emulates bfloat16 in float32 and is slower.
    Elsewhere (macOS, Windows) torch's check, and the measurement decides.
    """
    flags = _cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or stripped torch build: no such check
        return False


def _cpu_flags() -> set[str] | None:
    """The first processor's feature flags from /proc/cpuinfo, None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return None


@functools.cache
def cpu_bfloat16_speedup() -> float:
    """How many times faster a VGG-like convolution runs forward and backward in bfloat16 than in
    float32 on this CPU (channels-last); measured once per process.

    A 128-channel 3x3 convolution on 48x48, on one thread, timed in that thread's CPU time (other
    programs on a shared machine change the wall time several-fold but hardly the CPU time), the
    best of five alternating tries of each: about 0.3 s of CPU, once.
    """
    with _MEASURING:  # a second thread must not read the one-thread setting as the one to restore
        return _measure_bfloat16_speedup()


_MEASURING = threading.Lock()


def _measure_bfloat16_speedup() -> float:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 128, 48, 48, generator=generator).contiguous(memory_format=torch.channels_last)
    best: dict[torch.dtype, float] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode(False):
            layers = {
                dtype: torch.nn.Conv2d(128, 128, 3, padding=1)
                .requires_grad_(False)
                .to(dtype=dtype, memory_format=torch.channels_last)
                for dtype in (torch.float32, torch.bfloat16)
            }
            for attempt in range(6):
                for dtype, layer in layers.items():
                    x = image.to(dtype).requires_grad_(True)
                    started = time.thread_time()
                    layer(x).sum().backward()
                    took = time.thread_time() - started
                    if attempt:  # the first builds the oneDNN primitives
                        best[dtype] = min(best.get(dtype, math.inf), took)
    finally:
        torch.set_num_threads(threads)
    speedup = best[torch.float32] / max(best[torch.bfloat16], 1e-9)
    log.info("bfloat16 convolutions run %.2fx as fast as float32 on this CPU", speedup)
    return speedup


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
