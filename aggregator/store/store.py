"""The Store: every read and write of aggregator state, behind one small API.

Each public method is one unit of work: writes run in a single transaction, and any
database failure leaves as ``StorageError`` with the SQLAlchemy error as its cause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from aggregator.config import FeedConfig
from aggregator.errors import StorageError
from aggregator.health import MoveState
from aggregator.models import (
    Entry,
    Feed,
    FetchResult,
    ParsedFeed,
    TopicMatch,
    UpsertStats,
)
from aggregator.store import articles, claims
from aggregator.store import entries as entry_ops
from aggregator.store.articles import StoryDecision, StoryInput
from aggregator.store.copy import copy_tables
from aggregator.store.database import (
    SchemaError,
    display_url,
    explain_open_error,
    make_engine,
    refuse_empty_sqlite_file,
    storage_errors,
    upgrade,
    write_transaction,
)
from aggregator.store.digests import insert_ignore
from aggregator.store.feed_rows import (
    feed_changes,
    feed_from_row,
    feed_select,
    rhythm_json,
    update_feed,
)
from aggregator.store.ledger import DigestLedger
from aggregator.store.schema import as_utc, entries, feeds

RATE_WINDOW = timedelta(days=30)  # how far back a feed's publishing rhythm is measured

_SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def open_store(url: str) -> Store:
    """Connect to ``url`` and migrate its schema to the newest version.

    For SQLite, the database file's directory is created when missing.
    """
    shown = display_url(url)
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ValueError) as exc:  # make_url raises ArgumentError
        raise StorageError(f"{shown}: not a usable database URL: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"{shown}: cannot create the database directory: {exc}") from exc
    if engine.dialect.name not in _SUPPORTED_BACKENDS:
        engine.dispose()
        raise StorageError(f"{shown}: unsupported database {engine.dialect.name!r}")
    try:
        refuse_empty_sqlite_file(url)
        upgrade(engine)
    except StorageError:
        engine.dispose()
        raise
    except (SQLAlchemyError, SchemaError) as exc:
        engine.dispose()
        raise StorageError(f"{shown}: {explain_open_error(exc)}") from exc
    return Store(url, engine)


class Store:
    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.display_url = display_url(url)
        self._engine = engine
        self._ledger = DigestLedger(engine, self.display_url)

    def close(self) -> None:
        self._engine.dispose()

    # ------------------------------------------------------------ feeds

    @storage_errors
    def sync_feeds(self, feeds_config: Sequence[FeedConfig], now: datetime) -> None:
        """Make the stored feed list match feeds.yaml; removed feeds only go inactive.

        Reads first and writes only when something differs, so that read-only commands
        (``status``, ``export``) never wait for, or hold, SQLite's write lock.
        """
        wanted = {f.url: f.title or None for f in feeds_config}
        with self._engine.connect() as conn:
            if not feed_changes(conn, wanted, now).any:
                return
        with write_transaction(self._engine) as conn:
            changes = feed_changes(conn, wanted, now)
            # Not a plain INSERT: on PostgreSQL, another process starting with the same
            # feeds.yaml may add the same feed between our read and this write.
            insert_ignore(conn, feeds, changes.new)
            for rows in (changes.revived, changes.retitled, changes.retired):
                if rows:
                    conn.execute(update(feeds).where(feeds.c.url == bindparam("b_url")), rows)

    @storage_errors
    def feeds(self, *, active_only: bool = True, counted: bool = True) -> list[Feed]:
        """Stored feeds by URL; ``entry_count`` is 0 unless ``counted``."""
        query = feed_select(counted=counted).order_by(feeds.c.url)
        if active_only:
            query = query.where(feeds.c.active.is_(True))
        with self._engine.connect() as conn:
            return [feed_from_row(row) for row in conn.execute(query)]

    @storage_errors
    def feed(self, url: str) -> Feed | None:
        with self._engine.connect() as conn:
            row = conn.execute(feed_select().where(feeds.c.url == url)).first()
        return None if row is None else feed_from_row(row)

    @storage_errors
    def due_feeds(self, now: datetime) -> list[Feed]:
        """Active feeds whose time has come, most overdue first."""
        # Multi-worker PostgreSQL: claim these rows instead of just reading them, i.e.
        # `.with_for_update(skip_locked=True)` inside the caller's transaction, then push
        # next_due_at forward before committing so other workers skip them.
        query = (
            feed_select()
            .where(
                feeds.c.active.is_(True),
                or_(feeds.c.next_due_at.is_(None), feeds.c.next_due_at <= now),
            )
            .order_by(feeds.c.next_due_at.asc().nulls_first(), feeds.c.url)
        )
        with self._engine.connect() as conn:
            return [feed_from_row(row) for row in conn.execute(query)]

    @storage_errors
    def claim_feeds(
        self,
        urls: Sequence[str],
        *,
        worker: str,
        now: datetime,
        lease: timedelta,
        due_only: bool,
    ) -> set[str]:
        """Claim the feeds of ``urls`` no other worker is polling (see store/claims.py)."""
        with write_transaction(self._engine) as conn:
            return claims.claim_feeds(
                conn, urls, worker=worker, now=now, until=now + lease, due_only=due_only
            )

    @storage_errors
    def release_claims(self, worker: str) -> None:
        with write_transaction(self._engine) as conn:
            claims.release_claims(conn, worker)

    def exclusive(self, section: str) -> AbstractContextManager[None]:
        """A block no other worker on this database runs at the same time (PostgreSQL)."""
        return claims.exclusive(self._engine, section)

    @storage_errors
    def record_success(
        self,
        url: str,
        result: FetchResult,
        parsed: ParsedFeed | None,
        topics: Mapping[str, tuple[TopicMatch, ...]],
        *,
        next_due_at: datetime,
        now: datetime,
        move: MoveState | None = None,
        content_hash: str | None = None,
    ) -> UpsertStats:
        """Store a successful fetch: feed state and (unless 304) its entries, atomically."""
        state: dict[str, Any] = {
            "last_status": result.status,
            "last_fetched_at": now,
            "last_success_at": now,
            "error_count": 0,
            "last_error": None,
            "final_url": result.final_url,
            "next_due_at": next_due_at,
            "retry_until": None,
            "gone_at": None,
            "failing_since": None,
            **claims.CLEARED,
        }
        if move is not None:
            state |= asdict(move)
        if content_hash is not None:
            state["content_hash"] = content_hash
        # A 304 often omits the validators; the ones we sent are still the current ones.
        if parsed is not None or result.etag is not None:
            state["etag"] = result.etag
        if parsed is not None or result.last_modified is not None:
            state["last_modified"] = result.last_modified
        if parsed is not None:
            state |= {
                "own_title": parsed.title or None,
                "link": parsed.link,
                "feed_id": parsed.feed_id,
                "updated": parsed.updated,
                "last_warning": parsed.warning,
                "rhythm": rhythm_json(parsed.rhythm),
                "language": parsed.language,
                "rights": parsed.rights,
            }
        with write_transaction(self._engine) as conn:
            previous_success = conn.execute(
                select(feeds.c.last_success_at).where(feeds.c.url == url)
            ).scalar()
            update_feed(conn, url, state)
            if parsed is None:
                return UpsertStats()
            incoming = entry_ops.dedupe(parsed.entries)
            stored = entry_ops.stored_versions(conn, url, [e.entry_id for e in incoming])
            incoming, renamed = articles.adopt_republished(conn, url, incoming, known=stored)
            if renamed:  # the adopted entries' stored versions, to compare against
                stored |= entry_ops.stored_versions(conn, url, list(renamed.values()))
            topics = {renamed.get(entry_id, entry_id): m for entry_id, m in topics.items()}
            first_fetch = previous_success is None
            plan = entry_ops.plan_upsert(url, incoming, stored, now, backfill=first_fetch)
            plan = replace(plan, inserts=tuple(articles.assign_articles(conn, url, plan.inserts)))
            entry_ops.apply_plan(conn, url, plan, topics)
            return plan.stats

    @storage_errors
    def record_failure(
        self,
        url: str,
        error: str,
        *,
        status: int | None,
        next_due_at: datetime,
        now: datetime,
        retry_until: datetime | None = None,
        gone: bool = False,
    ) -> None:
        state: dict[str, Any] = {
            "error_count": feeds.c.error_count + 1,
            "last_error": error,
            "last_status": status,
            "last_fetched_at": now,
            "next_due_at": next_due_at,
            "retry_until": retry_until,
            "failing_since": func.coalesce(feeds.c.failing_since, now),
            **claims.CLEARED,
        }
        if gone:
            state["gone_at"] = now
        with write_transaction(self._engine) as conn:
            update_feed(conn, url, state)

    def items_per_day(
        self, url: str, now: datetime, *, window: timedelta = RATE_WINDOW
    ) -> float | None:
        """How many items the feed published per day lately: its entries dated within
        ``window`` over the days they span (at least one). None below two dated items."""
        return self._publishing_rates(now, window, url).get(url)

    def publishing_rates(
        self, now: datetime, *, window: timedelta = RATE_WINDOW
    ) -> dict[str, float]:
        """:meth:`items_per_day` of every feed that has a rate, in one query."""
        return self._publishing_rates(now, window, None)

    @storage_errors
    def _publishing_rates(
        self, now: datetime, window: timedelta, url: str | None
    ) -> dict[str, float]:
        query = (
            select(entries.c.feed_url, func.count(), func.min(entries.c.published))
            .where(entries.c.published >= now - window, entries.c.published <= now)
            .group_by(entries.c.feed_url)
        )
        if url is not None:
            query = query.where(entries.c.feed_url == url)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        day = timedelta(days=1)
        return {
            feed_url: count / (max(now - as_utc(oldest), day) / day)
            for feed_url, count, oldest in rows
            if count >= 2 and oldest is not None
        }

    # ------------------------------------------------------------ entries

    @storage_errors
    def entries(
        self,
        *,
        topic: str | None = None,
        feed_url: str | None = None,
        limit: int | None = None,
        active_feeds_only: bool = False,
    ) -> list[Entry]:
        """Stored entries, newest first, in a fully deterministic order."""
        conditions = entry_ops.entry_conditions(topic, feed_url, active_feeds_only)
        query = entry_ops.entry_select(*conditions).order_by(*entry_ops.NEWEST_FIRST)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return entry_ops.load_entries(conn, query)

    def iter_entries(self, *, topic: str | None = None, page: int = 500) -> Iterator[Entry]:
        """Every stored entry, newest first, read ``page`` at a time: memory stays flat
        however many there are (``export``)."""
        after: Entry | None = None
        while batch := self._entries_after(after, topic, page):
            yield from batch
            after = batch[-1]

    @storage_errors
    def _entries_after(self, after: Entry | None, topic: str | None, page: int) -> list[Entry]:
        conditions = entry_ops.entry_conditions(topic, None, False)
        if after is not None:
            conditions.append(entry_ops.after_in_newest_first(after))
        query = entry_ops.entry_select(*conditions).order_by(*entry_ops.NEWEST_FIRST).limit(page)
        with self._engine.connect() as conn:
            return entry_ops.load_entries(conn, query)

    @storage_errors
    def entries_seen_between(
        self, start: datetime, end: datetime, *, bodies: bool = True
    ) -> list[Entry]:
        """Entries first seen in [start, end), newest first; without their summary and
        content unless ``bodies`` (:meth:`with_bodies` adds them to a few at a time)."""
        query = entry_ops.entry_select(
            entries.c.first_seen_at >= start, entries.c.first_seen_at < end, bodies=bodies
        ).order_by(*entry_ops.NEWEST_FIRST)
        with self._engine.connect() as conn:
            return entry_ops.load_entries(conn, query)

    @storage_errors
    def with_bodies(self, loaded: Sequence[Entry]) -> list[Entry]:
        """``loaded`` with the summary and content stored for each."""
        keys = [(e.feed_url, e.entry_id) for e in loaded]
        with self._engine.connect() as conn:
            found = entry_ops.load_bodies(conn, keys)
        return [
            replace(e, summary=found[key][0], content=found[key][1]) if key in found else e
            for e, key in zip(loaded, keys, strict=True)
        ]

    @storage_errors
    def oldest_first_seen(self) -> datetime | None:
        with self._engine.connect() as conn:
            oldest = conn.execute(select(func.min(entries.c.first_seen_at))).scalar()
        return None if oldest is None else as_utc(oldest)

    @storage_errors
    def articles_without_story(self, text_chars: int) -> list[StoryInput]:
        """What story decisions read of each article that has no story yet."""
        with self._engine.connect() as conn:
            return articles.story_inputs_without_story(conn, text_chars)

    @storage_errors
    def story_ids_since(self, published_since: datetime) -> list[str]:
        """The articles published since then whose story is decided."""
        with self._engine.connect() as conn:
            return articles.decided_since(conn, published_since)

    @storage_errors
    def articles_with_story(
        self, article_ids: Sequence[str], text_chars: int, keys_version: int
    ) -> list[StoryInput]:
        """What story decisions read of those articles, with their stored story: the keys
        they were compared on where stored by ``keys_version``, else their text."""
        with self._engine.connect() as conn:
            return articles.story_inputs(conn, article_ids, text_chars, keys_version)

    @storage_errors
    def record_stories(self, decided: Sequence[StoryDecision]) -> None:
        """Store each article's story (first decision wins) and stamp it on its entries."""
        with write_transaction(self._engine) as conn:
            articles.record_stories(conn, decided)

    @storage_errors
    def find_entries(self, query: str) -> list[Entry]:
        """Entries with that id or link (any spelling of it), and their article's other copies."""
        with self._engine.connect() as conn:
            return articles.find(conn, query)

    @storage_errors
    def story(self, article_id: str) -> tuple[str | None, str | None, list[str], list[Entry]]:
        """(story id, article it joined, why, one entry per article in the story)."""
        with self._engine.connect() as conn:
            story_id, joined, reasons = articles.story_reasons(conn, article_id)
            members = articles.story_members(conn, story_id) if story_id else []
        return story_id, joined, reasons, members

    @storage_errors
    def article_sources(self) -> dict[str, list[str]]:
        """{article id: the feeds carrying it} for every article more than one feed carries."""
        shared = (
            select(entries.c.article_id)
            .where(entries.c.article_id.is_not(None))
            .group_by(entries.c.article_id)
            .having(func.count() > 1)
        )
        query = (
            select(entries.c.article_id, entries.c.feed_url)
            .where(entries.c.article_id.in_(shared))
            .order_by(entries.c.article_id, entries.c.first_seen_at, entries.c.feed_url)
        )
        found: dict[str, list[str]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.article_id, []).append(row.feed_url)
        return found

    @storage_errors
    def reclassify(self, classify: Callable[[Entry], tuple[TopicMatch, ...]]) -> int:
        """Recompute every entry's topics; returns how many entries' topic sets changed.

        Works in pages, each in its own transaction (read, classify, write), so an entry
        updated concurrently is never overwritten with topics from its older content, and
        a run interrupted halfway is simply completed by the next one.
        """
        changed = 0
        after: tuple[str, str] | None = None
        while True:
            with write_transaction(self._engine) as conn:
                page = entry_ops.load_entries(conn, entry_ops.reclassify_page(after))
                if not page:
                    return changed
                changed += entry_ops.reclassify_entries(conn, page, classify)
            after = (page[-1].feed_url, page[-1].entry_id)

    @storage_errors
    def prune(self, older_than: datetime) -> int:
        """Delete entries both published and first seen before ``older_than``.

        Their topic rows go by ON DELETE CASCADE; digest item rows are history and stay.
        """
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                entries.delete().where(
                    entries.c.published < older_than, entries.c.first_seen_at < older_than
                )
            )
            return result.rowcount

    @storage_errors
    def copy_to(self, target: Store) -> dict[str, int]:
        """Copy this whole state into ``target``, an empty database; rows per table."""
        return copy_tables(self._engine, target._engine, target.display_url)

    @property
    def ledger(self) -> DigestLedger:
        """Digest issues, deliveries, the sender lease and subscribers."""
        return self._ledger
