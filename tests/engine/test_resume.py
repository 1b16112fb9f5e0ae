"""Resume: a stopped run goes on with its optimiser state and ends exactly as an unstopped one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import InputError
from engine.params import Optimizer, StyleJob, StyleParams
from engine.records import Finished, Progress, StopReason
from engine.resume import load_resume_point, resume_path, save_resume_point
from engine.stylize import stylize
from engine.weights import random_weights


def _write(path: Path, seed: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def job(tmp_path: Path) -> StyleJob:
    content = _write(tmp_path / "photo.png", 1, (48, 36))
    style = _write(tmp_path / "painting.png", 2, (40, 40))
    # Two levels (24 then 48 px) so a stop can fall in the first level and the resume cross a level.
    params = StyleParams(size=48, start_size=24, iterations=12, device="cpu", seed=3)
    return StyleJob(content, (style,), params)


def _finish(records) -> tuple[list[Progress], Finished]:
    records = list(records)
    finished = records[-1]
    assert isinstance(finished, Finished)
    return [r for r in records if isinstance(r, Progress)], finished


def _stopped_after(job: StyleJob, weights, iterations: int) -> Finished:
    seen: list[int] = []

    def stop() -> bool:
        return len(seen) >= iterations

    finished = None
    for record in stylize(job, weights=weights, should_stop=stop):
        if isinstance(record, Progress):
            seen.append(record.iteration)
        else:
            finished = record
    assert finished is not None and finished.reason is StopReason.STOPPED
    return finished


@pytest.mark.parametrize("optimizer", [Optimizer.LBFGS, Optimizer.ADAM])
@pytest.mark.parametrize("stop_after", [3, 9])  # inside the first level; inside the second
def test_a_resumed_run_equals_an_unstopped_one(job, weights, optimizer, stop_after) -> None:
    torch.set_num_threads(1)  # one thread: the same floating-point order in both runs
    job = StyleJob(job.content, job.styles, job.params.replace(optimizer=optimizer, learning_rate=0.05))
    _, unstopped = _finish(stylize(job, weights=weights))
    stopped = _stopped_after(job, weights, stop_after)
    assert stopped.iterations == stop_after and stopped.resume is not None
    progress, resumed = _finish(stylize(job, weights=weights, resume=stopped.resume))
    assert [p.iteration for p in progress] == list(range(stop_after + 1, 13))
    assert resumed.iterations == unstopped.iterations == 12
    np.testing.assert_array_equal(resumed.image, unstopped.image)
    assert resumed.losses["total"] == unstopped.losses["total"]


def test_going_on_without_the_state_differs(job, weights) -> None:
    """The test above could pass trivially if the state did not matter: a fresh L-BFGS history
    from the stopped image gives other pixels."""
    torch.set_num_threads(1)
    _, unstopped = _finish(stylize(job, weights=weights))
    stopped = _stopped_after(job, weights, 9)
    assert stopped.resume is not None
    blank = stopped.resume.state.__class__(
        image=stopped.resume.state.image,
        kept=stopped.resume.state.kept,
        kept_losses={},
        done=stopped.resume.state.done,
    )
    point = stopped.resume.__class__(
        stopped.resume.key, stopped.resume.level, stopped.resume.iteration, blank
    )
    _, fresh = _finish(stylize(job, weights=weights, resume=point))
    assert np.abs(fresh.image - unstopped.image).max() > 1e-3


def test_the_state_survives_a_file_round_trip(job, weights, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _, unstopped = _finish(stylize(job, weights=weights))
    stopped = _stopped_after(job, weights, 5)
    path = resume_path(tmp_path / "result.png")
    assert path.name == "result.png.painterly-resume"
    save_resume_point(stopped.resume, path)
    with pytest.raises(InputError):  # never over an existing file unless asked
        save_resume_point(stopped.resume, path)
    _, resumed = _finish(stylize(job, weights=weights, resume=load_resume_point(path)))
    np.testing.assert_array_equal(resumed.image, unstopped.image)


def test_a_state_of_another_job_is_refused(job, weights) -> None:
    stopped = _stopped_after(job, weights, 4)
    other = StyleJob(job.content, job.styles, job.params.replace(style_weight=3.0))
    with pytest.raises(InputError, match="another run"):
        next(stylize(other, weights=weights, resume=stopped.resume))
    # A longer time limit is not another run.
    longer = StyleJob(job.content, job.styles, job.params.replace(max_seconds=100.0))
    _, finished = _finish(stylize(longer, weights=weights, resume=stopped.resume))
    assert finished.completed


@pytest.mark.parametrize("content", [b"", b"not a state", b"PK\x03\x04" + bytes(100)])
def test_damaged_state_files_are_one_line_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.painterly-resume"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_resume_point(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_completed_run_has_nothing_to_resume(job, weights) -> None:
    _, finished = _finish(stylize(job, weights=weights))
    assert finished.resume is None


@pytest.mark.parametrize("optimizer", [Optimizer.LBFGS, Optimizer.ADAM])
def test_a_stop_inside_the_optimiser_step_resumes_exactly(job, weights, optimizer) -> None:
    """The stop flag is also polled inside the loss evaluation (and L-BFGS's line search at a
    level's first step): stopping at every one of those polls in turn still resumes exactly."""
    torch.set_num_threads(1)
    job = StyleJob(job.content, job.styles, job.params.replace(optimizer=optimizer, learning_rate=0.05))
    _, unstopped = _finish(stylize(job, weights=weights))
    for stop_at_poll in range(1, 40, 3):
        def stop(polls: list[int] = [0], at: int = stop_at_poll) -> bool:  # noqa: B006 - one per run
            polls[0] += 1
            return polls[0] >= at

        _, stopped = _finish(stylize(job, weights=weights, should_stop=stop))
        if stopped.resume is None:
            assert stopped.completed
            continue
        _, resumed = _finish(stylize(job, weights=weights, resume=stopped.resume))
        np.testing.assert_array_equal(resumed.image, unstopped.image, err_msg=f"stop at poll {stop_at_poll}")
