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
