"""Atom 1.0 for one planned feed, byte-for-byte deterministic.

feedgen builds the bulk of each document. It lacks ``atom:source``, insists on a non-empty
entry title and drops entry link rels, so its output is parsed once more and finished here.
Nothing in the output depends on the clock or the run: unchanged inputs give the same bytes.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.models import Entry, Feed
from aggregator.publish.common import (
    atom_entry_id,
    clean_text,
    entry_updated,
    feed_updated,
    self_url,
    site_base,
    source_feed_id,
    utc,
)
from aggregator.publish.plan import OutputFeed
from aggregator.urls import as_uri, public_url

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_A = f"{{{ATOM_NS}}}"
RENDER_CHUNK = 500  # entries per piece of a long feed (see render_atom)


def render_atom(
    output: OutputFeed,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
    chunk: int = RENDER_CHUNK,
) -> bytes:
    """Pretty-printed UTF-8 Atom 1.0 for ``output``; the same inputs give the same bytes."""
    return b"".join(atom_pieces(output, site=site, sources=sources, topics=topics, chunk=chunk))


def atom_pieces(
    output: OutputFeed,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
    chunk: int = RENDER_CHUNK,
    fill: Callable[[Sequence[Entry]], Sequence[Entry]] | None = None,
) -> Iterator[bytes]:
    """The bytes of :func:`render_atom`, in pieces of at most ``chunk`` entries.

    Each piece is rendered as a document of its own and cut to its entries, when it is
    asked for: a long feed (a month's archive page) can be written to a file without two
    XML trees of every entry, or the whole document, ever being in memory. ``fill`` gives
    each piece's entries their bodies, for entries planned without them.
    """
    labels = {t.id: t.title for t in topics}
    updated = feed_updated(output.entries)
    made: dict[str, etree._Element] = {}  # atom:source per feed, shared by the pieces
    try:
        if len(output.entries) <= chunk:
            yield _render(
                _filled(output, output.entries, fill), site, labels, sources, updated, made
            )
            return
        tail = b""
        for start in range(0, len(output.entries), chunk):
            part = _filled(output, output.entries[start : start + chunk], fill)
            document = _render(part, site, labels, sources, updated, made)
            first, last = document.index(b"\n  <entry") + 1, document.rindex(b"</feed>")
            if not start:
                yield document[:first]
            yield document[first:last]
            tail = document[last:]
        yield tail
    except (ValueError, TypeError, etree.LxmlError) as exc:
        raise RenderError(f"cannot render {output.path}: {exc}") from exc


def _filled(
    output: OutputFeed,
    entries: Sequence[Entry],
    fill: Callable[[Sequence[Entry]], Sequence[Entry]] | None,
) -> OutputFeed:
    return replace(output, entries=tuple(fill(entries) if fill else entries))


def _render(
    output: OutputFeed,
    site: SiteConfig,
    labels: Mapping[str, str],
    sources: Mapping[str, Feed],
    updated: datetime,
    made: dict[str, etree._Element],
) -> bytes:
    generator = _feed_generator(output, site, labels, updated)
    raw: bytes = generator.atom_str(pretty=False)
    return _finish(raw, output, sources, made)


def _feed_generator(
    output: OutputFeed, site: SiteConfig, labels: Mapping[str, str], updated: datetime
) -> Any:
    fg = FeedGenerator()
    own_url = self_url(site, output.path)
    # An archive is a page of the same logical feed: it keeps the live document's id.
    fg.id(clean_text(self_url(site, dict(output.history).get("current", output.path))))
    fg.title(clean_text(output.title) or output.path)
    if output.subtitle:
        fg.subtitle(clean_text(output.subtitle))
    fg.link(href=clean_text(own_url), rel="self", type=ATOM_TYPE)
    fg.link(href=clean_text(site_base(site)), rel="alternate")
    for rel, path in output.history:
        fg.link(href=clean_text(self_url(site, path)), rel=rel, type=ATOM_TYPE)
    if site.hub and not output.archive:  # an archive never changes: nothing to push
        fg.link(href=clean_text(site.hub), rel="hub")
    if site.language:
        fg.language(site.language)
    # The feed-level author covers entries without one (RFC 4287 section 4.1.1).
    fg.author({"name": clean_text(site.author) or clean_text(site.title) or "aggregator"})
    fg.updated(updated)
    # Replaces feedgen's own generator (its name, URI and version) wholesale.
    fg.generator("aggregator", version=__version__)
    for entry in output.entries:
        _add_entry(fg, entry, site, labels)
    return fg


def _add_entry(fg: Any, entry: Entry, site: SiteConfig, labels: Mapping[str, str]) -> None:
    fe = fg.add_entry(order="append")
    fe.id(clean_text(atom_entry_id(entry, site)))
    # feedgen refuses an empty title; _finish writes the real (maybe empty) one.
    fe.title("-")
    fe.published(utc(entry.published))
    fe.updated(entry_updated(entry))
    link = clean_text(entry.link or "")
    if link:
        fe.link(href=link, rel="alternate")
    author = clean_text(entry.author or "")
    if author:
        fe.author({"name": author})
    summary = clean_text(entry.summary)
    if summary:
        fe.summary(summary, type="html")
    content = clean_text(entry.content)
    if not content and not link:
        # An entry needs content or an alternate link (RFC 4287 section 4.1.1);
        # repeating the summary is the most useful content we have.
        fe.content(summary, type="html")
    elif content:
        fe.content(content, type="html")
    seen: set[str] = set()
    for topic_id in entry.topic_ids:
        if topic_id in seen:
            continue
        seen.add(topic_id)
        category = {"term": clean_text(topic_id), "scheme": site_base(site) + "topics/"}
        if labels.get(topic_id):
            category["label"] = clean_text(labels[topic_id])
        fe.category(category)


def _finish(
    raw: bytes,
    output: OutputFeed,
    sources: Mapping[str, Feed],
    made: dict[str, etree._Element],
) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    root = etree.fromstring(raw, parser)
    elements = root.findall(f"{_A}entry")
    if len(elements) != len(output.entries):
        raise RenderError(
            f"{output.path}: feedgen wrote {len(elements)} of {len(output.entries)} entries"
        )
    if output.archive:
        # RFC 5005 section 4: this document is complete and will not change.
        root.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive", nsmap={"fh": HISTORY_NS}))
    for element, entry in zip(elements, output.entries, strict=True):
        title = element.find(f"{_A}title")
        if title is not None:
            # A title-less item (RSS 1.0 with only rdf:about) is named by where it leads.
            _set_title(title, clean_text(entry.title) or clean_text(entry.link or "") or "Untitled")
        # feedgen 1.0 drops the rel of entry links (it shadows its loop variable);
        # the only entry link written is the alternate one.
        for link in element.findall(f"{_A}link"):
            link.set("rel", "alternate")
        _append_via(element, entry, output.also.get(entry.key, ()), sources)
        _append_related(element, output.related.get(entry.key, ()), sources)
        feed = sources.get(entry.feed_url)
        if feed is not None and feed.language:
            element.set(XML_LANG, feed.language)  # the entry's own language, where known
        _append_source(element, entry, feed, made)
    _as_uris(root)
    return etree.tostring(
        root.getroottree(), pretty_print=True, xml_declaration=True, encoding="UTF-8"
    )


def _set_title(element: etree._Element, text: str) -> None:
    """A title is text. One holding "<" or "&" ("std::vector<int>", "1&1") goes out as
    escaped HTML: readers show the same characters, and none mistakes them for markup."""
    if "<" in text or "&" in text:
        element.text = html.escape(text, quote=False)
        element.set("type", "html")
    else:
        element.text = text
        element.set("type", "text")


def _as_uris(root: etree._Element) -> None:
    """IRIs as URIs everywhere (ids, hrefs): same resource, and every client reads them."""
    for link in root.iter(f"{_A}link"):
        link.set("href", as_uri(link.get("href") or ""))
    for identifier in root.iter(f"{_A}id"):
        identifier.text = as_uri(identifier.text or "")


def _append_via(
    element: etree._Element, entry: Entry, others: Sequence[Entry], sources: Mapping[str, Feed]
) -> None:
    """Credit every other feed that carries the article: ``link rel="via"`` to its copy."""
    shown = {entry.link}
    for other in others:
        href = other.link if other.link not in shown else public_url(other.feed_url)
        if not href or href in shown:
            continue
        shown.add(href)
        title = _outlet(other, sources)
        via = etree.Element(f"{_A}link", rel="via", href=clean_text(href), title=clean_text(title))
        # Before <source>: RFC 4287 puts no order on entry children, readers expect it first.
        element.append(via)


def _append_related(
    element: etree._Element, others: Sequence[Entry], sources: Mapping[str, Feed]
) -> None:
    """A collapsed story's other reports: ``link rel="related"``, titled with outlet and
    headline, so a reader sees who else covered it."""
    for other in others:
        if not other.link:
            continue
        title = clean_text(f"{_outlet(other, sources)}: {other.title}")
        link = etree.Element(f"{_A}link", rel="related", href=clean_text(other.link), title=title)
        element.append(link)


def _outlet(entry: Entry, sources: Mapping[str, Feed]) -> str:
    """The name of the feed an entry came from, never its (maybe credentialed) URL."""
    feed = sources.get(entry.feed_url)
    if feed is not None:
        return feed.display_title
    return entry.feed_title or public_url(entry.feed_url)


def _append_source(
    element: etree._Element, entry: Entry, feed: Feed | None, made: dict[str, etree._Element]
) -> None:
    """The entry's ``atom:source``: the parts that depend only on the feed are built once per
    feed (``made``, by feed URL) and copied, since a page holds many entries of one feed."""
    template = made.get(entry.feed_url)
    if template is None:
        template = made[entry.feed_url] = _source_template(entry, feed)
    source = copy.deepcopy(template)
    updated = utc(feed.updated) if feed is not None and feed.updated else entry_updated(entry)
    etree.SubElement(source, f"{_A}updated").text = updated.isoformat()
    element.append(source)


def _source_template(entry: Entry, feed: Feed | None) -> etree._Element:
    source = etree.Element(f"{_A}source")
    etree.SubElement(source, f"{_A}id").text = clean_text(source_feed_id(entry.feed_url, feed))
    title = feed.display_title if feed is not None else _outlet(entry, {})
    etree.SubElement(source, f"{_A}title").text = clean_text(title)
    if feed is not None and feed.link:
        etree.SubElement(source, f"{_A}link", rel="alternate", href=clean_text(feed.link))
    etree.SubElement(source, f"{_A}link", rel="self", href=clean_text(public_url(entry.feed_url)))
    if feed is not None and feed.rights:
        # The publisher's terms travel with its words (RFC 4287 section 4.2.10).
        etree.SubElement(source, f"{_A}rights").text = clean_text(feed.rights)
    return source
