"""Giving new articles their story: the I/O around the pure ``stories.py``.

Stored decisions are final: a story id never changes and a late arrival never renumbers a
story. Before new articles are decided, the window's stored decisions are in the index
(restored, in any order: the index rebuilds the same state); the new ones are then added in
(published, article id) order. A ``StoryBook`` keeps its index between fetches, so a daemon
restores only what another process decided meanwhile, not the whole window every time. Each
decision is stored with the keys the article was compared on, so a restore reads those
rather than the article's text (unless the rules that read keys changed since).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .store import Store
from .store.articles import StoryDecision, StoryInput
from .stories import StoryIndex, StoryItem
from .storykeys import KEYS_VERSION, TEXT_CHARS, ItemKeys, decode_keys, encode_keys, read_keys

log = logging.getLogger(__name__)

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
            keys = read_keys(article.title, article.text)
            assignment = self._index.add(story_item(article), keys)
            self._known[assignment.key] = article.published
            decided.append(
                StoryDecision(
                    article_id=assignment.key,
                    story_id=assignment.story_id,
                    joined=assignment.joined,
                    reasons=assignment.reasons,
                    published=article.published,
                    story_keys=encode_keys(keys),
                    keys_version=KEYS_VERSION,
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
        for article in store.articles_with_story(missing, TEXT_CHARS, KEYS_VERSION):
            keys = _stored_keys(article)
            self._index.restore(story_item(article), article.story_id or "", keys)
            self._known[article.article_id] = article.published


def _stored_keys(article: StoryInput) -> ItemKeys | None:
    """The keys stored with the article's decision; None (read its text) if there are none."""
    if article.keys is None:
        return None
    try:
        return decode_keys(article.keys)
    except ValueError:
        log.warning("story keys of %s are unreadable; reading its title", article.article_id)
        return None


def story_item(article: StoryInput) -> StoryItem:
    return StoryItem(
        key=article.article_id,
        title=article.title,
        text=article.text,
        published=article.published,
        source=article.feed_url,
    )
