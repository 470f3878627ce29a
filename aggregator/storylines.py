"""Giving new articles their story: the I/O around the pure ``stories.py``.

Stored decisions are final: a story id never changes and a late arrival never renumbers a
story. Before new articles are decided, the window's stored decisions are in the index
(restored, in any order: the index rebuilds the same state); the new ones are then added in
(published, article id) order. A ``StoryBook`` keeps its index between fetches, so a daemon
restores only what another process decided meanwhile, not the whole window every time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .store import Store
from .store.articles import StoryDecision, StoryInput
from .stories import StoryIndex, StoryItem
from .storykeys import TEXT_CHARS

STORY_WINDOW = timedelta(hours=48)


class StoryBook:
    """The story index of one process, kept in step with the store."""

    def __init__(self, *, window: timedelta = STORY_WINDOW) -> None:
        self._window = window
        self._index = StoryIndex(window=window)
        self._known: dict[str, datetime] = {}  # article id → published, for what is indexed

    def assign(self, store: Store) -> int:
        """Decide the story of every article that has none yet; returns how many."""
        new = store.articles_without_story(TEXT_CHARS)
        if not new:
            return 0
        since = min(article.published for article in new) - self._window
        self._catch_up(store, since)
        decided: list[StoryDecision] = []
        for article in sorted(new, key=lambda a: (a.published, a.article_id)):
            assignment = self._index.add(story_item(article))
            self._known[assignment.key] = article.published
            decided.append(
                StoryDecision(
                    article_id=assignment.key,
                    story_id=assignment.story_id,
                    joined=assignment.joined,
                    reasons=assignment.reasons,
                    published=article.published,
                )
            )
        store.record_stories(decided)
        return len(decided)

    def _catch_up(self, store: Store, since: datetime) -> None:
        """Restore the window's stored decisions this index has not seen (all of them on
        the first call; afterwards, what other processes decided)."""
        stored = store.story_ids_since(since)
        missing = [article for article in stored if article not in self._known]
        if any(published < since for published in self._known.values()):
            self._known = {a: p for a, p in self._known.items() if p >= since}
        if not missing:
            return
        for article in store.articles_with_story(missing, TEXT_CHARS):
            self._index.restore(story_item(article), article.story_id or "")
            self._known[article.article_id] = article.published


def story_item(article: StoryInput) -> StoryItem:
    return StoryItem(
        key=article.article_id,
        title=article.title,
        text=article.text,
        published=article.published,
        source=article.feed_url,
    )
