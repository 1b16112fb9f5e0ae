"""``stylize --resume``: a stopped command-line run leaves its state beside the result and goes on
exactly where it stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
import engine.stylize
from engine.resume import resume_path


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "painting.png")
    return {"photo": tmp_path / "photo.png", "painting": tmp_path / "painting.png", "dir": tmp_path}


def _args(photos: dict[str, Path], out: Path) -> list[str]:
    return ["stylize", "--content", str(photos["photo"]), "--style", str(photos["painting"]), "--out",
            str(out), "--size", "32", "--start-size", "16", "--iterations", "8", "--quiet"]  # fmt: skip


def _stopping_after(polls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next run stop as if Ctrl-C came at its ``polls``-th check of the stop flag."""
    original = engine.stylize.stylize
    count = [0]

    def stop() -> bool:
        count[0] += 1
        return count[0] >= polls

    def stylize(job, **kwargs):
        kwargs["should_stop"] = stop
        return original(job, **kwargs)

    monkeypatch.setattr(engine.stylize, "stylize", stylize)


def test_a_stopped_run_resumes_to_the_same_picture(photos, monkeypatch, capsys) -> None:
    torch.set_num_threads(1)
    whole = photos["dir"] / "whole.png"
    assert cli.main(_args(photos, whole)) == 0
    assert not resume_path(whole).exists()  # a complete run leaves nothing to resume

    stopped = photos["dir"] / "stopped.png"
    _stopping_after(9, monkeypatch)
    assert cli.main([*_args(photos, stopped)[:-1]]) == cli.EXIT_INTERRUPTED
    monkeypatch.undo()
    assert resume_path(stopped).is_file()
    assert "--resume" in capsys.readouterr().err

    resumed = photos["dir"] / "resumed.png"
    assert cli.main(["stylize", "--resume", str(stopped), "--out", str(resumed), "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(resumed)), np.asarray(Image.open(whole)))
    assert not np.array_equal(np.asarray(Image.open(stopped)), np.asarray(Image.open(whole)))


def test_resume_refuses_changed_settings_and_a_missing_state(photos, capsys) -> None:
    done = photos["dir"] / "done.png"
    assert cli.main(_args(photos, done)) == 0
    out = str(photos["dir"] / "out.png")
    assert cli.main(["stylize", "--resume", str(done), "--out", out, "--iterations", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--iterations" in err and len(err.splitlines()) == 1
    assert cli.main(["stylize", "--resume", str(done), "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert "painterly-resume" in err and len(err.splitlines()) == 1
    assert not Path(out).exists()
