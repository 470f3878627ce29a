"""Tests for aggregator.jsonfeed: JSON Feed 1.0/1.1 bytes → ParsedFeed, or ParseError."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.jsonfeed import looks_like_json_feed, parse_json_feed
from aggregator.models import FetchResult, ParsedFeed
from aggregator.parse import parse_bytes, parse_feed

URL = "https://blog.example.org/feed.json"
V1 = "https://jsonfeed.org/version/1"
V11 = "https://jsonfeed.org/version/1.1"


def document(*items: Any, version: str = V11, **feed: Any) -> bytes:
    return json.dumps({"version": version, "title": "Blog", **feed, "items": list(items)}).encode()


def parse(content: bytes, *, base: str = URL) -> ParsedFeed:
    return parse_json_feed(content, url=URL, base=base)


def one(item: dict[str, Any], **feed: Any) -> Any:
    [entry] = parse(document(item, **feed)).entries
    return entry


def scripting(fragment: str) -> list[str]:
    """Anything in an HTML fragment that could run script in a browser."""
    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    found = [f"<{n.tag}>" for n in root.iter() if n.tag in {"script", "iframe", "object"}]
    for node in root.iter():
        for name, value in node.attrib.items():
            if name.startswith("on") or value.strip().lower().startswith("javascript:"):
                found.append(f"{name}={value!r}")
    return found


def assert_sane(feed: ParsedFeed) -> None:
    assert feed.title
    assert feed.title == " ".join(feed.title.split())
    for entry in feed.entries:
        assert entry.entry_id
        assert entry.entry_id == entry.entry_id.strip()
        assert entry.title == " ".join(entry.title.split())
        assert "<" not in entry.title or not re.search(r"</?(p|a|b|em|script)\b", entry.title)
        assert entry.title or entry.summary or entry.content
        assert entry.link is None or urlsplit(entry.link).scheme in {"http", "https", "mailto"}
        for moment in (entry.published, entry.updated):
            assert moment is None or moment.utcoffset() == timedelta(0)
        assert scripting(entry.summary) == []
        assert scripting(entry.content) == []
    assert len({e.entry_id for e in feed.entries}) == len(feed.entries)


# ---------------------------------------------------------------- the shared corpus

# file → (title, entries, first entry's id, its link, its published date in UTC)
CORPUS = {
    "authors-1.1.json": ("Author test feed", 0, None, None, None),
    "cowboyprogrammer.json": (
        "Cowboy Programmer",
        10,
        "https://cowboyprogrammer.org/2018/03/fixed-vs-variable-interest-rates/",
        "https://cowboyprogrammer.org/2018/03/fixed-vs-variable-interest-rates/",
        datetime(2018, 3, 5, 21, 0, tzinfo=UTC),
    ),
    "daringfireball.json": (
        "Daring Fireball",
        48,
        "https://daringfireball.net/linked/2017/06/26/the-talk-show-195",
        "https://daringfireball.net/linked/2017/06/26/the-talk-show-195",
        datetime(2017, 6, 27, 0, 54, 17, tzinfo=UTC),
    ),
    "elastic-1.1.json": (
        "Blog \u2013 InfluxData",  # "&#8211;" in a field the spec calls plain text
        3,
        # No ids: the link stands in, as parse.py does for RSS items without a guid.
        "https://www.influxdata.com/blog/influxdb-outperforms-graphite-in-time-series-data-metrics-benchmark",
        "https://www.influxdata.com/blog/influxdb-outperforms-graphite-in-time-series-data-metrics-benchmark",
        None,  # RFC 822 where RFC 3339 is required
    ),
    "inessential.json": (
        "inessential.com",
        20,
        "http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi",
        "http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi",
        datetime(2017, 6, 3, 5, 5, 47, tzinfo=UTC),
    ),
    "netnewswire-3960.json": (
        "fboës - Der Blog | Startseite",
        20,
        "user/posts/2020-02-21-lecker-lecker/index.md",  # an opaque id, kept as written
        "https://journal.3960.org/posts/2020-02-21-lecker-lecker/",
        datetime(2020, 2, 21, 17, 8, 6, tzinfo=UTC),
    ),
    "pxlnv.json": (
        "Pixel Envy",
        20,
        "https://pxlnv.com/linklog/uber-losses-2017/",
        "https://pxlnv.com/linklog/uber-losses-2017/",
        datetime(2018, 2, 13, 23, 23, 12, tzinfo=UTC),
    ),
    "spec-example-1.json": (
        "JSON Feed",
        1,
        "https://jsonfeed.org/2017/05/17/announcing_json_feed",
        "https://jsonfeed.org/2017/05/17/announcing_json_feed",
        datetime(2017, 5, 17, 15, 2, 12, tzinfo=UTC),
    ),
}


@pytest.mark.corpus
def test_every_corpus_json_feed_parses(shared_dir: Path) -> None:
    files = sorted((shared_dir / "corpus" / "jsonfeed").glob("*.json"))
    assert [p.name for p in files] == sorted(CORPUS)
    for path in files:
        content = path.read_bytes()
        assert looks_like_json_feed(content, ""), path.name
        feed = parse_bytes(content, url=f"https://corpus.example/{path.name}")
        title, count, first_id, first_link, first_published = CORPUS[path.name]
        assert (feed.title, len(feed.entries)) == (title, count), path.name
        assert_sane(feed)
        if feed.entries:
            first = feed.entries[0]
            assert (first.entry_id, first.link, first.published) == (
                first_id,
                first_link,
                first_published,
            ), path.name
            assert all(e.title for e in feed.entries), path.name


@pytest.mark.corpus
def test_corpus_dates_and_warnings(shared_dir: Path) -> None:
    folder = shared_dir / "corpus" / "jsonfeed"
    daring = parse_bytes((folder / "daringfireball.json").read_bytes(), url=URL)
    assert all(e.published and e.updated and e.updated >= e.published for e in daring.entries)
    assert daring.warning is None
    assert daring.feed_id == "https://daringfireball.net/feeds/json"
    elastic = parse_bytes((folder / "elastic-1.1.json").read_bytes(), url=URL)
    assert elastic.warning == "2 item(s) with dates that are not RFC 3339 read as undated"
    assert elastic.entries[0].categories == (
        "InfluxDB",
        "Community",
        "Elasticsearch",
        "Time Series Database",
    )
    authors = parse_bytes((folder / "authors-1.1.json").read_bytes(), url=URL)
    # Four items with an id but neither title nor text: skipped, as parse.py skips them.
    assert authors.warning == "4 item(s) with no title or text skipped"


@pytest.mark.corpus
def test_corpus_authors_1_1_and_legacy_author(shared_dir: Path) -> None:
    doc = json.loads((shared_dir / "corpus" / "jsonfeed" / "authors-1.1.json").read_bytes())
    for item in doc["items"]:
        item["content_text"] = "text"  # the sample's items are empty; give them a body
    feed = parse(json.dumps(doc).encode())
    assert {e.entry_id: e.author for e in feed.entries} == {
        "Item without authors": "Root Author 1, Root Author 2",
        "Item with legacy author": "Legacy Item Author",
        "Item with modern authors": "Item Author 1, Item Author 2",
        "Item with both": "Item Author 1, Item Author 2",
    }


def feedparser_expectations(content: bytes) -> list[str]:
    """The clauses of the ``Expect:`` line feedparser's own test files carry (for JSON,
    in a ``__TEST__`` member)."""
    match = re.search(rb"Expect:\s*(.*?)\s*(?:-->|$)", content, re.M)
    assert match is not None
    return [c.strip() for c in match.group(1).decode().split(" and ")]


def check_feedparser_clause(clause: str, feed: ParsedFeed) -> None:
    """The clauses that map onto a ParsedFeed; an unknown one fails, so that it is noticed."""
    if clause == "not bozo":
        assert feed.warning is None
    elif match := re.fullmatch(r"feed\.title == '(.*)'", clause):
        assert feed.title == match.group(1)
    elif match := re.fullmatch(r"len\(entries\) == (\d+)", clause):
        assert len(feed.entries) == int(match.group(1))
    else:
        pytest.fail(f"no mapping for feedparser expectation {clause!r}")


@pytest.mark.corpus
def test_feedparser_json_cases(shared_dir: Path) -> None:
    folder = shared_dir / "corpus" / "feedparser-tests" / "json"
    files = sorted(folder.glob("*.json"))
    assert files
    for path in files:
        content = path.read_bytes()
        feed = parse_bytes(content, url=f"https://example.org/{path.name}")
        for clause in feedparser_expectations(content):
            check_feedparser_clause(clause, feed)
        assert_sane(feed)
    example = parse_bytes((folder / "example.json").read_bytes(), url=URL)
    second, first = example.entries
    assert (second.entry_id, second.title, second.author) == ("2", "post 2", "me")
    assert second.categories == ("test", "JSON")
    assert second.summary == "<p>This is a second item.</p>"
    assert (first.entry_id, first.link, first.author) == (
        "1",
        "https://example.org/initial-post",
        "you",
    )
    assert "<script" not in first.summary
    assert "alert" not in first.summary
    assert first.summary.startswith("<p>Hello, world!</p>")


# ---------------------------------------------------------------- mapping


def test_feed_fields() -> None:
    feed = parse(
        document(
            {"id": "1", "title": "t"},
            home_page_url="/",
            feed_url="https://blog.example.org/feed.json",
            description="Notes &amp; links",
        )
    )
    assert feed.url == URL
    assert feed.title == "Blog"
    assert feed.link == "https://blog.example.org/"
    assert feed.feed_id == "https://blog.example.org/feed.json"
    assert feed.subtitle == "Notes & links"
    assert feed.updated is None
    assert feed.warning is None


def test_untitled_feed_is_named_by_its_host() -> None:
    feed = parse(json.dumps({"version": V1, "items": []}).encode())
    assert (feed.title, feed.entries) == ("blog.example.org", ())


def test_script_in_content_html_is_removed() -> None:
    entry = one(
        {
            "id": "x",
            "content_html": '<p onclick="steal()">Hi <a href="javascript:alert(1)">there</a></p>'
            "<script>alert(document.cookie)</script><iframe src='https://evil.test'></iframe>",
        }
    )
    assert scripting(entry.summary) == []
    assert "alert" not in entry.summary
    assert "Hi" in entry.summary
    assert "there" in entry.summary


def test_content_html_goes_through_the_parse_sanitizer() -> None:
    # The same markup, once in RSS and once in JSON Feed, comes out the same.
    markup = '<p style="color:red">x<img src="data:x" onerror="y"><b>bold</b></p><svg></svg>'
    rss = (
        '<rss version="2.0"><channel><title>t</title><item><guid>1</guid>'
        f"<description><![CDATA[{markup}]]></description></item></channel></rss>"
    ).encode()
    from_rss = parse_bytes(rss, url=URL).entries[0].summary
    assert one({"id": "1", "content_html": markup}).summary == from_rss


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(42, "42"), (1.5, "1.5"), (0, "0"), (-7, "-7"), (True, "true"), (" abc ", "abc")],
)
def test_ids_are_strings_numbers_coerced(raw: Any, expected: str) -> None:
    assert one({"id": raw, "title": "t"}).entry_id == expected


UNIDENTIFIED_RSS = (
    b'<rss version="2.0"><channel><title>t</title><item><title>Post</title>'
    b"<pubDate>Tue, 02 Jan 2024 03:04:05 GMT</pubDate></item></channel></rss>"
)


def test_missing_id_falls_back_to_the_link_then_to_a_stable_hash() -> None:
    assert one({"url": "/a", "title": "t"}).entry_id == "https://blog.example.org/a"
    for missing in ({}, {"id": None}, {"id": ""}, {"id": {"x": 1}}, {"id": [1]}):
        item = {**missing, "title": "Post", "date_published": "2024-01-02T03:04:05Z"}
        entry = one(item)
        assert entry.entry_id.startswith("sha256:")
        assert entry.entry_id == one(dict(item)).entry_id  # stable across polls
        # ... and the id parse.py derives for the same RSS item.
        assert entry.entry_id == parse_bytes(UNIDENTIFIED_RSS, url=URL).entries[0].entry_id


def test_reused_ids_are_kept_apart_with_a_warning() -> None:
    feed = parse(document({"id": 1, "title": "a"}, {"id": "1", "title": "b"}))
    assert [e.title for e in feed.entries] == ["a", "b"]
    assert feed.entries[0].entry_id == "1"
    assert feed.entries[1].entry_id.startswith("1#")
    assert feed.warning == "1 item(s) reuse another item's id; kept under derived ids"


def test_links_resolve_against_the_base_and_external_url_is_the_fallback() -> None:
    base = "https://cdn.example.net/feeds/blog.json"
    feed = parse(
        document(
            {"id": "1", "title": "a", "url": "../posts/1"},
            {"id": "2", "title": "b", "external_url": "https://elsewhere.test/x"},
            {"id": "3", "title": "c", "url": "javascript:alert(1)"},
            {"id": "4", "title": "d", "url": "https://blog.example.org/4", "external_url": "x"},
            {"id": "5", "title": "e", "url": 5},
        ),
        base=base,
    )
    assert [e.link for e in feed.entries] == [
        "https://cdn.example.net/posts/1",
        "https://elsewhere.test/x",
        None,
        "https://blog.example.org/4",
        None,
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Plain title", "Plain title"),
        ("  spaced \n  out ", "spaced out"),
        ("std::vector<int> in C++", "std::vector<int> in C++"),
        ("AT&T and Q&A", "AT&T and Q&A"),
        # As parse.py's titles: markup that was escaped is still markup, and goes too.
        ("Fish &amp; chips &#8211; &lt;b&gt;cheap&lt;/b&gt;", "Fish & chips \u2013 cheap"),
        ("<b>Bold</b> <script>x()</script>news", "Bold news"),
        (17, ""),
    ],
)
def test_titles_are_plain_text(raw: Any, expected: str) -> None:
    assert one({"id": "1", "title": raw, "content_text": "body"}).title == expected


def test_content_text_becomes_escaped_paragraphs() -> None:
    entry = one({"id": "1", "content_text": "a < b & c\r\n\r\nline one\nline two\n\n\n"})
    assert entry.summary == "<p>a &lt; b &amp; c</p><p>line one<br>line two</p>"
    assert entry.content == ""


def test_summary_and_content() -> None:
    both = one({"id": "1", "summary": "Short <teaser> & more", "content_html": "<p>Long</p>"})
    assert (both.summary, both.content) == ("Short &lt;teaser&gt; &amp; more", "<p>Long</p>")
    html_wins = one({"id": "2", "content_html": "<p>html</p>", "content_text": "text"})
    assert (html_wins.summary, html_wins.content) == ("<p>html</p>", "")
    text_fallback = one({"id": "3", "content_html": "   ", "content_text": "text"})
    assert text_fallback.summary == "<p>text</p>"
    summary_only = one({"id": "4", "summary": "It's <b>here</b> &amp; now"})
    assert (summary_only.summary, summary_only.content) == ("It's here &amp; now", "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2017-05-17T08:02:12-07:00", datetime(2017, 5, 17, 15, 2, 12, tzinfo=UTC)),
        ("2017-06-27T00:54:17Z", datetime(2017, 6, 27, 0, 54, 17, tzinfo=UTC)),
        ("2017-06-27t00:54:17.123456789z", datetime(2017, 6, 27, 0, 54, 17, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),  # leap second
        ("2017-06-27T00:54:17", datetime(2017, 6, 27, 0, 54, 17, tzinfo=UTC)),  # no offset: UTC
        ("0001-01-01T00:30:00+01:00", None),  # before year 1 in UTC
        ("Fri, 31 May 2019 12:17:58 -0700", None),
        ("2017-13-45T00:00:00Z", None),
        ("2017-06-27T00:54:17+25:00", None),
        ("2017-06-27", None),
        ("", None),
        ("2017-06-27T00:54:17Z" + " " * 100, None),
        (1497000000, None),
        (None, None),
    ],
)
def test_dates_are_rfc_3339_in_utc_or_none(raw: Any, expected: datetime | None) -> None:
    entry = one({"id": "1", "title": "t", "date_published": raw, "date_modified": raw})
    assert entry.published == expected
    assert entry.updated == expected
    if expected is not None:
        assert entry.published.tzinfo == UTC


def test_json_feed_1_0_author_and_1_1_authors() -> None:
    v10 = parse(
        document(
            {"id": "1", "title": "a", "author": {"name": "Ann", "url": "https://a.test"}},
            {"id": "2", "title": "b"},
            {"id": "3", "title": "c", "author": {"url": "https://nameless.test"}},
            version=V1,
            author={"name": "Feed Owner"},
        )
    )
    assert [e.author for e in v10.entries] == ["Ann", "Feed Owner", "Feed Owner"]
    v11 = parse(
        document(
            {"id": "1", "title": "a", "authors": [{"name": "Ann"}, {"name": "Bo"}, "junk"]},
            {"id": "2", "title": "b", "authors": [], "author": {"name": "Legacy"}},
            {"id": "3", "title": "c"},
            authors=[{"name": "Team <b>A</b>"}],
        )
    )
    assert [e.author for e in v11.entries] == ["Ann, Bo", "Legacy", "Team A"]
    assert one({"id": "1", "title": "a", "author": "just a string"}).author is None


def test_tags_become_categories() -> None:
    entry = one({"id": "1", "title": "a", "tags": ["War", "Kyiv", "War", 3, None, " ", "A&amp;B"]})
    assert entry.categories == ("War", "Kyiv", "A&B")
    assert one({"id": "1", "title": "a", "tags": "War"}).categories == ()


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{\n  "version": "x",\n    "items": [}\n',
            "not valid JSON: line 3 column 15: Expecting value",
        ),
        (b'{"items": []', "not valid JSON: line 1 column 13: Expecting ',' delimiter"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
        (b'{"items": [], "id": ' + b"9" * 5000 + b"}", "not valid JSON: Exceeds the limit"),
        (b'[{"items": []}]', "a JSON Feed is a JSON object, not an array"),
        (b'"feed"', "a JSON Feed is a JSON object, not a string"),
        (b"12", "a JSON Feed is a JSON object, not a number"),
        (b"null", "a JSON Feed is a JSON object, not null"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "a JSON Feed needs an items list"),
        (b'{"items": {"id": "1"}}', "a JSON Feed needs an items list"),
        (b'{"items": null}', "a JSON Feed needs an items list"),
    ],
)
def test_invalid_documents_are_parse_errors(content: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)) as caught:
        parse(content)
    assert caught.value.url == URL
    assert str(caught.value).startswith(f"{URL}: ")


def test_a_bad_item_is_skipped_with_a_warning() -> None:
    feed = parse(document("junk", {"id": "1", "title": "ok"}, 7, None, ["x"], {"id": "2"}))
    assert [e.entry_id for e in feed.entries] == ["1"]
    assert feed.warning == (
        "4 item(s) that are not JSON objects skipped; 1 item(s) with no title or text skipped"
    )


def test_undeclared_version_and_bad_utf8_are_warnings() -> None:
    content = b'{"title": "caf\xe9", "items": [{"id": "1", "title": "\xff ok"}]}'
    feed = parse(content)
    assert feed.title == "caf\ufffd"
    assert feed.entries[0].title == "\ufffd ok"
    assert feed.warning == (
        "not valid UTF-8 at byte 14; undecodable bytes replaced; "
        "no JSON Feed version declared; read as JSON Feed 1.1"
    )


def test_a_byte_order_mark_is_allowed() -> None:
    content = b"\xef\xbb\xbf" + document({"id": "1", "title": "t"})
    assert looks_like_json_feed(content, "")
    assert parse(content).entries[0].title == "t"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
item_fields = st.sampled_from(
    [
        "id", "url", "external_url", "title", "content_html", "content_text", "summary",
        "date_published", "date_modified", "author", "authors", "tags",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(item_fields, json_values | st.text(max_size=60), max_size=8),
    st.dictionaries(st.sampled_from(["title", "home_page_url", "author"]), json_values),
)
def test_arbitrary_field_values_never_crash(item: dict[str, Any], feed: dict[str, Any]) -> None:
    try:
        parsed = parse(json.dumps({"version": V11, **feed, "items": [item, item]}).encode())
    except ParseError:
        return
    assert_sane(parsed)


# ---------------------------------------------------------------- detection and the hook


@pytest.mark.parametrize(
    ("content", "media_type", "expected"),
    [
        (b"{}", "application/feed+json", True),
        (b"{}", "application/json", True),
        (b"{}", "Application/JSON; charset=utf-8", True),
        (b'  {"version": "https://jsonfeed.org/version/1.1", "items": []}', "", True),
        (b'{"version": "https://jsonfeed.org/version/1", "items": []}', "text/plain", True),
        (b'{"items": [], "version":"http://jsonfeed.org/version/1"}', "text/html", True),
        (b'{"version": "https:\\/\\/jsonfeed.org\\/version\\/1.1"}', "", True),  # PHP-escaped
        (b'{"version": "1.1", "items": []}', "", False),
        (b'["https://jsonfeed.org/version/1"]', "", False),
        (b'<rss version="2.0"><channel/></rss>', "", False),
        (b'<?xml version="1.0"?><rss version="2.0"></rss>', "application/json", False),
    ],
)
def test_looks_like_json_feed(content: bytes, media_type: str, expected: bool) -> None:
    assert looks_like_json_feed(content, media_type) is expected


def test_end_to_end_through_parse_feed() -> None:
    content = document(
        {
            "id": 101,
            "url": "posts/101",
            "title": "Hello &amp; welcome",
            "content_html": "<p>Hi</p><script>alert(1)</script>",
            "date_published": "2024-02-24T10:00:00+02:00",
            "authors": [{"name": "Ann"}],
            "tags": ["news"],
        },
        home_page_url="/",
        feed_url="https://mirror.example.net/blog/feed.json",
    )
    result = FetchResult(
        url=URL,
        final_url="https://mirror.example.net/blog/feed.json",
        status=200,
        headers={"content-type": "application/feed+json; charset=utf-8"},
        content=content,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    feed = parse_feed(result)
    assert feed.url == URL
    assert feed.link == "https://mirror.example.net/"
    [entry] = feed.entries
    assert entry.entry_id == "101"
    assert entry.link == "https://mirror.example.net/blog/posts/101"  # where the body came from
    assert entry.title == "Hello & welcome"
    assert entry.summary == "<p>Hi</p>"
    assert entry.published == datetime(2024, 2, 24, 8, 0, tzinfo=UTC)
    assert (entry.author, entry.categories) == ("Ann", ("news",))
    with pytest.raises(ParseError, match="a JSON Feed needs an items list"):
        parse_feed(FetchResult(**{**result.__dict__, "content": b'{"error": "rate limited"}'}))


def test_json_feed_without_a_json_content_type_is_sniffed() -> None:
    content = document({"id": "1", "title": "t"})
    feed = parse_bytes(content, url=URL, headers={"Content-Type": "text/plain"})
    assert [e.entry_id for e in feed.entries] == ["1"]
