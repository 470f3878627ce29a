"""Alembic environment, driven only from ``aggregator.store.database.upgrade``.

The caller opens the transaction (and, on PostgreSQL, takes the advisory lock) and hands
its connection over in ``config.attributes["connection"]``; nothing here opens one.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from aggregator.store.schema import metadata


def run_migrations_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can alter tables only by copy-and-move; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("aggregator migrations run only through aggregator.store.open_store()")
run_migrations_online(_connection)
