"""How well same-story clustering and the ``ukraine-war`` topic rules match hand labels.

    python benchmarks/eval_grouping.py [--errors] [--show]

Reads the news-week corpus (``../shared/corpus/news-week/items.jsonl``; skipped with a message
when absent, never copied here) and the hand labels in ``benchmarks/labels/news-week.json``
(``{"version": 1, "items": {"w0001": {"war": bool, "story": "label-or-null"}}}``; without
them only cluster counts are printed).

Stories: pairwise precision/recall/F1 (over pairs of items put in one story) and B-cubed
P/R/F1 (per item, averaged) for ``aggregator.stories.cluster``; an item labelled with a null
story is a story of its own. As a baseline computed in the same run: TF-IDF cosine over title
and summary, single-link within 48 h, at several thresholds (the best one is the fair
comparison). Topic: precision/recall of the shipped ``ukraine-war`` rules in feeds.yaml
against the ``war`` labels, with the false positives and negatives (titles go to the
terminal only). ``--errors`` lists wrongly joined and wrongly split pairs; ``--show`` prints
every multi-item story.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator.analysis import classify_entry  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.models import Entry  # noqa: E402
from aggregator.stories import StoryItem, cluster  # noqa: E402
from aggregator.text import html_to_text  # noqa: E402
from aggregator.topics import compile_topics  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "news-week" / "items.jsonl"
LABELS = ROOT / "benchmarks" / "labels" / "news-week.json"
TOPIC = "ukraine-war"
WINDOW = timedelta(hours=48)
BASELINE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)


@dataclass(frozen=True)
class Row:
    uid: str
    source: str
    feed_url: str
    title: str  # plain text
    summary_html: str
    link: str
    published: datetime

    @property
    def text(self) -> str:
        return html_to_text(self.summary_html)


@dataclass(frozen=True)
class Label:
    war: bool
    story: str | None


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return f"P {self.precision:.3f}  R {self.recall:.3f}  F1 {self.f1:.3f}"


def load_rows(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        rows.append(
            Row(
                uid=d["uid"],
                source=d["source"],
                feed_url=d["source_feed_url"],
                title=html.unescape(d["title"]),
                summary_html=d["summary"],
                link=d["link"],
                published=datetime.fromisoformat(d["published"].replace("Z", "+00:00")),
            )
        )
    return rows


def load_labels(path: Path) -> dict[str, Label]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        uid: Label(bool(v.get("war")), v.get("story") or None) for uid, v in data["items"].items()
    }


# ---------------------------------------------------------------- metrics


def groups(assign: Mapping[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for uid, group in assign.items():
        out[group].add(uid)
    return out


def pairs(assign: Mapping[str, str]) -> set[tuple[str, str]]:
    result: set[tuple[str, str]] = set()
    for members in groups(assign).values():
        result.update(combinations(sorted(members), 2))
    return result


def pairwise(predicted: Mapping[str, str], gold: Mapping[str, str]) -> Scores:
    p, g = pairs(predicted), pairs(gold)
    hit = len(p & g)
    return Scores(hit / len(p) if p else 1.0, hit / len(g) if g else 1.0)


def bcubed(predicted: Mapping[str, str], gold: Mapping[str, str]) -> Scores:
    pg, gg = groups(predicted), groups(gold)
    precision = recall = 0.0
    for uid in gold:
        mine, truth = pg[predicted[uid]], gg[gold[uid]]
        overlap = len(mine & truth)
        precision += overlap / len(mine)
        recall += overlap / len(truth)
    return Scores(precision / len(gold), recall / len(gold))


def gold_assignment(labels: Mapping[str, Label]) -> dict[str, str]:
    return {uid: f"L:{lab.story}" if lab.story else f"U:{uid}" for uid, lab in labels.items()}


# ---------------------------------------------------------------- baseline

_BASE_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_BASE_STOP_WORDS = """a an and are as at be by for from has have he her his in is it its of on or
that the their they this to was were will with after over says said new"""
_BASE_STOP = frozenset(_BASE_STOP_WORDS.split())


def _base_tokens(text: str) -> list[str]:
    words = (m.group().lower() for m in _BASE_WORD.finditer(text))
    return [w for w in words if w not in _BASE_STOP]


def baseline(rows: Sequence[Row], threshold: float) -> dict[str, str]:
    """TF-IDF (over the whole set) cosine on title + summary; single-link within 48 h."""
    docs = [Counter(_base_tokens(f"{r.title} {r.text}")) for r in rows]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    n = len(docs)
    vectors = []
    for doc in docs:
        vec = {t: (1 + math.log(c)) * math.log(n / df[t]) for t, c in doc.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        vectors.append({t: w / norm for t, w in vec.items()})
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i):
            if abs(rows[i].published - rows[j].published) > WINDOW:
                continue
            a, b = vectors[i], vectors[j]
            if len(a) > len(b):
                a, b = b, a
            if sum(w * b.get(t, 0.0) for t, w in a.items()) >= threshold:
                parent[find(i)] = find(j)
    return {r.uid: rows[find(i)].uid for i, r in enumerate(rows)}


# ---------------------------------------------------------------- topics


def topic_flags(rows: Iterable[Row]) -> dict[str, bool]:
    config = load_config(ROOT / "feeds.yaml")
    compiled = compile_topics(config.topics)
    flags = {}
    for r in rows:
        entry = Entry(
            feed_url=r.feed_url,
            entry_id=r.link,
            title=r.title,
            link=r.link,
            summary=r.summary_html,
            content="",
            published=r.published,
            updated=None,
            first_seen_at=r.published,
        )
        # No feed hints: news-week's feeds are not the ones feeds.yaml tags.
        matches = classify_entry(entry, compiled, feed_topics=())
        flags[r.uid] = any(m.topic_id == TOPIC for m in matches)
    return flags


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", action="store_true", help="list wrong joins and splits")
    parser.add_argument("--show", action="store_true", help="print every multi-item story")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"skipped: {CORPUS} is absent")
        return 0
    rows = load_rows(CORPUS)
    by_uid = {r.uid: r for r in rows}
    items = [StoryItem(r.uid, r.title, r.text, r.published, r.source) for r in rows]
    assignments = cluster(items)
    predicted = {a.key: a.story_id for a in assignments}
    stories = groups(predicted)
    sizes = Counter(len(m) for m in stories.values())
    multi = sum(1 for m in stories.values() if len(m) > 1)
    print(
        f"news-week: {len(rows)} items → {len(stories)} stories ({multi} with 2+ items, "
        f"largest {max(sizes)}); sizes {dict(sorted(sizes.items()))}"
    )
    if args.show:
        reasons = {a.key: a for a in assignments}
        for members in sorted(stories.values(), key=lambda m: min(m)):
            if len(members) < 2:
                continue
            print()
            for uid in sorted(members):
                joined = reasons[uid].joined or "-"
                why = "; ".join(reasons[uid].reasons)
                print(f"  {uid} ← {joined:5}  {by_uid[uid].title[:70]}  [{why}]")

    if not LABELS.exists():
        print(f"no labels at {LABELS.relative_to(ROOT)}: cluster counts only")
        return 0
    labels = load_labels(LABELS)
    labelled = [r for r in rows if r.uid in labels]
    gold = gold_assignment(labels)
    mine = {uid: predicted[uid] for uid in gold}
    gold_multi = sum(1 for m in groups(gold).values() if len(m) > 1)
    print(
        f"labels: {len(labels)} items, {gold_multi} stories with 2+ items, "
        f"{len(pairs(gold))} same-story pairs"
    )
    print()
    print(f"{'method':34} {'pairwise':30} {'B-cubed':30}")
    print(f"{'stories.cluster (48 h)':34} {pairwise(mine, gold)!s:30} {bcubed(mine, gold)!s:30}")
    for threshold in BASELINE_THRESHOLDS:
        base = baseline(labelled, threshold)
        name = f"TF-IDF single-link ≥ {threshold:.1f}"
        print(f"{name:34} {pairwise(base, gold)!s:30} {bcubed(base, gold)!s:30}")

    if args.errors:
        gold_pairs, mine_pairs = pairs(gold), pairs(mine)
        print("\nwrongly joined:")
        for a, b in sorted(mine_pairs - gold_pairs):
            print(f"  {a} {by_uid[a].title[:60]!r}  ~  {b} {by_uid[b].title[:60]!r}")
        print("\nwrongly split:")
        for a, b in sorted(gold_pairs - mine_pairs):
            print(f"  {a} {by_uid[a].title[:60]!r}  ~  {b} {by_uid[b].title[:60]!r}")

    flags = topic_flags(labelled)
    tp = [u for u in flags if flags[u] and labels[u].war]
    fp = [u for u in flags if flags[u] and not labels[u].war]
    fn = [u for u in flags if not flags[u] and labels[u].war]
    precision = len(tp) / (len(tp) + len(fp)) if tp or fp else 1.0
    recall = len(tp) / (len(tp) + len(fn)) if tp or fn else 1.0
    print(
        f"\ntopic {TOPIC} (shipped feeds.yaml rules, no feed hints): "
        f"{Scores(precision, recall)}  (TP {len(tp)}, FP {len(fp)}, FN {len(fn)})"
    )
    for title, uids in (("false positives", fp), ("false negatives", fn)):
        print(f"  {title}:")
        for uid in uids:
            print(f"    {uid}  {by_uid[uid].title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
