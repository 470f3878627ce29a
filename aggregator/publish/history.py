"""RFC 5005 feed history: monthly pages behind the merged feed, sealed when the month ends.

The subscription document (``feed.atom``) keeps the newest entries and links
``prev-archive`` to the newest month's page; each ``archive/YYYY-MM.atom`` holds every
article first seen in that month and links ``current`` and its own ``prev-archive``. The
current month's page fills up as the month goes, so nothing that left the subscription
document is out of reach; once the month is over its page is written one last time, marked
``fh:archive``, and never changes again, so a reader that fetched it never needs it again.
Months are by first sight, not by the date an item claims, so an item that arrives late
never reopens a sealed month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config import SiteConfig
from aggregator.models import Entry
from aggregator.publish.plan import MERGED_PATH, OutputFeed, one_per_article, sort_newest_first

ARCHIVE_DIR = "archive"

__all__ = [
    "ARCHIVE_DIR",
    "archive_path",
    "complete_months",
    "is_sealed",
    "month_of",
    "month_start",
    "next_month",
    "plan_archive",
    "with_history",
]


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=UTC)


def next_month(month: str) -> str:
    start = month_start(month)
    return f"{start.year + start.month // 12}-{start.month % 12 + 1:02d}"


def archive_path(month: str) -> str:
    return f"{ARCHIVE_DIR}/{month}.atom"


def plan_archive(
    site: SiteConfig,
    month: str,
    entries: Sequence[Entry],
    earlier: Sequence[str],
    *,
    sealed: bool = True,
) -> OutputFeed:
    """The page of ``month``: one entry per article, linked to the newest ``earlier`` one;
    ``sealed`` once the month is over (``fh:archive``: complete, never to change)."""
    articles, also = one_per_article(entries)
    history: list[tuple[str, str]] = [("current", MERGED_PATH)]
    if earlier:
        history.append(("prev-archive", archive_path(max(earlier))))
    return OutputFeed(
        path=archive_path(month),
        title=f"{site.title}: archive {month}",
        subtitle=f"Every article first seen in {month}",
        entries=tuple(sort_newest_first(articles)),
        also=also,
        history=tuple(history),
        archive=sealed,
    )


def is_sealed(path: Path) -> bool:
    """Whether the page at ``path`` was written sealed (it carries ``fh:archive``)."""
    try:
        with path.open("rb") as page:
            return b"<fh:archive" in page.read(4096)
    except OSError:
        return False


def with_history(outputs: Sequence[OutputFeed], archived: Sequence[str]) -> list[OutputFeed]:
    """The outputs, the merged feed linking ``prev-archive`` to the newest archived month."""
    if not archived:
        return list(outputs)
    link = (("prev-archive", archive_path(max(archived))),)
    return [_linked(o, link) if o.path == MERGED_PATH else o for o in outputs]


def _linked(output: OutputFeed, history: tuple[tuple[str, str], ...]) -> OutputFeed:
    return replace(output, history=history)


def months_between(first: str, before: str) -> list[str]:
    """Every month from ``first`` up to, not including, ``before``."""
    months: list[str] = []
    month = first
    while month < before:
        months.append(month)
        month = next_month(month)
    return months


def complete_months(
    oldest_seen: datetime | None, now: datetime, on_disk: Sequence[str]
) -> list[str]:
    """Months that are over and may have an archive: already on disk, or since the oldest
    stored entry (archives outlive ``retention``: the history stays complete)."""
    current = month_of(now)
    stored = months_between(month_of(oldest_seen), current) if oldest_seen else []
    return sorted(set(stored) | {m for m in on_disk if m < current})
