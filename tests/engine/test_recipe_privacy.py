"""What a saved picture tells about its inputs: file names only (the default), full paths, or nothing.

One builder (``engine.recipe.build_recipe(embed=...)``) serves the command line (``--embed``) and the
window's export; ``--continue`` of a names-only result finds its inputs beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import cli
from engine.errors import InputError
from engine.metadata import read_recipe
from engine.params import InitMode, StyleJob, StyleParams
from engine.recipe import EMBED_DEFAULT, Embed, build_recipe, find_input, format_recipe, job_from_recipe
from engine.records import Finished, StopReason
from engine.results import OutputSpec, write_recovery, write_result


@pytest.fixture()
def private(tmp_path: Path) -> dict[str, Path]:
    """Inputs in folders whose names must never leave the computer."""
    folder = tmp_path / "home" / "anna" / "Clients" / "Secret Project"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:30, 0:40]
    photo = np.stack([xx / 40, yy / 30, 0.5 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / "painting.png")
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(folder / "start.png")
    return {
        "photo": folder / "photo.png",
        "painting": folder / "painting.png",
        "start": folder / "start.png",
        "folder": folder,
        "root": tmp_path,
    }


def _finished(private: dict[str, Path], **changes: Any) -> Finished:
    params = StyleParams(size=32, iterations=2, init=InitMode.IMAGE, init_image=str(private["start"]))
    job = StyleJob(private["photo"], (private["painting"],), params)
    values: dict[str, Any] = {
        "job": job,
        "image": np.random.default_rng(0).random((24, 32, 3)).astype(np.float32),
        "iterations": 2,
        "seconds": 1.0,
        "device": "cpu",
        "losses": {"total": 1.0},
        "reason": StopReason.STOPPED,
        "message": f"could not read {private['folder'] / 'other.png'}; kept {private['photo']}",
    }
    values.update(changes)
    return Finished(**values)


def test_names_only_is_the_default_for_files_and_carries_no_folder(private: dict[str, Path]) -> None:
    assert EMBED_DEFAULT is Embed.NAMES and OutputSpec(private["root"] / "x.png").embed is Embed.NAMES
    recipe = build_recipe(_finished(private), embed=Embed.NAMES)
    text = json.dumps(recipe)
    assert "anna" not in text and "Clients" not in text and str(private["root"]) not in text
    assert recipe["embed"] == "names"
    assert recipe["job"]["content"] == "photo.png" and recipe["job"]["styles"] == ["painting.png"]
    assert recipe["job"]["params"]["init_image"] == "start.png"
    content = recipe["inputs"]["content"]
    assert content["name"] == "photo.png" and "path" not in content and len(content["sha256"]) == 64
    start = recipe["inputs"]["init_image"]
    assert start["name"] == "start.png" and "path" not in start and len(start["sha256"]) == 64
    # A message quoting an input's path, or another file in an input's folder, keeps only the names.
    assert recipe["message"] == "could not read other.png; kept photo.png"
    # It is still a recipe: the job reads back, the parameters are the run's, and it prints.
    job = job_from_recipe(recipe)
    assert job.params.size == 32 and job.content == Path("photo.png")
    assert "photo.png" in format_recipe(recipe)


def test_full_paths_record_every_input_where_it_is(private: dict[str, Path]) -> None:
    recipe = build_recipe(_finished(private), embed=Embed.PATHS)
    assert recipe["job"]["content"] == str(private["photo"])
    assert Path(recipe["inputs"]["content"]["path"]) == private["photo"].absolute()
    assert recipe["job"]["params"]["init_image"] == str(private["start"])
    assert "embed" not in recipe
    again = build_recipe(_finished(private))
    assert again == {**recipe, "created": again["created"]}


def test_a_weights_file_is_named_not_placed(private: dict[str, Path]) -> None:
    weights = private["folder"] / "my-vgg.safetensors"
    finished = _finished(private)
    params = finished.job.params.replace(weights=str(weights))
    finished = _finished(private, job=StyleJob(private["photo"], (private["painting"],), params))
    recipe = build_recipe(finished, embed=Embed.NAMES)
    assert recipe["job"]["params"]["weights"] == "my-vgg.safetensors"
    assert "Secret Project" not in json.dumps(recipe)
    plain = build_recipe(_finished(private), embed=Embed.NAMES)
    assert plain["job"]["params"]["weights"] == "default"


def test_no_recipe_builds_nothing(private: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="no recipe"):
        build_recipe(_finished(private), embed=Embed.NONE)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
@pytest.mark.parametrize("embed", list(Embed))
def test_each_format_embeds_what_was_chosen(private: dict[str, Path], suffix: str, embed: Embed) -> None:
    target = private["root"] / f"out{suffix}"
    write_result(_finished(private), OutputSpec(target, embed=embed))
    raw = target.read_bytes()
    if embed is Embed.NONE:
        with pytest.raises(InputError, match="no Painterly recipe"):
            read_recipe(target)
        assert b"photo.png" not in raw and b"iterations" not in raw
        return
    recipe = read_recipe(target)
    assert recipe["iterations"] == 2
    has_folder = b"Secret Project" in raw or b"Secret\\u0020Project" in raw
    assert has_folder is (embed is Embed.PATHS)
    assert ("path" in recipe["inputs"]["content"]) is (embed is Embed.PATHS)


def test_a_recovery_file_reveals_no_more_than_the_file_asked_for(private: dict[str, Path]) -> None:
    spec = OutputSpec(private["root"] / "gone" / "out.png", embed=Embed.NAMES)
    saved = write_recovery(_finished(private), spec, problem="the folder went away")
    try:
        assert "Secret Project" not in json.dumps(read_recipe(saved))
    finally:
        saved.unlink()
    spec = OutputSpec(private["root"] / "gone" / "out.png", embed=Embed.NONE)
    saved = write_recovery(_finished(private), spec, problem="the folder went away")
    try:
        with pytest.raises(InputError):
            read_recipe(saved)
    finally:
        saved.unlink()


def test_find_input_looks_beside_the_result_for_a_bare_name(private: dict[str, Path], tmp_path: Path) -> None:
    recipe = build_recipe(_finished(private), embed=Embed.NAMES)
    assert find_input(recipe, "content", Path("photo.png"), beside=private["folder"]) == private["photo"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_input(recipe, "content", Path("photo.png"), beside=elsewhere) is None
    # A full-path recipe still finds its inputs where they were, wherever the result went.
    full = build_recipe(_finished(private), embed=Embed.PATHS)
    found = find_input(full, "content", Path("moved/photo.png"), beside=elsewhere)
    assert found == private["photo"].absolute()


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _tiny_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line runs on a tiny random VGG: these tests are about files, not pictures."""
    from engine import weights

    tiny = weights.random_weights(width_divisor=16, seed=0)
    monkeypatch.setattr(weights, "load_weights", lambda *args, **kwargs: tiny)


def _stylize(*args: str | Path) -> int:
    try:
        return cli.main(["stylize", *(str(a) for a in args)])
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _base(private: dict[str, Path], out: Path, *extra: str) -> list[str | Path]:
    return ["--content", private["photo"], "--style", private["painting"], "--out", out, "--size", "32",
            "--iterations", "2", "--quiet", *extra]  # fmt: skip


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_embeds_names_by_default_paths_or_nothing_when_asked(private: dict[str, Path]) -> None:
    out = private["folder"] / "default.png"
    assert _stylize(*_base(private, out)) == 0
    assert "Secret Project" not in json.dumps(read_recipe(out))
    assert b"Secret Project" not in out.read_bytes()
    paths = private["folder"] / "paths.jpg"
    assert _stylize(*_base(private, paths, "--embed", "paths")) == 0
    assert read_recipe(paths)["job"]["content"] == str(private["photo"])
    bare = private["folder"] / "bare.webp"
    assert _stylize(*_base(private, bare, "--embed", "none")) == 0
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(bare)
    assert cli.build_parser().parse_args(["stylize", "--out", "x.png"]).embed == "names"


def test_cli_refuses_an_unknown_embed_choice_in_one_line(private: dict[str, Path], capsys: Any) -> None:
    assert _stylize(*_base(private, private["root"] / "x.png", "--embed", "everything")) == 2
    assert "--embed" in _one_error_line(capsys)


def test_continue_a_names_only_result_moved_with_its_inputs(private: dict[str, Path], tmp_path: Path) -> None:
    first = private["folder"] / "first.png"
    assert _stylize(*_base(private, first)) == 0
    # The result and its inputs go to another computer (another folder): found beside the result.
    moved = tmp_path / "other-machine"
    shutil.copytree(private["folder"], moved)
    shutil.rmtree(private["folder"])
    more = moved / "more.png"
    assert _stylize("--continue", moved / "first.png", "--iterations", "2", "--quiet", "--out", more) == 0
    recipe = read_recipe(more)
    assert recipe["iterations"] == 2 and recipe["job"]["content"] == "photo.png"
    original = read_recipe(moved / "first.png")
    assert recipe["inputs"]["content"]["sha256"] == original["inputs"]["content"]["sha256"]


def test_continue_without_its_inputs_names_the_missing_file(
    private: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    first = private["folder"] / "first.png"
    assert _stylize(*_base(private, first)) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(first, alone / "first.png")
    shutil.copy(private["painting"], alone / "painting.png")
    shutil.rmtree(private["folder"])
    out = alone / "more.png"
    assert _stylize("--continue", alone / "first.png", "--quiet", "--out", out) == 2
    line = _one_error_line(capsys)
    assert line.startswith("painterly: photo.png: ") and "not found beside" in line and "--content" in line
    assert not out.exists()
    # Naming it instead works.
    photo = tmp_path / "found-again.png"
    Image.new("RGB", (40, 30), (120, 80, 40)).save(photo)
    given = ["--continue", alone / "first.png", "--content", photo, "--iterations", "1", "--quiet"]
    assert _stylize(*given, "--out", out) == 0
