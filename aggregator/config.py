"""feeds.yaml → frozen dataclasses. Every problem names file, line and field.

The dataclasses below are the contract the rest of the package relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

SmtpSecurity = Literal["none", "starttls", "ssl"]


@dataclass(frozen=True)
class SiteConfig:
    title: str
    url: str  # where output/ is served, ends with "/"
    author: str


@dataclass(frozen=True)
class Defaults:
    interval: timedelta = timedelta(minutes=30)
    feed_items: int = 100
    retention: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = 10  # requests in flight overall
    per_host: int = 2  # requests in flight per host
    timeout: timedelta = timedelta(seconds=30)  # connect and read, each
    max_bytes: int = 10 * 1024 * 1024  # body-size cap; larger bodies are aborted


@dataclass(frozen=True)
class TopicRule:
    id: str
    title: str
    keywords: tuple[str, ...] = ()  # single terms, word-boundary; "stem*" = prefix
    phrases: tuple[str, ...] = ()  # multi-word, matched as a whole (whitespace-tolerant)
    exclude: tuple[str, ...] = ()  # same syntax as keywords; any match vetoes the topic


@dataclass(frozen=True)
class FeedConfig:
    url: str  # absolute http(s)/file URL; a local path is turned into a file:// URL
    title: str | None = None
    topics: tuple[str, ...] = ()  # topic hints: everything from this source is in these
    interval: timedelta = timedelta(minutes=30)  # effective: per-feed value or the default
    line: int = 0  # where the entry starts in feeds.yaml, for messages


@dataclass(frozen=True)
class DigestConfig:
    id: str
    title: str
    schedule: str  # five-field cron expression
    timezone: str  # IANA name
    to: tuple[str, ...]
    topics: tuple[str, ...] = ()  # empty = all items
    max_items: int = 40
    lookback: timedelta = timedelta(days=1)
    template: str | None = None  # overrides "digest" template base name/path (see render.py)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str  # the "from" key
    port: int = 587
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # AGGREGATOR_SMTP_PASSWORD only
    timeout: float = 30.0


@dataclass(frozen=True)
class Config:
    path: Path  # absolute path of feeds.yaml
    site: SiteConfig
    output_dir: Path  # absolute
    database_url: str  # SQLAlchemy URL; sqlite paths made absolute
    templates_dir: Path  # absolute; default "templates" beside feeds.yaml
    defaults: Defaults = Defaults()
    fetch: FetchSettings = FetchSettings()
    topics: tuple[TopicRule, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = ()
    smtp: SmtpConfig | None = None

    def topic(self, topic_id: str) -> TopicRule | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def digest(self, digest_id: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.id == digest_id), None)
