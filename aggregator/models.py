"""The records that flow between pipeline stages, named by the stage that makes them.

    FetchRequest ─► FetchResult ─► ParsedFeed / ParsedEntry ─► Feed / Entry ─► DigestIssue

All are frozen; all datetimes are timezone-aware UTC (digest dates are rendered in
the digest's own time zone, but stored and compared in UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from aggregator.urls import public_url

# ---------------------------------------------------------------- fetch


@dataclass(frozen=True)
class FetchRequest:
    """What to retrieve, with the validators from the previous successful fetch."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """A completed HTTP exchange (or local file read).

    ``content`` is None exactly when the server answered 304 Not Modified.
    ``headers`` has lower-cased names. ``redirects`` lists every URL that
    answered with a redirect, in order; ``final_url`` is where the body came from.
    """

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    content: bytes | None
    fetched_at: datetime
    redirects: tuple[str, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    permanent_redirect: bool = False

    @property
    def not_modified(self) -> bool:
        return self.content is None


# ---------------------------------------------------------------- parse


@dataclass(frozen=True)
class ParsedEntry:
    """One item as the feed describes it, normalised.

    ``entry_id`` is the feed's own id/guid when present, else the link, else a hash of
    title + content (prefixed ``sha256:``) so that it is stable across polls.
    ``summary``/``content`` are sanitized HTML. Dates are UTC-aware or None when
    the feed gives none (the store then uses first-seen time).
    """

    entry_id: str
    title: str
    link: str | None
    summary: str
    content: str
    published: datetime | None
    updated: datetime | None
    author: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceRhythm:
    """How often a feed says it changes: RSS ``ttl``, ``sy:updatePeriod``/``updateFrequency``
    (as one shortest refresh time) and ``skipHours``/``skipDays`` (UTC hours 0-23; weekdays,
    0 is Monday)."""

    ttl: timedelta | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ParsedFeed:
    """A feed document as parsed; ``warning`` is set when it was recovered from bad XML."""

    url: str
    title: str
    link: str | None
    feed_id: str | None
    updated: datetime | None
    entries: tuple[ParsedEntry, ...]
    subtitle: str = ""
    warning: str | None = None
    categories: tuple[str, ...] = ()
    rhythm: SourceRhythm = SourceRhythm()
    language: str | None = None  # a BCP 47 tag, when the feed declares a valid one
    rights: str | None = None


# ---------------------------------------------------------------- store


@dataclass(frozen=True)
class Feed:
    """A source as stored: identity, what we last learned, and its health."""

    url: str
    title: str | None  # the title from feeds.yaml, else the feed's own, else None until fetched
    link: str | None
    feed_id: str | None
    updated: datetime | None
    active: bool  # False once removed from feeds.yaml; its entries stay until retention
    etag: str | None = None
    last_modified: str | None = None
    last_fetched_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_warning: str | None = None
    error_count: int = 0  # consecutive failures, for backoff
    next_due_at: datetime | None = None
    final_url: str | None = None  # where the last redirect chain ended
    entry_count: int = 0
    retry_until: datetime | None = None  # a server's Retry-After, in force until then
    gone_at: datetime | None = None  # retired by 410 Gone
    failing_since: datetime | None = None  # first failure of the current streak
    moved_to: str | None = None  # where permanent redirects point
    moved_since: datetime | None = None
    moved_count: int = 0  # consecutive polls that were permanently redirected to moved_to
    fetch_url: str | None = None  # moved_to once adopted; requested instead of url
    content_hash: str | None = None
    rhythm: SourceRhythm = SourceRhythm()
    language: str | None = None
    rights: str | None = None

    @property
    def request_url(self) -> str:
        return self.fetch_url or self.url

    @property
    def display_title(self) -> str:
        return self.title or public_url(self.url)  # shown and published: no credentials


@dataclass(frozen=True)
class TopicMatch:
    """Why an entry belongs to a topic, e.g. reasons=("keyword 'Kyiv' in title",)."""

    topic_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class EntryKey:
    feed_url: str
    entry_id: str


@dataclass(frozen=True)
class Entry:
    """An item as stored. ``published`` is the effective date used for ordering:
    the feed's published date, else its updated date, else ``first_seen_at``."""

    feed_url: str
    entry_id: str
    title: str
    link: str | None
    summary: str
    content: str
    published: datetime
    updated: datetime | None
    first_seen_at: datetime
    author: str | None = None
    categories: tuple[str, ...] = ()
    topics: tuple[TopicMatch, ...] = ()
    feed_title: str | None = None
    story_id: str | None = None
    backfill: bool = False  # from its feed's first fetch: an archive, not news
    article_id: str | None = None  # the piece of journalism, whichever feeds carry it

    @property
    def key(self) -> EntryKey:
        return EntryKey(self.feed_url, self.entry_id)

    @property
    def topic_ids(self) -> tuple[str, ...]:
        return tuple(t.topic_id for t in self.topics)


@dataclass(frozen=True)
class UpsertStats:
    """What storing one parsed feed changed."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated)


# ---------------------------------------------------------------- digest


@dataclass(frozen=True)
class DigestItem:
    key: EntryKey
    title: str
    link: str | None
    source: str
    published: datetime
    summary_text: str  # plain text, already shortened
    also: tuple[str, ...] = ()  # other outlets that carry the same article or story
    also_links: tuple[str | None, ...] = ()  # their own copies, where they differ from ours
    merged: tuple[EntryKey, ...] = ()  # their entries, recorded as sent with this item


@dataclass(frozen=True)
class DigestSection:
    topic_id: str | None  # None = items in no configured topic ("Other")
    title: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class DigestIssue:
    """One issue of a digest: the items chosen for the window [window_start, window_end)."""

    digest_id: str
    title: str
    stamp: str  # e.g. "2026-11-26T0700" in the digest's time zone; names the output files
    window_start: datetime
    window_end: datetime
    sections: tuple[DigestSection, ...]
    more: int = 0  # eligible items left out of this issue; they lead the next one

    @property
    def items(self) -> tuple[DigestItem, ...]:
        return tuple(item for section in self.sections for item in section.items)


PERSONAL_LINK = "https://personal-link.invalid/unsubscribe"
"""Stands in a rendered mail body for each reader's own unsubscribe URL; swapped per recipient
when the message is built, so one rendering serves every reader and is stored as sent."""


@dataclass(frozen=True)
class RenderedIssue:
    """A digest issue rendered for mail (``html``/``text``, with ``PERSONAL_LINK`` where each
    reader's unsubscribe link goes) and for the public web archive (``web_html``/``web_text``,
    which carry no personal data). ``issue`` is the issue as rendered: trimmed to the digest's
    HTML byte budget, the trimmed items counted in ``issue.more``."""

    issue: DigestIssue
    subject: str
    html: str
    text: str
    web_html: str
    web_text: str


@dataclass(frozen=True)
class Unsubscribe:
    """One reader's ways out: the one-click https URL and, optionally, a mailto URL."""

    url: str
    mailto: str | None = None


@dataclass(frozen=True)
class StoredIssue:
    """An issue as claimed in the store: what it holds and whether every delivery is done."""

    digest_id: str
    stamp: str
    window_start: datetime
    window_end: datetime
    subject: str
    html: str
    text: str
    item_count: int
    more_count: int
    next_start: datetime  # where the next issue's candidates start
    created_at: datetime
    completed_at: datetime | None = None


DeliveryStatus = Literal["pending", "sent", "failed"]


@dataclass(frozen=True)
class Delivery:
    """One recipient of one issue: pending until the server accepts it; failed for good
    when the server refused the address permanently (5xx)."""

    digest_id: str
    stamp: str
    recipient: str
    message_id: str
    status: DeliveryStatus
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Subscriber:
    digest_id: str
    address: str
    status: Literal["active", "unsubscribed"]
    source: str  # config | cli | csv
    nonce: str
    added_at: datetime
    changed_at: datetime


# ---------------------------------------------------------------- time

Clock = Callable[[], datetime]
"""Anything that needs "now" takes one of these; tests pass a frozen one."""


def utc_now() -> datetime:
    return datetime.now(UTC)
