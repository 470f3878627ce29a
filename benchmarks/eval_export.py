"""The hand-labelled week, scored the way a user's data would be: through the product.

Writes one RSS file per outlet from ``../shared/corpus/news-week`` into a temporary folder,
runs the shipped feeds.yaml's topic rules over them with the real pipeline (fetch → parse →
store → topics → articles → stories), reads ``aggregator export`` back, and scores its
``topics`` and ``story_id`` against ``benchmarks/labels/news-week.json`` — the same figures
as ``eval_grouping.py``, but from what a user gets.

    python benchmarks/eval_export.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_grouping import (  # noqa: E402
    CORPUS,
    LABELS,
    TOPIC,
    Row,
    Scores,
    bcubed,
    gold_assignment,
    load_labels,
    load_rows,
    pairwise,
)


def write_feeds(rows: list[Row], folder: Path) -> list[str]:
    by_source: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_source[row.source].append(row)
    names = []
    for n, (source, items) in enumerate(sorted(by_source.items())):
        body = "".join(
            f"<item><title>{escape(r.title)}</title><link>{escape(r.link)}</link>"
            f"<guid isPermaLink='true'>{escape(r.link)}</guid>"
            f"<description>{escape(r.summary_html)}</description>"
            f"<pubDate>{format_datetime(r.published, usegmt=True)}</pubDate></item>"
            for r in items
        )
        document = (
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{escape(source)}</title><link>https://example.org/{n}</link>"
            f"<description>{escape(source)}</description>{body}</channel></rss>"
        )
        name = f"feed{n:02}.xml"
        (folder / name).write_text(document, encoding="utf-8")
        names.append(name)
    return names


def write_config(folder: Path, feeds: list[str]) -> Path:
    shipped = yaml.safe_load((ROOT / "feeds.yaml").read_text(encoding="utf-8"))
    config = {
        "site": {"title": "Evaluation", "url": "https://eval.example/"},
        "defaults": {"retention": "3650d"},  # the week is in 2024: keep it
        "topics": shipped["topics"],
        "feeds": [{"url": name} for name in feeds],
    }
    path = folder / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def aggregator(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main() -> int:
    if not CORPUS.exists() or not LABELS.exists():
        print(f"needs {CORPUS} and {LABELS}; nothing to score")
        return 0
    rows = load_rows(CORPUS)
    labels = load_labels(LABELS)
    uid_by_link = {row.link: row.uid for row in rows}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, write_feeds(rows, folder))
        started = time.perf_counter()
        aggregator(config, "fetch", "--all")
        fetched = time.perf_counter() - started
        exported = [json.loads(line) for line in aggregator(config, "export").splitlines()]
    predicted_story: dict[str, str] = {}
    predicted_war: dict[str, bool] = {}
    for row in exported:
        uid = uid_by_link.get(row["link"])
        if uid is None:
            continue
        predicted_story[uid] = row["story_id"] or f"none:{uid}"
        predicted_war[uid] = TOPIC in row["topics"]
    missing = sorted(set(labels) - set(predicted_story))
    print(f"exported {len(exported)} rows for {len(predicted_story)} of {len(labels)} items")
    if missing:
        print(f"  not in the export: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}")
    print(f"fetch --all of the whole week (parse, store, topics, stories): {fetched:.1f} s")
    gold = {uid: g for uid, g in gold_assignment(labels).items() if uid in predicted_story}
    print(f"stories, pairwise: {pairwise(predicted_story, gold)}")
    print(f"stories, B-cubed:  {bcubed(predicted_story, gold)}")
    tp = sum(1 for u, war in predicted_war.items() if war and labels[u].war)
    fp = sum(1 for u, war in predicted_war.items() if war and not labels[u].war)
    fn = sum(1 for u, war in predicted_war.items() if not war and labels[u].war)
    topic = Scores(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)
    print(f"topic {TOPIC}: {topic}  (TP {tp}, FP {fp}, FN {fn})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
