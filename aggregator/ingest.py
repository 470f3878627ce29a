"""Fetched bytes → parsed feed → topic assignments → store, one feed at a time.

This is the I/O half of polling; the decisions it needs (when is a feed due next,
which topics does an entry belong to) are pure functions in polling.py and analysis.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Literal

from .analysis import Analysed
from .config import FeedConfig
from .errors import FetchError, ParseError, StorageError
from .health import HeldFeed, track_move
from .models import Feed, FetchResult, UpsertStats
from .polling import (
    MIN_INTERVAL,
    adaptive_interval,
    backoff_delay,
    cache_lifetime,
    next_poll,
    parse_retry_after,
)
from .store import Store

log = logging.getLogger(__name__)

# Statuses by which a server asks us to come back later: its Retry-After binds us.
_SLOW_DOWN = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})

# Bytes and the feed's topic hints to a parsed, classified feed: analysis.analyse itself,
# or run in a worker pool under the parse deadline (ParsePool.run).
Analyser = Callable[[FetchResult, tuple[str, ...]], Analysed]
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
    held: tuple[HeldFeed, ...] = ()  # feeds the round did not poll, and why

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


def ingest_result(
    store: Store,
    feed: FeedConfig,
    result: FetchResult | FetchError,
    *,
    analyse: Analyser,
    stored: Feed,
    now: datetime,
    min_interval: timedelta = MIN_INTERVAL,
) -> FeedOutcome:
    """Store one fetch outcome; a broken feed is recorded as a failure, never raised."""
    if isinstance(result, FetchError):
        return _record_failure(
            store, feed, result, result, stored=stored, now=now, min_interval=min_interval
        )
    try:
        return _store_fetched(
            store, feed, result, analyse=analyse, stored=stored, now=now, min_interval=min_interval
        )
    except (ParseError, StorageError) as exc:
        # One feed's failure must not stop the others; a dead database fails again just below.
        if isinstance(exc, StorageError):
            log.exception("could not store %s", feed.url)
        return _record_failure(
            store, feed, result, exc, stored=stored, now=now, min_interval=min_interval
        )


def _store_fetched(
    store: Store,
    feed: FeedConfig,
    result: FetchResult,
    *,
    analyse: Analyser,
    stored: Feed,
    now: datetime,
    min_interval: timedelta = MIN_INTERVAL,
) -> FeedOutcome:
    body_hash = _body_hash(result)
    # A server that ignores conditional requests but sends the same bytes changed nothing.
    unchanged = result.not_modified or body_hash == stored.content_hash
    analysed = None if unchanged else analyse(result, feed.topics)
    parsed = analysed.parsed if analysed else None
    interval = feed.interval
    if feed.adaptive:
        interval = adaptive_interval(interval, store.items_per_day(feed.url, now))
    due = next_poll(
        feed_url=feed.url,
        now=now,
        interval=interval,
        retry_after=parse_retry_after(result.headers.get("retry-after"), now),
        source_delay=cache_lifetime(result.headers, now),
        rhythm=parsed.rhythm if parsed else stored.rhythm,
        minimum=min_interval,
    )
    stats = store.record_success(
        feed.url,
        result,
        parsed,
        analysed.topics if analysed else {},
        next_due_at=due,
        now=now,
        move=track_move(stored, result, now),
        content_hash=body_hash,
    )
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
    min_interval: timedelta = MIN_INTERVAL,
) -> FeedOutcome:
    message = f"storage: {error}" if isinstance(error, StorageError) else str(error)
    header = error.retry_after if isinstance(error, FetchError) else None
    retry_after = parse_retry_after(header, now)
    errors = stored.error_count + 1
    if result.status in _SLOW_DOWN and retry_after is None:
        # "Too many requests" without a time: wait as long as backoff would anyway.
        retry_after = backoff_delay(max(feed.interval, min_interval), errors)
    due = next_poll(
        feed_url=feed.url,
        now=now,
        interval=feed.interval,
        error_count=errors,
        retry_after=retry_after,
        minimum=min_interval,
    )
    retry_until = now + retry_after if result.status in _SLOW_DOWN and retry_after else None
    store.record_failure(
        feed.url,
        message,
        status=result.status,
        next_due_at=due,
        now=now,
        retry_until=retry_until,
        gone=result.status == HTTPStatus.GONE,
    )
    log.debug("%s", message)  # the caller reports failures once (summary or daemon log)
    title = feed.title or stored.display_title
    return FeedOutcome(feed.url, title, "failed", status=result.status, error=message)


def _body_hash(result: FetchResult) -> str | None:
    return None if result.content is None else hashlib.sha256(result.content).hexdigest()
