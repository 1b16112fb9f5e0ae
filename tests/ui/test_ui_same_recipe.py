"""The command line and the window write a result through the same writer: the same job and record
give byte-identical recipes, the print resolution included."""

from __future__ import annotations

import datetime as real_datetime
from pathlib import Path
from typing import Any

import pytest

import cli
from engine import recipe as recipe_module
from engine.metadata import read_recipe
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_run
from ui.prompts import EXPORT_FORMATS


class _Frozen(real_datetime.datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _Frozen:
        return cls(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def _recipe_text(path: Path) -> bytes:
    data = path.read_bytes()
    start = data.index(b"painterly:recipe\x00")
    end = data.index(b"IDAT")  # the recipe chunk is written before the pixels
    assert end - start > 500, "no recipe chunk before the pixels"
    return data[start:end]


def test_cli_and_window_write_identical_recipes(make_window, images, qtbot, prompter, tmp_path, monkeypatch):
    monkeypatch.setattr(recipe_module, "datetime", _Frozen)
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, iterations=2, dpi=240.0)
    window.start_run()
    wait_for_run(qtbot, window)
    finished = window.history.entries[-1].finished

    from engine.results import OutputSpec, job_inputs, save_result

    # What cli.run_stylize does with a finished record (the run itself is the engine's either way).
    spec = OutputSpec(tmp_path / "cli.png", dpi=finished.job.params.dpi)
    from_cli = save_result(finished, spec, inputs=job_inputs(finished.job)).path
    prompter.save_answer = (tmp_path / "window.png", EXPORT_FORMATS[0][0])
    from_window = window.export_result()
    assert from_window is not None
    assert _recipe_text(from_cli) == _recipe_text(from_window)
    assert read_recipe(from_cli)["job"]["params"]["dpi"] == 240.0
    assert cli.EXIT_RECOVERED == 3  # the contract the window's banner and the CLI share


@pytest.mark.parametrize("dpi", [72.0, 300.0])
def test_window_export_writes_the_jobs_dpi(make_window, images, qtbot, prompter, tmp_path, dpi) -> None:
    from PIL import Image

    window = make_window()
    load_inputs(window, images)
    tiny_params(window, iterations=1, dpi=dpi)
    window.start_run()
    wait_for_run(qtbot, window)
    prompter.save_answer = (tmp_path / "print.png", EXPORT_FORMATS[0][0])
    saved = window.export_result()
    with Image.open(saved) as image:
        assert abs(image.info["dpi"][0] - dpi) < 0.05
