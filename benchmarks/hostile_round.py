"""One polling round over many feeds, a share of them hostile: time, states, what published.

    python benchmarks/hostile_round.py [--feeds 200] [--hostile 0.3]

Serves the feeds from the fault-injecting server of the test suite (tests/hostile.py) on
127.0.0.1, hostile kinds in turn (slow, dripping, resetting, bombs, loops, SSRF redirects,
pathological markup, 429/503/410, …), runs ``fetch --all`` then ``publish`` through the
façade in a temporary directory, and prints the round's wall time against the bound the
settings promise, the count of feeds per outcome, and whether every healthy feed published.
Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.app import make_aggregator
from tests.hostile import KINDS, hostile_server

HOSTILE_KINDS = [k for k in KINDS if k not in ("ok", "same", "secret", "moved", "moved308")]
TIMEOUT_S = 2
PARSE_TIMEOUT_S = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hostile", type=float, default=0.3)
    args = parser.parse_args()
    hostile_count = round(args.feeds * args.hostile)
    with hostile_server() as server, tempfile.TemporaryDirectory() as tmp:
        kinds = [HOSTILE_KINDS[i % len(HOSTILE_KINDS)] for i in range(hostile_count)]
        kinds += ["ok"] * (args.feeds - hostile_count)
        # Rate-limited kinds on their own host name: their pause holds only that host.
        paused = {"limited", "unavailable"}
        urls = [
            server.url(kind, i, host="localhost" if kind in paused else "127.0.0.1")
            for i, kind in enumerate(kinds)
        ]
        config = Path(tmp) / "feeds.yaml"
        feeds = "".join(f"  - {url}\n" for url in urls)
        config.write_text(
            "site:\n  title: Bench\n  url: https://bench.test/\n"
            "database: sqlite:///state/bench.db\n"
            f"fetch:\n  timeout: {TIMEOUT_S}s\n  concurrency: 20\n  per_host: 20\n"
            f"  parse_timeout: {PARSE_TIMEOUT_S}s\n"
            f"feeds:\n{feeds}"
        )
        with make_aggregator(config) as aggregator:
            started = time.perf_counter()
            report = aggregator.fetch(all_feeds=True)
            aggregator.publish()
            elapsed = time.perf_counter() - started
            stored = {f.url: f.entry_count for f in aggregator.status()}
    healthy = [u for u, k in zip(urls, kinds, strict=True) if k == "ok"]
    missing = [u for u in healthy if not stored.get(u)]
    pathological = kinds.count("pathological")
    bound = 4 * TIMEOUT_S * 2 + pathological * (PARSE_TIMEOUT_S + 2)
    print(f"{args.feeds} feeds, {hostile_count} hostile ({len(HOSTILE_KINDS)} kinds in turn)")
    print(f"round (fetch --all + publish): {elapsed:.1f} s; bound ≈ {bound} s")
    print(f"  (two whole-request deadlines of {4 * TIMEOUT_S} s, plus {pathological} parses")
    print(f"   abandoned at {PARSE_TIMEOUT_S} s with a worker restart each)")
    print("outcomes:", dict(sorted(Counter(o.state for o in report.outcomes).items())))
    print(f"healthy feeds stored and published: {len(healthy) - len(missing)}/{len(healthy)}")
    sys.exit(1 if missing or elapsed > bound else 0)


if __name__ == "__main__":
    main()
