"""Writing the RFC 5005 pages (I/O): seal the months that are over, refresh the current one.

The plan of each page is :mod:`aggregator.publish.history`'s; this module decides which
pages to (re)write. A sealed month is written once and never again. The current month's page
holds every article first seen in the month, so rendering it is the one publish cost that
grows with the month: it is refreshed at most once per ``OPEN_PAGE_REFRESH`` (and whenever it
is missing), recorded in a dotfile the web server never serves. Until then, the newest
articles are in ``feed.atom`` anyway; only ones that left it in the last hour wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from aggregator.config import SiteConfig, TopicRule
from aggregator.models import Entry, Feed
from aggregator.publish.atom import atom_pieces
from aggregator.publish.history import (
    ARCHIVE_DIR,
    complete_months,
    is_sealed,
    month_of,
    month_start,
    next_month,
    plan_archive,
)
from aggregator.publish.writer import write_file

__all__ = ["OPEN_PAGE_REFRESH", "write_archives"]

OPEN_PAGE_REFRESH = timedelta(hours=1)
_REFRESHED = ".open-page-refreshed"  # when the current month's page was last written


class History(Protocol):
    """What the archives read from the store."""

    def oldest_first_seen(self) -> datetime | None: ...
    def entries_seen_between(
        self, start: datetime, end: datetime, *, bodies: bool = True
    ) -> list[Entry]: ...
    def with_bodies(self, loaded: Sequence[Entry]) -> list[Entry]: ...


def write_archives(
    history: History,
    output_dir: Path,
    now: datetime,
    *,
    site: SiteConfig,
    sources: Mapping[str, Feed],
    topics: Sequence[TopicRule],
) -> tuple[list[str], list[Path]]:
    """Bring the pages up to date; returns the months that have one, oldest first, and the
    files written."""
    folder = output_dir / ARCHIVE_DIR
    on_disk = sorted(p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].atom"))
    current = month_of(now)
    paged: list[str] = []
    written: list[Path] = []
    for month in [*complete_months(history.oldest_first_seen(), now, on_disk), current]:
        page = folder / f"{month}.atom"
        sealed = month != current
        if (sealed and is_sealed(page)) or (not sealed and _fresh(folder, page, now)):
            paged.append(month)
            continue
        # Planned without bodies; each piece of the page loads its own (a month of bodies is
        # the one publish cost that grows with the number of stored entries).
        start, end = month_start(month), month_start(next_month(month))
        entries = history.entries_seen_between(start, end, bodies=False)
        if entries:
            output = plan_archive(site, month, entries, earlier=paged, sealed=sealed)
            pieces = atom_pieces(
                output, site=site, sources=sources, topics=topics, fill=history.with_bodies
            )
            written += write_file(output_dir, output.path, pieces)
            if not sealed:
                write_file(output_dir, f"{ARCHIVE_DIR}/{_REFRESHED}", now.isoformat().encode())
        if entries or month in on_disk:
            paged.append(month)
    return paged, written


def _fresh(folder: Path, page: Path, now: datetime) -> bool:
    try:
        refreshed = datetime.fromisoformat((folder / _REFRESHED).read_text().strip())
    except (OSError, ValueError):
        return False
    return page.exists() and timedelta(0) <= now - refreshed < OPEN_PAGE_REFRESH
