"""Engine set-up and schema migration: the connection-level policy for each backend."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration in migrations/versions (a test checks it is Alembic's head): an
# up-to-date database is recognised without importing Alembic.
SCHEMA_HEAD = "0007"

# An arbitrary constant: every aggregator process migrating the same PostgreSQL
# database contends for this one advisory lock, so only one runs the upgrade.
_MIGRATION_LOCK_KEY = 0x61676772  # "aggr"

_BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "aggregator_immediate"


_P = ParamSpec("_P")
_R = TypeVar("_R")


class _HasDisplayUrl(Protocol):
    display_url: str


_S = TypeVar("_S", bound=_HasDisplayUrl)


def storage_errors(
    method: Callable[Concatenate[_S, _P], _R],
) -> Callable[Concatenate[_S, _P], _R]:
    """Turn any SQLAlchemy (and wrapped DB-API) error into StorageError at the boundary."""

    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except (SQLAlchemyError, UnicodeEncodeError) as exc:
            # The drivers raise UnicodeEncodeError for a lone surrogate in a str parameter
            # themselves, and SQLAlchemy passes it on unwrapped.
            raise StorageError(f"{self.display_url}: {method.__name__} failed: {exc}") from exc

    return wrapper


def display_url(url: str) -> str:
    """The URL for messages, with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by make_engine; just echo it here
        return url


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_directory(parsed)
        engine = create_engine(parsed, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() == "postgresql":
        _configure_postgresql(engine)
    return engine


def write_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A transaction that will write: on SQLite it takes the write lock up front.

    A deferred SQLite transaction that reads, then writes, fails at once with
    SQLITE_BUSY if another process wrote in between (busy_timeout cannot help);
    BEGIN IMMEDIATE waits for the lock instead. On PostgreSQL this is engine.begin().
    """
    return engine.execution_options(**{_IMMEDIATE: True}).begin()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is already there.

    Checked with a plain read first: an up-to-date database is not write-locked just to
    find out, so read-only commands never wait behind a running daemon's writes.
    """
    with engine.connect() as connection:
        if _stored_revision(connection) == SCHEMA_HEAD:
            return
    # Alembic only when there is something to do: ~11 MB and a tenth of a second that every
    # command paid for a check.
    from alembic import command
    from alembic.util import CommandError

    config = _alembic_config()
    try:
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                # Released at commit; a second process waits here, finds head, does nothing.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except CommandError as exc:
        raise SchemaError(str(exc)) from exc


class SchemaError(Exception):
    """Alembic refused to migrate (a revision this version does not know, say); the store
    turns it into a StorageError with :func:`explain_open_error`."""


def _stored_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _ensure_sqlite_directory(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_postgresql(engine: Engine) -> None:
    # psycopg hands timestamptz over in the session's TimeZone (the server's default unless
    # set). Outside UTC, a stored 9999-12-31 or 0001-01-01 from a feed falls outside Python's
    # datetime range there, and every read of that entry failed. UTCDateTime wants UTC anyway.
    @event.listens_for(engine, "connect", insert=True)
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            cursor.close()
            dbapi_connection.autocommit = autocommit


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN to the first DML statement, so
    # DDL (migrations) and plain SELECTs would run outside any transaction. Take it
    # over: autocommit at the driver level and an explicit BEGIN from SQLAlchemy.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL, retrying while another connection is switching the same file.

    SQLite answers that race with SQLITE_BUSY at once, without consulting busy_timeout, so
    processes opening a fresh database together failed now and then ("database is locked").
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def refuse_empty_sqlite_file(url: str) -> None:
    """An existing 0-byte database file is a lost state (a failed copy, a full disk), not a
    new one: SQLite would silently start afresh in it, and every feed would be new again.

    A file another process is creating right now is also empty for a moment (its first
    pages may still sit in the ``-wal`` file), so only a settled one is refused.
    """
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    path = Path(database).expanduser()
    try:
        info = path.stat()
    except OSError:
        return  # missing: a new database, as asked
    in_progress = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))
    settled = time.time() - info.st_mtime > _SETTLED_SECONDS
    if info.st_size == 0 and settled and not in_progress:
        raise StorageError(
            f"{database} is empty (0 bytes): restore it from a backup, or delete it to start "
            "with a new database"
        )


_SETTLED_SECONDS = 10


def explain_open_error(exc: Exception) -> str:
    """Plain words for why a database could not be opened or migrated."""
    text = str(exc)
    if "file is not a database" in text or "malformed" in text:
        return (
            "the database file is damaged (not a readable SQLite database); restore a backup "
            "or move the file away to start afresh"
        )
    if "Can't locate revision" in text:
        newest = newest_known_revision()
        return (
            "the database was upgraded by a newer version of aggregator (this version knows "
            f"schema revisions up to {newest}); upgrade aggregator, or use another database"
        )
    return f"cannot open or migrate the database: {exc}"


def newest_known_revision() -> str:
    """The head of the migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def has_state(url: str) -> bool:
    """Whether ``url`` may already hold state: a server database, or an existing SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    database = parsed.database or ""
    return database not in ("", ":memory:") and Path(database).expanduser().is_file()
