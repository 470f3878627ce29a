"""publish: JSON Feed 1.1 output, the Atom feed's twin, built from records directly."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from aggregator.config import SiteConfig
from aggregator.models import Entry, Feed
from aggregator.publish import MERGED_PATH, OutputFeed, plan_outputs, render_atom
from aggregator.publish.history import plan_archive
from aggregator.publish.jsonfeed import (
    JSON_FEED_VERSION,
    SUMMARY_CHARS,
    json_path,
    render_json_feed,
)

from .conftest import SHARED
from .test_publish import (
    ATOM,
    FEED_A,
    FEED_B,
    SITE,
    SOURCES,
    T0,
    TOPICS,
    make_entry,
    sample_entries,
)

CORPUS = SHARED / "corpus" / "jsonfeed"
# RFC 3339 section 5.6 date-time: a full date, "T", a time, a zone ("Z" or an offset).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
FEED_KEYS = {
    "version", "title", "home_page_url", "feed_url", "description", "user_comment",
    "next_url", "icon", "favicon", "authors", "language", "expired", "hubs", "items",
}  # fmt: skip
ITEM_KEYS = {
    "id", "url", "external_url", "title", "content_html", "content_text", "summary",
    "image", "banner_image", "date_published", "date_modified", "authors", "tags",
    "language", "attachments",
}  # fmt: skip
EXTENSION = re.compile(r"^_[A-Za-z]")


def render(output: OutputFeed, site: SiteConfig = SITE) -> bytes:
    return render_json_feed(output, site=site, sources=SOURCES, topics=TOPICS)


def load(data: bytes) -> dict[str, Any]:
    document = json.loads(data.decode("utf-8"))
    assert isinstance(document, dict)
    return document


def items(data: bytes) -> list[dict[str, Any]]:
    found = load(data)["items"]
    assert isinstance(found, list)
    return found


def atom_ids(output: OutputFeed, site: SiteConfig = SITE) -> list[str]:
    root = etree.fromstring(render_atom(output, site=site, sources=SOURCES, topics=TOPICS))
    return [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]


def walk(value: object, path: str = "$") -> Iterator[tuple[str, object]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk(child, f"{path}[{index}]")


def assert_valid_json_feed(data: bytes) -> None:
    """The rules of JSON Feed 1.1 that a machine can check."""
    document = load(data)
    assert document["version"] == JSON_FEED_VERSION
    assert isinstance(document["title"], str)
    assert document["title"]
    assert isinstance(document["items"], list)
    assert all(k in FEED_KEYS or EXTENSION.match(k) for k in document), sorted(document)
    for author in document.get("authors", []):
        assert isinstance(author.get("name"), str)
        assert author["name"]
    for item in document["items"]:
        assert all(k in ITEM_KEYS or EXTENSION.match(k) for k in item), sorted(item)
        assert isinstance(item["id"], str)
        assert item["id"]
        assert isinstance(item.get("content_html", item.get("content_text")), str)
        for key in ("date_published", "date_modified"):
            if key in item:
                assert RFC3339.match(item[key]), item[key]
                assert datetime.fromisoformat(item[key]).utcoffset() == timedelta(0)
        assert all(isinstance(tag, str) and tag for tag in item.get("tags", []))
    ids = [item["id"] for item in document["items"]]
    assert len(ids) == len(set(ids))
    nulls = [path for path, value in walk(document) if value is None]
    assert nulls == []


@pytest.fixture
def entries() -> list[Entry]:
    return sample_entries()


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("atom", "twin"),
    [
        (MERGED_PATH, "feed.json"),
        ("topics/x.atom", "topics/x.json"),
        ("topics/a.b.atom", "topics/a.b.json"),
        ("archive/2026-02.atom", "archive/2026-02.json"),
    ],
)
def test_json_path_is_the_atom_twin(atom: str, twin: str) -> None:
    assert json_path(atom) == twin


# ---------------------------------------------------------------- the spec's rules


def test_every_output_is_valid_json_feed(entries: list[Entry]) -> None:
    for output in plan_outputs(SITE, TOPICS, entries, 10):
        assert_valid_json_feed(render(output))


def test_feed_level_fields(entries: list[Entry]) -> None:
    document = load(render(plan_outputs(SITE, TOPICS, entries, 10)[0]))
    assert {k: v for k, v in document.items() if k != "items"} == {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "War Desk",
        "home_page_url": "https://news.example.org/",
        "feed_url": "https://news.example.org/feed.json",
        "description": "All entries from every source",
        "authors": [{"name": "War Desk editors"}],
    }


def test_language_and_hub_come_from_the_site(entries: list[Entry]) -> None:
    site = replace(SITE, language="uk", hub="https://hub.example.com/")
    document = load(render(plan_outputs(site, TOPICS, entries, 10)[0], site))
    assert document["language"] == "uk"
    assert document["hubs"] == [{"type": "WebSub", "url": "https://hub.example.com/"}]


def test_empty_feed_keeps_its_items_array() -> None:
    output = plan_outputs(SITE, TOPICS, [], 10)[1]
    data = render(output)
    assert_valid_json_feed(data)
    assert load(data)["items"] == []


def test_archive_is_expired_and_advertises_no_hub(entries: list[Entry]) -> None:
    site = replace(SITE, hub="https://hub.example.com/")
    archive = plan_archive(site, "2026-03", entries, earlier=[])
    document = load(render(archive, site))
    assert document["expired"] is True
    assert "hubs" not in document
    assert document["feed_url"] == "https://news.example.org/archive/2026-03.json"


# ---------------------------------------------------------------- items as Atom has them


def test_item_ids_are_the_atom_entry_ids_in_the_same_order(entries: list[Entry]) -> None:
    odd = [
        *entries,
        make_entry("https://a.example.com/статья/1", hours=5),  # an IRI: Atom writes it as a URI
        make_entry("1", feed_url=FEED_B, hours=6),  # same bare id as below, another feed
        make_entry("1", hours=7),
    ]
    for output in plan_outputs(SITE, TOPICS, odd, 10):
        assert [item["id"] for item in items(render(output))] == atom_ids(output)
    merged_ids = [item["id"] for item in items(render(plan_outputs(SITE, TOPICS, odd, 10)[0]))]
    assert "https://a.example.com/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F/1" in merged_ids


def test_item_fields(entries: list[Entry]) -> None:
    by_title = {i["title"]: i for i in items(render(plan_outputs(SITE, TOPICS, entries, 10)[0]))}

    both = by_title["Title /news/1"]
    assert both["content_html"] == "<p>Full <b>text</b></p>"
    assert both["summary"] == "Summary"  # plain text, not the HTML
    assert datetime.fromisoformat(both["date_published"]) == T0 + timedelta(hours=2)
    assert datetime.fromisoformat(both["date_modified"]) == T0 + timedelta(hours=4)
    assert both["tags"] == ["ukraine-war", "tech"]  # topic ids, as Atom's category terms
    assert "url" in both
    assert "authors" not in both  # inherits the feed's
    assert "external_url" not in both

    alpha = by_title["Title 12345"]
    assert alpha["authors"] == [{"name": "Jane Roe"}]
    assert alpha["url"] == "https://a.example.com/item?id=12345"
    assert alpha["content_html"] == "<p>Summary</p>"  # no content: the summary stands in
    assert "date_modified" not in alpha  # never updated: no modification to report


def test_titles_are_plain_text_and_fall_back_like_atom() -> None:
    angle = make_entry("a", title="std::vector<int> & 1&1")
    untitled = make_entry("b", title="", link="https://a.example.com/only-a-link", hours=1)
    nothing = make_entry("c", title="", link=None, summary="", hours=2)
    by_id = {
        i["id"]: i
        for i in items(render(plan_outputs(SITE, TOPICS, [angle, untitled, nothing], 10)[0]))
    }
    titles = sorted(i["title"] for i in by_id.values())
    assert titles == ["Untitled", "https://a.example.com/only-a-link", "std::vector<int> & 1&1"]
    bare = next(i for i in by_id.values() if i["title"] == "Untitled")
    assert bare["content_html"] == ""  # the spec wants content_html or content_text present
    assert "url" not in bare
    assert "summary" not in bare


def test_summary_is_short_plain_text() -> None:
    long = make_entry("long", summary="<p>" + "word " * 200 + "</p><script>x()</script>")
    item = items(render(plan_outputs(SITE, TOPICS, [long], 10)[0]))[0]
    assert len(item["summary"]) <= SUMMARY_CHARS
    assert item["summary"].endswith("…")
    assert "<" not in item["summary"]
    assert "x()" not in item["summary"]


def test_topic_json_has_only_its_entries(entries: list[Entry]) -> None:
    _, ukraine, tech = plan_outputs(SITE, TOPICS, entries, 10)
    document = load(render(ukraine))
    assert document["feed_url"] == "https://news.example.org/topics/ukraine-war.json"
    assert document["title"] == "War Desk: Ukraine war"
    assert len(document["items"]) == 2
    assert all("ukraine-war" in item["tags"] for item in document["items"])
    assert [i["id"] for i in items(render(tech))] == atom_ids(tech)


# ---------------------------------------------------------------- attribution


def test_source_names_the_origin_feed(entries: list[Entry]) -> None:
    by_title = {i["title"]: i for i in items(render(plan_outputs(SITE, TOPICS, entries, 10)[0]))}
    assert by_title["Title 12345"]["_source"] == {
        "title": "Alpha News",
        "feed_url": FEED_A,
        "home_page_url": "https://a.example.com/",
    }
    # Beta Wire has no home page: the key is left out, never null
    assert by_title["Title /news/1"]["_source"] == {"title": "Beta Wire", "feed_url": FEED_B}


def test_source_never_shows_feed_credentials() -> None:
    secret = "https://user:s3cret@c.example.com/feed?apikey=abc&x=1"
    entry = replace(make_entry("s"), feed_url=secret, feed_title=None)
    data = render(plan_outputs(SITE, TOPICS, [entry], 10)[0])
    assert b"s3cret" not in data
    assert b"abc" not in data
    source = items(data)[0]["_source"]
    assert source == {
        "title": "https://c.example.com/feed?apikey=***&x=1",
        "feed_url": "https://c.example.com/feed?apikey=***&x=1",
    }


def test_also_credits_the_other_feeds_carrying_the_article() -> None:
    first = replace(make_entry("a1", link="https://a.example.com/story"), article_id="art-1")
    same_page = replace(
        make_entry("b1", feed_url=FEED_B, link="https://a.example.com/story"),
        first_seen_at=T0 + timedelta(hours=1),
        article_id="art-1",
    )
    output = plan_outputs(SITE, TOPICS, [first, same_page], 10)[0]
    (item,) = items(render(output))
    assert item["id"] == atom_ids(output)[0]
    # Beta's copy is the same page: Beta is credited by its feed instead
    assert item["_source"]["also"] == [{"title": "Beta Wire", "url": FEED_B}]
    assert "related" not in item["_source"]


def test_related_lists_a_collapsed_storys_other_reports() -> None:
    site = replace(SITE, stories="collapse")
    lead = replace(make_entry("lead", hours=1), story_id="story-1")
    later = replace(
        make_entry("later", feed_url=FEED_B, hours=2, link="https://b.example.net/later"),
        story_id="story-1",
    )
    output = plan_outputs(site, TOPICS, [lead, later], 10)[0]
    data = render(output, site)
    assert_valid_json_feed(data)
    (item,) = items(data)
    assert item["title"] == "Title lead"
    assert item["_source"]["related"] == [
        {"title": "Beta Wire: Title later", "url": "https://b.example.net/later"}
    ]


# ---------------------------------------------------------------- bytes


def test_same_inputs_give_the_same_bytes_and_round_trip(entries: list[Entry]) -> None:
    output = plan_outputs(SITE, TOPICS, entries, 10)[0]
    data = render(output)
    assert render(plan_outputs(SITE, TOPICS, list(reversed(sample_entries())), 10)[0]) == data
    assert data.endswith(b"}\n")
    assert b'\n  "version": ' in data  # 2-space indent
    document = load(data)
    keys = list(document)
    assert keys[0] == "version"  # readers sniff a partial download for it
    assert keys[-1] == "items"
    # re-serialised the same way, the parsed document is the same bytes
    assert (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode() == data


def test_non_ascii_is_written_as_utf8_and_bad_characters_are_dropped() -> None:
    dirty = make_entry(
        "ctl", title="Київ\x00 \ud800news", summary="<p>sum\x08mary</p>", author="Au\x01thor"
    )
    data = render(plan_outputs(SITE, TOPICS, [dirty], 10)[0])
    assert "Київ news".encode() in data  # not \\u escapes
    item = items(data)[0]
    assert item["title"] == "Київ news"
    assert item["summary"] == "summary"
    assert item["authors"] == [{"name": "Author"}]


def test_publish_date_is_never_now(entries: list[Entry]) -> None:
    data = render(plan_outputs(SITE, TOPICS, entries, 10)[0])
    published = {i["date_published"] for i in items(data)}
    expected = {(T0 + timedelta(hours=h)).isoformat() for h in (1, 3, 2, -10)}
    assert published == expected


# ---------------------------------------------------------------- real feeds


def _shapes(documents: list[dict[str, Any]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    feed: dict[str, set[str]] = {}
    item: dict[str, set[str]] = {}
    for document in documents:
        for key, value in document.items():
            feed.setdefault(key, set()).add(type(value).__name__)
        for entry in document.get("items", []):
            for key, value in entry.items():
                item.setdefault(key, set()).add(type(value).__name__)
    return feed, item


@pytest.mark.corpus
def test_key_shapes_match_real_json_feeds(entries: list[Entry]) -> None:
    files = sorted(Path(CORPUS).glob("*.json"))
    if not files:
        pytest.skip(f"JSON Feed corpus not found at {CORPUS} (../shared is absent)")
    theirs_feed, theirs_item = _shapes([json.loads(f.read_text("utf-8")) for f in files])
    site = replace(SITE, language="en")
    ours = load(render(plan_outputs(site, TOPICS, entries, 10)[0], site))
    ours_feed, ours_item = _shapes([ours])
    for mine, theirs in ((ours_feed, theirs_feed), (ours_item, theirs_item)):
        shared = {k for k in mine if k in theirs and not k.startswith("_")}
        assert shared, "no key in common with any real feed"
        for key in shared:
            assert mine[key] <= theirs[key] - {"NoneType"}, key
    # 1.1 feeds among them carry authors as objects with a name, as ours do
    assert {tuple(a) for a in ours["authors"]} == {("name",)}
    assert ours_feed.keys() - theirs_feed.keys() <= {"hubs", "expired"}
    assert {k for k in ours_item if not k.startswith("_")} <= theirs_item.keys()


def test_unknown_source_feed_is_credited_by_its_entry() -> None:
    orphan = replace(make_entry("o"), feed_url="https://gone.example.com/rss", feed_title="Gone")
    sources: dict[str, Feed] = {}
    data = render_json_feed(
        plan_outputs(SITE, TOPICS, [orphan], 10)[0], site=SITE, sources=sources, topics=TOPICS
    )
    assert items(data)[0]["_source"] == {
        "title": "Gone",
        "feed_url": "https://gone.example.com/rss",
    }
