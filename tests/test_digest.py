from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import DigestConfig, TopicRule
from aggregator.digest import (
    OVERLAP,
    candidates_since,
    eligible_entries,
    issue_stamp,
    issue_window,
    next_start,
    plan_issue,
)
from aggregator.models import DigestIssue, DigestItem, Entry, EntryKey, StoredIssue, TopicMatch

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
    timezone=ZoneInfo("Europe/Kyiv"),
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
    link: str | None = None,
    summary: str = "<p>Summary text</p>",
    content: str = "",
    feed_title: str | None = "Example News",
    story_id: str | None = None,
    backfill: bool = False,
) -> Entry:
    seen = first_seen or NOW - timedelta(hours=1)
    number = next(_counter)
    return Entry(
        feed_url=feed_url,
        entry_id=entry_id or f"urn:entry:{number}",
        title=title,
        # Every entry its own article unless a test says otherwise.
        link=link or f"https://news.example.org/articles/{number}",
        summary=summary,
        content=content,
        published=published or seen,
        updated=None,
        first_seen_at=seen,
        topics=tuple(TopicMatch(t, ("test",)) for t in topics),
        feed_title=feed_title,
        story_id=story_id,
        backfill=backfill,
    )


def select(
    candidates: Sequence[Entry],
    digest: DigestConfig = ALL,
    *,
    already_sent: Collection[EntryKey] = frozenset(),
    since: datetime = START,
    window: tuple[datetime, datetime] = WINDOW,
) -> list[Entry]:
    # A one-shot iterator: eligible_entries takes any iterable (the store streams rows).
    return eligible_entries(
        digest, iter(candidates), already_sent=frozenset(already_sent), since=since, window=window
    )


def plan(
    candidates: Sequence[Entry],
    digest: DigestConfig = ALL,
    *,
    already_sent: Collection[EntryKey] = frozenset(),
    since: datetime = START,
    window: tuple[datetime, datetime] = WINDOW,
) -> DigestIssue:
    eligible = select(candidates, digest, already_sent=already_sent, since=since, window=window)
    return plan_issue(digest, TOPICS, eligible, window=window)


def keys(issue: DigestIssue) -> list[EntryKey]:
    return [item.key for item in issue.items]


def stored(*, window_end: datetime, next_start: datetime) -> StoredIssue:
    return StoredIssue(
        digest_id="daily",
        stamp="2026-11-25T0900",
        window_start=window_end - timedelta(days=1),
        window_end=window_end,
        subject="Daily digest",
        html="<p>issue</p>",
        text="issue",
        item_count=3,
        more_count=0,
        next_start=next_start,
        created_at=window_end,
    )


# ---------------------------------------------------------------- window


def test_first_window_uses_lookback() -> None:
    assert issue_window(ALL, None, NOW) == (NOW - timedelta(days=1), NOW)
    weekly = replace(ALL, lookback=timedelta(days=7))
    assert issue_window(weekly, None, NOW) == (NOW - timedelta(days=7), NOW)


def test_next_window_starts_where_last_ended() -> None:
    end = NOW - timedelta(days=2)
    last = stored(window_end=end, next_start=end - OVERLAP)
    assert issue_window(ALL, last, NOW) == (end, NOW)


def test_window_never_inverted() -> None:
    future = NOW + timedelta(hours=1)
    last = stored(window_end=future, next_start=future - OVERLAP)
    start, end = issue_window(ALL, last, NOW)
    assert start == end == NOW


# ---------------------------------------------------------------- candidates_since


def test_first_issue_candidates_start_at_lookback() -> None:
    assert candidates_since(ALL, None, NOW) == NOW - timedelta(days=1)
    weekly = replace(ALL, lookback=timedelta(days=7))
    assert candidates_since(weekly, None, NOW) == NOW - timedelta(days=7)


def test_later_candidates_start_at_last_next_start() -> None:
    end = NOW - timedelta(days=1)
    last = stored(window_end=end, next_start=end - OVERLAP)
    assert candidates_since(ALL, last, NOW) == end - OVERLAP
    # An issue that carried items over starts further back, whatever the lookback says.
    carried = stored(window_end=end, next_start=end - timedelta(days=3))
    assert candidates_since(ALL, carried, NOW) == end - timedelta(days=3)


def test_candidates_start_clamped_to_now() -> None:
    future = NOW + timedelta(hours=5)  # the clock stepped back since the last issue
    last = stored(window_end=future, next_start=future - OVERLAP)
    assert candidates_since(ALL, last, NOW) == NOW


# ---------------------------------------------------------------- eligible_entries


def test_bounds_are_half_open_from_since_to_window_end() -> None:
    since = START - OVERLAP
    at_since = entry(first_seen=since)
    before = entry(first_seen=since - timedelta(microseconds=1))
    overlap = entry(first_seen=START - timedelta(minutes=1))  # before the window, after since
    at_end = entry(first_seen=NOW)
    inside = entry(first_seen=NOW - timedelta(microseconds=1))
    chosen = select([at_since, before, overlap, at_end, inside], since=since)
    assert {e.key for e in chosen} == {at_since.key, overlap.key, inside.key}


def test_already_sent_is_skipped() -> None:
    sent, fresh = entry(), entry()
    assert select([sent, fresh], already_sent={sent.key}) == [fresh]


def test_topic_filter() -> None:
    ukr = entry(topics=["ukraine-war"])
    both = entry(topics=["tech", "ukraine-war"])
    tech = entry(topics=["tech"])
    none = entry()
    chosen = select([ukr, both, tech, none], UKRAINE_ONLY)
    assert {e.key for e in chosen} == {ukr.key, both.key}
    issue = plan([ukr, both, tech, none], UKRAINE_ONLY)
    assert [s.topic_id for s in issue.sections] == ["ukraine-war"]


def test_old_archive_of_new_source_is_dropped() -> None:
    recent = entry(published=START - timedelta(hours=23), backfill=True)
    limit = entry(published=START - ALL.lookback, backfill=True)
    archive = entry(published=START - ALL.lookback - timedelta(microseconds=1), backfill=True)
    chosen = select([recent, limit, archive])
    assert {e.key for e in chosen} == {recent.key, limit.key}


def test_old_items_of_a_known_source_back_up_are_kept() -> None:
    # Both first seen in this window, both published long before it: the new source's
    # archive is not news; the known source that was down two days has news we never told.
    long_ago = START - ALL.lookback - timedelta(days=2)
    archive = entry(published=long_ago, backfill=True, feed_url="https://new.example/rss")
    missed = entry(published=long_ago, backfill=False, feed_url="https://known.example/rss")
    assert select([archive, missed]) == [missed]
    assert keys(plan([archive, missed])) == [missed.key]


def test_backfill_cut_off_follows_the_window_start_not_since() -> None:
    since = START - timedelta(days=3)  # items carried over from an older issue
    just_in = entry(published=START - ALL.lookback, backfill=True)
    too_old = entry(published=START - ALL.lookback - timedelta(seconds=1), backfill=True)
    assert select([just_in, too_old], since=since) == [just_in]


def test_newest_first_with_stable_ties() -> None:
    t = NOW - timedelta(hours=2)
    old = entry(published=t - timedelta(hours=1))
    b2 = entry(published=t, feed_url="https://b.example/", entry_id="2")
    b1 = entry(published=t, feed_url="https://b.example/", entry_id="1")
    a9 = entry(published=t, feed_url="https://a.example/", entry_id="9")
    new = entry(published=t + timedelta(minutes=1))
    assert select([old, b2, b1, a9, new]) == [new, a9, b1, b2, old]
    assert keys(plan([old, b2, b1, a9, new])) == [new.key, a9.key, b1.key, b2.key, old.key]


def test_order_is_exact_to_the_microsecond() -> None:
    t = NOW - timedelta(hours=2)
    later = entry(published=t + timedelta(microseconds=1), feed_url="https://z.example/")
    earlier = entry(published=t, feed_url="https://a.example/")
    assert select([earlier, later]) == [later, earlier]


# ---------------------------------------------------------------- plan_issue: cap


def test_cap_keeps_newest_across_sections_and_counts_the_rest() -> None:
    entries = [
        entry(topics=["tech" if i % 2 else "ukraine-war"], published=NOW - timedelta(minutes=i))
        for i in range(10)
    ]
    issue = plan(entries, replace(ALL, max_items=3))
    assert set(keys(issue)) == {e.key for e in entries[:3]}
    assert issue.more == 7


def test_nothing_left_out_means_more_is_zero() -> None:
    issue = plan([entry(), entry()], replace(ALL, max_items=2))
    assert len(issue.items) == 2
    assert issue.more == 0


def test_cap_counts_articles_not_entries() -> None:
    t = NOW - timedelta(hours=2)
    first = entry(published=t, link="https://wire.example/story", feed_url="https://a.example/")
    copy = entry(
        published=t - timedelta(minutes=1),
        link="https://wire.example/story",
        feed_url="https://b.example/",
        feed_title="B News",
    )
    second = entry(published=t - timedelta(minutes=2))
    third = entry(published=t - timedelta(minutes=3))
    issue = plan([third, copy, second, first], replace(ALL, max_items=2))
    assert keys(issue) == [first.key, second.key]
    assert issue.items[0].merged == (copy.key,)
    assert issue.more == 1  # third; the copy went out with the first item


def test_empty_issue_is_still_returned() -> None:
    issue = plan([])
    assert issue.sections == ()
    assert issue.items == ()
    assert issue.more == 0
    assert issue.digest_id == "daily"
    assert issue.title == "Daily digest"
    assert (issue.window_start, issue.window_end) == WINDOW


# ---------------------------------------------------------------- plan_issue: one story, one item


@pytest.mark.parametrize(
    ("first_link", "second_link"),
    [
        ("https://wire.example/2026/11/story", "https://wire.example/2026/11/story"),
        ("https://www.wire.example/2026/11/story", "https://wire.example/2026/11/story"),
        ("https://wire.example/2026/11/story", "https://wire.example/2026/11/story/"),
        ("https://WWW.Wire.example/2026/11/story/", "https://wire.example/2026/11/story"),
    ],
)
def test_same_link_in_two_feeds_is_one_item(first_link: str, second_link: str) -> None:
    t = NOW - timedelta(hours=2)
    newer = entry(
        published=t,
        link=first_link,
        feed_url="https://a.example/rss",
        feed_title="Alpha Times",
        title="Newer copy",
    )
    older = entry(
        published=t - timedelta(minutes=5),
        link=second_link,
        feed_url="https://b.example/rss",
        feed_title="Beta Post",
        title="Older copy",
    )
    issue = plan([older, newer])
    (item,) = issue.items
    assert item.key == newer.key  # the newest copy stands for the article
    assert item.title == "Newer copy"
    assert item.link == first_link
    assert item.source == "Alpha Times"
    assert item.also == ("Beta Post",)
    assert item.merged == (older.key,)
    assert issue.more == 0


def test_different_links_stay_separate() -> None:
    a = entry(link="https://wire.example/story-1", feed_url="https://a.example/rss")
    b = entry(link="https://wire.example/story-2", feed_url="https://b.example/rss")
    c = entry(link="https://wire.example/story-1?page=2", feed_url="https://c.example/rss")
    d = entry(link="https://other.example/story-1", feed_url="https://d.example/rss")
    issue = plan([a, b, c, d])
    assert len(issue.items) == 4
    assert all(item.also == () and item.merged == () for item in issue.items)


def test_same_story_id_is_one_item() -> None:
    t = NOW - timedelta(hours=2)
    newer = entry(
        published=t,
        link="https://alpha.example/kyiv-report",
        feed_url="https://alpha.example/rss",
        feed_title="Alpha Times",
        story_id="story-42",
    )
    older = entry(
        published=t - timedelta(hours=1),
        link="https://beta.example/news/123",
        feed_url="https://beta.example/rss",
        feed_title=None,
        story_id="story-42",
    )
    unrelated = entry(published=t - timedelta(hours=2), story_id="story-43")
    issue = plan([unrelated, older, newer])
    assert keys(issue) == [newer.key, unrelated.key]
    item = issue.items[0]
    assert item.also == ("beta.example",)  # no feed title: the outlet is its host
    assert item.merged == (older.key,)


def test_also_names_each_other_outlet_once_and_never_the_items_own() -> None:
    t = NOW - timedelta(hours=1)
    link = "https://wire.example/story"
    lead = entry(published=t, link=link, feed_url="https://a.example/rss", feed_title="Alpha")
    same_outlet = entry(
        published=t - timedelta(minutes=1),
        link=link,
        feed_url="https://a.example/other-rss",
        feed_title="Alpha",
    )
    beta1 = entry(
        published=t - timedelta(minutes=2),
        link=link,
        feed_url="https://b.example/rss",
        feed_title="Beta",
    )
    beta2 = entry(
        published=t - timedelta(minutes=3),
        link=link,
        feed_url="https://b.example/world",
        feed_title="Beta",
    )
    (item,) = plan([beta2, beta1, same_outlet, lead]).items
    assert item.source == "Alpha"
    assert item.also == ("Beta",)
    assert item.merged == (same_outlet.key, beta1.key, beta2.key)


def test_merged_item_lands_under_first_topic_of_any_copy() -> None:
    t = NOW - timedelta(hours=1)
    link = "https://wire.example/story"
    lead = entry(published=t, link=link, topics=["science"], feed_url="https://a.example/")
    copy = entry(
        published=t - timedelta(minutes=1),
        link=link,
        topics=["ukraine-war"],
        feed_url="https://b.example/",
    )
    issue = plan([lead, copy])
    assert [(s.topic_id, [i.key for i in s.items]) for s in issue.sections] == [
        ("ukraine-war", [lead.key])
    ]
    # A copy with a topic lifts an untopical lead out of "Other".
    plain = entry(published=t, link="https://wire.example/2", feed_url="https://a.example/")
    tech = entry(
        published=t - timedelta(minutes=1),
        link="https://wire.example/2",
        topics=["tech"],
        feed_url="https://b.example/",
    )
    issue = plan([plain, tech])
    assert [s.topic_id for s in issue.sections] == ["tech"]


def test_already_sent_copy_is_not_merged_again() -> None:
    link = "https://wire.example/story"
    sent = entry(link=link, feed_url="https://a.example/", feed_title="Alpha")
    late = entry(link=link, feed_url="https://b.example/", feed_title="Beta")
    (item,) = plan([sent, late], already_sent={sent.key}).items
    assert item.key == late.key
    assert item.merged == ()
    assert item.also == ()


# ---------------------------------------------------------------- next_start


def test_next_start_is_overlap_before_end_when_all_included() -> None:
    eligible = select([entry(first_seen=START + timedelta(hours=1)), entry()])
    issue = plan_issue(ALL, TOPICS, eligible, window=WINDOW)
    assert issue.more == 0
    assert next_start(eligible, issue) == NOW - OVERLAP


def test_next_start_reaches_back_to_earliest_left_out_entry() -> None:
    kept = entry(published=NOW - timedelta(minutes=10), first_seen=NOW - timedelta(minutes=10))
    left_early = entry(published=NOW - timedelta(hours=3), first_seen=START + timedelta(hours=2))
    left_late = entry(published=NOW - timedelta(hours=4), first_seen=START + timedelta(hours=5))
    eligible = select([kept, left_early, left_late])
    issue = plan_issue(replace(ALL, max_items=1), TOPICS, eligible, window=WINDOW)
    assert keys(issue) == [kept.key]
    assert issue.more == 2
    assert next_start(eligible, issue) == START + timedelta(hours=2)


def test_left_out_entry_seen_in_the_overlap_keeps_the_overlap() -> None:
    kept = entry(published=NOW - timedelta(minutes=5))
    left = entry(published=NOW - timedelta(hours=9), first_seen=NOW - timedelta(minutes=20))
    eligible = select([kept, left])
    issue = plan_issue(replace(ALL, max_items=1), TOPICS, eligible, window=WINDOW)
    assert keys(issue) == [kept.key]
    assert next_start(eligible, issue) == NOW - OVERLAP


def test_next_start_counts_merged_keys_as_included() -> None:
    link = "https://wire.example/story"
    lead = entry(link=link, feed_url="https://a.example/", first_seen=NOW - timedelta(minutes=5))
    early_copy = entry(
        link=link,
        feed_url="https://b.example/",
        published=NOW - timedelta(hours=20),
        first_seen=START + timedelta(minutes=30),
    )
    eligible = select([lead, early_copy])
    issue = plan_issue(ALL, TOPICS, eligible, window=WINDOW)
    assert issue.items[0].merged == (early_copy.key,)
    assert next_start(eligible, issue) == NOW - OVERLAP


def test_next_start_covers_items_trimmed_after_planning() -> None:
    # render.py trims items past the HTML budget from the issue it was given.
    kept = entry(topics=["tech"], published=NOW - timedelta(minutes=5))
    trimmed = entry(topics=["science"], first_seen=START + timedelta(hours=3))
    eligible = select([kept, trimmed])
    issue = plan_issue(ALL, TOPICS, eligible, window=WINDOW)
    assert keys(issue) == [kept.key, trimmed.key]
    cut = replace(issue, sections=issue.sections[:1], more=1)
    assert next_start(eligible, cut) == START + timedelta(hours=3)


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
        link="https://news.example.org/a",
    )
    (item,) = plan([e]).items
    assert item == DigestItem(
        key=e.key,
        title="Strike on Kyiv",
        link="https://news.example.org/a",
        source="Example News",
        published=NOW - timedelta(hours=3),
        summary_text="First para. Second para.",
    )


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
    assert plan([], replace(ALL, timezone=ZoneInfo("UTC"))).stamp == "2026-11-26T0700"
    new_york = replace(ALL, timezone=ZoneInfo("America/New_York"))
    assert plan([], new_york).stamp == "2026-11-26T0200"


def test_stamp_uses_the_zones_own_offset() -> None:
    # Kathmandu is UTC+05:45: a whole-hour shortcut would get the minutes wrong.
    kathmandu = replace(ALL, timezone=ZoneInfo("Asia/Kathmandu"))
    assert issue_stamp(kathmandu, NOW) == "2026-11-26T1245"


def test_stamp_across_dst() -> None:
    summer = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert issue_stamp(ALL, summer) == "2026-07-01T0900"
    assert issue_stamp(ALL, NOW) == "2026-11-26T0900"


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


def test_spring_forward_stamps_skip_the_missing_hour() -> None:
    # Kyiv springs forward at 03:00 EET on 2026-03-29: 03:xx never happens locally.
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    after = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert issue_stamp(ALL, before) == "2026-03-29T0259"
    assert issue_stamp(ALL, after) == "2026-03-29T0400"


# ---------------------------------------------------------------- properties

_topic_sets = st.lists(st.sampled_from(["ukraine-war", "tech", "science", "gone"]), max_size=3)
_SINCE = START - OVERLAP


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Entry]:
    n = draw(st.integers(min_value=0, max_value=25))
    return [
        entry(
            topics=draw(_topic_sets),
            first_seen=NOW - timedelta(minutes=draw(st.integers(0, 2 * 24 * 60))),
            published=NOW - timedelta(minutes=draw(st.integers(0, 4 * 24 * 60))),
            feed_url=draw(st.sampled_from(["https://a.example/", "https://b.example/"])),
            # A small pool of links and stories, so that some entries are one article.
            link=draw(st.sampled_from([None, *(f"https://wire.example/{i}" for i in range(4))])),
            story_id=draw(st.sampled_from([None, None, "s1", "s2"])),
            backfill=draw(st.booleans()),
        )
        for _ in range(n)
    ]


def _should_be_eligible(e: Entry, digest: DigestConfig, sent: Collection[EntryKey]) -> bool:
    return (
        _SINCE <= e.first_seen_at < NOW
        and e.key not in sent
        and (not e.backfill or e.published >= START - digest.lookback)
        and (not digest.topics or bool(set(e.topic_ids) & set(digest.topics)))
    )


@given(
    candidates=candidate_lists(),
    max_items=st.integers(min_value=1, max_value=30),
    digest_topics=st.sampled_from([(), ("tech",), ("science", "ukraine-war")]),
    sent_every=st.integers(min_value=2, max_value=7),
)
def test_property_issue_invariants(
    candidates: list[Entry], max_items: int, digest_topics: tuple[str, ...], sent_every: int
) -> None:
    digest = replace(ALL, max_items=max_items, topics=digest_topics)
    sent = {e.key for e in candidates[::sent_every]}
    eligible = select(candidates, digest, already_sent=sent, since=_SINCE)
    by_key = {e.key: e for e in candidates}

    # Exactly the entries the rules admit, each once, newest first.
    assert len(eligible) == len({e.key for e in eligible})
    assert {e.key for e in eligible} == {
        e.key for e in candidates if _should_be_eligible(e, digest, sent)
    }
    dates = [e.published for e in eligible]
    assert dates == sorted(dates, reverse=True)

    issue = plan_issue(digest, TOPICS, eligible, window=WINDOW)
    chosen = keys(issue)
    covered = [k for item in issue.items for k in (item.key, *item.merged)]
    assert len(chosen) <= max_items
    assert len(covered) == len(set(covered))  # no entry twice, as item or as copy
    assert set(covered) <= {e.key for e in eligible}
    assert (issue.more == 0) == (set(covered) == {e.key for e in eligible})
    for item in issue.items:
        assert item.source not in item.also
        assert all(by_key[k].published <= item.published for k in item.merged)
    for section in issue.sections:
        assert section.items
        section_dates = [i.published for i in section.items]
        assert section_dates == sorted(section_dates, reverse=True)
    # The cap keeps the newest: nothing left out is newer than what was kept.
    left_out = [e for e in eligible if e.key not in set(covered)]
    if left_out:
        assert len(chosen) == max_items
        oldest_kept = min(by_key[k].published for k in chosen)
        assert all(e.published <= oldest_kept for e in left_out)

    # The next issue looks back far enough for everything left out, and for late commits.
    start = next_start(eligible, issue)
    assert start == min([NOW - OVERLAP, *(e.first_seen_at for e in left_out)])


def test_one_feed_listing_one_link_twice_keeps_both_items() -> None:
    t = NOW - timedelta(hours=2)
    first = entry(published=t, link="https://a.example/", title="Press release one")
    second = entry(
        published=t - timedelta(minutes=1), link="https://a.example/", title="Press release two"
    )
    issue = plan([first, second])
    assert [i.title for i in issue.items] == ["Press release one", "Press release two"]
    assert all(i.merged == () for i in issue.items)
