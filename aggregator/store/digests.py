"""Digest bookkeeping: which issues went out, with which items, to whom.

An issue row and its items are written together with its first delivery, so an issue
that was rendered but never sent leaves no trace and its items stay eligible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from aggregator.models import DigestIssue, EntryKey, SentIssue
from aggregator.store.schema import digest_deliveries, digest_issue_items, digest_issues

_delivered = exists().where(
    digest_deliveries.c.digest_id == digest_issues.c.digest_id,
    digest_deliveries.c.stamp == digest_issues.c.stamp,
)


def last_sent_issue(conn: Connection, digest_id: str) -> SentIssue | None:
    query = (
        select(digest_issues, func.min(digest_deliveries.c.sent_at).label("first_sent_at"))
        .join(
            digest_deliveries,
            (digest_deliveries.c.digest_id == digest_issues.c.digest_id)
            & (digest_deliveries.c.stamp == digest_issues.c.stamp),
        )
        .where(digest_issues.c.digest_id == digest_id)
        .group_by(*digest_issues.c)
        .order_by(digest_issues.c.window_end.desc(), digest_issues.c.stamp.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    return SentIssue(
        digest_id=row.digest_id,
        stamp=row.stamp,
        window_start=row.window_start,
        window_end=row.window_end,
        message_id=row.message_id,
        sent_at=row.first_sent_at,  # min() keeps the column type, so UTC-aware
        recipients=tuple(sorted(delivered_recipients(conn, digest_id, row.stamp))),
    )


def sent_entry_keys(conn: Connection, digest_id: str) -> set[EntryKey]:
    query = (
        select(digest_issue_items.c.feed_url, digest_issue_items.c.entry_id)
        .join(
            digest_issues,
            (digest_issues.c.digest_id == digest_issue_items.c.digest_id)
            & (digest_issues.c.stamp == digest_issue_items.c.stamp),
        )
        .where(digest_issue_items.c.digest_id == digest_id, _delivered)
    )
    return {EntryKey(row.feed_url, row.entry_id) for row in conn.execute(query)}


def delivered_recipients(conn: Connection, digest_id: str, stamp: str) -> set[str]:
    query = select(digest_deliveries.c.recipient).where(
        digest_deliveries.c.digest_id == digest_id, digest_deliveries.c.stamp == stamp
    )
    return set(conn.execute(query).scalars())


def record_delivery(
    conn: Connection, issue: DigestIssue, message_id: str, recipient: str, now: datetime
) -> None:
    """Issue, items and delivery, each left alone when already there (retries are safe)."""
    key = {"digest_id": issue.digest_id, "stamp": issue.stamp}
    issue_row = {
        **key,
        "window_start": issue.window_start,
        "window_end": issue.window_end,
        "message_id": message_id,
        "created_at": now,
    }
    insert_ignore(conn, digest_issues, [issue_row])
    item_keys = dict.fromkeys(item.key for item in issue.items)
    items = [{**key, "feed_url": k.feed_url, "entry_id": k.entry_id} for k in item_keys]
    insert_ignore(conn, digest_issue_items, items)
    insert_ignore(conn, digest_deliveries, [{**key, "recipient": recipient, "sent_at": now}])


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: race-free even with concurrent writers."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))
