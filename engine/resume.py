"""Resuming a stopped run exactly where it stopped: the level, the iteration and the optimiser's state.

A stopped (or time-limited) run's ``Finished`` carries a ``ResumePoint``; running the same job
with it goes on as if the run had never stopped: on one device and for the same seed the pixels
are the same as an unstopped run's (tests/engine/test_resume.py). Unlike ``--continue``, which
starts a new optimisation from a result's picture, a resume keeps L-BFGS's curvature history (or
Adam's moments), so no iterations are spent rebuilding it.

The state is saved beside a result as ``NAME.painterly-resume`` (``torch.save`` of tensors and
plain values, read back with ``weights_only=True``, which unpickles nothing else). It is large:
L-BFGS remembers two image-sized vectors per step of history (50 steps at 512x384 are 240 MB).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.errors import InputError
from engine.files import atomic_write, read_regular_file
from engine.params import StyleJob
from engine.run.steps import StepperState

FORMAT = "painterly-resume"
VERSION = 1
SUFFIX = ".painterly-resume"
# Large enough for a 4096 px run's L-BFGS history; a bigger file is refused before reading it.
READ_LIMIT = 64 * 1024**3

# Parameters that do not change a run's pixels up to where it stopped: a resumed run may differ in
# them (a longer time limit, another print resolution, more of the photo's colours afterwards).
_FREE_FIELDS = ("max_seconds", "dpi", "photo_colors", "device", "preset")


def job_key(job: StyleJob, input_hashes: Mapping[str, str]) -> str:
    """A fingerprint of what a run's pixels depend on: its parameters and its inputs' contents."""
    params = {k: v for k, v in job.params.to_dict().items() if k not in _FREE_FIELDS}
    described = {
        "params": params,
        "blend": list(job.normalized_blend),
        "inputs": sorted(input_hashes.values()),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class ResumePoint:
    """Where a stopped run can go on."""

    key: str  # job_key of the run it belongs to
    level: int  # 0-based index of the pyramid level to go on with
    iteration: int  # iterations done over the whole run
    state: StepperState
    # Parameters an out-of-memory fallback had changed by then (precision, optimizer, tiles, ...).
    fallback_params: Mapping[str, Any] = field(default_factory=dict)


def save_resume_point(point: ResumePoint, path: Path, *, overwrite: bool = False) -> None:
    """Write ``point`` to ``path`` atomically (never over an existing file unless asked)."""
    state = point.state
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "key": point.key,
        "level": point.level,
        "iteration": point.iteration,
        "fallback_params": json.dumps(dict(point.fallback_params)),
        "image": state.image,
        "kept": state.kept,
        "kept_losses": dict(state.kept_losses),
        "optimiser": dict(state.optimiser),
        "done": state.done,
        "loss_scale": state.loss_scale,
        "just_restarted": state.just_restarted,
    }
    atomic_write(path, lambda stream: torch.save(payload, stream), overwrite=overwrite)


def load_resume_point(path: Path) -> ResumePoint:
    """Read a state file; anything unexpected is one ``InputError`` naming the file."""
    data = read_regular_file(path, limit=READ_LIMIT, what="resume state")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable content is the same problem to the user
        raise InputError(f"{path}: not a Painterly resume state ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a Painterly resume state")
    if payload.get("version") != VERSION:
        version = payload.get("version")
        raise InputError(f"{path}: a resume state of version {version!r}; this Painterly reads {VERSION}")
    try:
        state = StepperState(
            image=_image(payload["image"]),
            kept=_image(payload["kept"]),
            kept_losses={str(k): float(v) for k, v in payload["kept_losses"].items()},
            optimiser=dict(payload["optimiser"]),
            done=int(payload["done"]),
            loss_scale=None if payload["loss_scale"] is None else float(payload["loss_scale"]),
            just_restarted=bool(payload["just_restarted"]),
        )
        point = ResumePoint(
            key=str(payload["key"]),
            level=int(payload["level"]),
            iteration=int(payload["iteration"]),
            state=state,
            fallback_params=json.loads(payload["fallback_params"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"{path}: the resume state is damaged ({error})") from None
    if point.level < 0 or point.iteration < 0 or state.done < 0 or state.image.shape != state.kept.shape:
        raise InputError(f"{path}: the resume state is damaged")
    return point


def _image(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[:2] != (1, 3):
        raise ValueError("an image is not a 1x3xHxW tensor")
    return value.float()


def resume_path(result: Path) -> Path:
    """Where the state of a stopped run saved as ``result`` lives."""
    return result.with_name(result.name + SUFFIX)
