"""Newsletter: claimed issues with their rendered mail, a per-recipient outbox, a sender
lease per digest, subscribers, and the backfill mark on entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Deliveries recorded by 0001 become ``sent`` rows of the outbox; their issues count as
complete, so nothing already delivered is sent again after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "entries", sa.Column("backfill", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    for column in (
        sa.Column("subject", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("item_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("more_count", sa.Integer(), nullable=False, server_default="0"),
        _when("next_start"),
        _when("completed_at"),
    ):
        op.add_column("digest_issues", column)
    op.execute("UPDATE digest_issues SET completed_at = created_at, next_start = window_end")
    op.execute(
        "UPDATE digest_issues SET item_count = (SELECT count(*) FROM digest_issue_items i"
        " WHERE i.digest_id = digest_issues.digest_id AND i.stamp = digest_issues.stamp)"
    )

    op.create_table(
        "digest_recipients",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("stamp", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        _when("next_attempt_at"),
        _when("sent_at"),
        sa.PrimaryKeyConstraint("digest_id", "stamp", "recipient", name="pk_digest_recipients"),
        sa.ForeignKeyConstraint(
            ["digest_id", "stamp"],
            ["digest_issues.digest_id", "digest_issues.stamp"],
            name="fk_digest_recipients_digest_id_digest_issues",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_digest_recipients_status", "digest_recipients", ["status"])
    op.execute(
        "INSERT INTO digest_recipients"
        " (digest_id, stamp, recipient, message_id, status, attempts, sent_at)"
        " SELECT d.digest_id, d.stamp, d.recipient, i.message_id, 'sent', 1, d.sent_at"
        " FROM digest_deliveries d JOIN digest_issues i"
        " ON i.digest_id = d.digest_id AND i.stamp = d.stamp"
    )
    op.drop_table("digest_deliveries")

    op.create_table(
        "digest_senders",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text()),
        sa.Column("host", sa.Text()),
        sa.Column("pid", sa.Integer()),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("digest_id", name="pk_digest_senders"),
    )
    op.create_table(
        "subscribers",
        sa.Column("digest_id", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        _when("added_at", nullable=False),
        _when("changed_at", nullable=False),
        sa.PrimaryKeyConstraint("digest_id", "address", name="pk_subscribers"),
    )


def downgrade() -> None:
    raise NotImplementedError("0002 cannot be undone: restore a backup taken before upgrading")
