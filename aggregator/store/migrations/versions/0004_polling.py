"""Polling state: Retry-After in force, retirement (410), permanent moves, failure streaks
the last body's hash and the rhythm the feed declares.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

All columns are nullable or defaulted, so existing feeds upgrade in place as healthy feeds
with no move, no retirement and no failure streak on record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("retry_until", sa.DateTime(timezone=True)),
        sa.Column("gone_at", sa.DateTime(timezone=True)),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("moved_to", sa.Text()),
        sa.Column("moved_since", sa.DateTime(timezone=True)),
        sa.Column("moved_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("fetch_url", sa.Text()),
        sa.Column("content_hash", sa.Text()),
        sa.Column("rhythm", sa.Text()),
    )


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
