"""Which items go into a digest issue, and in which sections.

Pure: the caller queries the store for candidates and for what was already sent,
then renders and delivers the :class:`DigestIssue` this returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aggregator.config import DigestConfig, TopicRule
from aggregator.identity import canonical_link
from aggregator.models import (
    DigestIssue,
    DigestItem,
    DigestSection,
    Entry,
    EntryKey,
    StoredIssue,
)
from aggregator.text import html_to_text, one_line, shorten

OTHER_TITLE = "Other"
UNTITLED = "(untitled)"
SUMMARY_LIMIT = 280
STAMP_FORMAT = "%Y-%m-%dT%H%M"
OVERLAP = timedelta(hours=1)
"""How far before an issue's end the next issue looks again. An entry is stamped when its
fetch is stored but becomes visible at commit: one committed after an issue was built, yet
stamped before its end, is caught by the next issue (sent items are excluded anyway)."""

Window = tuple[datetime, datetime]


def issue_window(digest: DigestConfig, last_issue: StoredIssue | None, now: datetime) -> Window:
    """[start, end) the next issue reports on: from where the last one ended (or
    ``now - lookback`` for the first issue) up to ``now``."""
    start = last_issue.window_end if last_issue is not None else now - digest.lookback
    # A last window ending in the future (clock stepped back) must not be covered twice:
    # an empty window is the honest answer.
    return min(start, now), now


def candidates_since(
    digest: DigestConfig, last_issue: StoredIssue | None, now: datetime
) -> datetime:
    """The earliest first-seen time of the next issue's candidates: the last issue's
    ``next_start`` (an hour before its end, or earlier for items it carried over)."""
    if last_issue is None:
        return now - digest.lookback
    return min(last_issue.next_start, now)


def eligible_entries(
    digest: DigestConfig,
    candidates: Iterable[Entry],
    *,
    already_sent: Set[EntryKey],
    since: datetime,
    window: Window,
    sent_articles: Set[str] = frozenset(),
) -> list[Entry]:
    """The entries the next issue may hold, in issue order (newest first). An entry is out
    when it, or its article from any feed (``sent_articles``), was in an earlier issue."""
    chosen = [
        e
        for e in candidates
        if _eligible(e, digest, already_sent=already_sent, since=since, window=window)
        and not (e.article_id and e.article_id in sent_articles)
    ]
    # Two stable sorts rather than a float key: exact on microseconds, ties by key.
    chosen.sort(key=lambda e: (e.feed_url, e.entry_id))
    chosen.sort(key=lambda e: e.published, reverse=True)
    return chosen


def plan_issue(
    digest: DigestConfig,
    topics: Sequence[TopicRule],
    eligible: Sequence[Entry],
    *,
    window: Window,
) -> DigestIssue:
    """Choose and section the items of one issue (possibly none): the first ``max_items``
    articles of ``eligible``; the rest are counted in ``more`` and lead the next issue."""
    window_start, window_end = window
    order = digest.topics or tuple(t.id for t in topics)
    articles = _articles(eligible)
    chosen = articles[: max(digest.max_items, 0)]
    return DigestIssue(
        digest_id=digest.id,
        title=digest.title,
        stamp=issue_stamp(digest, window_end),
        window_start=window_start,
        window_end=window_end,
        sections=_sections(chosen, order, topics, with_other=not digest.topics),
        more=len(articles) - len(chosen),
    )


def next_start(eligible: Sequence[Entry], issue: DigestIssue) -> datetime:
    """Where the issue after ``issue`` starts looking: early enough for every eligible entry
    this issue left out (max_items, byte budget) and for late commits (``OVERLAP``)."""
    included = {key for item in issue.items for key in (item.key, *item.merged)}
    left_out = [e.first_seen_at for e in eligible if e.key not in included]
    return min([issue.window_end - OVERLAP, *left_out])


def issue_stamp(digest: DigestConfig, window_end: datetime) -> str:
    """The issue's name: its window end in the digest's time zone, e.g. "2026-11-26T0900".

    In the hour a DST change repeats, the local time alone names two instants, and a
    stamp is the issue's key (files, delivery records): there the UTC offset is
    appended, e.g. "2026-10-25T0300+0300" and then "2026-10-25T0300+0200".
    """
    local = window_end.astimezone(digest.timezone)
    stamp = local.strftime(STAMP_FORMAT)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        stamp += local.strftime("%z")
    return stamp


def digest_item(entry: Entry, others: Sequence[Entry] = ()) -> DigestItem:
    summary = html_to_text(entry.summary) or html_to_text(entry.content)
    source = _source_name(entry)
    copies: dict[str, str | None] = {}
    for other in others:
        name = _source_name(other)
        if name != source and name not in copies:
            same_page = canonical_link(other.link) == canonical_link(entry.link)
            copies[name] = None if same_page else other.link
    return DigestItem(
        key=entry.key,
        title=one_line(entry.title) or UNTITLED,
        link=entry.link,
        source=source,
        published=entry.published,
        summary_text=shorten(summary, SUMMARY_LIMIT),
        also=tuple(copies),
        also_links=tuple(copies.values()),
        merged=tuple(e.key for e in others),
    )


def _source_name(entry: Entry) -> str:
    return entry.feed_title or urlsplit(entry.feed_url).hostname or entry.feed_url


# ---------------------------------------------------------------- selection


def _eligible(
    entry: Entry,
    digest: DigestConfig,
    *,
    already_sent: Set[EntryKey],
    since: datetime,
    window: Window,
) -> bool:
    window_start, window_end = window
    if not since <= entry.first_seen_at < window_end:
        return False
    if entry.key in already_sent:
        return False
    if digest.topics and not set(entry.topic_ids) & set(digest.topics):
        return False
    # A new source's first fetch brings its archive: old items there are not news. A known
    # source that was down brings old items too, but those are news we have not told.
    return not entry.backfill or entry.published >= window_start - digest.lookback


class _Article:
    """One article and the entries of other feeds that carry it (same link or story)."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.others: list[Entry] = []

    def feeds(self) -> set[str]:
        return {e.feed_url for e in (self.entry, *self.others)}


def _articles(entries: Sequence[Entry]) -> list[_Article]:
    articles: list[_Article] = []
    by_identity: dict[str, _Article] = {}
    for entry in entries:
        identities = _identities(entry)
        found = next((by_identity[i] for i in identities if i in by_identity), None)
        if found is not None and entry.feed_url in found.feeds():
            # One feed listing one link twice means two items (e.g. both link its home page).
            found = None
        if found is None:
            found = _Article(entry)
            articles.append(found)
        else:
            found.others.append(entry)
        for identity in identities:
            by_identity.setdefault(identity, found)
    return articles


def _identities(entry: Entry) -> list[str]:
    found = [f"story:{entry.story_id}"] if entry.story_id else []
    if entry.article_id:
        found.append(f"article:{entry.article_id}")
    link = canonical_link(entry.link)
    if link:  # also for entries stored before articles had ids
        found.append(f"link:{link}")
    return found


def _sections(
    articles: Sequence[_Article],
    order: Sequence[str],
    topics: Sequence[TopicRule],
    *,
    with_other: bool,
) -> tuple[DigestSection, ...]:
    by_topic: dict[str | None, list[DigestItem]] = {topic_id: [] for topic_id in order}
    by_topic[None] = []
    for article in articles:
        # Each item once, under the first of its topics in the issue's order.
        topic_ids = {t for e in (article.entry, *article.others) for t in e.topic_ids}
        home = next((t for t in order if t in topic_ids), None)
        if home is None and not with_other:
            continue
        by_topic[home].append(digest_item(article.entry, article.others))
    titles = {t.id: t.title for t in topics}
    sections = [
        DigestSection(topic_id, titles.get(topic_id, topic_id), tuple(by_topic[topic_id]))
        for topic_id in dict.fromkeys(order)
        if by_topic[topic_id]
    ]
    if with_other and by_topic[None]:
        sections.append(DigestSection(None, OTHER_TITLE, tuple(by_topic[None])))
    return tuple(sections)
