"""A source's own language and rights statement, carried into what we republish.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("language", sa.Text()))
        batch.add_column(sa.Column("rights", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("rights")
        batch.drop_column("language")
