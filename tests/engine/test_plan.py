"""engine.plan and engine.layers: planning without torch, and the one VGG-19 table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.params import StyleParams
from engine.plan import MIN_SIDE, check_output_shape, level_sizes, plan_levels

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("iterations", range(1, 12))
def test_every_level_gets_at_least_one_iteration(iterations: int) -> None:
    levels = plan_levels(StyleParams(size=4096, iterations=iterations))
    assert all(level.iterations >= 1 for level in levels)
    assert sum(level.iterations for level in levels) == iterations
    assert levels[-1].size == 4096


def test_thin_levels_are_raised_to_the_networks_minimum() -> None:
    sizes = level_sizes((2000, 100), StyleParams(size=1024, start_size=64))
    assert all(min(size) >= MIN_SIDE for size, _ in sizes)
    assert sizes[-1][0] == (1024, 51)


def test_an_output_too_small_names_the_size_that_works() -> None:
    with pytest.raises(InputError, match="size of 22 px"):
        check_output_shape((40, 30), StyleParams(size=16))
    check_output_shape((40, 30), StyleParams(size=22))


def test_planning_imports_no_torch() -> None:
    code = (
        "import sys; import engine.plan, engine.memory, engine.tiles, engine.layers, engine.results;"
        "import engine.params; assert not [m for m in sys.modules if m.split('.')[0] == 'torch']"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
