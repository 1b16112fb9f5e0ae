"""The command line end to end: real embedded weights at a tiny size, exit codes, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def painterly(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:80]
    photo = np.stack([xx / 80, yy / 60, 0.4 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(folder / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / "painting.png")
    (folder / "notes.png").write_text("this is text, not a picture")
    (folder / "empty.jpg").write_bytes(b"")
    return {p.stem: p for p in folder.iterdir()} | {"dir": folder}


def test_end_to_end_with_the_embedded_weights(inputs, tmp_path) -> None:
    out = tmp_path / "result.png"
    result = painterly(
        "stylize", "--content", str(inputs["photo"]), "--style", str(inputs["painting"]), "--out", str(out),
        "--size", "48", "--iterations", "3", "--device", "cpu", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "plan" and events[0]["fits"] is True
    assert [e["iteration"] for e in events if e["event"] == "progress"] == [1, 2, 3]
    summary = events[-1]
    assert summary["event"] == "done" and summary["iterations"] == 3
    assert summary["output"] == str(out) and summary["device"].startswith("CPU")
    assert set(summary["losses"]) == {"content", "style", "tv", "total"}
    assert summary["weights"].startswith("embedded:")
    with Image.open(out) as image:
        assert image.size == (48, 36)
        assert "icc_profile" in image.info
    info = painterly("info", str(out))
    assert info.returncode == 0
    assert "photo.jpg" in info.stdout and "painting.png" in info.stdout and "default" in info.stdout
    recipe = json.loads(painterly("info", "--json", str(out)).stdout)
    assert recipe["job"]["params"]["iterations"] == 3


def test_existing_output_is_not_replaced_without_overwrite(inputs, tmp_path) -> None:
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    args = [
        "stylize",
        "--content",
        str(inputs["photo"]),
        "--style",
        str(inputs["painting"]),
        "--out",
        str(out),
    ]
    result = painterly(*args, "--size", "32", "--iterations", "1")
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    replaced = painterly(*args, "--size", "32", "--iterations", "1", "--overwrite", "--quiet")
    assert replaced.returncode == 0, replaced.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "change,needle",
    [
        (["--content", "{dir}/missing.jpg"], "missing.jpg"),
        (["--content", "{dir}"], "folder"),
        (["--content", "{notes}"], "notes.png"),
        (["--style", "{empty}"], "empty.jpg"),
        (["--size", "0"], "size"),
        (["--size", "nan"], "size"),
        (["--size", "-3"], "size"),
        (["--iterations", "1e12"], "iterations"),
        (["--style-weight", "-1"], "style weight"),
        (["--content-weight", "inf"], "content weight"),
        (["--blend", "1,2"], "blend"),
        (["--out", "{dir}/result.gif"], "result.gif"),
        (["--out", "{dir}/no/such/folder/x.png"], "folder"),
        (["--preset", "nonsense"], "nonsense"),
        (["--weights", "{notes}"], "notes.png"),
        (["--style-layers", "relu9_1"], "relu9_1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(inputs, change, needle, capsys) -> None:
    # In-process (the same code path as the console script) so each case costs milliseconds.
    import cli

    args = {"--content": str(inputs["photo"]), "--style": str(inputs["painting"]), "--out": "{dir}/out.png"}
    args |= {"--size": "32", "--iterations": "1"}
    args[change[0]] = change[1]
    flat = [part.format(**{k: str(v) for k, v in inputs.items()}) for pair in args.items() for part in pair]
    try:
        code = cli.main(["stylize", *flat])
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert needle in lines[0]
    assert not (inputs["dir"] / "out.png").exists()


def test_info_on_an_image_without_a_recipe(inputs) -> None:
    result = painterly("info", str(inputs["painting"]))
    assert result.returncode == 2
    assert "painting.png" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery to a child is POSIX-only")
def test_ctrl_c_saves_the_current_image_and_exits_130(inputs, tmp_path) -> None:
    out = tmp_path / "interrupted.png"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "stylize", "--content", str(inputs["photo"]),
         "--style", str(inputs["painting"]), "--out", str(out), "--size", "64", "--iterations", "100000",
         "--device", "cpu", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["event"] == "progress":
            break
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert time.monotonic() - started < 60
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["event"] == "done" and summary["reason"] == "stopped"
    assert out.exists() and Image.open(out).size == (64, 48)


def test_print_size_and_preset_flags_become_params() -> None:
    import cli

    parser = cli.build_parser()
    base = ["stylize", "--content", "c.jpg", "--style", "s.jpg", "--out", "o.png"]
    params = cli.params_from_args(parser.parse_args([*base, "--print-size", "30cm", "--dpi", "300"]))
    assert params.size == 3543 and params.dpi == 300
    params = cli.params_from_args(parser.parse_args([*base, "--print-size", "10in"]))
    assert params.size == 3000 and params.dpi == 300
    params = cli.params_from_args(parser.parse_args([*base, "--preset", "tf-tutorial", "--seed", "9"]))
    assert params.preset == "tf-tutorial" and params.size == 512 and params.seed == 9
    params = cli.params_from_args(
        parser.parse_args([*base, "--levels", "128:20,256:10", "--no-coarse-to-fine"])
    )
    assert params.levels == ((128, 20), (256, 10)) and params.coarse_to_fine is False
    params = cli.params_from_args(parser.parse_args([*base, "--init", "start.png"]))
    assert params.init.value == "image" and params.init_image == "start.png"
