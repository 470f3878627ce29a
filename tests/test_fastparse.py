"""The fast parse path: it takes plain RSS 2.0 and Atom 1.0, hands everything else to
feedparser, and where it takes a document the result is feedparser's."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from aggregator import parse
from aggregator.fastparse import fast_document
from aggregator.models import ParsedFeed

URL = "https://news.example.org/feed.xml"

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel>
  <title>Kyiv Desk</title><link>https://news.example.org/</link>
  <description>War news</description><language>en-gb</language>
  <lastBuildDate>Thu, 26 Nov 2026 07:00:00 GMT</lastBuildDate>
  <item>
    <title>Strikes on Kharkiv &amp;amp; Odesa</title>
    <link>https://news.example.org/a/1</link>
    <guid isPermaLink="false">a-1</guid>
    <description><![CDATA[<p>Missiles hit <b>Kharkiv</b>.<script>alert(1)</script></p>]]>
    </description>
    <content:encoded><![CDATA[<p>Full text with <a href="https://x.example/">a link</a>.</p>]]>
    </content:encoded>
    <pubDate>Thu, 26 Nov 2026 06:00:00 GMT</pubDate>
    <dc:creator>Olena Kovalenko</dc:creator>
    <category>Ukraine</category>
    <media:thumbnail url="https://news.example.org/t.jpg"/>
    ITEM_EXTRA
  </item>
  <item>
    <title>Only a permalink guid</title>
    <guid>https://news.example.org/a/2</guid>
    <description>Text.</description>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="uk">
  <title>Desk</title><id>urn:uuid:desk</id>
  <link rel="self" href="https://news.example.org/feed.atom"/>
  <link href="https://news.example.org/"/>
  <updated>2026-11-26T07:00:00Z</updated>
  <entry>
    <title type="html">Tom &amp;amp; Jerry &lt;b&gt;bold&lt;/b&gt;</title>
    <id>tag:news.example.org,2026:1</id>
    <link rel="alternate" type="text/html" href="https://news.example.org/a/1"/>
    <published>2026-11-26T06:00:00Z</published><updated>2026-11-26T06:30:00Z</updated>
    <author><name>Desk</name></author>
    <category term="war"/>
    <summary>Plain &lt;text&gt;</summary>
    <content type="html">&lt;p&gt;Body&lt;/p&gt;</content>
  </entry>
</feed>
"""


def both_ways(content: bytes) -> tuple[ParsedFeed, ParsedFeed]:
    fast = parse.parse_bytes(content, url=URL)
    with mock.patch.object(parse, "fast_document", return_value=None):
        reference = parse.parse_bytes(content, url=URL)
    return fast, reference


@pytest.mark.parametrize("document", [RSS.replace("ITEM_EXTRA", ""), ATOM])
def test_plain_rss_and_atom_take_the_fast_path_and_parse_as_feedparser_does(
    document: str,
) -> None:
    content = document.encode()
    assert fast_document(content, http_charset=None) is not None
    fast, reference = both_ways(content)
    assert fast == reference
    assert fast.entries  # the comparison was not between two empty feeds


def test_html_from_the_fast_path_is_sanitized_like_any_other() -> None:
    feed = parse.parse_bytes(RSS.replace("ITEM_EXTRA", "").encode(), url=URL)
    first = feed.entries[0]
    assert first.title == "Strikes on Kharkiv & Odesa"
    assert "<script" not in first.summary
    assert "alert" not in first.summary
    assert 'rel="noopener noreferrer"' in first.content
    assert feed.entries[1].link == "https://news.example.org/a/2"  # a permalink guid


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("ITEM_EXTRA", "<media:title>Another title</media:title>"), "media:title is a title"),
        (("ITEM_EXTRA", "<body><p>x</p></body>"), "feedparser reads <body> as content"),
        (("ITEM_EXTRA", "<dcterms:modified>x</dcterms:modified>"), "an unbound prefix"),
        (("https://x.example/", "/relative"), "a relative link inside HTML"),
        (("Olena Kovalenko", "olena@example.org (Olena)"), "an address in the author"),
        (('encoding="utf-8"', 'encoding="windows-1251"'), "another encoding"),
        (("<rss ", '<!DOCTYPE rss [<!ENTITY x "y">]><rss '), "a DTD"),
        (("<channel>", '<channel xml:base="https://elsewhere.example/">'), "xml:base"),
        (("</channel>", "<channel>"), "not well-formed"),
        (('version="2.0"', 'version="0.91"'), "not RSS 2.0"),
    ],
)
def test_anything_else_goes_to_feedparser_and_still_parses(
    change: tuple[str, str], why: str
) -> None:
    document = RSS.replace(*change).replace("ITEM_EXTRA", "").encode()
    assert fast_document(document, http_charset=None) is None, why


def test_a_charset_other_than_utf8_from_http_goes_to_feedparser() -> None:
    content = RSS.replace("ITEM_EXTRA", "").encode()
    assert fast_document(content, http_charset="iso-8859-1") is None
    assert fast_document(content, http_charset="utf-8") is not None


def test_real_feeds_parse_the_same_through_either_path(shared_dir: Path) -> None:
    taken = 0
    for path in sorted((shared_dir / "corpus" / "feeds").iterdir()):
        content = path.read_bytes()
        if fast_document(content, http_charset=None) is None:
            continue
        taken += 1
        fast, reference = both_ways(content)
        for mine, theirs in zip(fast.entries, reference.entries, strict=True):
            assert (mine.entry_id, mine.link, mine.title) == (
                theirs.entry_id,
                theirs.link,
                theirs.title,
            ), path.name
            assert (mine.published, mine.updated, mine.author, mine.categories) == (
                theirs.published,
                theirs.updated,
                theirs.author,
                theirs.categories,
            ), path.name
            # HTML alike but for attribute order (feedparser's sanitizer sorts them).
            assert sorted(mine.summary) == sorted(theirs.summary), path.name
            assert sorted(mine.content) == sorted(theirs.content), path.name
        assert (fast.title, fast.link, fast.updated, fast.language) == (
            reference.title,
            reference.link,
            reference.updated,
            reference.language,
        ), path.name
    assert taken >= 20  # most real news feeds are plain enough for the fast path
