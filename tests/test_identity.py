"""identity.py: which entries are one article, and what a feed URL is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.identity import (
    article_id,
    canonical_link,
    feed_form,
    guid_key,
    identity_keys,
    unique_ids,
)
from aggregator.models import ParsedEntry

PAGE = "https://news.example.org/world/2024/02/story-slug"


@pytest.mark.parametrize(
    "variant",
    [
        PAGE,
        PAGE + "/",
        "HTTPS://News.Example.org/world/2024/02/story-slug",
        "http://news.example.org/world/2024/02/story-slug",
        "https://www.news.example.org/world/2024/02/story-slug",
        "https://news.example.org:443/world/2024/02/story-slug",
        PAGE + "#comments",
        PAGE + "?utm_source=rss&utm_medium=feed",
        PAGE + "?fbclid=abc&gclid=def&ocid=x&cmpid=y",
        PAGE + "/amp",
        "https://amp.news.example.org/world/2024/02/story-slug",
        "https://m.news.example.org/world/2024/02/story-slug",
        PAGE + "?at_medium=RSS&at_campaign=KARANGA",
    ],
)
def test_every_variant_of_a_page_has_one_canonical_link(variant: str) -> None:
    assert canonical_link(variant) == canonical_link(PAGE)


@pytest.mark.parametrize(
    "other",
    [
        "https://news.example.org/world/2024/02/other-slug",
        PAGE + "?page=2",  # a real parameter stays
        "https://other.example.org/world/2024/02/story-slug",
        "https://news.example.org:8443/world/2024/02/story-slug",
    ],
)
def test_different_pages_stay_different(other: str) -> None:
    assert canonical_link(other) != canonical_link(PAGE)


def test_query_order_does_not_matter_and_non_web_links_have_no_form() -> None:
    assert canonical_link(PAGE + "?a=1&b=2") == canonical_link(PAGE + "?b=2&a=1")
    assert canonical_link("mailto:desk@example.org") is None
    assert canonical_link("javascript:alert(1)") is None
    assert canonical_link("https://[bad") is None
    assert canonical_link(None) is None


def test_only_iris_are_guid_keys() -> None:
    assert guid_key("urn:uuid:0a1b") == "guid:urn:uuid:0a1b"
    assert guid_key("tag:bbc.co.uk,2024:123") == "guid:tag:bbc.co.uk,2024:123"
    assert guid_key(PAGE + "?utm_source=x") == f"guid:{canonical_link(PAGE)}"
    assert guid_key("12345") is None  # means something only inside its own feed
    assert guid_key("sha256:abc") is None


def test_keys_and_article_ids() -> None:
    keys = identity_keys("urn:uuid:1", PAGE)
    assert keys == ("guid:urn:uuid:1", f"link:{canonical_link(PAGE)}")
    assert identity_keys(PAGE, PAGE + "/") == (f"guid:{canonical_link(PAGE)}",)
    assert identity_keys("42", None) == ()
    # Derived from the first key: the same in any feed and in a rebuilt database.
    assert article_id(keys, "https://a/feed", "x") == article_id(keys, "https://b/feed", "y")
    assert article_id((), "https://a/feed", "42") != article_id((), "https://b/feed", "42")
    assert article_id((), "https://a/feed", "42").startswith("a:")


def entry(entry_id: str, title: str, link: str | None = None) -> ParsedEntry:
    published = datetime(2024, 2, 19, tzinfo=UTC)
    return ParsedEntry(entry_id, title, link, "", "", published, None)


def test_a_second_item_under_a_used_id_is_kept_under_a_derived_id() -> None:
    kept, shared = unique_ids(
        [entry("g1", "First story"), entry("g1", "Another story"), entry("g2", "Third")]
    )
    assert shared == 1
    assert [e.title for e in kept] == ["First story", "Another story", "Third"]
    assert kept[1].entry_id.startswith("g1#")
    again, _ = unique_ids([entry("g1", "First story"), entry("g1", "Another story")])
    assert again[1].entry_id == kept[1].entry_id  # stable across polls


def test_the_same_item_twice_is_one_entry() -> None:
    kept, shared = unique_ids([entry("g1", "Story", PAGE), entry("g1", "Story", PAGE)])
    assert (len(kept), shared) == (1, 0)


def test_feed_urls_differing_by_a_trailing_slash_are_one_feed() -> None:
    assert feed_form("https://Example.org/feed.xml/") == feed_form("https://example.org/feed.xml")
    assert feed_form("https://example.org/a") != feed_form("https://example.org/b")
