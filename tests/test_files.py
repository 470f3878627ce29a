"""Atomic file replacement, given whole or in pieces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.files import write_atomic


def pieces(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def test_pieces_make_the_same_file_as_the_whole(tmp_path: Path) -> None:
    target = tmp_path / "page.atom"
    assert write_atomic(target, pieces(b"<feed>", b"<entry/>" * 3, b"</feed>"))
    assert target.read_bytes() == b"<feed><entry/><entry/><entry/></feed>"
    assert [p.name for p in tmp_path.iterdir()] == ["page.atom"]


@pytest.mark.parametrize(
    "new",
    [
        [b"<feed>", b"<entry/>", b"</feed>"],  # identical, cut differently
        [b"<feed><entry/></feed>"],
    ],
)
def test_unchanged_pieces_leave_the_file_untouched(tmp_path: Path, new: list[bytes]) -> None:
    target = tmp_path / "page.atom"
    target.write_bytes(b"<feed><entry/></feed>")
    os.utime(target, (1_000_000, 1_000_000))
    assert not write_atomic(target, pieces(*new))
    assert target.stat().st_mtime == 1_000_000
    assert [p.name for p in tmp_path.iterdir()] == ["page.atom"]


@pytest.mark.parametrize(
    "new",
    [
        [b"<feed><entry/>", b"</feed>", b"\n"],  # the old file is a prefix of the new one
        [b"<feed><entry/>"],  # the new one is a prefix of the old file
        [b"<feed><entry/></feeD>"],
    ],
)
def test_changed_pieces_replace_the_file(tmp_path: Path, new: list[bytes]) -> None:
    target = tmp_path / "page.atom"
    target.write_bytes(b"<feed><entry/></feed>")
    assert write_atomic(target, pieces(*new))
    assert target.read_bytes() == b"".join(new)


def test_a_failure_midway_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "page.atom"
    target.write_bytes(b"old")

    def failing() -> Iterator[bytes]:
        yield b"<feed>"
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        write_atomic(target, failing())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["page.atom"]
