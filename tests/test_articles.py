"""One article, one entry: the same piece carried by several feeds, moved feeds and
republished items — through the façade, with real feed files, database and SMTP server."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, text

from aggregator.app import Aggregator, make_aggregator
from aggregator.config import check_config

from .conftest import FakeClock, write_config
from .feeds import Item, rss
from .smtp import Handler, running

ATOM = "{http://www.w3.org/2005/Atom}"
READER = "reader@example.org"
SHARED = Item(
    "https://www.bbc.co.uk/news/world-europe-1",
    "Kyiv: air defence repels overnight attack",
    link="https://www.bbc.co.uk/news/world-europe-1?at_medium=RSS&at_campaign=KARANGA",
)


# Two outlets' reports of one event, two hours apart.
WITHDRAWAL = Item(
    "https://a.example/1",
    "Kyiv: Ukraine withdraws troops from Avdiivka after months of fighting",
    pub_date="Thu, 26 Nov 2026 04:00:00 GMT",
)
CONFIRMED = Item(
    "https://b.example/2",
    "Kyiv confirms Ukraine pulled troops out of Avdiivka as Russian forces advance",
    pub_date="Thu, 26 Nov 2026 06:00:00 GMT",
)


@pytest.fixture(autouse=True)
def _environment(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", "articles-test-secret-0123456789")


@pytest.fixture
def mailbox() -> Iterator[Handler]:
    box = Handler()
    with running(box):
        yield box


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))


def config(tmp_path: Path, port: int, feeds: dict[str, str], *, collapse: bool = False) -> Path:
    listed = "".join(f"  - url: {path}\n    title: {title}\n" for path, title in feeds.items())
    body = textwrap.dedent(
        f"""\
        topics:
          ukraine-war:
            keywords: [Kyiv]
            stories: {"collapse" if collapse else "articles"}
        digests:
          daily:
            schedule: "0 7 * * *"
            to: [{READER}]
        smtp:
          host: 127.0.0.1
          port: {port}
          security: none
          from: desk@news.test
        feeds:
        """
    )
    return write_config(tmp_path, body + listed)


def write_feed(path: Path, *items: Item) -> None:
    before = path.stat().st_mtime if path.exists() else None
    path.write_bytes(rss(items))
    if before is not None:
        os.utime(path, (before + 2, before + 2))  # a visible Last-Modified change


def cycle(agg: Aggregator, clock: FakeClock) -> None:
    report = agg.fetch(all_feeds=True)
    assert not report.failed, report.failed
    agg.publish()
    clock.advance(timedelta(minutes=1))


def atom_ids(path: Path) -> list[str]:
    root = etree.parse(str(path)).getroot()
    return [e.findtext(f"{ATOM}id") or "" for e in root.iter(f"{ATOM}entry")]


def test_one_article_in_two_feeds_is_published_and_sent_once_crediting_both(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    write_feed(tmp_path / "world.xml", SHARED, Item("w2", "Kyiv: world only"))
    other = Item(SHARED.guid, SHARED.title, link=SHARED.guid + "/")  # same page, other form
    write_feed(tmp_path / "europe.xml", other)
    cfg = config(tmp_path, mailbox.port, {"world.xml": "BBC World", "europe.xml": "BBC Europe"})
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
        [report] = agg.digest("daily", send=True)
        rows = list(agg.export())
    for published in (tmp_path / "output").rglob("*.atom"):
        ids = atom_ids(published)
        assert len(ids) == len(set(ids)), published
    merged = etree.parse(str(tmp_path / "output" / "feed.atom")).getroot()
    [entry] = [e for e in merged.iter(f"{ATOM}entry") if e.findtext(f"{ATOM}id") == SHARED.guid]
    vias = [link.get("title") for link in entry.iter(f"{ATOM}link") if link.get("rel") == "via"]
    source = entry.findtext(f"{ATOM}source/{ATOM}title")
    assert sorted([source, *vias]) == ["BBC Europe", "BBC World"]  # one is the source
    assert report.item_count == 2
    [message] = mailbox.to(READER)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.count(SHARED.title) == 1
    assert "Also: BBC" in text
    shared_rows = [r for r in rows if r["title"] == SHARED.title]
    assert len(shared_rows) == 2
    assert all(len(r["sources"]) == 2 for r in shared_rows)


def test_a_feed_that_moves_does_not_resend_what_it_carried(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    items = (SHARED, Item("local-7", "Kyiv: an item with a feed-local id"))
    write_feed(tmp_path / "old.xml", *items)
    with make_aggregator(config(tmp_path, mailbox.port, {"old.xml": "Desk"}), clock=clock) as agg:
        cycle(agg, clock)
        agg.digest("daily", send=True)
    write_feed(tmp_path / "new.xml", *items, Item("fresh", "Kyiv: something new"))
    with make_aggregator(config(tmp_path, mailbox.port, {"new.xml": "Desk"}), clock=clock) as agg:
        cycle(agg, clock)
        clock.advance(timedelta(hours=1))
        [report] = agg.digest("daily", send=True)
    assert report.item_count == 1
    _first, second = mailbox.to(READER)
    text = second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "something new" in text
    assert SHARED.title not in text
    assert "feed-local id" not in text  # its link is the same page


def test_a_retitled_republication_updates_the_entry(tmp_path: Path, clock: FakeClock) -> None:
    write_feed(
        tmp_path / "desk.xml", Item("id-1", "Kyiv: first headline", link="https://d.example/a")
    )
    with make_aggregator(config(tmp_path, 1, {"desk.xml": "Desk"}), clock=clock) as agg:
        cycle(agg, clock)
        republished = Item("id-2", "Kyiv: better headline", link="https://d.example/a?utm_source=x")
        write_feed(tmp_path / "desk.xml", republished)
        report = agg.fetch(all_feeds=True)
        stored = agg.store.entries()
    assert (report.new_entries, report.updated_entries) == (0, 1)
    assert [(e.entry_id, e.title) for e in stored] == [("id-1", "Kyiv: better headline")]


def test_two_items_under_one_guid_are_both_kept_and_the_feed_says_so(
    tmp_path: Path, clock: FakeClock
) -> None:
    write_feed(
        tmp_path / "desk.xml",
        Item("same", "Kyiv: morning briefing", link="https://d.example/morning"),
        Item("same", "Kyiv: evening briefing", link="https://d.example/evening"),
    )
    with make_aggregator(config(tmp_path, 1, {"desk.xml": "Desk"}), clock=clock) as agg:
        cycle(agg, clock)
        titles = sorted(e.title for e in agg.store.entries())
        [feed] = agg.status()
    assert titles == ["Kyiv: evening briefing", "Kyiv: morning briefing"]
    assert feed.last_warning is not None
    assert "reuse another item's id" in feed.last_warning


def test_check_counts_a_trailing_slash_as_the_same_feed(tmp_path: Path) -> None:
    cfg = config(tmp_path, 1, {"https://e.example/feed": "A", "https://e.example/feed/": "B"})
    [problem] = check_config(cfg)
    assert problem.field == "feeds[1].url"
    assert "duplicate of feeds[0]" in problem.message


def test_explain_says_why_for_topics_and_story(tmp_path: Path, clock: FakeClock) -> None:
    first = Item(
        "https://a.example/1",
        "Kyiv: Ukraine withdraws troops from Avdiivka after months of fighting",
        link="https://a.example/1",
    )
    second = Item(
        "https://b.example/2",
        "Ukraine pulls troops out of Avdiivka as Russian forces advance",
        link="https://b.example/2",
        pub_date="Thu, 26 Nov 2026 06:00:00 GMT",
    )
    write_feed(tmp_path / "a.xml", first)
    write_feed(tmp_path / "b.xml", second)
    cfg = config(tmp_path, 1, {"a.xml": "Alpha", "b.xml": "Beta"})
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
        [about_first] = agg.explain("https://a.example/1?utm_source=x")  # any spelling
        [about_second] = agg.explain(second.guid)
    assert [m.topic_id for m in about_first.entry.topics] == ["ukraine-war"]
    assert about_second.story_id == about_first.story_id is not None
    assert {e.title for e in about_first.story} == {first.title, second.title}
    assert about_second.joined is not None
    assert about_second.joined.title == first.title
    assert any("avdiivka" in reason.lower() for reason in about_second.story_reasons)


def test_a_topic_feed_can_collapse_a_story_to_its_first_report(
    tmp_path: Path, clock: FakeClock
) -> None:
    first, second = WITHDRAWAL, CONFIRMED
    write_feed(tmp_path / "a.xml", first)
    write_feed(tmp_path / "b.xml", second)
    cfg = config(tmp_path, 1, {"a.xml": "Alpha", "b.xml": "Beta"}, collapse=True)
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
        [story_a] = agg.explain(first.guid)
        [story_b] = agg.explain(second.guid)
    assert story_a.story_id == story_b.story_id
    assert len(atom_ids(tmp_path / "output" / "feed.atom")) == 2  # articles by default
    topic = etree.parse(str(tmp_path / "output" / "topics" / "ukraine-war.atom")).getroot()
    [entry] = topic.iter(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}id") == first.guid  # the earliest report leads
    related = [link for link in entry.iter(f"{ATOM}link") if link.get("rel") == "related"]
    assert [link.get("title") for link in related] == [f"Beta: {second.title}"]


def test_a_misspelt_stories_mode_is_reported_with_its_line(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, "feeds: []\ntopics:\n  war:\n    keywords: [Kyiv]\n    stories: colapse\n"
    )
    [problem] = check_config(cfg)
    assert (problem.line, problem.field) == (9, "topics.war.stories")
    assert "did you mean 'collapse'" in problem.message


def first_report_only(tmp_path: Path) -> Path:
    """Feeds Alpha (the first report) and Beta (nothing related yet); their config."""
    write_feed(tmp_path / "a.xml", WITHDRAWAL)
    write_feed(tmp_path / "b.xml", Item("b0", "Weather in Lisbon", pub_date=CONFIRMED.pub_date))
    return config(tmp_path, 1, {"a.xml": "Alpha", "b.xml": "Beta"})


def test_a_story_outlives_a_restart_and_a_later_report_joins_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    first, second = WITHDRAWAL, CONFIRMED
    cfg = first_report_only(tmp_path)
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
        [before] = agg.explain(first.guid)
    write_feed(tmp_path / "b.xml", second)
    with make_aggregator(cfg, clock=clock) as agg:  # a new process: the index is rebuilt
        cycle(agg, clock)
        [after] = agg.explain(first.guid)
        [joined] = agg.explain(second.guid)
    assert before.story_id == after.story_id == joined.story_id
    assert joined.joined is not None
    assert joined.joined.entry_id == first.guid


@pytest.mark.parametrize("stored_version_matches", [True, False])
def test_a_restart_restores_the_window_from_the_stored_keys(
    tmp_path: Path, clock: FakeClock, database_url: str, stored_version_matches: bool
) -> None:
    first, second = WITHDRAWAL, CONFIRMED
    cfg = first_report_only(tmp_path)
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
    # The stored text of the first report no longer says what it was compared on: only its
    # stored keys can tie the second report to it after the restart.
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE entries SET title = 'Lisbon', summary = '' WHERE entry_id = :id"),
            {"id": first.guid},
        )
        if not stored_version_matches:  # keys read by other rules: the text is read instead
            conn.execute(text("UPDATE article_stories SET keys_version = keys_version + 1"))
    engine.dispose()
    write_feed(tmp_path / "b.xml", second)
    with make_aggregator(cfg, clock=clock) as agg:
        cycle(agg, clock)
        [joined] = agg.explain(second.guid)
    assert (joined.joined is not None) == stored_version_matches
