"""Persistence: SQLAlchemy Core tables and queries, migrated by Alembic on open."""

from __future__ import annotations

from aggregator.store.store import Store, open_store

__all__ = ["Store", "open_store"]
