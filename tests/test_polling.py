from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.models import SourceRhythm
from aggregator.polling import (
    MAX_ADAPTIVE_INTERVAL,
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    MAX_SOURCE_DELAY,
    MIN_INTERVAL,
    adaptive_interval,
    backoff_delay,
    cache_lifetime,
    jitter,
    next_poll,
    parse_retry_after,
    skip_to_allowed,
    source_rhythm,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
URL = "https://news.example.org/feed.xml"
HALF_HOUR = timedelta(minutes=30)

urls = st.text(min_size=1, max_size=60).map(lambda s: f"https://example.org/{s}")
intervals = st.integers(min_value=1, max_value=7 * 24 * 3600).map(lambda s: timedelta(seconds=s))


# ---------------------------------------------------------------- next_poll


def test_success_is_interval_plus_jitter() -> None:
    due = next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR)
    assert due == NOW + HALF_HOUR + jitter(URL, HALF_HOUR)
    assert NOW + HALF_HOUR <= due < NOW + HALF_HOUR * 1.1


def test_errors_back_off_exponentially() -> None:
    delays = [
        next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR, error_count=n) - NOW for n in range(6)
    ]
    extra = jitter(URL, HALF_HOUR)
    assert delays == [HALF_HOUR * 2**n + extra for n in range(6)]


def test_backoff_is_capped_at_a_day() -> None:
    for n in (6, 7, 30, 10_000):
        due = next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR, error_count=n)
        assert due == NOW + MAX_BACKOFF + jitter(URL, HALF_HOUR)


def test_backoff_never_below_interval() -> None:
    weekly = timedelta(days=7)
    due = next_poll(feed_url=URL, now=NOW, interval=weekly, error_count=3)
    assert due == NOW + weekly + jitter(URL, weekly)


def test_longer_retry_after_wins() -> None:
    due = next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR, retry_after=timedelta(hours=3))
    assert due == NOW + timedelta(hours=3) + jitter(URL, HALF_HOUR)


def test_shorter_retry_after_does_not_shorten_the_wait() -> None:
    due = next_poll(
        feed_url=URL, now=NOW, interval=HALF_HOUR, error_count=2, retry_after=timedelta(minutes=1)
    )
    assert due == NOW + HALF_HOUR * 4 + jitter(URL, HALF_HOUR)


def test_retry_after_is_capped_at_seven_days() -> None:
    due = next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR, retry_after=timedelta(days=400))
    assert due == NOW + MAX_RETRY_AFTER + jitter(URL, HALF_HOUR)


def test_jitter_is_deterministic_and_spreads_feeds() -> None:
    assert jitter(URL, HALF_HOUR) == jitter(URL, HALF_HOUR)
    spread = {jitter(f"https://example.org/{i}.xml", HALF_HOUR) for i in range(50)}
    assert len(spread) > 40
    assert all(timedelta(0) <= j < HALF_HOUR * 0.1 for j in spread)


def test_jitter_is_stable_across_runs() -> None:
    # A fixed value: the hash must not depend on PYTHONHASHSEED, the process or the
    # Python version, or every restart would reshuffle the schedule.
    assert jitter("https://example.org/feed", timedelta(hours=1)) == timedelta(
        seconds=12, microseconds=774082
    )


def test_backoff_delay_handles_zero_and_negative_counts() -> None:
    assert backoff_delay(HALF_HOUR, 0) == HALF_HOUR
    assert backoff_delay(HALF_HOUR, -3) == HALF_HOUR


@given(url=urls, interval=intervals, errors=st.integers(min_value=0, max_value=200))
def test_property_within_bounds(url: str, interval: timedelta, errors: int) -> None:
    due = next_poll(feed_url=url, now=NOW, interval=interval, error_count=errors)
    interval = max(interval, MIN_INTERVAL)
    cap = max(MAX_BACKOFF, interval)
    low = cap if errors > 20 else min(interval * 2**errors, cap)
    assert NOW + low <= due <= NOW + low + interval * 0.1


@given(url=urls, interval=intervals, errors=st.integers(min_value=0, max_value=200))
def test_property_monotone_in_error_count(url: str, interval: timedelta, errors: int) -> None:
    first = next_poll(feed_url=url, now=NOW, interval=interval, error_count=errors)
    second = next_poll(feed_url=url, now=NOW, interval=interval, error_count=errors + 1)
    assert first <= second


@given(
    url=urls,
    interval=intervals,
    errors=st.integers(min_value=0, max_value=50),
    retry=st.integers(min_value=0, max_value=10**7).map(lambda s: timedelta(seconds=s)),
)
def test_property_retry_after_respected(
    url: str, interval: timedelta, errors: int, retry: timedelta
) -> None:
    due = next_poll(feed_url=url, now=NOW, interval=interval, error_count=errors, retry_after=retry)
    without = next_poll(feed_url=url, now=NOW, interval=interval, error_count=errors)
    assert due >= without
    assert due >= NOW + min(retry, MAX_RETRY_AFTER)
    assert due <= max(without, NOW + MAX_RETRY_AFTER + max(interval, MIN_INTERVAL) * 0.1)


@given(url=urls, interval=intervals)
def test_property_jitter_deterministic(url: str, interval: timedelta) -> None:
    first = next_poll(feed_url=url, now=NOW, interval=interval)
    assert first == next_poll(feed_url=url, now=NOW, interval=interval)
    later = NOW + timedelta(hours=5)
    assert next_poll(feed_url=url, now=later, interval=interval) - later == first - NOW


# ---------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("120", timedelta(seconds=120)),
        (" 3600 ", timedelta(hours=1)),
        ("0", timedelta(0)),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("\uff11\uff12", None),  # full-width digits are not delay-seconds
        ("Thu, 26 Nov 2026 10:30:00 GMT", timedelta(hours=1, minutes=30)),
        # The two obsolete forms HTTP recipients must still accept (RFC 9110 5.6.7).
        ("Thursday, 26-Nov-26 10:30:00 GMT", timedelta(hours=1, minutes=30)),
        ("Thu Nov 26 10:30:00 2026", timedelta(hours=1, minutes=30)),
        ("Thu, 26 Nov 2026 09:00:00 -0000", timedelta(0)),
        ("Thu, 26 Nov 2026 12:00:00 +0200", timedelta(hours=1)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", timedelta(0)),  # in the past
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_huge_value_does_not_overflow() -> None:
    delay = parse_retry_after("9" * 40, NOW)
    assert delay is not None
    assert delay >= MAX_RETRY_AFTER
    assert next_poll(feed_url=URL, now=NOW, interval=HALF_HOUR, retry_after=delay) == (
        NOW + MAX_RETRY_AFTER + jitter(URL, HALF_HOUR)
    )


@given(st.integers(min_value=0, max_value=10**6))
def test_property_delay_seconds_roundtrip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == timedelta(seconds=seconds)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_property_http_date_roundtrip(when: datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=UTC)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(header, NOW) == max(when - NOW, timedelta(0))


@given(st.text(max_size=40))
def test_property_never_raises(value: str) -> None:
    delay = parse_retry_after(value, NOW)
    assert delay is None or delay >= timedelta(0)


# ---------------------------------------------------------------- the source's own word

delays = st.integers(min_value=0, max_value=10**8).map(lambda s: timedelta(seconds=s))


@given(url=urls, interval=intervals, cache=st.none() | delays, ttl=st.none() | delays)
def test_property_source_delays_respected_within_caps(
    url: str, interval: timedelta, cache: timedelta | None, ttl: timedelta | None
) -> None:
    due = next_poll(
        feed_url=url, now=NOW, interval=interval, source_delay=cache, rhythm=SourceRhythm(ttl)
    )
    floor = max(interval, MIN_INTERVAL)
    declared = [min(d, MAX_SOURCE_DELAY) for d in (cache, ttl) if d is not None]
    low = max([floor, *declared])
    assert NOW + low <= due <= NOW + low + floor * 0.1


def test_typo_interval_is_raised_to_the_minimum() -> None:
    due = next_poll(feed_url=URL, now=NOW, interval=timedelta(seconds=5))
    assert due >= NOW + MIN_INTERVAL


def test_source_delays_do_not_stretch_error_backoff() -> None:
    # A failing feed's cache headers are stale news; backoff alone decides.
    failing = next_poll(
        feed_url=URL, now=NOW, interval=HALF_HOUR, error_count=1, source_delay=timedelta(hours=9)
    )
    assert failing == NOW + 2 * HALF_HOUR + jitter(URL, HALF_HOUR)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=3600"}, timedelta(hours=1)),
        ({"cache-control": 'max-age="600"'}, timedelta(minutes=10)),
        ({"cache-control": "no-cache, max-age=3600"}, None),
        ({"cache-control": "s-maxage=99"}, None),
        (
            {"expires": "Thu, 26 Nov 2026 11:00:00 GMT", "date": "Thu, 26 Nov 2026 10:00:00 GMT"},
            timedelta(hours=1),
        ),
        ({"expires": "Thu, 26 Nov 2026 11:00:00 GMT"}, timedelta(hours=2)),  # against now
        ({"expires": "0"}, None),
        ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, timedelta(0)),
        ({}, None),
    ],
)
def test_cache_lifetime(headers: dict[str, str], expected: timedelta | None) -> None:
    assert cache_lifetime(headers, NOW) == expected


RSS = b"""<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>
<skipHours><hour>0</hour><hour> 1 </hour><hour>23</hour><hour>x</hour></skipHours>
<skipDays><day>Saturday</day><day>Sunday</day><day>Caturday</day></skipDays>
</channel></rss>"""


def test_source_rhythm_reads_ttl_syndication_and_skips() -> None:
    rhythm = source_rhythm(ttl="90", period="daily", frequency="4", body=RSS)
    assert rhythm.ttl == timedelta(hours=6)  # the longer of 90 minutes and a day / 4
    assert source_rhythm(ttl="90", period=None, frequency=None, body=b"").ttl == timedelta(
        minutes=90
    )
    assert rhythm.skip_hours == frozenset({0, 1, 23})
    assert rhythm.skip_days == frozenset({5, 6})


@pytest.mark.parametrize(
    ("ttl", "period", "frequency"),
    [("", None, None), ("-5", None, None), ("soon", None, None), (None, "fortnightly", "2")],
)
def test_source_rhythm_ignores_nonsense(
    ttl: str | None, period: str | None, frequency: str | None
) -> None:
    assert source_rhythm(ttl=ttl, period=period, frequency=frequency, body=b"") == SourceRhythm()


def test_skipped_hours_and_days_move_the_poll_to_the_next_allowed_hour() -> None:
    rhythm = SourceRhythm(skip_hours=frozenset({23, 0, 1}), skip_days=frozenset({5, 6}))
    friday_late = datetime(2026, 11, 27, 23, 10, tzinfo=UTC)  # a Friday
    assert skip_to_allowed(friday_late, rhythm) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    allowed = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert skip_to_allowed(allowed, rhythm) == allowed


def test_skipping_every_hour_is_ignored() -> None:
    rhythm = SourceRhythm(skip_hours=frozenset(range(24)))
    assert skip_to_allowed(NOW, rhythm) == NOW


# ---------------------------------------------------------------- adaptive rhythm


def test_a_feed_publishing_twice_a_week_is_polled_at_the_adaptive_maximum() -> None:
    assert adaptive_interval(timedelta(minutes=15), 2 / 7) == MAX_ADAPTIVE_INTERVAL


def test_a_busy_feed_keeps_the_users_interval() -> None:
    assert adaptive_interval(timedelta(minutes=15), 200) == timedelta(minutes=15)


def test_a_feed_in_between_waits_half_its_gap() -> None:
    assert adaptive_interval(timedelta(minutes=15), 12) == timedelta(hours=1)


def test_unknown_rhythm_and_long_intervals_are_left_alone() -> None:
    assert adaptive_interval(timedelta(minutes=15), None) == timedelta(minutes=15)
    assert adaptive_interval(timedelta(hours=12), 0.1) == timedelta(hours=12)


@given(
    interval=intervals,
    rate=st.floats(min_value=0.001, max_value=10_000, allow_nan=False),
)
def test_property_adaptive_interval_within_bounds(interval: timedelta, rate: float) -> None:
    result = adaptive_interval(interval, rate)
    assert interval <= result <= max(interval, MAX_ADAPTIVE_INTERVAL)
