"""Fetched bytes → parsed feed → topic assignments → store, one feed at a time.

This is the I/O half of polling; the decisions it needs (when is a feed due next,
which topics does an entry belong to) are pure functions in polling.py and topics.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from .config import FeedConfig
from .errors import FetchError, ParseError, StorageError
from .models import Feed, FetchResult, ParsedFeed, TopicMatch, UpsertStats
from .parse import parse_feed
from .polling import next_poll, parse_retry_after
from .store import Store
from .topics import CompiledTopics, classify

log = logging.getLogger(__name__)

OutcomeState = Literal["changed", "unchanged", "not-modified", "failed"]


@dataclass(frozen=True)
class FeedOutcome:
    """What one poll of one feed did."""

    url: str
    title: str
    state: OutcomeState
    stats: UpsertStats = field(default_factory=UpsertStats)
    status: int | None = None
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class FetchReport:
    outcomes: tuple[FeedOutcome, ...]

    @property
    def failed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.state == "failed")

    @property
    def new_entries(self) -> int:
        return sum(o.stats.new for o in self.outcomes)

    @property
    def updated_entries(self) -> int:
        return sum(o.stats.updated for o in self.outcomes)

    @property
    def changed(self) -> bool:
        return any(o.stats.changed for o in self.outcomes)


class Classifiable(Protocol):
    """What topic rules look at; both ParsedEntry and stored Entry have it."""

    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def categories(self) -> tuple[str, ...]: ...


def classify_entry(
    entry: Classifiable, topics: CompiledTopics, feed_topics: Sequence[str]
) -> tuple[TopicMatch, ...]:
    return classify(
        topics,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        categories=entry.categories,
        feed_topics=feed_topics,
    )


def classify_entries(
    parsed: ParsedFeed, topics: CompiledTopics, feed_topics: Sequence[str]
) -> dict[str, tuple[TopicMatch, ...]]:
    return {e.entry_id: classify_entry(e, topics, feed_topics) for e in parsed.entries}


def ingest_result(
    store: Store,
    feed: FeedConfig,
    result: FetchResult | FetchError,
    *,
    topics: CompiledTopics,
    stored: Feed,
    now: datetime,
) -> FeedOutcome:
    """Store one fetch outcome; a broken feed is recorded as a failure, never raised."""
    if isinstance(result, FetchError):
        return _record_failure(store, feed, result, result, stored=stored, now=now)
    try:
        return _store_fetched(store, feed, result, topics=topics, stored=stored, now=now)
    except (ParseError, StorageError) as exc:
        # One feed's failure must not stop the others; a dead database fails again just below.
        if isinstance(exc, StorageError):
            log.exception("could not store %s", feed.url)
        return _record_failure(store, feed, result, exc, stored=stored, now=now)


def _store_fetched(
    store: Store,
    feed: FeedConfig,
    result: FetchResult,
    *,
    topics: CompiledTopics,
    stored: Feed,
    now: datetime,
) -> FeedOutcome:
    parsed = None if result.not_modified else parse_feed(result)
    assignments = classify_entries(parsed, topics, feed.topics) if parsed else {}
    retry_after = parse_retry_after(result.headers.get("retry-after"), now)
    due = next_poll(feed_url=feed.url, now=now, interval=feed.interval, retry_after=retry_after)
    stats = store.record_success(feed.url, result, parsed, assignments, next_due_at=due, now=now)
    if parsed is None:
        title = feed.title or stored.display_title
        return FeedOutcome(feed.url, title, "not-modified", stats, result.status)
    state: OutcomeState = "changed" if stats.changed else "unchanged"
    title = feed.title or parsed.title or feed.url
    return FeedOutcome(feed.url, title, state, stats, result.status, None, parsed.warning)


def _record_failure(
    store: Store,
    feed: FeedConfig,
    result: FetchResult | FetchError,
    error: FetchError | ParseError | StorageError,
    *,
    stored: Feed,
    now: datetime,
) -> FeedOutcome:
    message = f"storage: {error}" if isinstance(error, StorageError) else str(error)
    retry_after = error.retry_after if isinstance(error, FetchError) else None
    due = next_poll(
        feed_url=feed.url,
        now=now,
        interval=feed.interval,
        error_count=stored.error_count + 1,
        retry_after=parse_retry_after(retry_after, now),
    )
    store.record_failure(feed.url, message, status=result.status, next_due_at=due, now=now)
    log.info("%s", message)
    title = feed.title or stored.display_title
    return FeedOutcome(feed.url, title, "failed", status=result.status, error=message)


def ingest_all(
    store: Store,
    feeds: Sequence[FeedConfig],
    results: Sequence[FetchResult | FetchError],
    *,
    topics: CompiledTopics,
    stored: Mapping[str, Feed],
    now: datetime,
) -> FetchReport:
    outcomes = tuple(
        ingest_result(store, feed, result, topics=topics, stored=stored[feed.url], now=now)
        for feed, result in zip(feeds, results, strict=True)
    )
    return FetchReport(outcomes)
