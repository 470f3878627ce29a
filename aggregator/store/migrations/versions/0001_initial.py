"""Initial schema: feeds, entries, entry topics, digest issues and deliveries.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

A snapshot, deliberately independent of schema.py: later edits there must not rewrite
history here. Constraint names follow schema.NAMING_CONVENTION.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("config_title", sa.Text()),
        sa.Column("own_title", sa.Text()),
        sa.Column("link", sa.Text()),
        sa.Column("feed_id", sa.Text()),
        _when("updated"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        _when("last_fetched_at"),
        _when("last_success_at"),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_warning", sa.Text()),
        sa.Column("error_count", sa.Integer(), nullable=False),
        _when("next_due_at"),
        sa.Column("final_url", sa.Text()),
        _when("added_at", nullable=False),
        sa.PrimaryKeyConstraint("url", name="pk_feeds"),
    )
    op.create_index("ix_feeds_next_due_at", "feeds", ["next_due_at"])

    op.create_table(
        "entries",
        sa.Column("feed_url", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text()),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _when("published", nullable=False),
        _when("updated"),
        _when("first_seen_at", nullable=False),
        _when("last_changed_at", nullable=False),
        sa.Column("author", sa.Text()),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("feed_url", "entry_id", name="pk_entries"),
        sa.ForeignKeyConstraint(["feed_url"], ["feeds.url"], name="fk_entries_feed_url_feeds"),
    )
    op.create_index("ix_entries_published", "entries", ["published"])
    op.create_index("ix_entries_first_seen_at", "entries", ["first_seen_at"])

    op.create_table(
        "entry_topics",
        sa.Column("feed_url", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("topic_id", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("feed_url", "entry_id", "topic_id", name="pk_entry_topics"),
        sa.ForeignKeyConstraint(
            ["feed_url", "entry_id"],
            ["entries.feed_url", "entries.entry_id"],
            name="fk_entry_topics_feed_url_entries",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_entry_topics_topic_id", "entry_topics", ["topic_id"])

    op.create_table(
        "digest_issues",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("stamp", sa.Text(), nullable=False),
        _when("window_start", nullable=False),
        _when("window_end", nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("digest_id", "stamp", name="pk_digest_issues"),
    )

    op.create_table(
        "digest_issue_items",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("stamp", sa.Text(), nullable=False),
        sa.Column("feed_url", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "digest_id", "stamp", "feed_url", "entry_id", name="pk_digest_issue_items"
        ),
        sa.ForeignKeyConstraint(
            ["digest_id", "stamp"],
            ["digest_issues.digest_id", "digest_issues.stamp"],
            name="fk_digest_issue_items_digest_id_digest_issues",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "digest_deliveries",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("stamp", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        _when("sent_at", nullable=False),
        sa.PrimaryKeyConstraint("digest_id", "stamp", "recipient", name="pk_digest_deliveries"),
        sa.ForeignKeyConstraint(
            ["digest_id", "stamp"],
            ["digest_issues.digest_id", "digest_issues.stamp"],
            name="fk_digest_deliveries_digest_id_digest_issues",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in (
        "digest_deliveries",
        "digest_issue_items",
        "digest_issues",
        "entry_topics",
        "entries",
        "feeds",
    ):
        op.drop_table(table)
