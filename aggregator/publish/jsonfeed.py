"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) for one planned feed: the Atom
document's twin, byte-for-byte deterministic.

It renders the same plan with the same choices as :mod:`.atom`: the same entry ids, titles,
authors, dates and topics, and the same credit to the feeds an article came from, carried in
a ``_source`` object (the spec keeps names starting with "_" for extensions, which readers
that do not know them ignore). Nothing depends on the clock: unchanged inputs give the same
bytes. No value is ever null: a missing value is a missing key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.models import Entry, Feed
from aggregator.publish.common import (
    atom_entry_id,
    clean_text,
    entry_updated,
    self_url,
    site_base,
    utc,
)
from aggregator.publish.plan import OutputFeed
from aggregator.text import html_to_text, shorten
from aggregator.urls import as_uri, public_url

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_TYPE = "application/feed+json"
# The spec's summary is "a plain text sentence or two", shown in timelines.
SUMMARY_CHARS = 280

JsonObject = dict[str, object]


def json_path(atom_path: str) -> str:
    """Where the JSON twin of the Atom feed at ``atom_path`` goes: "topics/x.atom" →
    "topics/x.json"."""
    return atom_path.removesuffix(".atom") + ".json"


def render_json_feed(
    output: OutputFeed,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
) -> bytes:
    """UTF-8 JSON Feed 1.1 for ``output``, 2-space indented; the same inputs give the same
    bytes. ``topics`` is taken so every renderer is called alike; tags are topic ids."""
    try:
        text = json.dumps(_feed(output, site, sources), ensure_ascii=False, indent=2)
        return (text + "\n").encode("utf-8")
    except (ValueError, TypeError) as exc:  # clean_text drops surrogates; this is a backstop
        raise RenderError(f"cannot render {json_path(output.path)}: {exc}") from exc


def _feed(output: OutputFeed, site: SiteConfig, sources: Mapping[str, Feed]) -> JsonObject:
    # Keys in spec order, not sorted: "version" should come first (readers sniff a partial
    # download for it) and "items" last, after everything that describes the feed.
    feed: JsonObject = {
        "version": JSON_FEED_VERSION,
        "title": clean_text(output.title) or json_path(output.path),
        "home_page_url": _uri(site_base(site)),
        "feed_url": _uri(self_url(site, json_path(output.path))),
    }
    if output.subtitle:
        feed["description"] = clean_text(output.subtitle)
    # Covers items without authors of their own (spec: items inherit the feed's authors).
    feed["authors"] = [{"name": clean_text(site.author) or clean_text(site.title) or "aggregator"}]
    if site.language:
        feed["language"] = clean_text(site.language)
    if site.hub and not output.archive:  # an archive never changes: nothing to push
        feed["hubs"] = [{"type": "WebSub", "url": _uri(site.hub)}]
    if output.archive:
        feed["expired"] = True  # the fh:archive of JSON Feed: it will never update again
    feed["items"] = _items(output, site, sources)
    return feed


def _items(output: OutputFeed, site: SiteConfig, sources: Mapping[str, Feed]) -> list[JsonObject]:
    # Readers key items by id: a second item with the same id would overwrite the first.
    items: list[JsonObject] = []
    seen: set[object] = set()
    for entry in output.entries:
        item = _item(entry, output, site, sources)
        if item["id"] not in seen:
            seen.add(item["id"])
            items.append(item)
    return items


def _item(
    entry: Entry, output: OutputFeed, site: SiteConfig, sources: Mapping[str, Feed]
) -> JsonObject:
    item: JsonObject = {
        "id": _uri(atom_entry_id(entry, site)),
        # A title-less item (RSS 1.0 with only rdf:about) is named by where it leads.
        "title": clean_text(entry.title) or clean_text(entry.link or "") or "Untitled",
        # Required in spirit (content_html or content_text must be present), even if empty.
        "content_html": clean_text(entry.content) or clean_text(entry.summary),
        "date_published": _date(entry.published),
        "_source": _source(entry, output, sources),
    }
    if entry.link and clean_text(entry.link):
        item["url"] = _uri(entry.link)
    if entry.updated is not None:  # only a real modification, not a copy of the publish date
        item["date_modified"] = _date(entry_updated(entry))
    summary = shorten(html_to_text(clean_text(entry.summary)), SUMMARY_CHARS)
    if summary:
        item["summary"] = summary
    author = clean_text(entry.author or "")
    if author:
        item["authors"] = [{"name": author}]
    tags = [t for t in dict.fromkeys(clean_text(t) for t in entry.topic_ids) if t]
    if tags:
        item["tags"] = tags
    return dict(sorted(item.items()))


def _source(entry: Entry, output: OutputFeed, sources: Mapping[str, Feed]) -> JsonObject:
    """Atom's ``source``, ``via`` and ``related`` links: where the item came from, which other
    feeds carry the article, and a collapsed story's other reports."""
    feed = sources.get(entry.feed_url)
    source: JsonObject = {
        "title": clean_text(_outlet(entry, sources)),
        "feed_url": _uri(public_url(entry.feed_url)),
    }
    if feed is not None and feed.link and clean_text(feed.link):
        source["home_page_url"] = _uri(feed.link)
    also = _also(entry, output.also.get(entry.key, ()), sources)
    if also:
        source["also"] = also
    related = _related(output.related.get(entry.key, ()), sources)
    if related:
        source["related"] = related
    return dict(sorted(source.items()))


def _also(entry: Entry, others: Sequence[Entry], sources: Mapping[str, Feed]) -> list[JsonObject]:
    """Each other feed carrying the article, linked to its own copy, or to the feed itself
    when its copy is the same page (atom.py's ``via`` links, same rule)."""
    shown = {entry.link}
    credits: list[JsonObject] = []
    for other in others:
        href = other.link if other.link not in shown else public_url(other.feed_url)
        if not href or href in shown:
            continue
        shown.add(href)
        credits.append({"title": clean_text(_outlet(other, sources)), "url": _uri(href)})
    return credits


def _related(others: Sequence[Entry], sources: Mapping[str, Feed]) -> list[JsonObject]:
    """A collapsed story's other reports, titled "outlet: headline" as in atom.py."""
    return [
        {"title": clean_text(f"{_outlet(other, sources)}: {other.title}"), "url": _uri(other.link)}
        for other in others
        if other.link
    ]


def _outlet(entry: Entry, sources: Mapping[str, Feed]) -> str:
    """The name of the feed an entry came from, never its (maybe credentialed) URL."""
    feed = sources.get(entry.feed_url)
    if feed is not None:
        return feed.display_title
    return entry.feed_title or public_url(entry.feed_url)


def _uri(value: str) -> str:
    # Atom writes every id and href as a URI; the twin must carry the very same strings.
    return as_uri(clean_text(value))


def _date(moment: datetime) -> str:
    # RFC 3339 in UTC, as Atom writes it.
    return utc(moment).isoformat()
