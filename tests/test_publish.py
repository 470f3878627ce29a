"""publish: Atom output built from records directly (no store, no network)."""

from __future__ import annotations

import dataclasses
import html
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from lxml import etree

from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.models import Entry, Feed, TopicMatch
from aggregator.parse import parse_bytes
from aggregator.publish import (
    MERGED_PATH,
    OutputFeed,
    is_absolute_iri,
    plan_outputs,
    render_atom,
    write_outputs,
)

ATOM = "{http://www.w3.org/2005/Atom}"
RNG_PATH = Path(__file__).resolve().parents[2] / "shared" / "validators" / "atom.rng"

SITE = SiteConfig(title="War Desk", url="https://news.example.org/", author="War Desk editors")
TOPICS = (
    TopicRule(id="ukraine-war", title="Ukraine war"),
    TopicRule(id="tech", title="Technology"),
)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEED_A = "https://a.example.com/rss"
FEED_B = "https://b.example.net/atom.xml"
SOURCES = {
    FEED_A: Feed(
        url=FEED_A,
        title="Alpha News",
        link="https://a.example.com/",
        feed_id=None,
        updated=T0 + timedelta(hours=5),
        active=True,
    ),
    FEED_B: Feed(
        url=FEED_B,
        title="Beta Wire",
        link=None,
        feed_id="urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6",
        updated=None,
        active=True,
    ),
}


def make_entry(
    entry_id: str,
    *,
    feed_url: str = FEED_A,
    hours: int = 0,
    title: str | None = None,
    topics: tuple[str, ...] = (),
    link: str | None = "auto",
    summary: str = "<p>Summary</p>",
    content: str = "",
    updated: datetime | None = None,
    author: str | None = None,
) -> Entry:
    published = T0 + timedelta(hours=hours)
    return Entry(
        feed_url=feed_url,
        entry_id=entry_id,
        title=title if title is not None else f"Title {entry_id}",
        link=f"https://a.example.com/item?id={quote(entry_id, safe='')}"
        if link == "auto"
        else link,
        summary=summary,
        content=content,
        published=published,
        updated=updated,
        first_seen_at=published,
        author=author,
        topics=tuple(TopicMatch(topic_id=t, reasons=("hint",)) for t in topics),
    )


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def render(output: OutputFeed) -> bytes:
    return render_atom(output, site=SITE, sources=SOURCES, topics=TOPICS)


def entry_ids(root: etree._Element) -> list[str]:
    return [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]


def assert_valid_atom(data: bytes) -> None:
    if not RNG_PATH.exists():
        pytest.skip(f"Atom RELAX NG schema not found at {RNG_PATH} (../shared is absent)")
    schema = etree.RelaxNG(etree.parse(str(RNG_PATH)))
    schema.assertValid(parse(data))


def sample_entries() -> list[Entry]:
    """Two sources, three topics' worth of overlap, relative and absolute ids."""
    return [
        make_entry("https://a.example.com/posts/1", hours=1, topics=("ukraine-war",)),
        make_entry("12345", hours=3, topics=("tech",), author="Jane Roe"),
        make_entry(
            "/news/1",
            feed_url=FEED_B,
            hours=2,
            topics=("ukraine-war", "tech"),
            content="<p>Full <b>text</b></p>",
            updated=T0 + timedelta(hours=4),
        ),
        make_entry("urn:example:old", feed_url=FEED_B, hours=-10),
    ]


@pytest.fixture
def entries() -> list[Entry]:
    return sample_entries()


# ---------------------------------------------------------------- planning


def test_plan_has_merged_feed_and_one_per_configured_topic(entries: list[Entry]) -> None:
    outputs = plan_outputs(SITE, (*TOPICS, TopicRule(id="empty", title="Nothing")), entries, 10)
    assert [o.path for o in outputs] == [
        MERGED_PATH,
        "topics/ukraine-war.atom",
        "topics/tech.atom",
        "topics/empty.atom",
    ]
    assert outputs[-1].entries == ()


def test_plan_orders_newest_first_with_stable_ties(entries: list[Entry]) -> None:
    tie_b = make_entry("b", feed_url=FEED_B, hours=3)
    tie_a2 = make_entry("z", hours=3)
    merged = plan_outputs(SITE, TOPICS, [*entries, tie_b, tie_a2], 10)[0]
    assert [(e.feed_url, e.entry_id) for e in merged.entries] == [
        (FEED_A, "12345"),
        (FEED_A, "z"),
        (FEED_B, "b"),
        (FEED_B, "/news/1"),
        (FEED_A, "https://a.example.com/posts/1"),
        (FEED_B, "urn:example:old"),
    ]


def test_plan_caps_each_feed_at_feed_items(entries: list[Entry]) -> None:
    outputs = plan_outputs(SITE, TOPICS, entries, 2)
    merged, ukraine, tech = outputs
    assert [e.entry_id for e in merged.entries] == ["12345", "/news/1"]
    assert [e.entry_id for e in ukraine.entries] == ["/news/1", "https://a.example.com/posts/1"]
    assert [e.entry_id for e in tech.entries] == ["12345", "/news/1"]


def test_topic_feed_contains_only_that_topic(entries: list[Entry]) -> None:
    _, ukraine, _ = plan_outputs(SITE, TOPICS, entries, 10)
    root = parse(render(ukraine))
    assert len(root.findall(f"{ATOM}entry")) == 2
    for element in root.findall(f"{ATOM}entry"):
        terms = [c.get("term") for c in element.findall(f"{ATOM}category")]
        assert "ukraine-war" in terms
    assert root.findtext(f"{ATOM}id") == "https://news.example.org/topics/ukraine-war.atom"


# ---------------------------------------------------------------- rendering


def test_merged_feed_is_valid_atom_with_feed_level_metadata(entries: list[Entry]) -> None:
    data = render(plan_outputs(SITE, TOPICS, entries, 10)[0])
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<feed")
    assert b"\n  <entry>" in data  # pretty-printed
    assert_valid_atom(data)
    root = parse(data)
    assert root.findtext(f"{ATOM}id") == "https://news.example.org/feed.atom"
    assert root.findtext(f"{ATOM}title") == "War Desk"
    links = {link.get("rel"): link for link in root.findall(f"{ATOM}link")}
    assert links["self"].get("href") == "https://news.example.org/feed.atom"
    assert links["self"].get("type") == "application/atom+xml"
    assert links["alternate"].get("href") == "https://news.example.org/"
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "War Desk editors"
    # newest of the entries' updated-or-published, not the time of the run
    assert datetime.fromisoformat(root.findtext(f"{ATOM}updated") or "") == T0 + timedelta(hours=4)
    generator = root.find(f"{ATOM}generator")
    assert generator is not None
    assert generator.text == "aggregator"
    assert generator.get("version")
    assert generator.get("uri") is None  # not feedgen's


def test_rendered_entries_are_newest_first(entries: list[Entry]) -> None:
    root = parse(render(plan_outputs(SITE, TOPICS, entries, 10)[0]))
    published = [
        datetime.fromisoformat(e.findtext(f"{ATOM}published") or "")
        for e in root.findall(f"{ATOM}entry")
    ]
    assert published == sorted(published, reverse=True)
    assert len(published) == 4


def test_entry_fields_categories_and_source(entries: list[Entry]) -> None:
    root = parse(render(plan_outputs(SITE, TOPICS, entries, 10)[0]))
    by_title = {e.findtext(f"{ATOM}title"): e for e in root.findall(f"{ATOM}entry")}

    both = by_title["Title /news/1"]
    title = both.find(f"{ATOM}title")
    assert title is not None
    assert title.get("type") == "text"
    categories = [
        (c.get("term"), c.get("label"), c.get("scheme")) for c in both.findall(f"{ATOM}category")
    ]
    assert categories == [
        ("ukraine-war", "Ukraine war", "https://news.example.org/topics/"),
        ("tech", "Technology", "https://news.example.org/topics/"),
    ]
    assert datetime.fromisoformat(both.findtext(f"{ATOM}updated") or "") == T0 + timedelta(hours=4)
    assert datetime.fromisoformat(both.findtext(f"{ATOM}published") or "") == T0 + timedelta(
        hours=2
    )
    content = both.find(f"{ATOM}content")
    assert content is not None
    assert content.get("type") == "html"
    assert content.text == "<p>Full <b>text</b></p>"
    source = both.find(f"{ATOM}source")
    assert source is not None
    assert source.findtext(f"{ATOM}id") == "urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6"
    assert source.findtext(f"{ATOM}title") == "Beta Wire"
    assert [(lk.get("rel"), lk.get("href")) for lk in source.findall(f"{ATOM}link")] == [
        ("self", FEED_B)
    ]
    # source feed's updated is unknown: falls back to the entry's updated
    assert datetime.fromisoformat(source.findtext(f"{ATOM}updated") or "") == T0 + timedelta(
        hours=4
    )

    alpha = by_title["Title 12345"]
    assert alpha.findtext(f"{ATOM}author/{ATOM}name") == "Jane Roe"
    link = alpha.find(f"{ATOM}link")
    assert link is not None
    assert link.get("rel") == "alternate"
    assert link.get("href", "").startswith("https://a.example.com/")
    summary = alpha.find(f"{ATOM}summary")
    assert summary is not None
    assert summary.get("type") == "html"
    assert summary.text == "<p>Summary</p>"
    assert alpha.find(f"{ATOM}content") is None  # empty content is omitted
    source = alpha.find(f"{ATOM}source")
    assert source is not None
    assert source.findtext(f"{ATOM}id") == FEED_A  # no feed_id: the feed URL
    assert source.findtext(f"{ATOM}title") == "Alpha News"
    assert {lk.get("rel"): lk.get("href") for lk in source.findall(f"{ATOM}link")} == {
        "alternate": "https://a.example.com/",
        "self": FEED_A,
    }
    assert datetime.fromisoformat(source.findtext(f"{ATOM}updated") or "") == T0 + timedelta(
        hours=5
    )


def test_absolute_ids_kept_and_others_minted_stably(entries: list[Entry]) -> None:
    output = plan_outputs(SITE, TOPICS, entries, 10)[0]
    ids = entry_ids(parse(render(output)))
    assert "https://a.example.com/posts/1" in ids
    assert "urn:example:old" in ids
    minted = [i for i in ids if i.startswith("tag:")]
    assert len(minted) == 2
    for value in minted:
        assert value.startswith("tag:news.example.org,2026:entry/")
        assert len(value.rsplit("/", 1)[1]) == 32
    assert "12345" not in ids
    assert "/news/1" not in ids
    # a separate render (as in a later run) mints the same ids
    rebuilt = plan_outputs(
        SITE, TOPICS, [make_entry(e.entry_id, feed_url=e.feed_url) for e in entries], 10
    )
    assert set(minted) <= set(entry_ids(parse(render(rebuilt[0]))))


def test_same_entry_id_in_two_feeds_mints_distinct_ids() -> None:
    output = plan_outputs(
        SITE, TOPICS, [make_entry("1", feed_url=FEED_A), make_entry("1", feed_url=FEED_B)], 10
    )[0]
    ids = entry_ids(parse(render(output)))
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/a", True),
        ("urn:uuid:1234", True),
        ("tag:example.com,2020:x", True),
        ("12345", False),
        ("/news/1", False),
        ("1http://x", False),
        ("http://example.com/a b", False),
        ("", False),
    ],
)
def test_is_absolute_iri(value: str, expected: bool) -> None:
    assert is_absolute_iri(value) is expected


def test_control_characters_are_stripped() -> None:
    dirty = make_entry(
        "ctl",
        title="Bad\x00 ti\x0btle\x1f",
        summary="<p>sum\x08mary</p>",
        content="con\x0ctent",
        author="Au\x01thor",
        topics=("tech",),
    )
    data = render(plan_outputs(SITE, TOPICS, [dirty], 10)[0])
    assert_valid_atom(data)
    element = parse(data).find(f"{ATOM}entry")
    assert element is not None
    assert element.findtext(f"{ATOM}title") == "Bad title"
    assert element.findtext(f"{ATOM}summary") == "<p>summary</p>"
    assert element.findtext(f"{ATOM}content") == "content"
    assert element.findtext(f"{ATOM}author/{ATOM}name") == "Author"


def test_html_characters_in_title_round_trip_escaped() -> None:
    title = 'Kyiv <live> & "updates" <script>x</script>'
    data = render(plan_outputs(SITE, TOPICS, [make_entry("h", title=title)], 10)[0])
    assert b"<live>" not in data
    assert b"<script>" not in data
    element = parse(data).find(f"{ATOM}entry/{ATOM}title")
    assert element is not None
    assert element.get("type") == "html"  # escaped HTML: no reader mistakes it for markup
    assert element.text == html.escape(title, quote=False)
    # What readers show: feedparser hands on HTML, which renders as the original text…
    assert html.unescape(feedparser.parse(data).entries[0].title) == title
    # …and our own parser, reading our output back, gets the original title.
    assert parse_bytes(data, url="https://news.example.org/feed.atom").entries[0].title == title


def test_empty_feed_is_valid_and_dated_at_epoch() -> None:
    output = OutputFeed(path="topics/tech.atom", title="Empty", subtitle="", entries=())
    data = render(output)
    assert_valid_atom(data)
    root = parse(data)
    assert root.findall(f"{ATOM}entry") == []
    assert root.find(f"{ATOM}subtitle") is None
    assert datetime.fromisoformat(root.findtext(f"{ATOM}updated") or "") == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    assert render(output) == data


def test_entry_without_link_or_content_is_still_valid() -> None:
    bare = make_entry("bare", link=None, summary="", feed_url="https://unknown.example/feed")
    data = render(plan_outputs(SITE, TOPICS, [bare], 10)[0])
    assert_valid_atom(data)
    element = parse(data).find(f"{ATOM}entry")
    assert element is not None
    assert element.find(f"{ATOM}content") is not None  # RFC 4287: content or alternate link
    # a feed missing from `sources` still gets a source block built from the entry
    assert element.findtext(f"{ATOM}source/{ATOM}id") == "https://unknown.example/feed"


def test_every_topic_feed_is_valid(entries: list[Entry]) -> None:
    for output in plan_outputs(SITE, TOPICS, entries, 10):
        assert_valid_atom(render(output))


# ---------------------------------------------------------------- writing


def test_write_outputs_writes_then_leaves_unchanged_files_alone(
    tmp_path: Path, entries: list[Entry]
) -> None:
    outputs = plan_outputs(SITE, TOPICS, entries, 10)
    out = tmp_path / "output"
    first = write_outputs(outputs, out, site=SITE, sources=SOURCES, topics=TOPICS)
    expected = [out / "feed.atom", out / "topics/ukraine-war.atom", out / "topics/tech.atom"]
    twins = [path.with_suffix(".json") for path in expected]
    assert first == [p for pair in zip(expected, twins, strict=True) for p in pair] + [
        out / "index.html",
        out / "sources.opml",
    ]
    for path, output in zip(expected, outputs, strict=True):
        assert path.read_bytes() == render(output)

    # Backdate the files so an unwanted rewrite would show as a changed mtime.
    for path in expected:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    second = write_outputs(outputs, out, site=SITE, sources=SOURCES, topics=TOPICS)
    assert second == []
    assert all(path.stat().st_mtime_ns == 1_000_000_000 for path in expected)

    newer = make_entry("fresh", hours=10, topics=("tech",))
    third = write_outputs(
        plan_outputs(SITE, TOPICS, [*entries, newer], 10),
        out,
        site=SITE,
        sources=SOURCES,
        topics=TOPICS,
    )
    assert third == [
        out / "feed.atom",
        out / "feed.json",
        out / "topics/tech.atom",
        out / "topics/tech.json",
        out / "index.html",
    ]
    assert list(out.rglob("*.tmp")) == []


def test_synthetic_hash_ids_are_minted_per_feed() -> None:
    # parse.py's "sha256:<hash of title+content>" ids are ours, not the source's atom:id,
    # and two feeds carrying the same text would collide on them.
    same = [make_entry("sha256:abc", feed_url=FEED_A), make_entry("sha256:abc", feed_url=FEED_B)]
    ids = entry_ids(parse(render(plan_outputs(SITE, TOPICS, same, 10)[0])))
    assert all(i.startswith("tag:news.example.org,2026:entry/") for i in ids)
    assert len(set(ids)) == 2


def test_write_outputs_refuses_paths_outside_output_dir(tmp_path: Path) -> None:
    escaping = OutputFeed(path="topics/../../evil.atom", title="x", subtitle="", entries=())
    with pytest.raises(RenderError):
        write_outputs([escaping], tmp_path / "out", site=SITE, sources=SOURCES, topics=TOPICS)
    assert not (tmp_path / "evil.atom").exists()


def test_feed_urls_with_credentials_are_never_published() -> None:
    secret_feed = "https://reader:s3cret@private.example/rss?apikey=K3Y&lang=en"
    entry = make_entry("1", feed_url=secret_feed, link=None)
    output = OutputFeed(path=MERGED_PATH, title="t", subtitle="", entries=(entry,))

    data = render_atom(output, site=SITE, sources={}, topics=TOPICS).decode()

    assert "s3cret" not in data
    assert "K3Y" not in data
    assert "https://private.example/rss?apikey=***&amp;lang=en" in data


def test_source_language_and_rights_travel_with_its_entries() -> None:
    feed = dataclasses.replace(SOURCES[FEED_A], language="uk", rights="© Alpha News")
    entry = make_entry("1")
    output = OutputFeed(path=MERGED_PATH, title="t", subtitle="", entries=(entry,))

    root = parse(render_atom(output, site=SITE, sources={FEED_A: feed}, topics=TOPICS))

    [element] = root.findall(f"{ATOM}entry")
    assert element.get("{http://www.w3.org/XML/1998/namespace}lang") == "uk"
    assert element.findtext(f"{ATOM}source/{ATOM}rights") == "© Alpha News"


def test_a_long_feed_rendered_in_pieces_is_the_same_document() -> None:
    entries = tuple(
        make_entry(f"e{n}", hours=-n, topics=("ukraine-war",) if n % 2 else (), author="Desk")
        for n in range(7)
    )
    output = OutputFeed(
        path="archive/2026-11.atom", title="All", subtitle="", entries=entries, archive=True
    )
    whole = render_atom(output, site=SITE, sources=SOURCES, topics=TOPICS)
    pieces = render_atom(output, site=SITE, sources=SOURCES, topics=TOPICS, chunk=3)
    assert pieces == whole
    assert len(entry_ids(parse(pieces))) == 7
