"""When each feed is due next, and which feeds a round polls.

Pure: every function takes "now" explicitly. The rules, in the order they apply:

* the user's ``interval`` is the floor, never below ``MIN_INTERVAL`` (a typo guard);
* after a success, the source's own word pushes it later: HTTP Cache-Control ``max-age``
  or ``Expires``, RSS ``ttl`` or ``sy:updatePeriod``/``updateFrequency`` — each capped at
  ``MAX_SOURCE_DELAY`` so that an absurd value cannot silence a feed;
* a feed that publishes rarely is polled less often than its ``interval`` (adaptive rhythm,
  :func:`adaptive_interval`): about twice per gap between its items, up to
  ``MAX_ADAPTIVE_INTERVAL``;
* after failures, exponential backoff from the interval, capped at ``MAX_BACKOFF`` (so a
  failing feed is still tried at least daily);
* a server's ``Retry-After`` (429/503, seconds or an HTTP date) wins when later, up to
  ``MAX_RETRY_AFTER``;
* a stable per-feed jitter spreads feeds configured together;
* ``skipHours``/``skipDays`` move the result to the next hour the feed does not skip.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .models import SourceRhythm

MAX_BACKOFF = timedelta(hours=24)
MAX_RETRY_AFTER = timedelta(days=7)
MAX_JITTER_FRACTION = 0.1
MIN_INTERVAL = timedelta(minutes=5)
MAX_SOURCE_DELAY = timedelta(hours=24)
MAX_ADAPTIVE_INTERVAL = timedelta(hours=6)
NO_RHYTHM = SourceRhythm()

# Beyond any sane Retry-After; keeps absurd delay-seconds from overflowing timedelta.
_RETRY_AFTER_CEILING = timedelta(days=365)


def next_poll(
    *,
    feed_url: str,
    now: datetime,
    interval: timedelta,
    error_count: int = 0,
    retry_after: timedelta | None = None,
    source_delay: timedelta | None = None,
    rhythm: SourceRhythm = NO_RHYTHM,
    minimum: timedelta = MIN_INTERVAL,
) -> datetime:
    """The next time ``feed_url`` should be fetched; see the module docstring for the rules.

    ``source_delay`` is what the server's caching headers allow (:func:`cache_lifetime`);
    ``rhythm`` is what the feed document declares.
    """
    interval = max(interval, minimum, timedelta(0))
    delay = backoff_delay(interval, error_count)
    if error_count == 0:
        declared = [d for d in (source_delay, rhythm.ttl) if d is not None]
        delay = max([delay, *(min(d, MAX_SOURCE_DELAY) for d in declared)])
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return skip_to_allowed(now + delay + jitter(feed_url, interval), rhythm)


def adaptive_interval(interval: timedelta, items_per_day: float | None) -> timedelta:
    """The poll interval for a feed publishing ``items_per_day``: half its usual gap between
    items (so a new one waits half a gap on average), never below the user's ``interval``
    nor above ``MAX_ADAPTIVE_INTERVAL`` (or the interval, if that is longer)."""
    if not items_per_day or items_per_day <= 0:
        return interval  # no rhythm known yet
    half_gap = timedelta(days=1) / items_per_day / 2
    return max(interval, min(half_gap, MAX_ADAPTIVE_INTERVAL))


def skip_to_allowed(when: datetime, rhythm: SourceRhythm) -> datetime:
    """``when``, or the start of the first later UTC hour the feed does not skip."""
    hours, days = rhythm.skip_hours, rhythm.skip_days
    if len(hours) >= 24 or len(days) >= 7:
        return when  # skipping everything is a broken feed, not a rhythm
    utc = when.astimezone(UTC)
    moved = utc
    for _ in range(24 * 8):  # a week of hours always reaches an allowed one
        if moved.hour not in hours and moved.weekday() not in days:
            break
        moved = moved.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return when if moved == utc else moved


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long a response may be reused, from Cache-Control ``max-age`` or ``Expires``.

    None when the server says nothing usable (or ``no-cache``/``no-store``: revalidate, which
    our interval does anyway).
    """
    control = headers.get("cache-control", "").lower()
    if "no-store" in control or "no-cache" in control:
        return None
    match = _MAX_AGE.search(control)
    if match:
        return timedelta(seconds=min(int(match.group(1)), int(MAX_RETRY_AFTER.total_seconds())))
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    served = _http_date(headers.get("date")) or now
    return max(expires - served, timedelta(0))


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)")
_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SKIP_HOURS = re.compile(rb"<skipHours\b[^>]*>(.*?)</skipHours>", re.S | re.I)
_SKIP_DAYS = re.compile(rb"<skipDays\b[^>]*>(.*?)</skipDays>", re.S | re.I)
_HOUR = re.compile(rb"<hour\b[^>]*>\s*(\d{1,2})\s*</hour>", re.I)
_DAY = re.compile(rb"<day\b[^>]*>\s*([A-Za-z]+)\s*</day>", re.I)


def source_rhythm(
    *, ttl: str | None, period: str | None, frequency: str | None, body: bytes
) -> SourceRhythm:
    """The rhythm a feed declares: ``ttl`` (minutes), ``sy:`` period and frequency, and
    the ``skipHours``/``skipDays`` elements of its RSS ``body``. Nonsense is ignored."""
    refresh = [d for d in (_ttl(ttl), _syndication(period, frequency)) if d is not None]
    hours_block, days_block = _SKIP_HOURS.search(body), _SKIP_DAYS.search(body)
    hours = {int(h) % 24 for h in _HOUR.findall(hours_block.group(1))} if hours_block else set()
    days = (
        {
            _DAYS.index(d.decode().lower())
            for d in _DAY.findall(days_block.group(1))
            if d.decode().lower() in _DAYS
        }
        if days_block
        else set()
    )
    return SourceRhythm(max(refresh, default=None), frozenset(hours), frozenset(days))


def _ttl(value: str | None) -> timedelta | None:
    minutes = _whole_number(value)
    return timedelta(minutes=min(minutes, 60 * 24 * 365)) if minutes else None


def _syndication(period: str | None, frequency: str | None) -> timedelta | None:
    length = _PERIODS.get((period or "").strip().lower())
    if length is None:
        return None
    times = _whole_number(frequency) or 1
    return length / times


def _whole_number(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


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
    when = _http_date(value)
    return None if when is None else max(when - now, timedelta(0))


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or a bare date: HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return when
