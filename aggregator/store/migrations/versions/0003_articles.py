"""Articles and stories: one identity for an article carried by several feeds, and the
story (same event) each article belongs to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Existing entries get their article ids here, oldest first, with the rules of
``aggregator.identity`` as they are in this revision; digest items take the article id of
their entry, so nothing already sent is sent again from another feed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.identity import article_id, identity_keys

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("article_id", sa.Text()))
    op.add_column("entries", sa.Column("story_id", sa.Text()))
    op.create_index("ix_entries_article_id", "entries", ["article_id"])
    op.create_index("ix_entries_story_id", "entries", ["story_id"])
    op.create_table(
        "article_stories",
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("story_id", sa.Text(), nullable=False),
        sa.Column("joined", sa.Text()),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("article_id", name="pk_article_stories"),
    )
    op.create_index("ix_article_stories_story_id", "article_stories", ["story_id"])
    op.create_index("ix_article_stories_published", "article_stories", ["published"])
    op.add_column("digest_issue_items", sa.Column("article_id", sa.Text()))
    op.create_table(
        "article_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_article_keys"),
    )
    op.create_index("ix_article_keys_article_id", "article_keys", ["article_id"])
    _assign_existing_entries()
    op.execute(
        "UPDATE digest_issue_items SET article_id = (SELECT e.article_id FROM entries e"
        " WHERE e.feed_url = digest_issue_items.feed_url"
        " AND e.entry_id = digest_issue_items.entry_id)"
    )


def _assign_existing_entries() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT feed_url, entry_id, link FROM entries"
            " ORDER BY first_seen_at, feed_url, entry_id"
        )
    ).fetchall()
    known: dict[str, str] = {}
    updates = []
    for feed_url, entry_id, link in rows:
        keys = identity_keys(entry_id, link)
        found = next((known[k] for k in keys if k in known), None)
        article = found or article_id(keys, feed_url, entry_id)
        for key in keys:
            known.setdefault(key, article)
        updates.append({"a": article, "f": feed_url, "e": entry_id})
    if updates:
        conn.execute(
            sa.text("UPDATE entries SET article_id = :a WHERE feed_url = :f AND entry_id = :e"),
            updates,
        )
    if known:
        conn.execute(
            sa.text("INSERT INTO article_keys (key, article_id) VALUES (:k, :a)"),
            [{"k": k, "a": a} for k, a in known.items()],
        )


def downgrade() -> None:
    raise NotImplementedError("0003 cannot be undone: restore a backup taken before upgrading")
