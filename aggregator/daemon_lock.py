"""One ``aggregator run`` per SQLite state: the second daemon fails to take this lock and
says why.

SQLite: ``flock`` on ``<database>.lock`` beside the database file; the kernel drops the lock
when its holder dies, so a crash never leaves behind a lock that blocks the next start.
PostgreSQL takes no lock: several daemons, on one machine or many, share its state and
split the work (feed claims and exclusive sections, ``store/claims.py``). Other CLI
commands take no lock: their writes coordinate through the database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError

from aggregator.errors import AlreadyRunningError, StorageError
from aggregator.store.database import display_url


@dataclass(frozen=True)
class _Holder:
    """What can be learnt about the process holding the lock; each part may be unknown."""

    who: str | None = None
    since: datetime | None = None


def daemon_lock(database_url: str) -> AbstractContextManager[None]:
    """Hold the daemon lock of the state at ``database_url`` for a ``with`` block.

    Raises AlreadyRunningError when another process holds it, naming that process where it can.
    An in-memory SQLite database is private to its process, so it takes no lock.
    """
    shown = display_url(database_url)
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise StorageError(f"{shown}: not a usable database URL: {exc}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        lock_path = _sqlite_lock_path(url)
        return nullcontext() if lock_path is None else _file_lock(lock_path, url.database or "")
    # PostgreSQL: workers share the state (see above); open_store refuses other backends.
    return nullcontext()


def _sqlite_lock_path(url: URL) -> Path | None:
    """``<database>.lock`` beside the file SQLite opens; None for an in-memory database."""
    database = url.database or ""
    if database.startswith("file:"):  # SQLite's URI form, sqlite:///file:path?uri=true
        if url.query.get("mode") == "memory":
            return None
        database = unquote(urlsplit(database).path)
    if database in ("", ":memory:"):
        return None
    # SQLite follows a symlinked database to its target; so must the lock, or two
    # spellings of one database would get two locks.
    return Path(os.path.realpath(database) + ".lock")


# ---------------------------------------------------------------- SQLite: a lock file


@contextmanager
def _file_lock(path: Path, shown: str) -> Iterator[None]:
    fd = _open_lock_file(path)
    try:
        _take_file_lock(fd, path, shown)
        try:
            yield
        finally:
            # Stale details would be shown as the holder's by a daemon that races the
            # next one between its lock and its write.
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: until we hold the lock the contents are the holder's, for the message.
        # Python fds are not inherited, so a child (mjml) cannot outlive us holding the lock.
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"{path}: cannot create the daemon lock file: {exc}") from exc


def _take_file_lock(fd: int, path: Path, shown: str) -> None:
    try:
        taken = _try_lock(fd)
        if taken:
            _write_holder(fd)
    except OSError as exc:
        raise StorageError(f"{path}: cannot take the daemon lock: {exc}") from exc
    if not taken:
        raise AlreadyRunningError(_refusal(shown, _read_holder(fd)))


def _write_holder(fd: int) -> None:
    details = f"{os.getpid()}\n{datetime.now(UTC).isoformat(timespec='seconds')}\n"
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, details.encode())


def _read_holder(fd: int) -> _Holder:
    os.lseek(fd, 0, os.SEEK_SET)
    lines = os.read(fd, 200).decode(errors="replace").splitlines()
    # The holder may not have written yet, or an older version wrote something else.
    pid = lines[0] if lines and lines[0].isdigit() else None
    try:
        since = datetime.fromisoformat(lines[1]) if len(lines) > 1 else None
    except ValueError:
        since = None
    return _Holder(f"pid {pid}" if pid else None, since)


if sys.platform == "win32":
    import msvcrt

    # msvcrt locks are mandatory: lock a byte past the holder's details so they stay readable.
    _WINDOWS_LOCK_OFFSET = 1 << 20

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        # flock, not fcntl/lockf: POSIX record locks belong to the process, so a second
        # lock in the same process would succeed, and closing either fd would drop both.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


# ---------------------------------------------------------------- the message


def _refusal(shown: str, holder: _Holder) -> str:
    since = holder.since and f"since {holder.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    details = ", ".join(part for part in (holder.who, since) if part)
    return (
        f"another `aggregator run` is already using {shown}"
        + (f" ({details})" if details else "")
        + "; stop it first, or point this one at another database"
    )
