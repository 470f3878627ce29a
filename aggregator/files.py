"""Atomic file replacement: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> bool:
    """Replace ``path`` with ``data``, given whole or in pieces (temp file, fsync, rename).

    Returns False, touching nothing, when the file already holds exactly ``data``:
    unchanged inputs must not even bump the mtime that HTTP caches key on. Pieces are
    written and compared with the old file as they come, so neither document is ever
    held whole (a month's archive page is tens of MB).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    old_file: AbstractContextManager[BinaryIO | None] = nullcontext()
    if isinstance(data, bytes):
        # Whole: compared before any temporary file exists, and not again below.
        try:
            if path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        data = [data]
    else:
        old_file = _open_or_none(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp, old_file as old:
            same = old is not None
            for piece in data:
                tmp.write(piece)
                same = same and old is not None and old.read(len(piece)) == piece
            if same and old is not None and not old.read(1):
                Path(tmp_name).unlink()
                return False
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return True


@contextmanager
def _open_or_none(path: Path) -> Iterator[BinaryIO | None]:
    try:
        old = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with old:
        yield old


def _fsync_directory(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is flushed.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
