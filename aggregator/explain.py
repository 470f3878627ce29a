"""``aggregator explain``: why an entry has (or lacks) each topic, and which story it is in.

The topic reasons are the ones stored when the entry was classified; the misses are
computed now with the running rules (``topics.explain_misses``), and the story's reasons
are those stored when the article first joined it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .models import Entry
from .store import Store
from .topics import CompiledTopics, TopicMiss, explain_misses


@dataclass(frozen=True)
class Explanation:
    entry: Entry
    sources: tuple[str, ...]  # every feed that carries the same article
    misses: tuple[TopicMiss, ...]
    story_id: str | None
    joined: Entry | None  # the article it was tied to when it joined its story
    story_reasons: tuple[str, ...]
    story: tuple[Entry, ...]  # one entry per article of the story, first seen first


def explain(
    store: Store,
    query: str,
    topics: CompiledTopics,
    hints: Mapping[str, Sequence[str]],
) -> list[Explanation]:
    """One explanation per stored entry that ``query`` (an id or a link) names."""
    found = store.find_entries(query)
    shared = store.article_sources()
    return [_explain(store, entry, topics, hints, shared) for entry in found]


def _explain(
    store: Store,
    entry: Entry,
    topics: CompiledTopics,
    hints: Mapping[str, Sequence[str]],
    shared: Mapping[str, list[str]],
) -> Explanation:
    misses = explain_misses(
        topics,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        categories=entry.categories,
        feed_topics=hints.get(entry.feed_url, ()),
    )
    story_id, joined_id, reasons, members = store.story(entry.article_id or "")
    joined = next((m for m in members if m.article_id == joined_id), None)
    return Explanation(
        entry=entry,
        sources=tuple(shared.get(entry.article_id or "", [entry.feed_url])),
        misses=misses,
        story_id=story_id,
        joined=joined,
        story_reasons=tuple(reasons),
        story=tuple(members),
    )
