"""Giving new articles their story: the I/O around the pure ``stories.py``.

Each run replays the window as an uninterrupted run would have seen it: stored decisions
are restored and new articles added, all in (published, article id) order, so a story id
decided once never changes and a late arrival never renumbers a story.
"""

from __future__ import annotations

from datetime import timedelta

from .models import Entry
from .store import Store
from .store.articles import StoryDecision
from .stories import StoryIndex, StoryItem
from .text import html_to_text

STORY_WINDOW = timedelta(hours=48)


def assign_stories(store: Store, *, window: timedelta = STORY_WINDOW) -> int:
    """Decide the story of every article that has none yet; returns how many were decided."""
    new = store.articles_without_story()
    if not new:
        return 0
    earliest = min(entry.published for entry in new)
    stored = store.articles_with_story(earliest - window)
    replay: list[tuple[Entry, str | None]] = [*stored, *((entry, None) for entry in new)]
    replay.sort(key=lambda pair: (pair[0].published, pair[0].article_id or ""))
    index = StoryIndex(window=window)
    decided: list[StoryDecision] = []
    for entry, story_id in replay:
        item = story_item(entry)
        if story_id is not None:
            index.restore(item, story_id)
            continue
        assignment = index.add(item)
        decided.append(
            StoryDecision(
                article_id=assignment.key,
                story_id=assignment.story_id,
                joined=assignment.joined,
                reasons=assignment.reasons,
                published=entry.published,
            )
        )
    store.record_stories(decided)
    return len(decided)


def story_item(entry: Entry) -> StoryItem:
    return StoryItem(
        key=entry.article_id or f"{entry.feed_url}\n{entry.entry_id}",
        title=entry.title,
        text=html_to_text(entry.summary) or html_to_text(entry.content),
        published=entry.published,
        source=entry.feed_url,
    )
