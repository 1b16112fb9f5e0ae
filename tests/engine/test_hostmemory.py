"""Keeping freed host memory between iterations (glibc only)."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import hostmemory
from engine.params import StyleParams

BLOCK = 256 * 2**20  # well above glibc's largest dynamic mmap threshold (32 MiB)
PAGES = BLOCK // 4096


def _faults_of_a_fresh_block() -> int:
    """Minor page faults taken by allocating and touching 3/4 of BLOCK bytes, after a BLOCK was
    allocated, touched and freed. (A smaller second block: torch aligns its allocations, which
    makes glibc ask for a few bytes more than an identical freed block has.)"""
    torch.empty(BLOCK // 4).fill_(1.0)  # allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(BLOCK // 4 * 3 // 4).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not hostmemory.available(), reason="needs glibc")
def test_freed_blocks_are_reused_inside_and_returned_outside() -> None:
    with hostmemory.reuse_freed_memory() as active:
        assert active
        inside = _faults_of_a_fresh_block()
    outside = _faults_of_a_fresh_block()
    assert inside < PAGES // 10, inside
    assert outside > PAGES // 2, outside  # 3/4 of PAGES when nothing is kept


def test_disabled_or_unavailable_changes_nothing(monkeypatch) -> None:
    with hostmemory.reuse_freed_memory(enabled=False) as active:
        assert not active
    monkeypatch.setattr(hostmemory, "_LIBC", None)
    assert not hostmemory.available()
    with hostmemory.reuse_freed_memory() as active:
        assert not active


@pytest.mark.skipif(not hostmemory.available(), reason="needs glibc")
def test_a_run_keeps_freed_memory_only_when_the_larger_peak_fits(tmp_path: Path, monkeypatch) -> None:
    from engine.memory import GiB
    from engine.run import fallback

    rng = np.random.default_rng(0)
    for name in ("photo.png", "paint.png"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / name)
    params = StyleParams(size=64, iterations=1, device="cpu")
    cpu = torch.device("cpu")
    monkeypatch.setattr(fallback, "available_bytes", lambda device: 16 * GiB)
    assert fallback.may_keep_freed_memory(params, (64, 48), cpu)
    big = params.replace(size=4096, coarse_to_fine=False)
    assert not fallback.may_keep_freed_memory(big, (4096, 3072), cpu)  # 56 GiB without the price
    monkeypatch.setattr(fallback, "available_bytes", lambda device: 1 * GiB)
    assert not fallback.may_keep_freed_memory(params, (64, 48), cpu)
