"""How several workers share one database: feed claims and cluster-wide sections.

Claims. Before polling a batch of feeds a worker claims them: one statement marks each
row with the worker and a lease expiry, and returns the rows it got. A row is free when
nobody holds it or its lease ran out, so a worker that died mid-round delays its feeds by
one lease at most. A scheduled round's claim re-checks that the feed is still due, because
another worker may have polled it since this one read the table; on PostgreSQL rows
another worker is claiming are skipped (``FOR UPDATE SKIP LOCKED``), not waited for, and on
SQLite the statement runs under the write lock. Recording a poll's outcome clears the claim
(``record_success``/``record_failure``).

Sections. Work that must run once at a time across all workers (publishing the outputs,
deciding stories) runs inside :func:`exclusive`: a PostgreSQL advisory lock named after
the section and the schema, held by a connection of its own and released when the block
ends or the connection dies. SQLite states have one daemon (``daemon_lock``), so there it
is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime

from sqlalchemy import Engine, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StorageError
from aggregator.store.schema import feeds

_CHUNK = 500  # URLs per statement: far below every backend's bound-parameter limit
CLEARED = {"claimed_by": None, "claimed_until": None}  # a recorded poll ends its claim


def claim_feeds(
    conn: Connection,
    urls: Sequence[str],
    *,
    worker: str,
    now: datetime,
    until: datetime,
    due_only: bool,
) -> set[str]:
    """Claim those of ``urls`` that are free (and, with ``due_only``, still due at
    ``now``); returns them."""
    free = or_(
        feeds.c.claimed_until.is_(None),
        feeds.c.claimed_until <= now,
        feeds.c.claimed_by == worker,
    )
    due = or_(feeds.c.next_due_at.is_(None), feeds.c.next_due_at <= now)
    claimed: set[str] = set()
    for start in range(0, len(urls), _CHUNK):
        chunk = urls[start : start + _CHUNK]
        pick = select(feeds.c.url).where(feeds.c.url.in_(chunk), free)
        if due_only:
            pick = pick.where(due)
        statement = (
            update(feeds)
            .where(feeds.c.url.in_(pick.with_for_update(skip_locked=True)))
            .values(claimed_by=worker, claimed_until=until)
            .returning(feeds.c.url)
        )
        claimed.update(conn.execute(statement).scalars())
    return claimed


def release_claims(conn: Connection, worker: str) -> None:
    """Give back whatever ``worker`` still holds (feeds it claimed and did not poll)."""
    conn.execute(update(feeds).where(feeds.c.claimed_by == worker).values(CLEARED))


@contextmanager
def exclusive(engine: Engine, section: str) -> Iterator[None]:
    """Run the block while no other worker of this state runs ``section``; waits its turn."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = text("SELECT hashtextextended(current_schema() || ' aggregator ' || :section, 0)")
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot connect to take the {section} lock: {exc}") from exc
    try:
        lock = conn.execute(key, {"section": section}).scalar_one()
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock})
    except SQLAlchemyError as exc:
        conn.close()
        raise StorageError(f"cannot take the {section} lock: {exc}") from exc
    try:
        yield
    finally:
        # Closing the session ends the lock even if the unlock itself failed.
        with suppress(SQLAlchemyError), conn:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock})
