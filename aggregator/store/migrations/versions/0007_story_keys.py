"""Story keys: each decided article keeps the keys it was compared on, so restoring the
story window after a restart reads them instead of re-reading every article's text.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("article_stories") as batch:
        batch.add_column(sa.Column("story_keys", sa.Text()))
        batch.add_column(sa.Column("keys_version", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("article_stories") as batch:
        batch.drop_column("keys_version")
        batch.drop_column("story_keys")
