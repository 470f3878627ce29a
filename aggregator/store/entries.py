"""Entries: deciding what an incoming feed changes (pure), reading entries back, and the
queries behind the Store's entry listing and reclassify.

The decision half (``plan_upsert``) takes plain values and returns plain rows, so the
new / updated / unchanged rules are testable without a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement, TextClause

from aggregator.models import Entry, ParsedEntry, TopicMatch, UpsertStats
from aggregator.store.schema import entries, entry_topics, feeds

RECLASSIFY_PAGE = 500  # entries read, classified and written per transaction

# Keeps every IN (...) list under SQLite's historic 999-parameter limit.
CHUNK = 400

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------- deciding


@dataclass(frozen=True)
class StoredVersion:
    """What the upsert needs to know about an entry already stored."""

    content_hash: str
    published: datetime


@dataclass(frozen=True)
class UpsertPlan:
    inserts: tuple[dict[str, Any], ...]
    updates: tuple[dict[str, Any], ...]  # keyed by b_feed_url / b_entry_id, see update_entries
    unchanged: int

    @property
    def stats(self) -> UpsertStats:
        return UpsertStats(
            new=len(self.inserts), updated=len(self.updates), unchanged=self.unchanged
        )

    @property
    def inserted_ids(self) -> list[str]:
        return [row["entry_id"] for row in self.inserts]

    @property
    def updated_ids(self) -> list[str]:
        return [row["b_entry_id"] for row in self.updates]


def dedupe(parsed: Iterable[ParsedEntry]) -> list[ParsedEntry]:
    """One entry per id; a later duplicate in the same document wins."""
    by_id: dict[str, ParsedEntry] = {}
    for entry in parsed:
        by_id[entry.entry_id] = entry
    return list(by_id.values())


def content_hash(entry: ParsedEntry) -> str:
    """Fingerprint of everything a reader sees; a different hash means "updated".

    The source's own ``updated`` stamp is not in it: some feeds bump it on every request,
    and an entry whose text did not change must not change (nor move up) in our outputs.
    """
    return _fingerprint(entry, with_updated=False)


def _fingerprint(entry: ParsedEntry, *, with_updated: bool) -> str:
    fields = [
        entry.title,
        entry.link,
        entry.summary,
        entry.content,
        _iso(entry.published),
        *([_iso(entry.updated)] if with_updated else []),
        entry.author,
        list(entry.categories),
    ]
    encoded = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _same_content(previous: str, entry: ParsedEntry, digest: str) -> bool:
    # Rows stored before the source's stamp left the fingerprint carry the older form.
    return previous in (digest, _fingerprint(entry, with_updated=True))


def plan_upsert(
    feed_url: str,
    parsed: Sequence[ParsedEntry],
    stored: Mapping[str, StoredVersion],
    now: datetime,
    *,
    backfill: bool = False,
) -> UpsertPlan:
    """Split deduplicated ``parsed`` entries into rows to insert, rows to update, and a count.

    ``backfill`` marks new rows as the feed's first fetch: its archive, not news.
    """
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for position, entry in enumerate(parsed):
        digest = content_hash(entry)
        previous = stored.get(entry.entry_id)
        if previous is None:
            # An undated item is dated when first seen, a second apart in feed order (newest
            # first, as feeds list them), less a fraction of a second of its own: the order
            # kept, and no two items, of one feed or of several, share a timestamp.
            first_seen = now - timedelta(seconds=position, microseconds=_spread(entry.entry_id))
            row = _content_values(entry, digest, fallback_published=first_seen, now=now)
            inserts.append(
                {
                    "feed_url": feed_url,
                    "entry_id": entry.entry_id,
                    "first_seen_at": now,
                    "backfill": backfill,
                    **row,
                }
            )
        elif not _same_content(previous.content_hash, entry, digest):
            # An undated entry keeps the date it was first given, so edits don't reorder it.
            row = _content_values(entry, digest, fallback_published=previous.published, now=now)
            updates.append({"b_feed_url": feed_url, "b_entry_id": entry.entry_id, **row})
        else:
            unchanged += 1
    return UpsertPlan(tuple(inserts), tuple(updates), unchanged)


def _spread(entry_id: str) -> int:
    return int.from_bytes(hashlib.sha256(entry_id.encode()).digest()[:4], "big") % 1_000_000


def _content_values(
    entry: ParsedEntry, digest: str, *, fallback_published: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "title": entry.title,
        "link": entry.link,
        "summary": entry.summary,
        "content": entry.content,
        # A date in the future (bad clocks, typos like 9999) would pin an entry to the top of
        # every output and out of reach of retention; it is known no later than now.
        "published": min(entry.published or entry.updated or fallback_published, now),
        "updated": entry.updated,
        "last_changed_at": now,
        "author": entry.author,
        "categories": json.dumps(list(entry.categories), ensure_ascii=False),
        "content_hash": digest,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def topic_rows(
    feed_url: str, entry_ids: Iterable[str], topics: Mapping[str, tuple[TopicMatch, ...]]
) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for entry_id in entry_ids:
        for match in topics.get(entry_id, ()):
            # One row per topic even if a classifier repeats itself; the last reasons win.
            rows[(entry_id, match.topic_id)] = {
                "feed_url": feed_url,
                "entry_id": entry_id,
                "topic_id": match.topic_id,
                "reasons": json.dumps(list(match.reasons), ensure_ascii=False),
            }
    return list(rows.values())


# ---------------------------------------------------------------- writing


def stored_versions(
    conn: Connection, feed_url: str, entry_ids: Sequence[str]
) -> dict[str, StoredVersion]:
    found: dict[str, StoredVersion] = {}
    for part in chunks(entry_ids):
        query = select(entries.c.entry_id, entries.c.content_hash, entries.c.published).where(
            entries.c.feed_url == feed_url, entries.c.entry_id.in_(part)
        )
        for row in conn.execute(query):
            found[row.entry_id] = StoredVersion(row.content_hash, row.published)
    return found


def apply_plan(
    conn: Connection,
    feed_url: str,
    plan: UpsertPlan,
    topics: Mapping[str, tuple[TopicMatch, ...]],
) -> None:
    """Write the plan with a handful of executemany statements, whatever the entry count."""
    if plan.inserts:
        conn.execute(insert(entries), list(plan.inserts))
    if plan.updates:
        # In key order, the order reclassify locks its pages in: the two never deadlock.
        conn.execute(
            update(entries).where(
                entries.c.feed_url == bindparam("b_feed_url"),
                entries.c.entry_id == bindparam("b_entry_id"),
            ),
            sorted(plan.updates, key=lambda row: str(row["b_entry_id"])),
        )
        delete_topics(conn, feed_url, plan.updated_ids)
    rows = topic_rows(feed_url, [*plan.inserted_ids, *plan.updated_ids], topics)
    if rows:
        conn.execute(insert(entry_topics), rows)


def delete_topics(conn: Connection, feed_url: str, entry_ids: Sequence[str]) -> None:
    for part in chunks(entry_ids):
        conn.execute(
            delete(entry_topics).where(
                entry_topics.c.feed_url == feed_url, entry_topics.c.entry_id.in_(part)
            )
        )


# ---------------------------------------------------------------- reading

NEWEST_FIRST = (
    entries.c.published.desc(),
    entries.c.first_seen_at.desc(),
    entries.c.feed_url,
    entries.c.entry_id,
)


def entry_select(*conditions: ColumnElement[bool], bodies: bool = True) -> Select[Any]:
    """Entries with their feed's title; ``bodies=False`` leaves summary and content empty
    (see :func:`load_bodies`), for planning over many entries without holding every body."""
    feed_title = func.coalesce(feeds.c.config_title, feeds.c.own_title).label("feed_title")
    columns: list[Any] = [entries]
    if not bodies:
        columns = [c for c in entries.c if c.name not in _BODIES]
        columns += [literal("").label(name) for name in _BODIES]
    query = select(*columns, feed_title).join(feeds, feeds.c.url == entries.c.feed_url)
    return query.where(*conditions) if conditions else query


_BODIES = ("summary", "content")


def load_bodies(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(summary, content) of each (feed URL, entry id)."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for part in chunks(keys):
        condition, params = _one_of(part)
        query = select(
            entries.c.feed_url, entries.c.entry_id, entries.c.summary, entries.c.content
        ).where(condition)
        for row in conn.execute(query, params):
            found[(row.feed_url, row.entry_id)] = (row.summary, row.content)
    return found


def _one_of(keys: Sequence[tuple[str, str]]) -> tuple[TextClause, dict[str, str]]:
    """A condition (and its parameters) that the row's (feed_url, entry_id) is one of
    ``keys``. Pairs joined by OR, not a row-value IN: SQLite answers that IN with a scan of
    the whole table (30 ms per 500 keys in a 35,000-entry database) but looks each pair up in
    the primary key (3.5 ms). Written as text: as SQLAlchemy expressions, building the 500
    pairs cost more than the scan."""
    clause = " OR ".join(f"(feed_url = :u{i} AND entry_id = :e{i})" for i in range(len(keys)))
    params = {f"u{i}": url for i, (url, _) in enumerate(keys)}
    params |= {f"e{i}": entry for i, (_, entry) in enumerate(keys)}
    return text(f"({clause})"), params


def load_entries(conn: Connection, query: Select[Any]) -> list[Entry]:
    """Run an ``entry_select`` and attach topics with one more query per CHUNK entries."""
    rows = list(conn.execute(query))
    keys = [(row.feed_url, row.entry_id) for row in rows]
    topics = load_topics(conn, keys)
    return [entry_from_row(row, topics.get((row.feed_url, row.entry_id), ())) for row in rows]


def load_topics(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[TopicMatch, ...]]:
    found: dict[tuple[str, str], list[TopicMatch]] = {}
    for part in chunks(keys):
        condition, params = _one_of(part)
        query = (
            select(entry_topics)
            .where(condition)
            .order_by(entry_topics.c.feed_url, entry_topics.c.entry_id, entry_topics.c.topic_id)
        )
        for row in conn.execute(query, params):
            match = TopicMatch(row.topic_id, tuple(json.loads(row.reasons)))
            found.setdefault((row.feed_url, row.entry_id), []).append(match)
    return {key: tuple(matches) for key, matches in found.items()}


def entry_from_row(row: Row[Any], topics: tuple[TopicMatch, ...]) -> Entry:
    return Entry(
        feed_url=row.feed_url,
        entry_id=row.entry_id,
        title=row.title,
        link=row.link,
        summary=row.summary,
        content=row.content,
        published=row.published,
        updated=row.updated,
        first_seen_at=row.first_seen_at,
        author=row.author,
        categories=tuple(json.loads(row.categories)),
        topics=topics,
        feed_title=row.feed_title,
        backfill=bool(row.backfill),
        article_id=row.article_id,
        story_id=row.story_id,
    )


# ---------------------------------------------------------------- queries


def entry_conditions(
    topic: str | None, feed_url: str | None, active_feeds_only: bool
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if topic is not None:
        conditions.append(
            select(entry_topics.c.topic_id)
            .where(
                entry_topics.c.feed_url == entries.c.feed_url,
                entry_topics.c.entry_id == entries.c.entry_id,
                entry_topics.c.topic_id == topic,
            )
            .exists()
        )
    if feed_url is not None:
        conditions.append(entries.c.feed_url == feed_url)
    if active_feeds_only:
        conditions.append(feeds.c.active.is_(True))
    return conditions


def after_in_newest_first(last: Entry) -> ColumnElement[bool]:
    """Rows after ``last`` in NEWEST_FIRST order (published and first seen descending, then
    feed and id ascending): a keyset, so each page costs the same however deep it is."""
    c = entries.c
    return or_(
        c.published < last.published,
        and_(
            c.published == last.published,
            or_(
                c.first_seen_at < last.first_seen_at,
                and_(
                    c.first_seen_at == last.first_seen_at,
                    or_(
                        c.feed_url > last.feed_url,
                        and_(c.feed_url == last.feed_url, c.entry_id > last.entry_id),
                    ),
                ),
            ),
        ),
    )


def reclassify_page(after: tuple[str, str] | None) -> Select[Any]:
    # Keyset pagination on the primary key: stable while rows change underneath.
    conditions: list[ColumnElement[bool]] = []
    if after is not None:
        feed_url, entry_id = after
        conditions.append(
            or_(
                entries.c.feed_url > feed_url,
                (entries.c.feed_url == feed_url) & (entries.c.entry_id > entry_id),
            )
        )
    # Locked until the page's topics are written: a concurrent ingest's update waits, so it
    # is never overwritten with topics from the content read here (SQLite: the write lock).
    return (
        entry_select(*conditions)
        .order_by(entries.c.feed_url, entries.c.entry_id)
        .limit(RECLASSIFY_PAGE)
        .with_for_update(of=entries)
    )


def reclassify_entries(
    conn: Connection, page: Sequence[Entry], classify: Callable[[Entry], tuple[TopicMatch, ...]]
) -> int:
    """Rewrite topic rows of entries whose matches differ; count those whose topic set did."""
    changed = 0
    rewrites: dict[str, dict[str, tuple[TopicMatch, ...]]] = {}
    for entry in page:
        fresh = tuple(sorted(classify(entry), key=lambda m: m.topic_id))
        if fresh == entry.topics:
            continue
        if {m.topic_id for m in fresh} != set(entry.topic_ids):
            changed += 1
        rewrites.setdefault(entry.feed_url, {})[entry.entry_id] = fresh
    for feed_url, by_entry in rewrites.items():
        delete_topics(conn, feed_url, list(by_entry))
        rows = topic_rows(feed_url, by_entry, by_entry)
        if rows:
            conn.execute(insert(entry_topics), rows)
    return changed
