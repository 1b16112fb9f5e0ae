"""engine.results: the one writer of results, its checks and its recovery file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import results
from engine.errors import InputError, OutputExistsError
from engine.metadata import read_recipe
from engine.params import StyleJob, StyleParams
from engine.records import Finished, Progress
from engine.results import OutputSpec, SaveError, check_output, save_result, snapshot, write_result


def finished(tmp_path: Path) -> Finished:
    job = StyleJob(content=tmp_path / "photo.png", styles=(tmp_path / "painting.png",), params=StyleParams())
    image = np.random.default_rng(0).random((12, 16, 3)).astype(np.float32)
    return Finished(job, image, 5, 1.0, "CPU", {"total": 1.0}, extra={"inputs": {}})


def test_check_output_refuses_an_input_and_its_sidecar_name(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"p")
    with pytest.raises(InputError, match="never writes over an input"):
        check_output(OutputSpec(photo, overwrite=True), inputs=(photo,))
    sidecar = tmp_path / "out.jpg.json"
    sidecar.write_bytes(b"{}")
    with pytest.raises(InputError, match="out.jpg.json"):
        check_output(OutputSpec(tmp_path / "out.jpg", overwrite=True), inputs=(sidecar,))


def test_check_output_checks_every_intermediate(tmp_path: Path) -> None:
    (tmp_path / "r.00006.png").write_bytes(b"x")
    spec = OutputSpec(tmp_path / "r.png")
    check_output(spec, intermediates=range(5, 30, 5))
    with pytest.raises(OutputExistsError, match="r.00006.png"):
        check_output(spec, intermediates=range(3, 30, 3))
    check_output(OutputSpec(tmp_path / "r.png", overwrite=True), intermediates=range(3, 30, 3))


def test_intermediate_names_sort_in_iteration_order() -> None:
    spec = OutputSpec(Path("out/result.tif"))
    assert spec.intermediate(7).path == Path("out/result.00007.tif")
    assert spec.intermediate(123456).path == Path("out/result.123456.tif")


def test_write_result_carries_dpi_and_recipe(tmp_path: Path) -> None:
    path = write_result(finished(tmp_path), OutputSpec(tmp_path / "r.png", dpi=300))
    from PIL import Image

    with Image.open(path) as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert read_recipe(path)["iterations"] == 5
    bare = write_result(finished(tmp_path), OutputSpec(tmp_path / "bare.png", embed_recipe=False))
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(bare)


def test_save_result_falls_back_to_the_next_folder(tmp_path: Path, monkeypatch) -> None:
    gone = tmp_path / "unplugged"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(results, "recovery_folders", lambda spec: [gone, elsewhere])
    outcome = save_result(finished(tmp_path), OutputSpec(gone / "result.webp", quality=80))
    assert outcome.recovered and outcome.path.parent == elsewhere
    assert "does not exist" in outcome.problem
    assert outcome.path.name.startswith("result.recovered-") and outcome.path.suffix == ".png"
    assert read_recipe(outcome.path)["iterations"] == 5


def test_save_error_only_when_nothing_takes_the_picture(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(results, "recovery_folders", lambda spec: [tmp_path / "nowhere"])
    with pytest.raises(SaveError, match="not even to a recovery file"):
        save_result(finished(tmp_path), OutputSpec(tmp_path / "nowhere" / "r.png"))


def test_a_name_the_filesystem_refuses_still_recovers_under_a_plain_name(tmp_path: Path) -> None:
    outcome = save_result(finished(tmp_path), OutputSpec(tmp_path / ("é" * 200 + ".png")))
    assert outcome.recovered and len(outcome.path.name) < 120 and outcome.path.exists()


def test_snapshot_of_a_progress_record(tmp_path: Path) -> None:
    preview = np.full((4, 6, 3), 255, dtype=np.uint8)
    record = Progress(iteration=3, total=9, elapsed=2.0, losses={"total": 2.0}, preview=preview)
    job = finished(tmp_path).job
    frozen = snapshot(job, record, inputs={"a.png": "00"})
    assert frozen.iterations == 3 and frozen.image.dtype == np.float32 and frozen.image.max() == 1.0
    assert frozen.extra["inputs"] == {"a.png": "00"}
    with pytest.raises(ValueError, match="no preview"):
        snapshot(job, Progress(iteration=4, total=9, elapsed=2.0, losses={}))
