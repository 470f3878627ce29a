"""Rows of the ``feeds`` table: reading them into :class:`Feed`, and what a sync changes.

Helpers of :mod:`aggregator.store.store`; they run inside its connections and transactions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, select, update
from sqlalchemy.engine import Connection, Row

from aggregator.errors import StorageError
from aggregator.models import Feed, SourceRhythm
from aggregator.store.schema import entries, feeds

__all__ = [
    "FeedChanges",
    "feed_changes",
    "feed_from_row",
    "feed_select",
    "new_feed_row",
    "rhythm_from_json",
    "rhythm_json",
    "update_feed",
]


@dataclass(frozen=True)
class FeedChanges:
    new: list[dict[str, Any]]
    revived: list[dict[str, Any]]
    retitled: list[dict[str, Any]]
    retired: list[dict[str, Any]]

    @property
    def any(self) -> bool:
        return bool(self.new or self.revived or self.retitled or self.retired)


def feed_changes(conn: Connection, wanted: Mapping[str, str | None], now: datetime) -> FeedChanges:
    query = select(feeds.c.url, feeds.c.active, feeds.c.config_title)
    stored = {row.url: row for row in conn.execute(query)}
    return FeedChanges(
        new=[new_feed_row(url, title, now) for url, title in wanted.items() if url not in stored],
        revived=[
            {"b_url": url, "config_title": title, "active": True, "next_due_at": now}
            for url, title in wanted.items()
            if url in stored and not stored[url].active
        ],
        retitled=[
            {"b_url": url, "config_title": title}
            for url, title in wanted.items()
            if url in stored and stored[url].active and stored[url].config_title != title
        ],
        retired=[
            {"b_url": url, "active": False}
            for url, row in stored.items()
            if row.active and url not in wanted
        ],
    )


def new_feed_row(url: str, title: str | None, now: datetime) -> dict[str, Any]:
    return {
        "url": url,
        "config_title": title,
        "active": True,
        "error_count": 0,
        "next_due_at": now,
        "added_at": now,
    }


def update_feed(conn: Connection, url: str, values: Mapping[str, Any]) -> None:
    result = conn.execute(update(feeds).where(feeds.c.url == url).values(**values))
    if result.rowcount == 0:
        # Raised inside the transaction, so nothing of this unit of work is kept.
        raise StorageError(f"unknown feed {url!r}: sync_feeds() must add it first")


def feed_select(*, counted: bool = True) -> Select[Any]:
    """Feed rows, with each feed's number of stored entries unless not ``counted`` (that
    count reads the entries index once per feed: too dear for a round's planning)."""
    if not counted:
        return select(feeds, literal(0).label("entry_count"))
    entry_count = (
        select(func.count())
        .where(entries.c.feed_url == feeds.c.url)
        .correlate(feeds)
        .scalar_subquery()
        .label("entry_count")
    )
    return select(feeds, entry_count)


def feed_from_row(row: Row[Any]) -> Feed:
    return Feed(
        url=row.url,
        title=row.config_title or row.own_title,
        link=row.link,
        feed_id=row.feed_id,
        updated=row.updated,
        active=bool(row.active),
        etag=row.etag,
        last_modified=row.last_modified,
        last_fetched_at=row.last_fetched_at,
        last_success_at=row.last_success_at,
        last_status=row.last_status,
        last_error=row.last_error,
        last_warning=row.last_warning,
        error_count=row.error_count,
        next_due_at=row.next_due_at,
        final_url=row.final_url,
        entry_count=row.entry_count,
        retry_until=row.retry_until,
        gone_at=row.gone_at,
        failing_since=row.failing_since,
        moved_to=row.moved_to,
        moved_since=row.moved_since,
        moved_count=row.moved_count,
        fetch_url=row.fetch_url,
        content_hash=row.content_hash,
        rhythm=rhythm_from_json(row.rhythm),
        language=row.language,
        rights=row.rights,
    )


def rhythm_json(rhythm: SourceRhythm) -> str | None:
    if rhythm == SourceRhythm():
        return None
    ttl = rhythm.ttl.total_seconds() if rhythm.ttl is not None else None
    fields = {"ttl": ttl, "hours": sorted(rhythm.skip_hours), "days": sorted(rhythm.skip_days)}
    return json.dumps(fields, sort_keys=True)


def rhythm_from_json(text: str | None) -> SourceRhythm:
    """The stored rhythm; unreadable text (hand-edited, truncated) counts as none declared."""
    try:
        fields = json.loads(text) if text else {}
        ttl = fields.get("ttl")
        return SourceRhythm(
            timedelta(seconds=ttl) if ttl else None,
            frozenset(int(h) for h in fields.get("hours", ())),
            frozenset(int(d) for d in fields.get("days", ())),
        )
    except (ValueError, TypeError, AttributeError):
        return SourceRhythm()
