"""Identity and time helpers every output format shares (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aggregator.config import SiteConfig
from aggregator.models import Entry, Feed
from aggregator.urls import public_url

# Minted ids embed this year for good: a tag: IRI must never change once published.
TAG_YEAR = 2026
# An empty feed has no entry to date it by; a fixed instant keeps its bytes stable.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Whitespace (str.isspace(), which \s follows for str patterns), C0 controls and DEL.
_NOT_IN_IRI = re.compile(r"[\s\x00-\x1f\x7f]")
# Characters XML 1.0 forbids (C0 controls except tab/LF/CR, surrogates, U+FFFE/U+FFFF).
# Real feeds carry them; lxml refuses them, so they are dropped rather than crash a run.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# parse.py's fallback ids look like "sha256:<hex of title+content>": scheme-shaped, but
# made up by us and not unique across sources, so they are minted like any non-IRI.
_SYNTHETIC_ID_PREFIX = "sha256:"


def clean_text(value: str) -> str:
    """``value`` without the characters XML cannot carry."""
    return _XML_ILLEGAL.sub("", value)


def is_absolute_iri(value: str) -> bool:
    """True when ``value`` has an RFC 3986 scheme and no whitespace or control characters."""
    if not _SCHEME.match(value):
        return False
    return _NOT_IN_IRI.search(value) is None


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
    return public_url(feed_url)


def self_url(site: SiteConfig, path: str) -> str:
    return site_base(site) + path


def feed_updated(entries: Sequence[Entry]) -> datetime:
    """Newest entry change, never "now", so an unchanged feed keeps its bytes."""
    return max((entry_updated(e) for e in entries), default=EMPTY_FEED_UPDATED)


def site_base(site: SiteConfig) -> str:
    return site.url if site.url.endswith("/") else site.url + "/"


def _site_host(site: SiteConfig) -> str:
    # tag: needs a DNS authority; ".invalid" is reserved, so it never collides with a real one.
    return urlsplit(site.url).hostname or "aggregator.invalid"


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # contract says aware; naive values are taken as UTC
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def entry_updated(entry: Entry) -> datetime:
    return utc(entry.updated or entry.published)
