"""A fetched body's CPU work: parse it, then classify its entries (pure; run in a parse worker).

Both are a function of the bytes and the topic rules alone, so they run together in a
parse worker (``ParsePool.run``), under the parse deadline, on another core than the
fetching, storing process: classification was a quarter of that process's time in a cold
round. What crosses the pipe is the ``Classifier`` (the rules and the feed's hints, a few
KB) one way and the ``Analysed`` result the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from .models import FetchResult, ParsedFeed, TopicMatch
from .parse import parse_feed
from .settings import TopicRule
from .topics import CompiledTopics, classify, compile_topics

__all__ = ["Analysed", "Classifiable", "Classifier", "analyse", "classify_entry"]


@dataclass(frozen=True)
class Classifier:
    """What classifying one feed's entries needs: the topic rules and the feed's hints."""

    rules: tuple[TopicRule, ...]
    feed_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysed:
    parsed: ParsedFeed
    topics: Mapping[str, tuple[TopicMatch, ...]]  # entry id → the topics it belongs to


class Classifiable(Protocol):
    """What topic rules look at; both ParsedEntry and stored Entry have it."""

    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def categories(self) -> tuple[str, ...]: ...


def analyse(result: FetchResult, classifier: Classifier) -> Analysed:
    """Parse ``result`` (ParseError if it is no feed) and classify every entry."""
    parsed = parse_feed(result)
    compiled = _compiled(classifier.rules)
    topics = {
        entry.entry_id: classify_entry(entry, compiled, classifier.feed_topics)
        for entry in parsed.entries
    }
    return Analysed(parsed, topics)


def classify_entry(
    entry: Classifiable, topics: CompiledTopics, feed_topics: Sequence[str]
) -> tuple[TopicMatch, ...]:
    return classify(
        topics,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        categories=entry.categories,
        feed_topics=feed_topics,
    )


@lru_cache(maxsize=4)  # a worker sees the same rules until feeds.yaml changes
def _compiled(rules: tuple[TopicRule, ...]) -> CompiledTopics:
    return compile_topics(rules)
