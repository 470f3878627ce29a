"""When each feed is due next: interval, error backoff, Retry-After, and a stable jitter.

Pure: every function takes "now" explicitly.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MAX_BACKOFF = timedelta(hours=24)
MAX_RETRY_AFTER = timedelta(days=7)
MAX_JITTER_FRACTION = 0.1

# Beyond any sane Retry-After; keeps absurd delay-seconds from overflowing timedelta.
_RETRY_AFTER_CEILING = timedelta(days=365)


def next_poll(
    *,
    feed_url: str,
    now: datetime,
    interval: timedelta,
    error_count: int = 0,
    retry_after: timedelta | None = None,
) -> datetime:
    """The next time ``feed_url`` should be fetched.

    After a success: ``now + interval + jitter``. After ``error_count`` consecutive
    failures: ``interval * 2**error_count``, capped at 24 h (but never below the
    interval), plus the same jitter. A server's Retry-After, when longer, wins,
    capped at 7 days.
    """
    interval = max(interval, timedelta(0))
    delay = backoff_delay(interval, error_count)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + delay + jitter(feed_url, interval)


def backoff_delay(interval: timedelta, error_count: int) -> timedelta:
    """``interval * 2**error_count`` capped at ``max(24 h, interval)``."""
    cap = max(MAX_BACKOFF, interval)
    delay = interval
    # Doubling step by step instead of 2**error_count: a feed failing for months
    # would otherwise overflow timedelta.
    for _ in range(max(error_count, 0)):
        if delay >= cap:
            break
        delay *= 2
    return min(delay, cap)


def jitter(feed_url: str, interval: timedelta) -> timedelta:
    """A fraction of ``interval`` in [0, 10 %), fixed per feed URL.

    Stable across runs (a hash, not random) so that restarts do not reshuffle the
    schedule, yet different feeds configured together drift apart instead of all
    hitting the network in the same second.
    """
    digest = hashlib.sha256(feed_url.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64  # in [0, 1)
    return max(interval, timedelta(0)) * (fraction * MAX_JITTER_FRACTION)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header value (delay-seconds or HTTP-date) as a delay from ``now``.

    None when absent or unparseable; a date in the past gives a zero delay.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = min(int(value), int(_RETRY_AFTER_CEILING.total_seconds()))
        return timedelta(seconds=seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or a bare date: HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
