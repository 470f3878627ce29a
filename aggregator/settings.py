"""What feeds.yaml says, as frozen dataclasses: the contract the rest of the package relies
on. ``config.py`` reads and validates the file into these (and re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

SmtpSecurity = Literal["none", "starttls", "ssl"]
StoryMode = Literal["articles", "collapse"]
"""A published feed's entries: one per article (default), or one per story with the
other reports linked (``collapse``)."""


@dataclass(frozen=True)
class SiteConfig:
    title: str
    url: str  # where output/ is served, ends with "/"
    author: str
    app_url: str = ""  # where `aggregator serve` answers (unsubscribe links); default: url
    stories: StoryMode = "articles"  # the merged feed
    hub: str | None = None  # a WebSub hub: linked from every feed and pinged after changes
    language: str | None = None  # of the published feeds and front page, e.g. "en"


@dataclass(frozen=True)
class Defaults:
    interval: timedelta = timedelta(minutes=30)
    feed_items: int = 100
    retention: timedelta = timedelta(days=90)
    adaptive: bool = True  # poll rarely-publishing feeds less often (polling.adaptive_interval)


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = 10  # requests in flight overall
    per_host: int = 2  # requests in flight per host
    timeout: timedelta = timedelta(seconds=30)  # connect and read, each
    max_bytes: int = 10 * 1024 * 1024  # body-size cap; larger bodies are aborted
    allow_private: bool = False  # may redirects lead to loopback/private addresses (netguard)
    min_interval: timedelta = timedelta(minutes=5)  # no feed is polled more often (typo guard)
    parse_timeout: timedelta = timedelta(seconds=10)  # one feed's parse, in a worker process
    lease: timedelta = timedelta(minutes=15)  # a dead worker's claimed feeds wait this long


# One keyword in a title (worth 3, see topics.FIELD_WEIGHTS) assigns a topic on its own;
# one in a summary (2) or a body (1) needs a second term to back it up.
DEFAULT_TOPIC_THRESHOLD = 3


@dataclass(frozen=True)
class TopicRule:
    id: str
    title: str
    keywords: tuple[str, ...] = ()  # single terms, word-boundary; "stem*" = prefix
    phrases: tuple[str, ...] = ()  # multi-word, matched as a whole (whitespace-tolerant)
    exclude: tuple[str, ...] = ()  # same syntax as keywords; any match vetoes the topic
    weak: tuple[str, ...] = ()  # score only alongside a keyword, phrase or context term
    context: tuple[str, ...] = ()  # score only alongside a keyword, phrase or weak term
    threshold: int = DEFAULT_TOPIC_THRESHOLD  # points (title 3, summary 2, …) to assign
    stories: StoryMode = "articles"  # the topic's published feed


@dataclass(frozen=True)
class FeedConfig:
    url: str  # absolute http(s)/file URL; a local path is turned into a file:// URL
    title: str | None = None
    topics: tuple[str, ...] = ()  # topic hints: everything from this source is in these
    interval: timedelta = timedelta(minutes=30)  # effective: per-feed value or the default
    line: int = 0  # where the entry starts in feeds.yaml, for messages
    adaptive: bool = True  # effective: per-feed value or the default


@dataclass(frozen=True)
class DigestConfig:
    id: str
    title: str
    schedule: str  # five-field cron expression
    timezone: ZoneInfo  # its key is the IANA name
    to: tuple[str, ...]
    topics: tuple[str, ...] = ()  # empty = all items
    max_items: int = 40
    lookback: timedelta = timedelta(days=1)
    template: str | None = None  # overrides "digest" template base name/path (see render.py)
    max_html_bytes: int = 90_000  # Gmail clips HTML past ~102 KB; items past this are cut


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str  # the "from" key
    port: int = 587
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # AGGREGATOR_SMTP_PASSWORD only
    timeout: float = 30.0
    unsubscribe_mailbox: str | None = None  # List-Unsubscribe mailto; default: the from address


@dataclass(frozen=True)
class Config:
    path: Path  # absolute path of feeds.yaml
    site: SiteConfig
    output_dir: Path  # absolute
    database_url: str  # SQLAlchemy URL; sqlite paths made absolute
    templates_dir: Path  # absolute; default "templates" beside feeds.yaml
    state_dir: Path = Path("state")  # absolute; private files (.eml copies, previews)
    defaults: Defaults = Defaults()
    fetch: FetchSettings = FetchSettings()
    topics: tuple[TopicRule, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = ()
    smtp: SmtpConfig | None = None
    secret_key: bytes | None = field(default=None, repr=False)  # AGGREGATOR_SECRET_KEY only

    def topic(self, topic_id: str) -> TopicRule | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def digest(self, digest_id: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.id == digest_id), None)
