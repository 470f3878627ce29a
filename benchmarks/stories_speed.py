"""How fast same-story clustering is: 10,000 items through ``aggregator.stories.cluster``.

    python benchmarks/stories_speed.py [--items 10000] [--rounds 3]

Items are the news-week corpus (``../shared/corpus/news-week/items.jsonl``) replicated with
perturbed keys and shifted dates, in two layouts:

* ``spread``: each copy a week after the previous one, so the window holds what one real
  week of these 12 feeds holds (~250 items in 48 h);
* ``dense``: each copy an hour after the previous one, so the window holds ~3,000 items and
  every event is reported a dozen times: the inverted index's worst case.

Without the corpus, synthetic headlines stand in. Prints the median of N rounds and items per
second. As a baseline in the same run it clusters the first 2,000 items with the index's
candidate lookup replaced by "every item in the window" (the naive all-pairs approach, same
scoring), and says how many decisions the bounded candidate set changed.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator import stories  # noqa: E402
from aggregator.stories import StoryAssignment, StoryIndex, StoryItem  # noqa: E402
from aggregator.text import html_to_text  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "news-week" / "items.jsonl"
NAIVE_ITEMS = 2000


def corpus_items() -> list[StoryItem]:
    if not CORPUS.exists():
        print(f"{CORPUS} is absent: synthetic headlines instead")
        return synthetic_items(800)
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        published = datetime.fromisoformat(d["published"].replace("Z", "+00:00"))
        title, text = html.unescape(d["title"]), html_to_text(d["summary"])
        out.append(StoryItem(d["uid"], title, text, published, d["source"]))
    return out


def synthetic_items(count: int) -> list[StoryItem]:
    rng = random.Random(3)
    vocabulary = [f"{a}{b}" for a in ("kor", "vel", "mar", "tis", "don") for b in "aeiou"]
    names = [f"{a}{b}sk" for a in ("Ivan", "Petr", "Sem", "Oles") for b in ("ov", "enk", "yi")]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for n in range(count):
        words = rng.sample(vocabulary, 6) + rng.sample(names, 2)
        title = " ".join(words).capitalize()
        published = start + timedelta(minutes=15 * n)
        out.append(StoryItem(f"s{n}", title, title, published, f"feed-{n % 12}"))
    return out


def replicate(base: Sequence[StoryItem], count: int, shift: timedelta) -> list[StoryItem]:
    out: list[StoryItem] = []
    copy = 0
    while len(out) < count:
        for item in base:
            if len(out) == count:
                break
            out.append(
                StoryItem(
                    f"{item.key}#{copy}",
                    item.title,
                    item.text,
                    item.published + copy * shift,
                    item.source,
                )
            )
        copy += 1
    return out


def timed(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class NaiveIndex(StoryIndex):
    """The same decisions without the inverted index: every item in the window is a candidate."""

    def _candidates(self, item: StoryItem, scorer: Any) -> list[Any]:
        return [
            e
            for e in self._entries.values()
            if abs(e.item.published - item.published) <= self._window
        ]


def naive_cluster(items: Sequence[StoryItem]) -> list[StoryAssignment]:
    index = NaiveIndex()
    return [index.add(i) for i in sorted(items, key=lambda i: (i.published, i.key))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = corpus_items()
    span = max(i.published for i in base) - min(i.published for i in base)
    layouts = {
        "spread": replicate(base, args.items, span + timedelta(days=1)),
        "dense": replicate(base, args.items, timedelta(hours=1)),
    }
    for name, items in layouts.items():
        index = StoryIndex()
        for item in sorted(items, key=lambda i: (i.published, i.key)):
            index.add(item)
        per_item = index.comparisons / len(items)
        seconds = timed(partial(stories.cluster, items), args.rounds)
        print(
            f"{name:7} {len(items):6} items: {seconds:6.2f} s (median of {args.rounds}), "
            f"{len(items) / seconds:7.0f} items/s, {per_item:5.1f} comparisons per item"
        )
        sample = items[:NAIVE_ITEMS]
        indexed = stories.cluster(sample)
        fast = timed(partial(stories.cluster, sample), args.rounds)
        slow = timed(partial(naive_cluster, sample), args.rounds)
        naive = naive_cluster(sample)
        differ = sum(1 for a, b in zip(indexed, naive, strict=True) if a.story_id != b.story_id)
        print(
            f"        first {len(sample)}: indexed {fast:.2f} s, naive all-pairs-in-window "
            f"{slow:.2f} s ({slow / fast:.1f}x slower); {differ} of {len(sample)} "
            f"assignments differ"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
