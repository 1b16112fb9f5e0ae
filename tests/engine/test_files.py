"""engine.files: reading only regular files, atomic writes, leftovers of killed saves, inert text."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import InputError, OutputExistsError
from engine.files import (
    TEMP_PREFIX,
    atomic_write,
    read_regular_file,
    same_file,
    stale_temporaries,
)
from engine.text import printable
from tests.engine.blocking import finishes_within


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe"):
        finishes_within(5, lambda: read_regular_file(fifo, limit=100))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="device"):
        finishes_within(5, lambda: read_regular_file("/dev/zero", limit=100))


def test_folders_missing_files_and_size_limits(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder"):
        read_regular_file(tmp_path, limit=100)
    with pytest.raises(InputError, match="not found"):
        read_regular_file(tmp_path / "missing.png", limit=100)
    (tmp_path / "big.png").write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="too large"):
        read_regular_file(tmp_path / "big.png", limit=100, what="image")
    assert read_regular_file(tmp_path / "big.png", limit=101) == b"x" * 101
    with pytest.raises(InputError, match="too long"):
        read_regular_file(tmp_path / ("n" * 300), limit=100)


def test_same_file_sees_through_dots_symlinks_and_hard_links(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"p")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.png").symlink_to(photo)
    os.link(photo, tmp_path / "hard.png")
    assert same_file(tmp_path / "sub" / ".." / "photo.png", photo)
    assert same_file(tmp_path / "link.png", photo)
    assert same_file(tmp_path / "hard.png", photo)
    assert not same_file(tmp_path / "other.png", photo)


def test_atomic_write_refuses_an_existing_name_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        atomic_write(target, lambda f: f.write(b"new"), overwrite=False)
    assert target.read_bytes() == b"old"

    def fails(stream) -> None:
        stream.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fails, overwrite=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_save_are_removed_on_the_next_save(tmp_path: Path) -> None:
    dead = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-abcd1234.png"
    dead.write_bytes(b"half a picture")
    alive = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-abcd1234.png"
    alive.write_bytes(b"someone is writing this")
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-zz99.tif"
    mine.write_bytes(b"this process's own save in progress")
    lookalike = tmp_path / ".painterly-notes.txt"
    lookalike.write_bytes(b"not ours")
    folder = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-dir12345"
    folder.mkdir()
    link = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-link1234.png"
    link.symlink_to(lookalike)

    assert stale_temporaries(tmp_path) == [dead]
    atomic_write(tmp_path / "result.png", lambda f: f.write(b"new"), overwrite=False)
    assert not dead.exists()
    assert alive.exists() and mine.exists() and lookalike.exists() and folder.exists() and link.is_symlink()


def test_a_very_old_temporary_is_stale_even_if_its_pid_is_taken(tmp_path: Path) -> None:
    old = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-abcd1234.png"
    old.write_bytes(b"x")
    assert stale_temporaries(tmp_path) == []
    assert stale_temporaries(tmp_path, now=time.time() + 2 * 24 * 3600) == [old]


@pytest.mark.parametrize(
    "text",
    ["\x1b]0;pwned\x07", "a\x1b[2Jb", "line\nforged", "\x9b31m", "evil\u202egnp.exe", "zero\u200bw", "\x00"],
)
def test_printable_leaves_no_control_character(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    assert not any(c in shown for c in "\u202e\u200b")


def test_printable_keeps_ordinary_text() -> None:
    for text in ("café.png", "写真.jpg", "a b-c_d (1).png", "naïve ✓"):
        assert printable(text) == text


def test_leftovers_of_older_versions_are_removed_once_a_day_old(tmp_path: Path) -> None:
    legacy = tmp_path / ".painterly-k2x9_q7z.png"
    legacy.write_bytes(b"half a picture from an older version")
    assert stale_temporaries(tmp_path) == []
    assert stale_temporaries(tmp_path, now=time.time() + 2 * 24 * 3600) == [legacy]
