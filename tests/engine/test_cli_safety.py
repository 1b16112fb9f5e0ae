"""The command line never damages an input, never loses a finished picture, and checks before it runs.

In-process (``cli.main``), with the embedded weights at a tiny size, so each case costs about a second.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cli
from engine import encode
from engine.metadata import read_recipe


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:30, 0:40]
    photo = np.stack([xx / 40, yy / 30, 0.5 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "painting.png")
    return {"photo": tmp_path / "photo.png", "painting": tmp_path / "painting.png", "dir": tmp_path}


def run(*args: str | Path) -> int:
    try:
        return cli.main(["stylize", *(str(a) for a in args)])
    except SystemExit as exit_:  # argparse's usage errors
        return int(exit_.code or 0)


def base(photos: dict[str, Path], out: Path | str, *extra: str) -> list[str | Path]:
    return ["--content", photos["photo"], "--style", photos["painting"], "--out", out, "--size", "32",
            "--iterations", "2", "--quiet", *extra]  # fmt: skip


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("how", ["same", "dotted", "symlink", "hardlink", "style", "init"])
def test_an_input_is_never_written_whatever_the_flags(photos, capsys, how: str) -> None:
    folder = photos["dir"]
    (folder / "d").mkdir()
    original = photos["photo"].read_bytes()
    args = base(photos, photos["photo"], "--overwrite")
    if how == "dotted":
        args = base(photos, f"{folder}/d/../d/./../photo.png", "--overwrite")
    elif how == "symlink":
        (folder / "link.png").symlink_to(photos["photo"])
        args = base(photos, folder / "link.png", "--overwrite")
    elif how == "hardlink":
        os.link(photos["photo"], folder / "hard.png")
        args = base(photos, folder / "hard.png", "--overwrite")
    elif how == "style":
        args = base(photos, photos["painting"], "--overwrite")
    elif how == "init":
        args = [*base(photos, folder / "start.png", "--overwrite"), "--init", str(folder / "start.png")]
        Image.open(photos["photo"]).save(folder / "start.png")
        original = (folder / "start.png").read_bytes()
    assert run(*args) == 2
    assert "never writes over an input" in one_error_line(capsys)
    target = folder / "start.png" if how == "init" else photos["photo"]
    assert target.read_bytes() == original
    assert photos["painting"].read_bytes() != b""


def test_intermediates_obey_the_outputs_rules(photos, capsys) -> None:
    folder = photos["dir"]
    # The photo is named like the first intermediate of r.png: it must survive --overwrite.
    victim = folder / "r.00001.png"
    photos["photo"].rename(victim)
    photos["photo"] = victim
    original = victim.read_bytes()
    assert run(*base(photos, folder / "r.png", "--overwrite", "--save-every", "1")) == 2
    assert "r.00001.png" in one_error_line(capsys)
    assert victim.read_bytes() == original and not (folder / "r.png").exists()


def test_an_existing_intermediate_is_refused_before_the_run(photos, capsys) -> None:
    folder = photos["dir"]
    (folder / "r.00002.png").write_bytes(b"keep")
    assert run(*base(photos, folder / "r.png", "--save-every", "2")) == 2
    assert "already exists" in one_error_line(capsys)
    assert (folder / "r.00002.png").read_bytes() == b"keep" and not (folder / "r.png").exists()


def test_save_every_saves_exactly_every_n_iterations_with_recipe_and_dpi(photos) -> None:
    folder = photos["dir"]
    args = base(photos, folder / "r.png", "--save-every", "2")
    args[args.index("--iterations") + 1] = "7"
    args[args.index("--size") : args.index("--size") + 2] = ["--print-size", "0.5in", "--dpi", "72"]
    assert run(*args) == 0
    saved = sorted(p.name for p in folder.glob("r.*.png"))
    assert saved == ["r.00002.png", "r.00004.png", "r.00006.png"]
    for name in [*saved, "r.png"]:
        with Image.open(folder / name) as image:
            assert image.size == (36, 27)
            assert image.info["dpi"] == pytest.approx((72, 72), abs=0.05)
        recipe = read_recipe(folder / name)
        assert recipe["job"]["params"]["dpi"] == 72
    assert read_recipe(folder / "r.00004.png")["iterations"] == 4


def test_negative_save_every_is_refused(photos, capsys) -> None:
    assert run(*base(photos, photos["dir"] / "r.png", "--save-every", "-2")) == 2
    assert "--save-every" in one_error_line(capsys)


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--bit-depth", "16"], "16-bit"),  # with .jpg
        (["--dpi", "nan"], "--dpi"),
        (["--dpi", "inf"], "--dpi"),
        (["--print-size", "30cm", "--dpi", "0"], "--dpi"),
        (["--blend", ""], "--blend"),
        (["--blend", "nan"], "--blend"),
        (["--seed", "1.5"], "--seed"),
        (["--seed", "9223372036854775808"], "seed"),
        (["--levels", ""], "--levels"),
    ],
)
def test_checks_made_before_the_run(photos, capsys, extra: list[str], needle: str) -> None:
    out = photos["dir"] / "out.jpg"
    args = base(photos, out, *extra)
    if "--print-size" in extra:
        i = args.index("--size")
        del args[i : i + 2]
    assert run(*args) == 2
    assert needle in one_error_line(capsys)
    assert not out.exists()


def test_webp_larger_than_its_limit_is_refused_before_the_run(photos, capsys, monkeypatch) -> None:
    monkeypatch.setattr(encode, "_WEBP_MAX_SIDE", 31)
    assert run(*base(photos, photos["dir"] / "big.webp")) == 2
    assert "WebP" in one_error_line(capsys)


def test_the_largest_seed_is_kept_exactly(photos) -> None:
    out = photos["dir"] / "seeded.png"
    assert run(*base(photos, out, "--seed", str(2**63 - 1), "--init", "noise")) == 0
    assert read_recipe(out)["job"]["params"]["seed"] == 2**63 - 1


@pytest.mark.parametrize(
    "size,shape,needle",
    [(64, (1, 1), None), (64, (1, 4000), "too narrow"), (16, (40, 30), "size of 22 px")],
)
def test_tiny_or_thin_photos(photos, capsys, size: int, shape: tuple[int, int], needle: str | None) -> None:
    Image.new("RGB", shape, "red").save(photos["photo"])
    out = photos["dir"] / "tiny.png"
    args = base(photos, out)
    args[args.index("--size") + 1] = str(size)
    code = run(*args)
    if needle is None:
        assert code == 0 and Image.open(out).size == (size, size)
    else:
        assert code == 2 and needle in one_error_line(capsys)


def test_a_folder_or_an_overlong_name_as_output(photos, capsys) -> None:
    assert run(*base(photos, f"{photos['dir']}/out/")) == 2
    assert "names a folder" in one_error_line(capsys)
    assert run(*base(photos, photos["dir"] / ("x" * 300 + ".png"))) == 2
    assert "file name" in one_error_line(capsys)


def test_a_file_name_that_is_not_utf8_is_saved_with_its_recipe(photos) -> None:
    out = Path(os.fsdecode(bytes(photos["dir"]) + b"/caf\xe9.png"))
    assert run(*base(photos, out)) == 0
    assert out.exists()
    assert read_recipe(out)["job"]["params"]["iterations"] == 2
    content = Path(os.fsdecode(bytes(photos["dir"]) + b"/ph\xe9oto.png"))
    photos["photo"].rename(content)
    photos["photo"] = content
    for suffix in (".png", ".webp", ".jpg", ".tif"):
        out = photos["dir"] / f"r{suffix}"
        assert run(*base(photos, out, "--embed", "paths")) == 0
        assert Path(read_recipe(out)["job"]["content"]) == content


def test_a_failed_save_goes_to_a_recovery_file(photos, capsys, monkeypatch) -> None:
    out = photos["dir"] / "result.png"
    real = encode.atomic_write

    def full_disk(path: Path, write, *, overwrite: bool) -> None:
        if path.name == "result.png":
            raise OSError(28, "No space left on device")
        real(path, write, overwrite=overwrite)

    monkeypatch.setattr(encode, "atomic_write", full_disk)
    assert run(*base(photos, out, "--json")) == cli.EXIT_RECOVERED
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    recovered = Path(summary["output"])
    assert summary["recovered"] is True and recovered.parent == photos["dir"]
    assert recovered.name.startswith("result.recovered-") and recovered.suffix == ".png"
    assert read_recipe(recovered)["iterations"] == 2
    assert str(recovered) in captured.err and "No space left" in captured.err
    assert not out.exists()


def test_interrupt_during_the_save_is_held_until_the_picture_is_saved(photos, monkeypatch) -> None:
    out = photos["dir"] / "result.png"
    real = encode.atomic_write

    def interrupted(path: Path, write, *, overwrite: bool) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the file is being written
        real(path, write, overwrite=overwrite)

    monkeypatch.setattr(encode, "atomic_write", interrupted)
    assert run(*base(photos, out)) == cli.EXIT_INTERRUPTED
    assert read_recipe(out)["reason"] == "completed"


def test_a_second_interrupt_during_the_save_aborts_it_leaving_the_old_file(photos, monkeypatch) -> None:
    out = photos["dir"] / "result.png"
    out.write_bytes(b"the old file")
    real = encode.atomic_write

    def twice(path: Path, write, *, overwrite: bool) -> None:
        def slow_write(stream) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            write(stream)

        real(path, slow_write, overwrite=overwrite)

    monkeypatch.setattr(encode, "atomic_write", twice)
    # The handler the process had (default_int_handler, or SIG_IGN when started in the background
    # by a shell without job control) must be back after the run.
    before = signal.getsignal(signal.SIGINT)
    assert run(*base(photos, out, "--overwrite")) == cli.EXIT_INTERRUPTED
    assert out.read_bytes() == b"the old file"
    assert not [p for p in photos["dir"].iterdir() if p.name.startswith(".painterly-")]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_closed_stdout_does_not_cost_the_picture(photos, monkeypatch) -> None:
    out = photos["dir"] / "result.png"

    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise ValueError("no descriptor")

    monkeypatch.setattr(cli._Stdout, "closed", False)
    monkeypatch.setattr("sys.stdout", Gone())
    assert run(*base(photos, out, "--json")) == 0
    assert out.exists()


def test_info_json_is_standard_json(photos, capsys, tmp_path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    hostile = '{"losses": {"total": NaN, "x": Infinity}, "name": "\\u001b]0;x\\u0007"}'
    info.add_itxt("painterly:recipe", hostile)
    Image.new("RGB", (4, 4)).save(tmp_path / "nan.png", pnginfo=info)
    assert cli.main(["info", "--json", str(tmp_path / "nan.png")]) == 0
    printed = capsys.readouterr().out
    assert "NaN" not in printed and "Infinity" not in printed and "\x1b" not in printed
    json.loads(printed)


def test_a_weights_file_is_an_input_too(photos, capsys) -> None:
    from engine.weights import random_weights, save_weights_safetensors

    weights = save_weights_safetensors(random_weights(seed=0), photos["dir"] / "w.png")
    original = weights.read_bytes()
    assert run(*base(photos, weights, "--overwrite", "--weights", str(weights))) == 2
    assert "never writes over an input" in one_error_line(capsys)
    assert weights.read_bytes() == original


@pytest.mark.parametrize("target", ["/", ".", ".."])
def test_info_on_a_folder_is_one_line(capsys, target: str) -> None:
    assert cli.main(["info", target]) == 2
    assert "folder" in one_error_line(capsys)


def test_empty_input_names_are_usage_errors(photos, capsys) -> None:
    args = base(photos, photos["dir"] / "out.png")
    args[args.index("--content") + 1] = ""
    assert run(*args) == 2
    assert "empty" in one_error_line(capsys)


def test_continue_a_result_at_its_size_or_larger(photos) -> None:
    first = photos["dir"] / "first.png"
    assert run(*base(photos, first)) == 0
    more = photos["dir"] / "more.png"
    continued = ["stylize", "--continue", str(first), "--quiet", "--out"]
    assert cli.main([*continued, str(more), "--iterations", "3", "--embed", "paths"]) == 0
    recipe = read_recipe(more)
    assert recipe["iterations"] == 3 and recipe["job"]["params"]["init"] == "image"
    assert Path(recipe["job"]["params"]["init_image"]) == first
    assert recipe["job"]["params"]["size"] == 32 and recipe["job"]["content"] == str(photos["photo"])
    larger = photos["dir"] / "larger.png"
    assert cli.main([*continued, str(larger), "--size", "64"]) == 0
    assert Image.open(larger).size == (64, 48)
    assert read_recipe(larger)["iterations"] == cli.CONTINUE_ITERATIONS


def test_continue_refuses_a_file_without_a_recipe_and_init(photos, capsys) -> None:
    out = photos["dir"] / "out.png"
    assert cli.main(["stylize", "--continue", str(photos["painting"]), "--out", str(out)]) == 2
    assert "no Painterly recipe" in one_error_line(capsys)
    first = photos["dir"] / "first.png"
    assert run(*base(photos, first)) == 0
    assert cli.main(["stylize", "--continue", str(first), "--out", str(out), "--init", "noise"]) == 2
    assert "--init" in one_error_line(capsys)
