"""Building, storing, reading back and printing recipes (engine.recipe)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.encode import OUTPUT_FORMATS, save_image
from engine.errors import InputError
from engine.metadata import read_recipe
from engine.params import InitMode, Optimizer, StyleJob, StyleParams
from engine.recipe import RECIPE_VERSION, build_recipe, format_recipe, job_from_recipe
from engine.records import Finished, StopReason
from engine.text import printable


def _inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    content = tmp_path / "portrait.png"
    Image.new("RGB", (8, 6), (200, 150, 100)).save(content)
    style_a = tmp_path / "starry night.jpg"
    Image.new("RGB", (8, 8), (20, 40, 160)).save(style_a)
    style_b = tmp_path / "waves.png"
    Image.new("RGB", (8, 8), (0, 120, 200)).save(style_b)
    return content, style_a, style_b


def _job(tmp_path: Path) -> StyleJob:
    content, style_a, style_b = _inputs(tmp_path)
    params = StyleParams(
        preset="default",
        size=64,
        iterations=12,
        optimizer=Optimizer.ADAM,
        learning_rate=0.05,
        seed=1234,
        style_weight=25.0,
        content_layers=(("relu4_2", 1.0), ("conv5_2", 0.5)),
        init=InitMode.NOISE,
        noise_ratio=0.3,
        max_seconds=60.0,
    )
    return StyleJob(content=content, styles=(style_a, style_b), params=params, blend=(2.0, 1.0))


def _finished(job: StyleJob, **changes: Any) -> Finished:
    values: dict[str, Any] = {
        "job": job,
        "image": np.random.default_rng(0).random((6, 8, 3)).astype(np.float32),
        "iterations": 12,
        "seconds": 3.14159,
        "device": "cpu",
        "losses": {"content": 1.5, "style": 2.25, "tv": 0.125, "total": 3.875},
        "weights_id": "embedded:vgg19-test:abc123",
    }
    values.update(changes)
    return Finished(**values)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_recipe_contents(tmp_path: Path) -> None:
    job = _job(tmp_path)
    recipe = build_recipe(_finished(job))
    json.dumps(recipe, allow_nan=False)  # plain JSON, nothing exotic

    assert recipe["recipe_version"] == RECIPE_VERSION == 1
    assert isinstance(recipe["painterly"], str) and recipe["painterly"]
    assert recipe["job"] == job.to_dict()
    assert recipe["job"]["params"]["seed"] == 1234
    assert recipe["weights_id"] == "embedded:vgg19-test:abc123"
    assert recipe["device"] == "cpu"
    assert recipe["iterations"] == 12
    assert recipe["seconds"] == pytest.approx(3.142)
    assert recipe["reason"] == "completed"
    assert recipe["losses"] == {"content": 1.5, "style": 2.25, "tv": 0.125, "total": 3.875}
    assert recipe["output"] == {"width": 8, "height": 6, "alpha": False}
    assert set(recipe["versions"]) == {"python", "torch", "torchvision", "numpy", "pillow"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", recipe["created"])

    content = recipe["inputs"]["content"]
    assert content["name"] == "portrait.png"
    assert Path(content["path"]) == job.content.absolute()
    assert content["sha256"] == _sha(job.content)
    styles = recipe["inputs"]["styles"]
    assert [s["name"] for s in styles] == ["starry night.jpg", "waves.png"]
    assert [s["blend"] for s in styles] == [2.0, 1.0]
    assert [s["sha256"] for s in styles] == [_sha(p) for p in job.styles]


def test_given_hashes_are_used(tmp_path: Path) -> None:
    job = _job(tmp_path)
    given = {str(job.content): "c" * 64, job.styles[0]: "a" * 64}
    recipe = build_recipe(_finished(job), inputs=given)
    assert recipe["inputs"]["content"]["sha256"] == "c" * 64
    assert recipe["inputs"]["styles"][0]["sha256"] == "a" * 64
    assert recipe["inputs"]["styles"][1]["sha256"] == _sha(job.styles[1])  # not given: hashed from disk


def test_hashes_from_the_run_are_used_by_default(tmp_path: Path) -> None:
    job = _job(tmp_path)
    finished = _finished(job, extra={"inputs": {str(job.content): "d" * 64}, "levels": [32, 64]})
    recipe = build_recipe(finished)
    assert recipe["inputs"]["content"]["sha256"] == "d" * 64
    assert recipe["extra"] == {"levels": [32, 64]}


def test_missing_inputs_and_bad_losses(tmp_path: Path) -> None:
    job = _job(tmp_path)
    job.styles[1].unlink()
    finished = _finished(
        job,
        losses={"content": float("nan"), "style": float("inf"), "total": 1.0},
        reason=StopReason.NUMERICAL_ERROR,
        message="a loss became NaN",
        alpha=np.ones((6, 8), dtype=np.float32),
        extra={"array": np.zeros(3)},
    )
    recipe = build_recipe(finished)
    json.dumps(recipe, allow_nan=False)
    assert recipe["inputs"]["styles"][1]["sha256"] is None
    assert recipe["losses"] == {"content": None, "style": None, "total": 1.0}
    assert recipe["reason"] == "numerical_error"
    assert recipe["message"] == "a loss became NaN"
    assert recipe["output"]["alpha"] is True
    assert "extra" not in recipe


def test_init_image_is_recorded(tmp_path: Path) -> None:
    job = _job(tmp_path)
    start = tmp_path / "start.png"
    Image.new("RGB", (8, 6)).save(start)
    job = StyleJob(job.content, job.styles, job.params.replace(init=InitMode.IMAGE, init_image=str(start)))
    recipe = build_recipe(_finished(job))
    assert recipe["inputs"]["init_image"]["sha256"] == _sha(start)


@pytest.mark.parametrize("ext", sorted(OUTPUT_FORMATS))
def test_round_trip_through_a_saved_image(tmp_path: Path, ext: str) -> None:
    job = _job(tmp_path)
    finished = _finished(job)
    path = save_image(tmp_path / f"result{ext}", finished.image, recipe=build_recipe(finished))
    recipe = read_recipe(path)
    assert job_from_recipe(recipe) == job


def test_round_trip_with_default_params(tmp_path: Path) -> None:
    content, style, _ = _inputs(tmp_path)
    job = StyleJob(content=content, styles=(style,))
    recipe = json.loads(json.dumps(build_recipe(_finished(job))))
    assert job_from_recipe(recipe) == job


def test_format_recipe(tmp_path: Path) -> None:
    job = _job(tmp_path)
    text = format_recipe(build_recipe(_finished(job)))
    assert "Preset: default" in text
    assert "seed" in text and "1234" in text
    assert "portrait.png" in text and "starry night.jpg" in text and "waves.png" in text
    assert _sha(job.content) in text
    assert "blend 2" in text
    assert "relu4_2 1, conv5_2 0.5" in text
    assert "embedded:vgg19-test:abc123" in text
    assert "cpu" in text
    assert "12 iterations in 3.142 s, completed" in text
    assert "style 2.25" in text
    assert "torch" in text and "python" in text


def test_format_recipe_tolerates_sparse_recipes() -> None:
    text = format_recipe({"job": {"content": "a.png", "styles": ["b.png"]}})
    assert "a.png" in text and "b.png" in text
    assert isinstance(format_recipe({}), str)
    with pytest.raises(InputError):
        format_recipe(["not", "a", "recipe"])  # type: ignore[arg-type]


def _valid(tmp_path: Path) -> dict[str, Any]:
    return json.loads(json.dumps(build_recipe(_finished(_job(tmp_path)))))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda r: r.pop("job"), "no 'job' section"),
        (lambda r: r["job"].pop("content"), "no content image"),
        (lambda r: r["job"].update(styles=[]), "style image"),
        (lambda r: r["job"].update(styles=[3]), "style image"),
        (lambda r: r["job"].update(blend="heavy"), "blend"),
        (lambda r: r["job"].update(blend=[1.0]), "blend has 1 weights for 2 style images"),
        (lambda r: r["job"].update(params=[1, 2]), "parameters"),
        (lambda r: r["job"]["params"].update(size="huge"), "size must be a whole number"),
        (lambda r: r["job"]["params"].update(optimizer="sgd"), "optimizer must be one of"),
        (lambda r: r["job"]["params"].update(content_layers=5), "the recipe is not valid"),
        (lambda r: r["job"]["params"].update(style_layers=[["relu9_9", 1.0]]), "unknown layer"),
    ],
)
def test_malformed_recipes(tmp_path: Path, damage: Any, expected: str) -> None:
    recipe = _valid(tmp_path)
    damage(recipe)
    with pytest.raises(InputError) as error:
        job_from_recipe(recipe, source=tmp_path / "result.png")
    message = str(error.value)
    assert expected in message
    assert message.startswith(f"{tmp_path / 'result.png'}: the recipe is not valid")
    assert "\n" not in message


def test_not_a_mapping() -> None:
    with pytest.raises(InputError, match="not a JSON object"):
        job_from_recipe([1, 2, 3])  # type: ignore[arg-type]


def test_newer_recipes_are_read_leniently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recipe = _valid(tmp_path)
    recipe["recipe_version"] = RECIPE_VERSION + 1
    recipe["job"]["params"]["brand_new_knob"] = 7
    with caplog.at_level(logging.WARNING):
        job = job_from_recipe(recipe)
    assert job == _job(tmp_path)
    assert "newer" in caplog.text and "brand_new_knob" in caplog.text


# -- hostile recipes: shown inert, rebuilt or refused in one line -------------------------------------------

ESCAPES = "\x1b]0;PWNED\x07\x1b[2J\x1b[31m\x9b1m\u202eevil\u2028\r\nFAKE: forged line\x00"


def _lines_are_inert(text: str) -> list[str]:
    lines = text.split("\n")
    for line in lines:
        assert printable(line) == line, repr(line)
    return lines


def test_format_recipe_escapes_everything_from_the_file(tmp_path: Path) -> None:
    clean = _valid(tmp_path)
    hostile = _valid(tmp_path)
    hostile["painterly"] = ESCAPES
    hostile["created"] = ESCAPES
    hostile["device"] = ESCAPES
    hostile["reason"] = ESCAPES
    hostile["message"] = ESCAPES
    hostile["weights_id"] = ESCAPES
    hostile["job"]["params"]["preset"] = ESCAPES
    hostile["job"]["params"]["weights"] = ESCAPES
    hostile["job"]["params"]["style_layers"] = [[ESCAPES, 1.0]]
    hostile["inputs"]["content"] = {"name": ESCAPES, "path": ESCAPES, "sha256": ESCAPES}
    hostile["inputs"]["styles"][0]["blend"] = ESCAPES
    hostile["output"] = {"width": ESCAPES, "height": 1}
    hostile["losses"] = {ESCAPES: ESCAPES}
    hostile["versions"] = {ESCAPES: ESCAPES}
    clean["message"] = "a note"
    clean["output"] = {"width": 1, "height": 1}
    clean["losses"] = {"x": 1.0}
    clean["versions"] = {"x": "1"}
    text = format_recipe(hostile)
    # As many lines as the same recipe without escapes: none forged, none hidden.
    assert len(_lines_are_inert(text)) == len(format_recipe(clean).split("\n"))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\u202e" not in text
    assert "\\x1b]0;PWNED\\x07" in text
    # A parameter name from the file is escaped too.
    params_key = {"job": {"params": {ESCAPES: 1, "seed": 2}}}
    assert len(_lines_are_inert(format_recipe(params_key))) == len(
        format_recipe({"job": {"params": {"a": 1, "seed": 2}}}).split("\n")
    )


@pytest.mark.parametrize(
    "recipe",
    [
        {"job": [], "inputs": [1, 2], "output": [3], "losses": [4], "versions": "x"},
        {"job": {"params": "x", "styles": {"a": 1}, "content": ["a"]}, "inputs": {"styles": {"b": 2}}},
        {"job": {"params": {"style_layers": [[1, 2, 3]], "content_layers": [[["deep"]], 1]}}},
        {"seconds": 10**400, "iterations": 10**400, "losses": {"a": 10**400, "b": 1e308, "c": True}},
        {"seconds": True, "recipe_version": False, "painterly": None, "created": 0.0},
        {"inputs": {"styles": [{"blend": 10**400, "name": 5, "sha256": [1], "path": {"a": "b"}}]}},
        {"inputs": {"content": {"path": "a\x00b"}, "init_image": {"path": 7}}},
        {"output": {"width": {"nested": {"object": [1, {"x": None}]}}, "height": [], "alpha": "yes"}},
        {"message": ["a", {"b": "c\nd"}], "device": {"x": 1}, "weights_id": 0},
        {"losses": {"nan": float("nan"), "inf": float("inf")}, "seconds": float("-inf")},
        {"job": {"params": {str(i): i for i in range(200)}}},
    ],
)
def test_format_recipe_takes_any_shape(recipe: dict[str, Any]) -> None:
    _lines_are_inert(format_recipe(recipe))


def test_format_recipe_keeps_lines_short() -> None:
    # One long name must not pad every parameter line; one long value is cut.
    recipe = {"job": {"params": {"x" * 100_000: "y" * 100_000, **{f"p{i}": i for i in range(100)}}}}
    lines = _lines_are_inert(format_recipe(recipe))
    assert max(len(line) for line in lines) < 2_500
    assert "more characters" in format_recipe(recipe)
    (short,) = [line for line in lines if line.strip().startswith("p5 ")]
    assert len(short) < 40


def test_format_recipe_survives_very_deep_values() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    text = format_recipe({"message": value, "job": {"params": {"x": value}}})
    _lines_are_inert(text)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda r: r["job"]["params"].update(seed=10**400), "seed"),
        (lambda r: r["job"].update(blend=[10**400, 1]), "the recipe is not valid"),
        (lambda r: r["job"]["params"].update(style_weight=10**400), "the recipe is not valid"),
        (lambda r: r["job"]["params"].update(levels=[[10**400, 1]]), "level size"),
        (lambda r: r["job"]["params"].update(levels={"a": "b"}), "level"),
        (lambda r: r["job"]["params"].update(style_layers="relu1_1"), "style layers"),
        (lambda r: r["job"]["params"].update(style_layers=[[[[["x"]]]]]), "style layers"),
        (lambda r: r["job"]["params"].update(style_layers={"relu1_1": [1]}), "style layers"),
        (lambda r: r["job"]["params"].update(preset=ESCAPES, optimizer=ESCAPES), "optimizer"),
        (lambda r: r["job"]["params"].update(optimizer="x" * 1_000_000), "optimizer"),
        (lambda r: r["job"]["params"].update(init=None), "init"),
        (lambda r: r["job"]["params"].update(size=True), "size"),
        (lambda r: r["job"]["params"].update(dpi=[1]), "dpi"),
        (lambda r: r["job"].update(styles=["a", 3]), "style image"),
        (lambda r: r.update(job=[1]), "no 'job' section"),
    ],
)
def test_hostile_jobs_are_one_short_line(tmp_path: Path, damage: Any, expected: str) -> None:
    recipe = _valid(tmp_path)
    damage(recipe)
    with pytest.raises(InputError) as error:
        job_from_recipe(recipe, source=tmp_path / "result.png")
    message = str(error.value)
    assert expected in message
    assert "\n" not in message and printable(message) == message and len(message) < 2_000


def test_a_deeply_nested_job_value_is_one_line(tmp_path: Path) -> None:
    value: Any = ["relu1_1", 1.0]
    for _ in range(5000):
        value = [value]
    recipe = _valid(tmp_path)
    recipe["job"]["params"]["style_layers"] = value
    with pytest.raises(InputError) as error:
        job_from_recipe(recipe)
    assert "\n" not in str(error.value)


def test_unknown_parameters_are_logged_inert_and_few(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = _valid(tmp_path)
    recipe["job"]["params"].update({ESCAPES: 1, **{f"knob{i}": i for i in range(50)}})
    with caplog.at_level(logging.WARNING):
        assert job_from_recipe(recipe) == _job(tmp_path)
    (record,) = [r for r in caplog.records if "unknown parameters" in r.getMessage()]
    message = record.getMessage()
    assert printable(message) == message and "and 41 more" in message
