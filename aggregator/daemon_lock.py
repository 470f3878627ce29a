"""One ``aggregator run`` per state: the second daemon fails to take this lock and says why.

SQLite: ``flock`` on ``<database>.lock`` beside the database file. PostgreSQL: a session
advisory lock held by a dedicated connection. Either way the kernel or the server drops
the lock when its holder dies, so a crash never leaves behind a lock that blocks the next
start. Other CLI commands take no lock: their writes coordinate through the database.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from aggregator.errors import AlreadyRunningError, StorageError
from aggregator.store.database import display_url

# Hashed with the schema into the advisory lock key: a schema is a separate state, so two
# daemons on one PostgreSQL database but different search_paths do not exclude each other.
_LOCK_NAME = "aggregator run"
# The holder's connection announces itself under this application_name, so a refused
# daemon (or a DBA reading pg_stat_activity) can tell who holds the lock.
_APP_PREFIX = "aggregator run: "
_PG_NAME_MAX = 63  # NAMEDATALEN - 1; the server truncates longer application names

_HOLDER_SQL = text(
    """
    SELECT a.application_name, a.backend_start
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid)
    """
)


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
    if backend == "postgresql":
        return _advisory_lock(url, shown)
    return nullcontext()  # open_store refuses other backends, with a better message


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


# ---------------------------------------------------------------- PostgreSQL: advisory lock


@contextmanager
def _advisory_lock(url: URL, shown: str) -> Iterator[None]:
    # A session lock on its own connection, outside any transaction: the pool must not
    # hand it out, and idle_in_transaction_session_timeout must not end it. NullPool so
    # that closing the connection ends the session, which releases the lock.
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"application_name": _application_name()}
    )
    try:
        connection = _acquire(engine, shown)
        try:
            yield
        finally:
            connection.close()
    finally:
        engine.dispose()


def _acquire(engine: Engine, shown: str) -> Connection:
    try:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise StorageError(f"{shown}: cannot connect to take the daemon lock: {exc}") from exc
    try:
        key = _lock_key(connection)
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        if taken.scalar_one():
            return connection
        holder = _pg_holder(connection, key)
    except SQLAlchemyError as exc:
        connection.close()
        raise StorageError(f"{shown}: cannot take the daemon lock: {exc}") from exc
    connection.close()
    raise AlreadyRunningError(_refusal(shown, holder))


def _lock_key(connection: Connection) -> int:
    schema = connection.execute(text("SELECT current_schema()")).scalar_one_or_none() or ""
    digest = hashlib.sha256(f"{_LOCK_NAME}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pg_holder(connection: Connection, key: int) -> _Holder:
    # A bigint advisory key shows in pg_locks split into two unsigned 32-bit halves.
    params = {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}
    row = connection.execute(_HOLDER_SQL, params).first()
    if row is None:  # released meanwhile, or pg_stat_activity hides another role's sessions
        return _Holder()
    name, started = row
    who = name.removeprefix(_APP_PREFIX) if name and name.startswith(_APP_PREFIX) else None
    return _Holder(who, started)


def _application_name() -> str:
    return f"{_APP_PREFIX}pid {os.getpid()} on {socket.gethostname()}"[:_PG_NAME_MAX]


# ---------------------------------------------------------------- the message


def _refusal(shown: str, holder: _Holder) -> str:
    since = holder.since and f"since {holder.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    details = ", ".join(part for part in (holder.who, since) if part)
    return (
        f"another `aggregator run` is already using {shown}"
        + (f" ({details})" if details else "")
        + "; stop it first, or point this one at another database"
    )
