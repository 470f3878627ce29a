"""What each published feed holds: one plan, pure, that every output format renders.

The merged feed and one feed per topic; one entry per article however many feeds carry it
(the others credited); with ``stories: collapse``, one entry per story.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from aggregator.config import SiteConfig, TopicRule
from aggregator.models import Entry, EntryKey
from aggregator.publish.common import utc
from aggregator.settings import StoryMode

MERGED_PATH = "feed.atom"


@dataclass(frozen=True)
class OutputFeed:
    """One file to publish; ``path`` is relative to the output dir."""

    path: str  # "feed.atom" or "topics/<id>.atom"
    title: str
    subtitle: str
    entries: tuple[Entry, ...]
    # Other feeds' entries for the same article, credited on the entry that stands for it.
    also: Mapping[EntryKey, tuple[Entry, ...]] = field(default_factory=dict)
    # With stories collapsed: the story's other articles, linked from its lead entry.
    related: Mapping[EntryKey, tuple[Entry, ...]] = field(default_factory=dict)
    # RFC 5005 paging: (rel, path relative to the site) such as ("prev-archive", "archive/…").
    history: tuple[tuple[str, str], ...] = ()
    archive: bool = False  # an immutable archive document (fh:archive), not the live feed


def topic_path(topic_id: str) -> str:
    return f"topics/{topic_id}.atom"


def sort_newest_first(entries: Sequence[Entry]) -> list[Entry]:
    """Newest ``published`` first; ties by feed URL then entry id (two stable passes)."""
    by_key = sorted(entries, key=lambda e: (e.feed_url, e.entry_id))
    return sorted(by_key, key=lambda e: utc(e.published), reverse=True)


def plan_outputs(
    site: SiteConfig,
    topics: Sequence[TopicRule],
    entries: Sequence[Entry],
    feed_items: int,
) -> list[OutputFeed]:
    """The merged feed plus one feed per configured topic (even an empty one), each with
    one entry per article however many feeds carry it."""
    articles, also = one_per_article(entries)
    ordered = sort_newest_first(articles)
    cap = max(feed_items, 0)
    merged = _output(MERGED_PATH, site.title, "All entries from every source", ordered, also)
    outputs = [_with_stories(merged, site.stories, cap)]
    for topic in topics:
        selected = [e for e in ordered if topic.id in _article_topics(e, also)]
        output = _output(
            topic_path(topic.id),
            f"{site.title}: {topic.title}",
            f"Entries about {topic.title}",
            selected,
            also,
        )
        outputs.append(_with_stories(output, topic.stories, cap))
    return outputs


def _output(
    path: str,
    title: str,
    subtitle: str,
    entries: Sequence[Entry],
    also: Mapping[EntryKey, tuple[Entry, ...]],
) -> OutputFeed:
    return OutputFeed(path=path, title=title, subtitle=subtitle, entries=tuple(entries), also=also)


def _with_stories(output: OutputFeed, mode: StoryMode, cap: int) -> OutputFeed:
    """Cap the entries; with ``collapse``, one entry per story first: its lead (the earliest
    report, as stories.lead chooses), the story's other articles linked as related."""
    if mode != "collapse":
        return replace(output, entries=output.entries[:cap])
    stories: dict[str, list[Entry]] = {}
    for entry in output.entries:
        stories.setdefault(entry.story_id or f"article:{entry.key}", []).append(entry)
    leads: list[Entry] = []
    related: dict[EntryKey, tuple[Entry, ...]] = {}
    for members in stories.values():
        members.sort(key=lambda e: (utc(e.published), e.feed_url, e.entry_id))
        leads.append(members[0])
        if len(members) > 1:
            related[members[0].key] = tuple(members[1:])
    kept = sort_newest_first(leads)[:cap]
    return replace(output, entries=tuple(kept), related=related)


def one_per_article(
    entries: Sequence[Entry],
) -> tuple[list[Entry], dict[EntryKey, tuple[Entry, ...]]]:
    """The entry that stands for each article — the first seen, ties by feed and id — and,
    for each, the other feeds' entries of the same article."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.article_id or f"{entry.feed_url}\n{entry.entry_id}", []).append(
            entry
        )
    leads: list[Entry] = []
    also: dict[EntryKey, tuple[Entry, ...]] = {}
    for group in groups.values():
        group.sort(key=lambda e: (utc(e.first_seen_at), e.feed_url, e.entry_id))
        leads.append(group[0])
        if len(group) > 1:
            also[group[0].key] = tuple(group[1:])
    return leads, also


def _article_topics(entry: Entry, also: Mapping[EntryKey, tuple[Entry, ...]]) -> set[str]:
    return {t for e in (entry, *also.get(entry.key, ())) for t in e.topic_ids}
