"""Copying a whole state into another, empty database: how an SQLite state moves to
PostgreSQL (``aggregator db copy URL``).

Every table, parents before children, in pages, inside one transaction on the target: a
copy that fails half-way leaves the target as empty as it was. The source is read in one
transaction too, so a copy is a consistent snapshot (stop the daemon first all the same:
what it stores after the snapshot would stay behind).
"""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, select

from aggregator.errors import NotEmptyError
from aggregator.store.schema import metadata

PAGE = 1000


def copy_tables(source: Engine, target: Engine, target_name: str) -> dict[str, int]:
    """Copy every row of ``source`` into ``target`` (already migrated, and empty); returns
    the rows copied per table."""
    copied: dict[str, int] = {}
    with target.begin() as writer, source.connect() as reader, reader.begin():
        for table in metadata.sorted_tables:
            if writer.execute(select(func.count()).select_from(table)).scalar_one():
                raise NotEmptyError(
                    f"{target_name}: table {table.name} already holds rows; copy only into "
                    "an empty database"
                )
        for table in metadata.sorted_tables:
            result = reader.execution_options(yield_per=PAGE).execute(select(table))
            copied[table.name] = 0
            for page in result.partitions():
                writer.execute(insert(table), [dict(row._mapping) for row in page])
                copied[table.name] += len(page)
    return copied
