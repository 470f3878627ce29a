"""Digest bookkeeping: claimed issues, their per-recipient outbox, and the sender lease.

Exactly once, by construction:
1. a sender takes the digest's lease (``take_lease``) before reading anything, so two
   senders never work on one digest at once;
2. a new issue is claimed in one transaction — issue row with its rendered mail, its
   items, one ``pending`` delivery per recipient — before any SMTP traffic;
3. each delivery becomes ``sent`` in its own transaction right after the server accepted
   it; ``failed`` when the server refused the address for good;
4. an issue with pending deliveries is resumed, same stamp and Message-IDs, before any
   new issue is planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from aggregator.models import Delivery, DigestIssue, EntryKey, StoredIssue
from aggregator.store.schema import (
    digest_issue_items,
    digest_issues,
    digest_recipients,
    digest_senders,
)

# ---------------------------------------------------------------- the sender lease


def take_lease(
    conn: Connection,
    digest_id: str,
    *,
    owner: str,
    host: str,
    pid: int,
    now: datetime,
    expires_at: datetime,
    steal_from: str | None = None,
) -> bool:
    """Take (or renew) the digest's lease when it is free, expired, ours, or ``steal_from``'s
    (a holder the caller found dead). One conditional UPDATE: atomic on every backend."""
    insert_ignore(conn, digest_senders, [{"digest_id": digest_id}])
    free = or_(
        digest_senders.c.owner.is_(None),
        digest_senders.c.expires_at < now,
        digest_senders.c.owner == owner,
    )
    if steal_from is not None:
        free = or_(free, digest_senders.c.owner == steal_from)
    result = conn.execute(
        update(digest_senders)
        .where(digest_senders.c.digest_id == digest_id, free)
        .values(owner=owner, host=host, pid=pid, expires_at=expires_at)
    )
    return result.rowcount == 1


def lease_holder(conn: Connection, digest_id: str) -> Row[Any] | None:
    query = select(digest_senders).where(
        digest_senders.c.digest_id == digest_id, digest_senders.c.owner.is_not(None)
    )
    return conn.execute(query).first()


def release_lease(conn: Connection, digest_id: str, owner: str) -> None:
    conn.execute(
        update(digest_senders)
        .where(digest_senders.c.digest_id == digest_id, digest_senders.c.owner == owner)
        .values(owner=None, host=None, pid=None, expires_at=None)
    )


# ---------------------------------------------------------------- issues


def last_issue(conn: Connection, digest_id: str) -> StoredIssue | None:
    """The claimed issue with the latest window end (complete or not)."""
    query = (
        select(digest_issues)
        .where(digest_issues.c.digest_id == digest_id)
        .order_by(digest_issues.c.window_end.desc(), digest_issues.c.stamp.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _issue_from_row(row)


def open_issues(conn: Connection, digest_id: str | None = None) -> list[StoredIssue]:
    """Claimed issues with deliveries still pending, oldest first."""
    query = select(digest_issues).where(digest_issues.c.completed_at.is_(None))
    if digest_id is not None:
        query = query.where(digest_issues.c.digest_id == digest_id)
    query = query.order_by(digest_issues.c.window_end, digest_issues.c.stamp)
    return [_issue_from_row(row) for row in conn.execute(query)]


def issues(conn: Connection, digest_id: str) -> list[StoredIssue]:
    query = (
        select(digest_issues)
        .where(digest_issues.c.digest_id == digest_id)
        .order_by(digest_issues.c.window_end.desc(), digest_issues.c.stamp.desc())
    )
    return [_issue_from_row(row) for row in conn.execute(query)]


def claim_issue(
    conn: Connection,
    issue: DigestIssue,
    *,
    subject: str,
    html: str,
    text: str,
    next_start: datetime,
    recipients: Sequence[tuple[str, str]],
    articles: Mapping[EntryKey, str | None],
    now: datetime,
) -> StoredIssue:
    """Record a new issue, its items and one pending delivery per (recipient, message id)."""
    key = {"digest_id": issue.digest_id, "stamp": issue.stamp}
    row = {
        **key,
        "window_start": issue.window_start,
        "window_end": issue.window_end,
        "message_id": f"{issue.digest_id}.{issue.stamp}",
        "created_at": now,
        "subject": subject,
        "html": html,
        "text": text,
        "item_count": len(issue.items),
        "more_count": issue.more,
        "next_start": next_start,
    }
    conn.execute(digest_issues.insert(), [row])
    item_keys = dict.fromkeys(k for item in issue.items for k in (item.key, *item.merged))
    items = [
        {**key, "feed_url": k.feed_url, "entry_id": k.entry_id, "article_id": articles.get(k)}
        for k in item_keys
    ]
    insert_ignore(conn, digest_issue_items, items)
    deliveries = [
        {**key, "recipient": r, "message_id": m, "status": "pending", "attempts": 0}
        for r, m in recipients
    ]
    insert_ignore(conn, digest_recipients, deliveries)
    return _issue_from_row(conn.execute(select(digest_issues).filter_by(**key)).one())


def sent_entry_keys(conn: Connection, digest_id: str) -> set[EntryKey]:
    """Entries in any claimed issue of the digest: claimed means on its way to every reader."""
    query = select(digest_issue_items.c.feed_url, digest_issue_items.c.entry_id).where(
        digest_issue_items.c.digest_id == digest_id
    )
    return {EntryKey(row.feed_url, row.entry_id) for row in conn.execute(query)}


def sent_article_ids(conn: Connection, digest_id: str) -> set[str]:
    """Articles in any claimed issue of the digest, whichever feed carried them then."""
    query = select(digest_issue_items.c.article_id).where(
        digest_issue_items.c.digest_id == digest_id,
        digest_issue_items.c.article_id.is_not(None),
    )
    return set(conn.execute(query).scalars())


def complete_if_done(conn: Connection, digest_id: str, stamp: str, now: datetime) -> bool:
    """Mark the issue complete when no delivery is pending; returns whether it is complete."""
    pending = (
        select(func.count())
        .where(
            digest_recipients.c.digest_id == digest_id,
            digest_recipients.c.stamp == stamp,
            digest_recipients.c.status == "pending",
        )
        .scalar_subquery()
    )
    conn.execute(
        update(digest_issues)
        .where(
            digest_issues.c.digest_id == digest_id,
            digest_issues.c.stamp == stamp,
            digest_issues.c.completed_at.is_(None),
            pending == 0,
        )
        .values(completed_at=now)
    )
    done = select(digest_issues.c.completed_at).filter_by(digest_id=digest_id, stamp=stamp)
    return conn.execute(done).scalar() is not None


def prune_issues(conn: Connection, older_than: datetime) -> list[tuple[str, str]]:
    """Delete complete issues that ended before ``older_than`` (items and deliveries cascade)."""
    old = and_(digest_issues.c.window_end < older_than, digest_issues.c.completed_at.is_not(None))
    doomed = [
        (row.digest_id, row.stamp)
        for row in conn.execute(select(digest_issues.c.digest_id, digest_issues.c.stamp).where(old))
    ]
    # Items and deliveries go by ON DELETE CASCADE (SQLite runs with foreign_keys=ON).
    conn.execute(delete(digest_issues).where(old))
    return doomed


# ---------------------------------------------------------------- deliveries


def deliveries(
    conn: Connection, digest_id: str, stamp: str | None = None, *, status: str | None = None
) -> list[Delivery]:
    query = select(digest_recipients).where(digest_recipients.c.digest_id == digest_id)
    if stamp is not None:
        query = query.where(digest_recipients.c.stamp == stamp)
    if status is not None:
        query = query.where(digest_recipients.c.status == status)
    query = query.order_by(digest_recipients.c.stamp, digest_recipients.c.recipient)
    return [_delivery_from_row(row) for row in conn.execute(query)]


def record_attempt(
    conn: Connection,
    delivery: Delivery,
    *,
    status: str,
    now: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Store one attempt's result; a delivery already sent is never changed again."""
    conn.execute(
        update(digest_recipients)
        .where(
            digest_recipients.c.digest_id == delivery.digest_id,
            digest_recipients.c.stamp == delivery.stamp,
            digest_recipients.c.recipient == delivery.recipient,
            digest_recipients.c.status == "pending",
        )
        .values(
            status=status,
            attempts=digest_recipients.c.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            sent_at=now if status == "sent" else None,
        )
    )


def drop_pending(conn: Connection, digest_id: str, recipient: str) -> None:
    """An unsubscribed reader's pending deliveries go: they must get nothing more."""
    conn.execute(
        delete(digest_recipients).where(
            digest_recipients.c.digest_id == digest_id,
            digest_recipients.c.recipient == recipient,
            digest_recipients.c.status == "pending",
        )
    )


# ---------------------------------------------------------------- helpers


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: race-free even with concurrent writers."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))


def _issue_from_row(row: Row[Any]) -> StoredIssue:
    return StoredIssue(
        digest_id=row.digest_id,
        stamp=row.stamp,
        window_start=row.window_start,
        window_end=row.window_end,
        subject=row.subject or "",
        html=row.html or "",
        text=row.text or "",
        item_count=row.item_count,
        more_count=row.more_count,
        next_start=row.next_start or row.window_end,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def _delivery_from_row(row: Row[Any]) -> Delivery:
    return Delivery(
        digest_id=row.digest_id,
        stamp=row.stamp,
        recipient=row.recipient,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
    )
