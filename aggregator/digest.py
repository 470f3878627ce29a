"""Which items go into a digest issue, and in which sections.

Pure: the caller queries the store for candidates and for what was already sent,
then renders and delivers the :class:`DigestIssue` this returns.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.config import DigestConfig, TopicRule
from aggregator.errors import ConfigError, ConfigProblem
from aggregator.models import (
    DigestIssue,
    DigestItem,
    DigestSection,
    Entry,
    EntryKey,
    SentIssue,
)
from aggregator.text import html_to_text, one_line, shorten

OTHER_TITLE = "Other"
UNTITLED = "(untitled)"
SUMMARY_LIMIT = 280
STAMP_FORMAT = "%Y-%m-%dT%H%M"

Window = tuple[datetime, datetime]


def issue_window(digest: DigestConfig, last_issue: SentIssue | None, now: datetime) -> Window:
    """[start, end) of the next issue: from where the last one ended (or ``now - lookback``
    for the first issue) up to ``now``."""
    start = last_issue.window_end if last_issue is not None else now - digest.lookback
    # A last window ending in the future (clock stepped back) must not be covered twice:
    # an empty window is the honest answer.
    return min(start, now), now


def plan_issue(
    digest: DigestConfig,
    topics: Sequence[TopicRule],
    candidates: Sequence[Entry],
    *,
    already_sent: Set[EntryKey],
    window: Window,
) -> DigestIssue:
    """Choose, order and section the items of one issue (possibly with no items)."""
    window_start, window_end = window
    order = digest.topics or tuple(t.id for t in topics)
    chosen = [
        e for e in candidates if _eligible(e, digest, already_sent=already_sent, window=window)
    ]
    # Two stable sorts rather than a float key: exact on microseconds, ties by key.
    chosen.sort(key=lambda e: (e.feed_url, e.entry_id))
    chosen.sort(key=lambda e: e.published, reverse=True)
    chosen = chosen[: max(digest.max_items, 0)]
    return DigestIssue(
        digest_id=digest.id,
        title=digest.title,
        stamp=issue_stamp(digest, window_end),
        window_start=window_start,
        window_end=window_end,
        sections=_sections(chosen, order, topics, with_other=not digest.topics),
    )


def issue_stamp(digest: DigestConfig, window_end: datetime) -> str:
    """The issue's name: its window end in the digest's time zone, e.g. "2026-11-26T0900".

    In the hour a DST change repeats, the local time alone names two instants, and a
    stamp is the issue's key (files, delivery records): there the UTC offset is
    appended, e.g. "2026-10-25T0300+0300" and then "2026-10-25T0300+0200".
    """
    try:
        zone = ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        problem = ConfigProblem(
            "feeds.yaml",
            0,
            f"digests.{digest.id}.timezone",
            f"unknown time zone {digest.timezone!r}",
        )
        raise ConfigError([problem]) from exc
    local = window_end.astimezone(zone)
    stamp = local.strftime(STAMP_FORMAT)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        stamp += local.strftime("%z")
    return stamp


def digest_item(entry: Entry) -> DigestItem:
    summary = html_to_text(entry.summary) or html_to_text(entry.content)
    return DigestItem(
        key=entry.key,
        title=one_line(entry.title) or UNTITLED,
        link=entry.link,
        source=entry.feed_title or urlsplit(entry.feed_url).hostname or entry.feed_url,
        published=entry.published,
        summary_text=shorten(summary, SUMMARY_LIMIT),
    )


# ---------------------------------------------------------------- selection


def _eligible(
    entry: Entry, digest: DigestConfig, *, already_sent: Set[EntryKey], window: Window
) -> bool:
    window_start, window_end = window
    if not window_start <= entry.first_seen_at < window_end:
        return False
    if entry.key in already_sent:
        return False
    if digest.topics and not set(entry.topic_ids) & set(digest.topics):
        return False
    # First seen now but published long ago: a newly added source's archive, not news.
    return entry.published >= window_start - digest.lookback


def _sections(
    entries: Sequence[Entry],
    order: Sequence[str],
    topics: Sequence[TopicRule],
    *,
    with_other: bool,
) -> tuple[DigestSection, ...]:
    by_topic: dict[str | None, list[DigestItem]] = {topic_id: [] for topic_id in order}
    by_topic[None] = []
    for entry in entries:
        # Each item once, under the first of its topics in the issue's order.
        home = next((t for t in order if t in entry.topic_ids), None)
        if home is None and not with_other:
            continue
        by_topic[home].append(digest_item(entry))
    titles = {t.id: t.title for t in topics}
    sections = [
        DigestSection(topic_id, titles.get(topic_id, topic_id), tuple(by_topic[topic_id]))
        for topic_id in dict.fromkeys(order)
        if by_topic[topic_id]
    ]
    if with_other and by_topic[None]:
        sections.append(DigestSection(None, OTHER_TITLE, tuple(by_topic[None])))
    return tuple(sections)
