"""Publish merged and per-topic Atom 1.0 feeds, byte-for-byte deterministic and written atomically.

feedgen builds the bulk of each document. It lacks ``atom:source``, insists on a non-empty
entry title and drops entry link rels, so its output is parsed once more and finished here.

Nothing in the output depends on the clock or the run: unchanged inputs give the
same bytes, and ``write_atomic`` then leaves the file (and its mtime) alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.files import write_atomic
from aggregator.models import Entry, EntryKey, Feed
from aggregator.settings import StoryMode

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
MERGED_PATH = "feed.atom"

# Minted ids embed this year for good: a tag: IRI must never change once published.
TAG_YEAR = 2026
# An empty feed has no entry to date it by; a fixed instant keeps its bytes stable.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

_A = f"{{{ATOM_NS}}}"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Characters XML 1.0 forbids (C0 controls except tab/LF/CR, surrogates, U+FFFE/U+FFFF).
# Real feeds carry them; lxml refuses them, so they are dropped rather than crash a run.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# parse.py's fallback ids look like "sha256:<hex of title+content>": scheme-shaped, but
# made up by us and not unique across sources, so they are minted like any non-IRI.
_SYNTHETIC_ID_PREFIX = "sha256:"


@dataclass(frozen=True)
class OutputFeed:
    """One file to publish; ``path`` is relative to the output dir."""

    path: str  # "feed.atom" or "topics/<id>.atom"
    title: str
    subtitle: str
    entries: tuple[Entry, ...]
    # Other feeds' entries for the same article, credited on the entry that stands for it.
    also: Mapping[EntryKey, tuple[Entry, ...]] = field(default_factory=dict)
    # With stories collapsed: the story's other articles, linked from its lead entry.
    related: Mapping[EntryKey, tuple[Entry, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- planning (pure)


def topic_path(topic_id: str) -> str:
    return f"topics/{topic_id}.atom"


def sort_newest_first(entries: Sequence[Entry]) -> list[Entry]:
    """Newest ``published`` first; ties by feed URL then entry id (two stable passes)."""
    by_key = sorted(entries, key=lambda e: (e.feed_url, e.entry_id))
    return sorted(by_key, key=lambda e: _utc(e.published), reverse=True)


def plan_outputs(
    site: SiteConfig,
    topics: Sequence[TopicRule],
    entries: Sequence[Entry],
    feed_items: int,
) -> list[OutputFeed]:
    """The merged feed plus one feed per configured topic (even an empty one), each with
    one entry per article however many feeds carry it."""
    articles, also = one_per_article(entries)
    ordered = sort_newest_first(articles)
    cap = max(feed_items, 0)
    merged = _output(MERGED_PATH, site.title, "All entries from every source", ordered, also)
    outputs = [_with_stories(merged, site.stories, cap)]
    for topic in topics:
        selected = [e for e in ordered if topic.id in _article_topics(e, also)]
        output = _output(
            topic_path(topic.id),
            f"{site.title}: {topic.title}",
            f"Entries about {topic.title}",
            selected,
            also,
        )
        outputs.append(_with_stories(output, topic.stories, cap))
    return outputs


def _output(
    path: str,
    title: str,
    subtitle: str,
    entries: Sequence[Entry],
    also: Mapping[EntryKey, tuple[Entry, ...]],
) -> OutputFeed:
    return OutputFeed(path=path, title=title, subtitle=subtitle, entries=tuple(entries), also=also)


def _with_stories(output: OutputFeed, mode: StoryMode, cap: int) -> OutputFeed:
    """Cap the entries; with ``collapse``, one entry per story first: its lead (the earliest
    report, as stories.lead chooses), the story's other articles linked as related."""
    if mode != "collapse":
        return replace(output, entries=output.entries[:cap])
    stories: dict[str, list[Entry]] = {}
    for entry in output.entries:
        stories.setdefault(entry.story_id or f"article:{entry.key}", []).append(entry)
    leads: list[Entry] = []
    related: dict[EntryKey, tuple[Entry, ...]] = {}
    for members in stories.values():
        members.sort(key=lambda e: (_utc(e.published), e.feed_url, e.entry_id))
        leads.append(members[0])
        if len(members) > 1:
            related[members[0].key] = tuple(members[1:])
    kept = sort_newest_first(leads)[:cap]
    return replace(output, entries=tuple(kept), related=related)


def one_per_article(
    entries: Sequence[Entry],
) -> tuple[list[Entry], dict[EntryKey, tuple[Entry, ...]]]:
    """The entry that stands for each article — the first seen, ties by feed and id — and,
    for each, the other feeds' entries of the same article."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.article_id or f"{entry.feed_url}\n{entry.entry_id}", []).append(
            entry
        )
    leads: list[Entry] = []
    also: dict[EntryKey, tuple[Entry, ...]] = {}
    for group in groups.values():
        group.sort(key=lambda e: (_utc(e.first_seen_at), e.feed_url, e.entry_id))
        leads.append(group[0])
        if len(group) > 1:
            also[group[0].key] = tuple(group[1:])
    return leads, also


def _article_topics(entry: Entry, also: Mapping[EntryKey, tuple[Entry, ...]]) -> set[str]:
    return {t for e in (entry, *also.get(entry.key, ())) for t in e.topic_ids}


# ---------------------------------------------------------------- identity (pure)


def clean_text(value: str) -> str:
    """``value`` without the characters XML cannot carry."""
    return _XML_ILLEGAL.sub("", value)


def is_absolute_iri(value: str) -> bool:
    """True when ``value`` has an RFC 3986 scheme and no whitespace or control characters."""
    if not _SCHEME.match(value):
        return False
    return not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def minted_entry_id(site: SiteConfig, feed_url: str, entry_id: str) -> str:
    digest = hashlib.sha256(f"{feed_url}\n{entry_id}".encode()).hexdigest()[:32]
    return f"tag:{_site_host(site)},{TAG_YEAR}:entry/{digest}"


def atom_entry_id(entry: Entry, site: SiteConfig) -> str:
    """The source's id when it is an absolute IRI, else a stable ``tag:`` IRI minted from
    the article (so a feed URL change or a second feed carrying it keeps the same id)."""
    eid = entry.entry_id
    if is_absolute_iri(eid) and not eid.startswith(_SYNTHETIC_ID_PREFIX):
        return eid
    if entry.article_id:
        return minted_entry_id(site, "article", entry.article_id)
    return minted_entry_id(site, entry.feed_url, eid)


def source_feed_id(feed_url: str, feed: Feed | None) -> str:
    if feed is not None and feed.feed_id and is_absolute_iri(feed.feed_id):
        return feed.feed_id
    return feed_url


def self_url(site: SiteConfig, path: str) -> str:
    return _site_base(site) + path


def feed_updated(entries: Sequence[Entry]) -> datetime:
    """Newest entry change, never "now", so an unchanged feed keeps its bytes."""
    return max((_entry_updated(e) for e in entries), default=EMPTY_FEED_UPDATED)


def _site_base(site: SiteConfig) -> str:
    return site.url if site.url.endswith("/") else site.url + "/"


def _site_host(site: SiteConfig) -> str:
    # tag: needs a DNS authority; ".invalid" is reserved, so it never collides with a real one.
    return urlsplit(site.url).hostname or "aggregator.invalid"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # contract says aware; naive values are taken as UTC
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _entry_updated(entry: Entry) -> datetime:
    return _utc(entry.updated or entry.published)


# ---------------------------------------------------------------- rendering


def render_atom(
    output: OutputFeed,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
) -> bytes:
    """Pretty-printed UTF-8 Atom 1.0 for ``output``; the same inputs give the same bytes."""
    labels = {t.id: t.title for t in topics}
    try:
        generator = _feed_generator(output, site, labels)
        raw: bytes = generator.atom_str(pretty=False)
        return _finish(raw, output, sources)
    except (ValueError, TypeError, etree.LxmlError) as exc:
        raise RenderError(f"cannot render {output.path}: {exc}") from exc


def _feed_generator(output: OutputFeed, site: SiteConfig, labels: Mapping[str, str]) -> Any:
    fg = FeedGenerator()
    own_url = self_url(site, output.path)
    fg.id(clean_text(own_url))
    fg.title(clean_text(output.title) or output.path)
    if output.subtitle:
        fg.subtitle(clean_text(output.subtitle))
    fg.link(href=clean_text(own_url), rel="self", type=ATOM_TYPE)
    fg.link(href=clean_text(_site_base(site)), rel="alternate")
    # The feed-level author covers entries without one (RFC 4287 section 4.1.1).
    fg.author({"name": clean_text(site.author) or clean_text(site.title) or "aggregator"})
    fg.updated(feed_updated(output.entries))
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
    fe.published(_utc(entry.published))
    fe.updated(_entry_updated(entry))
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
        category = {"term": clean_text(topic_id), "scheme": _site_base(site) + "topics/"}
        if labels.get(topic_id):
            category["label"] = clean_text(labels[topic_id])
        fe.category(category)


def _finish(raw: bytes, output: OutputFeed, sources: Mapping[str, Feed]) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    root = etree.fromstring(raw, parser)
    elements = root.findall(f"{_A}entry")
    if len(elements) != len(output.entries):
        raise RenderError(
            f"{output.path}: feedgen wrote {len(elements)} of {len(output.entries)} entries"
        )
    for element, entry in zip(elements, output.entries, strict=True):
        title = element.find(f"{_A}title")
        if title is not None:
            title.text = clean_text(entry.title)
            title.set("type", "text")
        # feedgen 1.0 drops the rel of entry links (it shadows its loop variable);
        # the only entry link written is the alternate one.
        for link in element.findall(f"{_A}link"):
            link.set("rel", "alternate")
        _append_via(element, entry, output.also.get(entry.key, ()), sources)
        _append_related(element, output.related.get(entry.key, ()), sources)
        _append_source(element, entry, sources.get(entry.feed_url))
    return etree.tostring(
        root.getroottree(), pretty_print=True, xml_declaration=True, encoding="UTF-8"
    )


def _append_via(
    element: etree._Element, entry: Entry, others: Sequence[Entry], sources: Mapping[str, Feed]
) -> None:
    """Credit every other feed that carries the article: ``link rel="via"`` to its copy."""
    shown = {entry.link}
    for other in others:
        href = other.link if other.link not in shown else other.feed_url
        if not href or href in shown:
            continue
        shown.add(href)
        feed = sources.get(other.feed_url)
        title = feed.display_title if feed is not None else (other.feed_title or other.feed_url)
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
        feed = sources.get(other.feed_url)
        outlet = feed.display_title if feed is not None else (other.feed_title or other.feed_url)
        title = clean_text(f"{outlet}: {other.title}")
        link = etree.Element(f"{_A}link", rel="related", href=clean_text(other.link), title=title)
        element.append(link)


def _append_source(element: etree._Element, entry: Entry, feed: Feed | None) -> None:
    source = etree.SubElement(element, f"{_A}source")
    etree.SubElement(source, f"{_A}id").text = clean_text(source_feed_id(entry.feed_url, feed))
    title = feed.display_title if feed is not None else (entry.feed_title or entry.feed_url)
    etree.SubElement(source, f"{_A}title").text = clean_text(title)
    if feed is not None and feed.link:
        etree.SubElement(source, f"{_A}link", rel="alternate", href=clean_text(feed.link))
    etree.SubElement(source, f"{_A}link", rel="self", href=clean_text(entry.feed_url))
    updated = _utc(feed.updated) if feed is not None and feed.updated else _entry_updated(entry)
    etree.SubElement(source, f"{_A}updated").text = updated.isoformat()


# ---------------------------------------------------------------- writing (I/O edge)


def write_outputs(
    outputs: Sequence[OutputFeed],
    output_dir: Path,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
) -> list[Path]:
    """Render and atomically replace each file, and remove topic feeds no output names.

    Returns the paths that changed: rewritten or removed.
    """
    changed: list[Path] = []
    for output in outputs:
        path = _target(output_dir, output.path)
        data = render_atom(output, site=site, sources=sources, topics=topics)
        try:
            if write_atomic(path, data):
                changed.append(path)
        except OSError as exc:
            raise RenderError(f"cannot write {path}: {exc}") from exc
    return changed + _remove_stale_topic_feeds(output_dir, outputs)


def _remove_stale_topic_feeds(output_dir: Path, outputs: Sequence[OutputFeed]) -> list[Path]:
    # A topic removed from feeds.yaml must not go on being served, frozen, as if alive.
    keep = {output_dir / output.path for output in outputs}
    stale = sorted(p for p in (output_dir / "topics").glob("*.atom") if p not in keep)
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _target(output_dir: Path, relative: str) -> Path:
    # A topic id shaped like "../x" must not write outside the output directory.
    base = output_dir.resolve()
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base) or resolved == base:
        raise RenderError(f"output path escapes {output_dir}: {relative!r}")
    return output_dir / relative
