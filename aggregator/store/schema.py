"""Table definitions (SQLAlchemy Core). Changes here need an Alembic migration too.

Every datetime column is ``UTCDateTime``: aware UTC in, aware UTC out, on SQLite
(which stores naive text) and PostgreSQL (``timestamptz``) alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect

# Deterministic constraint names, so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def as_utc(value: datetime) -> datetime:
    """The one place naive database values become aware: naive means UTC (SQLite)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that refuses naive input and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        # SQLite keeps text without an offset; all-UTC text also sorts chronologically.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


feeds = Table(
    "feeds",
    metadata,
    Column("url", Text, nullable=False),
    Column("config_title", Text),
    Column("own_title", Text),
    Column("link", Text),
    Column("feed_id", Text),
    Column("updated", UTCDateTime),
    Column("active", Boolean, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_fetched_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("last_warning", Text),
    Column("error_count", Integer, nullable=False),
    Column("next_due_at", UTCDateTime),
    Column("final_url", Text),
    Column("added_at", UTCDateTime, nullable=False),
    # Polling state (migration 0004), see polling.py for what each one decides.
    Column("retry_until", UTCDateTime),  # a server's Retry-After, in force until then
    Column("gone_at", UTCDateTime),  # retired by 410 Gone: no more polls
    Column("failing_since", UTCDateTime),  # the first failure of the current streak
    Column("moved_to", Text),  # where permanent redirects (301/308) point
    Column("moved_since", UTCDateTime),
    Column("moved_count", Integer, nullable=False, server_default="0"),
    Column("fetch_url", Text),  # the adopted moved_to: requested instead of url
    Column("content_hash", Text),  # of the last body parsed, for servers without validators
    Column("rhythm", Text),  # the feed's own ttl/sy:/skipHours/skipDays, as JSON
    Column("language", Text),  # the feed's declared language (BCP 47), migration 0005
    Column("rights", Text),  # its rights statement, republished with its entries
    # Which worker is polling the feed now, and until when its claim holds (migration 0006).
    Column("claimed_by", Text),
    Column("claimed_until", UTCDateTime),
    PrimaryKeyConstraint("url"),
    Index(None, "next_due_at"),
)

entries = Table(
    "entries",
    metadata,
    Column("feed_url", Text, nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("link", Text),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    # Effective date for ordering: the feed's published, else updated, else first_seen_at.
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_changed_at", UTCDateTime, nullable=False),
    Column("author", Text),
    Column("categories", Text, nullable=False),  # JSON list of strings
    Column("content_hash", Text, nullable=False),
    # From the feed's first successful fetch: a new source's archive rather than news.
    Column("backfill", Boolean, nullable=False, server_default=false()),
    # The piece of journalism, whichever feeds carry it (identity.py); set on insert.
    Column("article_id", Text),
    Column("story_id", Text),  # the event it reports, with other articles (stories.py)
    PrimaryKeyConstraint("feed_url", "entry_id"),
    ForeignKeyConstraint(["feed_url"], ["feeds.url"]),
    Index(None, "published"),
    Index(None, "first_seen_at"),
    Index(None, "article_id"),
    Index(None, "story_id"),
)

# Which story each article joined, and why: decided once, when the article first arrives,
# so a story id never changes and a later arrival never renumbers it.
article_stories = Table(
    "article_stories",
    metadata,
    Column("article_id", Text, nullable=False),
    Column("story_id", Text, nullable=False),
    Column("joined", Text),  # the article it was tied to; None: it founded the story
    Column("reasons", Text, nullable=False),  # JSON list of strings
    Column("published", UTCDateTime, nullable=False),
    # The keys it was compared on (storykeys.encode_keys) and the rules' version that read
    # them: a restart restores the window from these; another version re-reads the text.
    Column("story_keys", Text),
    Column("keys_version", Integer),
    PrimaryKeyConstraint("article_id"),
    Index(None, "story_id"),
    Index(None, "published"),
)

# Every identity key (guid IRI, canonical link) seen, and the article it belongs to: how an
# entry of one feed is recognised as an article already stored from another.
article_keys = Table(
    "article_keys",
    metadata,
    Column("key", Text, nullable=False),
    Column("article_id", Text, nullable=False),
    PrimaryKeyConstraint("key"),
    Index(None, "article_id"),
)

entry_topics = Table(
    "entry_topics",
    metadata,
    Column("feed_url", Text, nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("topic_id", Text, nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of strings
    PrimaryKeyConstraint("feed_url", "entry_id", "topic_id"),
    ForeignKeyConstraint(
        ["feed_url", "entry_id"],
        ["entries.feed_url", "entries.entry_id"],
        ondelete="CASCADE",
    ),
    Index(None, "topic_id"),
)

# An issue is claimed (row, items and one pending delivery per recipient, in one transaction)
# before any SMTP traffic; ``completed_at`` is set once no delivery is pending. The rendered
# mail (with PERSONAL_LINK in place of each reader's link) is kept so that a resumed issue
# sends exactly what the first attempt sent.
digest_issues = Table(
    "digest_issues",
    metadata,
    Column("digest_id", Text, nullable=False),
    Column("stamp", Text, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("subject", Text),
    Column("html", Text),
    Column("text", Text),
    Column("item_count", Integer, nullable=False, server_default="0"),
    Column("more_count", Integer, nullable=False, server_default="0"),
    # Where the next issue's candidates start: before this issue's end, so that an entry
    # committed late, or left out by max_items, still reaches the next issue.
    Column("next_start", UTCDateTime),
    Column("completed_at", UTCDateTime),
    PrimaryKeyConstraint("digest_id", "stamp"),
)

# No foreign key to entries: these rows are history and may outlive pruned entries.
digest_issue_items = Table(
    "digest_issue_items",
    metadata,
    Column("digest_id", Text, nullable=False),
    Column("stamp", Text, nullable=False),
    Column("feed_url", Text, nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("article_id", Text),  # what "already sent" means: the article, from any feed
    PrimaryKeyConstraint("digest_id", "stamp", "feed_url", "entry_id"),
    ForeignKeyConstraint(
        ["digest_id", "stamp"],
        ["digest_issues.digest_id", "digest_issues.stamp"],
        ondelete="CASCADE",
    ),
)

# The outbox: one row per recipient of an issue. status: pending | sent | failed (permanent).
digest_recipients = Table(
    "digest_recipients",
    metadata,
    Column("digest_id", Text, nullable=False),
    Column("stamp", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    PrimaryKeyConstraint("digest_id", "stamp", "recipient"),
    ForeignKeyConstraint(
        ["digest_id", "stamp"],
        ["digest_issues.digest_id", "digest_issues.stamp"],
        ondelete="CASCADE",
    ),
    Index(None, "status"),
)

# At most one sender per digest: a lease that a live sender renews after every message.
digest_senders = Table(
    "digest_senders",
    metadata,
    Column("digest_id", Text, nullable=False),
    Column("owner", Text),
    Column("host", Text),
    Column("pid", Integer),
    Column("expires_at", UTCDateTime),
    PrimaryKeyConstraint("digest_id"),
)

# Readers of a digest: added by hand or CSV, or listed under ``to:`` in feeds.yaml. The nonce
# is part of every unsubscribe token: a new subscription gets a new one, so old links die.
subscribers = Table(
    "subscribers",
    metadata,
    Column("digest_id", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("status", Text, nullable=False),  # active | unsubscribed
    Column("source", Text, nullable=False),  # config | cli | csv
    Column("nonce", Text, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("digest_id", "address"),
)
