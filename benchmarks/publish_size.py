"""Publishing with 10,000 and 100,000 stored entries: time and peak memory.

    python benchmarks/publish_size.py [--sizes 10000 100000] [--per-feed 35]

For each size, a fresh SQLite state is filled with that many entries (the feed farm's
articles, ``benchmarks/farm.py``: ~2 KB of HTML each, ``--per-feed`` per feed, all first
seen in this month, so the month's archive page holds every one of them), then one
``publish()`` runs in a fresh process: the merged feed, three topic feeds, their JSON twins,
the archive page, the front page, OPML and the status page. Printed per size: the fill time,
the publish time, and the publishing process's own peak RSS (``VmHWM``), with the ratios of
the largest size to the smallest. Publishing is meant to be flat in memory: every output
but the archive holds a bounded number of entries, and the archive page is planned without
bodies and written 500 entries at a time. Nothing goes to the network.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from farm import make_feed  # noqa: E402

from aggregator.config import FeedConfig  # noqa: E402
from aggregator.models import FetchResult, ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.store import open_store  # noqa: E402

TOPICS = (
    "  economy: {keywords: [economic, budget, inflation, prices], phrases: [central bank]}\n"
    "  energy: {keywords: [energy, oil, grain], context: [prices, market]}\n"
    "  europe: {keywords: [Brussels, Warsaw, Berlin, Paris, Kyiv]}\n"
)


def feed_url(index: int) -> str:
    return f"https://news{index}.example.org/feed.xml"  # never fetched


def write_config(state: Path, feeds: int) -> Path:
    listed = "".join(f"  - {feed_url(i)}\n" for i in range(feeds))
    config = state / "feeds.yaml"
    config.write_text(
        "site: {title: Farm, url: 'https://farm.test/'}\n"
        f"database: sqlite:///{state / 'state.db'}\n"
        f"output_dir: {state / 'output'}\n"
        f"topics:\n{TOPICS}feeds:\n{listed}",
        encoding="utf-8",
    )
    return config


def fill(state: Path, entries: int, per_feed: int) -> float:
    """Store ``entries`` farm articles as if fetched now; returns the seconds it took."""
    feeds = -(-entries // per_feed)
    write_config(state, feeds)
    now = datetime.now(UTC).replace(microsecond=0)
    store = open_store(f"sqlite:///{state / 'state.db'}")
    store.sync_feeds([FeedConfig(feed_url(i)) for i in range(feeds)], now)
    start = time.perf_counter()
    left = entries
    for index in range(feeds):
        spec = make_feed(index, seed=1, anchor=now - timedelta(hours=1), size_kb=70)
        items = spec.items[: min(per_feed, left)]
        left -= len(items)
        parsed = ParsedFeed(
            url=feed_url(index),
            title=spec.title,
            link=f"https://{spec.site}/",
            feed_id=None,
            updated=None,
            entries=tuple(
                ParsedEntry(i.guid, i.title, i.link, i.summary, i.html, i.published, None)
                for i in items
            ),
        )
        result = FetchResult(feed_url(index), feed_url(index), 200, {}, b"", now)
        store.record_success(feed_url(index), result, parsed, {}, next_due_at=now, now=now)
    store.close()
    return time.perf_counter() - start


def publish_round(state: Path) -> dict[str, float]:
    """One publish in this (fresh) process: seconds and own peak RSS."""
    from aggregator.app import make_aggregator

    with make_aggregator(state / "feeds.yaml") as app:
        start = time.perf_counter()
        app.publish()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 1024


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "_publish":
        print(json.dumps(publish_round(Path(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--per-feed", type=int, default=35)
    args = parser.parse_args()
    rows: list[tuple[int, float, float, float]] = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp)
            filled = fill(state, size, args.per_feed)
            done = subprocess.run(
                [sys.executable, __file__, "_publish", str(state)],
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((size, filled, figures["seconds"], figures["rss_mb"]))
            print(
                f"{size:>8,} entries: filled in {filled:6.1f} s; "
                f"publish {figures['seconds']:6.2f} s, peak RSS {figures['rss_mb']:5.0f} MB",
                flush=True,
            )
    if len(rows) > 1:
        (small, _, t0, m0), (large, _, t1, m1) = rows[0], rows[-1]
        print(
            f"{large:,} vs {small:,} entries: publish time x{t1 / t0:.1f}, peak RSS x{m1 / m0:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
