from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import DigestConfig, TopicRule
from aggregator.digest import issue_stamp, issue_window, plan_issue
from aggregator.errors import ConfigError
from aggregator.models import DigestIssue, Entry, EntryKey, SentIssue, TopicMatch

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 09:00 in Kyiv
START = NOW - timedelta(days=1)
WINDOW = (START, NOW)

TOPICS = (
    TopicRule(id="ukraine-war", title="Ukraine war", keywords=("ukrain*",)),
    TopicRule(id="tech", title="Technology", keywords=("AI",)),
    TopicRule(id="science", title="Science", keywords=("physics",)),
)
ALL = DigestConfig(
    id="daily",
    title="Daily digest",
    schedule="0 9 * * *",
    timezone="Europe/Kyiv",
    to=("editor@example.org",),
    max_items=40,
    lookback=timedelta(days=1),
)
UKRAINE_ONLY = replace(ALL, id="ukraine", topics=("ukraine-war",))

_counter = iter(range(1_000_000))


def entry(
    *,
    topics: Sequence[str] = (),
    published: datetime | None = None,
    first_seen: datetime | None = None,
    feed_url: str = "https://news.example.org/rss",
    entry_id: str | None = None,
    title: str = "A headline",
    summary: str = "<p>Summary text</p>",
    content: str = "",
    feed_title: str | None = "Example News",
) -> Entry:
    seen = first_seen or NOW - timedelta(hours=1)
    return Entry(
        feed_url=feed_url,
        entry_id=entry_id or f"urn:entry:{next(_counter)}",
        title=title,
        link="https://news.example.org/a",
        summary=summary,
        content=content,
        published=published or seen,
        updated=None,
        first_seen_at=seen,
        topics=tuple(TopicMatch(t, ("test",)) for t in topics),
        feed_title=feed_title,
    )


def plan(
    candidates: Sequence[Entry],
    digest: DigestConfig = ALL,
    *,
    already_sent: frozenset[EntryKey] = frozenset(),
    window: tuple[datetime, datetime] = WINDOW,
) -> DigestIssue:
    return plan_issue(digest, TOPICS, candidates, already_sent=already_sent, window=window)


def keys(issue: DigestIssue) -> list[EntryKey]:
    return [item.key for item in issue.items]


# ---------------------------------------------------------------- window


def test_first_window_uses_lookback() -> None:
    assert issue_window(ALL, None, NOW) == (NOW - timedelta(days=1), NOW)


def test_next_window_starts_where_last_ended() -> None:
    last = SentIssue(
        digest_id="daily",
        stamp="2026-11-25T0900",
        window_start=NOW - timedelta(days=3),
        window_end=NOW - timedelta(days=2),
        message_id="<x@example.org>",
        sent_at=NOW - timedelta(days=2),
    )
    assert issue_window(ALL, last, NOW) == (NOW - timedelta(days=2), NOW)


def test_window_never_inverted() -> None:
    last = SentIssue(
        digest_id="daily",
        stamp="x",
        window_start=NOW,
        window_end=NOW + timedelta(hours=1),
        message_id="<x@example.org>",
        sent_at=NOW,
    )
    start, end = issue_window(ALL, last, NOW)
    assert start == end == NOW


# ---------------------------------------------------------------- selection


def test_window_bounds_are_half_open() -> None:
    at_start = entry(first_seen=START)
    before = entry(first_seen=START - timedelta(microseconds=1))
    at_end = entry(first_seen=NOW)
    inside = entry(first_seen=NOW - timedelta(microseconds=1))
    issue = plan([at_start, before, at_end, inside])
    assert set(keys(issue)) == {at_start.key, inside.key}


def test_already_sent_is_skipped() -> None:
    sent, fresh = entry(), entry()
    issue = plan([sent, fresh], already_sent=frozenset({sent.key}))
    assert keys(issue) == [fresh.key]


def test_topic_filter() -> None:
    ukr = entry(topics=["ukraine-war"])
    both = entry(topics=["tech", "ukraine-war"])
    tech = entry(topics=["tech"])
    none = entry()
    issue = plan([ukr, both, tech, none], UKRAINE_ONLY)
    assert set(keys(issue)) == {ukr.key, both.key}
    assert [s.topic_id for s in issue.sections] == ["ukraine-war"]


def test_old_archive_of_new_source_is_dropped() -> None:
    recent = entry(published=START - timedelta(hours=23))
    limit = entry(published=START - ALL.lookback)
    archive = entry(published=START - ALL.lookback - timedelta(seconds=1))
    issue = plan([recent, limit, archive])
    assert set(keys(issue)) == {recent.key, limit.key}


def test_newest_first_with_stable_ties() -> None:
    t = NOW - timedelta(hours=2)
    old = entry(published=t - timedelta(hours=1))
    b2 = entry(published=t, feed_url="https://b.example/", entry_id="2")
    b1 = entry(published=t, feed_url="https://b.example/", entry_id="1")
    a9 = entry(published=t, feed_url="https://a.example/", entry_id="9")
    new = entry(published=t + timedelta(minutes=1))
    issue = plan([old, b2, b1, a9, new])
    assert keys(issue) == [new.key, a9.key, b1.key, b2.key, old.key]


def test_order_is_exact_to_the_microsecond() -> None:
    t = NOW - timedelta(hours=2)
    later = entry(published=t + timedelta(microseconds=1), feed_url="https://z.example/")
    earlier = entry(published=t, feed_url="https://a.example/")
    assert keys(plan([earlier, later])) == [later.key, earlier.key]


def test_cap_keeps_newest_across_sections() -> None:
    entries = [
        entry(topics=["tech" if i % 2 else "ukraine-war"], published=NOW - timedelta(minutes=i))
        for i in range(10)
    ]
    issue = plan(entries, replace(ALL, max_items=3))
    assert set(keys(issue)) == {e.key for e in entries[:3]}


def test_empty_issue_is_still_returned() -> None:
    issue = plan([])
    assert issue.sections == ()
    assert issue.items == ()
    assert issue.digest_id == "daily"
    assert issue.title == "Daily digest"
    assert (issue.window_start, issue.window_end) == WINDOW


# ---------------------------------------------------------------- sections


def test_sections_follow_topic_order_then_other() -> None:
    sci = entry(topics=["science"])
    tech = entry(topics=["tech"])
    ukr = entry(topics=["ukraine-war"])
    other = entry()
    issue = plan([other, sci, tech, ukr])
    assert [(s.topic_id, s.title) for s in issue.sections] == [
        ("ukraine-war", "Ukraine war"),
        ("tech", "Technology"),
        ("science", "Science"),
        (None, "Other"),
    ]
    assert [[i.key for i in s.items] for s in issue.sections] == [
        [ukr.key],
        [tech.key],
        [sci.key],
        [other.key],
    ]


def test_sections_follow_digest_topic_order() -> None:
    digest = replace(ALL, topics=("science", "ukraine-war"))
    ukr = entry(topics=["ukraine-war"])
    sci = entry(topics=["science"])
    other = entry()
    issue = plan([ukr, sci, other], digest)
    assert [s.topic_id for s in issue.sections] == ["science", "ukraine-war"]
    assert other.key not in keys(issue)


def test_item_appears_once_under_its_first_topic_in_issue_order() -> None:
    both = entry(topics=["tech", "ukraine-war"])  # entry's own order must not matter
    issue = plan([both])
    assert [s.topic_id for s in issue.sections] == ["ukraine-war"]
    assert keys(issue) == [both.key]
    flipped = plan([both], replace(ALL, topics=("tech", "ukraine-war")))
    assert [s.topic_id for s in flipped.sections] == ["tech"]


def test_unknown_topic_ids_fall_into_other() -> None:
    stale = entry(topics=["removed-topic"])
    issue = plan([stale])
    assert [(s.topic_id, s.title) for s in issue.sections] == [(None, "Other")]


def test_empty_sections_are_omitted() -> None:
    issue = plan([entry(topics=["tech"])])
    assert [s.topic_id for s in issue.sections] == ["tech"]


def test_items_within_a_section_are_newest_first() -> None:
    older = entry(topics=["tech"], published=NOW - timedelta(hours=5))
    newer = entry(topics=["tech"], published=NOW - timedelta(hours=1))
    issue = plan([older, newer])
    assert [i.key for i in issue.sections[0].items] == [newer.key, older.key]


# ---------------------------------------------------------------- items


def test_item_fields() -> None:
    e = entry(
        title="  Strike on\r\nKyiv  ",
        summary="<p>First&nbsp;para.</p><p>Second <b>para</b>.</p><script>x()</script>",
        published=NOW - timedelta(hours=3),
    )
    (item,) = plan([e]).items
    assert item.key == e.key
    assert item.title == "Strike on Kyiv"
    assert item.link == "https://news.example.org/a"
    assert item.source == "Example News"
    assert item.published == NOW - timedelta(hours=3)
    assert item.summary_text == "First para. Second para."


def test_source_falls_back_to_host() -> None:
    e = entry(feed_url="https://www.Example.org:8443/feeds/all.xml", feed_title=None)
    (item,) = plan([e]).items
    assert item.source == "www.example.org"


def test_source_of_local_file_feed() -> None:
    e = entry(feed_url="file:///srv/feeds/local.xml", feed_title=None)
    (item,) = plan([e]).items
    assert item.source == "file:///srv/feeds/local.xml"


def test_untitled_and_content_fallback() -> None:
    e = entry(title=" \n ", summary="", content="<div>From the content</div>")
    (item,) = plan([e]).items
    assert item.title == "(untitled)"
    assert item.summary_text == "From the content"


def test_summary_is_shortened() -> None:
    e = entry(summary="<p>" + "word " * 200 + "</p>")
    (item,) = plan([e]).items
    assert len(item.summary_text) <= 280
    assert item.summary_text.endswith("\u2026")
    assert item.summary_text.startswith("word word")


# ---------------------------------------------------------------- stamp


def test_stamp_in_digest_time_zone() -> None:
    assert plan([]).stamp == "2026-11-26T0900"
    assert plan([], replace(ALL, timezone="UTC")).stamp == "2026-11-26T0700"
    assert plan([], replace(ALL, timezone="America/New_York")).stamp == "2026-11-26T0200"


def test_stamp_across_dst() -> None:
    summer = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert issue_stamp(ALL, summer) == "2026-07-01T0900"


def test_stamps_in_the_repeated_dst_hour_stay_distinct() -> None:
    # Kyiv falls back at 04:00 EEST on 2026-10-25: 03:00 local happens twice. The stamp
    # keys an issue's files and delivery records, so the second must not reuse the first.
    first = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 03:00 EEST (+03:00)
    second = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 EET (+02:00)
    assert issue_stamp(ALL, first) == "2026-10-25T0300+0300"
    assert issue_stamp(ALL, second) == "2026-10-25T0300+0200"
    # Outside the repeated hour, stamps keep their plain form.
    assert issue_stamp(ALL, datetime(2026, 10, 24, 23, 59, tzinfo=UTC)) == "2026-10-25T0259"
    assert issue_stamp(ALL, datetime(2026, 10, 25, 2, 0, tzinfo=UTC)) == "2026-10-25T0400"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", ""])
def test_unknown_time_zone_is_a_config_error(zone: str) -> None:
    with pytest.raises(ConfigError, match=r"digests\.daily\.timezone"):
        plan([], replace(ALL, timezone=zone))


# ---------------------------------------------------------------- properties

_topic_sets = st.lists(st.sampled_from(["ukraine-war", "tech", "science", "gone"]), max_size=3)


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Entry]:
    n = draw(st.integers(min_value=0, max_value=25))
    return [
        entry(
            topics=draw(_topic_sets),
            first_seen=NOW - timedelta(minutes=draw(st.integers(0, 2 * 24 * 60))),
            published=NOW - timedelta(minutes=draw(st.integers(0, 4 * 24 * 60))),
            feed_url=draw(st.sampled_from(["https://a.example/", "https://b.example/"])),
        )
        for _ in range(n)
    ]


@given(
    candidates=candidate_lists(),
    max_items=st.integers(min_value=1, max_value=30),
    digest_topics=st.sampled_from([(), ("tech",), ("science", "ukraine-war")]),
)
def test_property_issue_invariants(
    candidates: list[Entry], max_items: int, digest_topics: tuple[str, ...]
) -> None:
    digest = replace(ALL, max_items=max_items, topics=digest_topics)
    issue = plan(candidates, digest)
    chosen = keys(issue)
    by_key = {e.key: e for e in candidates}
    assert len(chosen) == len(set(chosen)) <= max_items
    for key in chosen:
        e = by_key[key]
        assert START <= e.first_seen_at < NOW
        assert e.published >= START - digest.lookback
        if digest_topics:
            assert set(e.topic_ids) & set(digest_topics)
    for section in issue.sections:
        assert section.items
        dates = [i.published for i in section.items]
        assert dates == sorted(dates, reverse=True)
    # The cap keeps the newest: nothing eligible but left out is newer than what was kept.
    if len(chosen) == max_items:
        eligible = [
            e
            for e in candidates
            if START <= e.first_seen_at < NOW
            and e.published >= START - digest.lookback
            and (not digest_topics or set(e.topic_ids) & set(digest_topics))
        ]
        oldest_kept = min(by_key[k].published for k in chosen)
        assert all(e.published <= oldest_kept for e in eligible if e.key not in set(chosen))
