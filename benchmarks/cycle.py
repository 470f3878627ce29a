"""What one full cycle over ../shared/corpus/feeds costs: wall time, CPU, peak memory.

    python benchmarks/cycle.py [--rounds 5]

Serves every corpus feed from a local threaded HTTP server, then times (median of N rounds,
each on a fresh SQLite database) the stages of `run --once`: fetch+parse+store of every feed,
a second conditional poll (all 304s), and publishing. As a baseline measured in the same run,
it times bare `feedparser.parse` over the same bytes: the ratio says what our pipeline costs on
top of the parser that any aggregator pays for. This machine is shared; read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser

from aggregator.app import make_aggregator
from aggregator.parse import parse_bytes

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
XML = {"content-type": "application/xml"}


def serve(files: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The default backlog of 5 drops SYNs under 10 concurrent connects, and the client's
        # 1 s SYN retry would then be measured as ours.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def write_config(directory: Path, base: str, names: list[str]) -> Path:
    feeds = "".join(f"  - {base}{name}\n" for name in names)
    config = directory / "feeds.yaml"
    config.write_text(
        "site: {title: Bench, url: 'https://bench.test/'}\n"
        "database: sqlite:///bench.db\n"
        "fetch: {concurrency: 10, per_host: 10}\n"
        "topics:\n"
        "  ukraine-war: {keywords: [Ukrain*, Kyiv, Kiev, Україн*, Украин*, Киев*]}\n"
        "  russia: {keywords: [Russia*, Kremlin, Putin, Росси*]}\n"
        "feeds:\n" + feeds,
        encoding="utf-8",
    )
    return config


@contextmanager
def timed(into: dict[str, list[float]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into.setdefault(name, []).append(time.perf_counter() - start)


def one_round(base: str, names: list[str], figures: dict[str, list[float]]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), base, names)
        with make_aggregator(config, clock=lambda: datetime(2026, 11, 26, tzinfo=UTC)) as app:
            with timed(figures, "fetch+parse+store (cold)"):
                report = app.fetch(all_feeds=True)
            with timed(figures, "conditional re-poll (304s)"):
                app.fetch(all_feeds=True)
            with timed(figures, "publish"):
                app.publish()
            return report.new_entries


def baseline(files: dict[str, bytes], figures: dict[str, list[float]]) -> None:
    with timed(figures, "baseline: feedparser.parse only"):
        for body in files.values():
            feedparser.parse(body)
    with timed(figures, "parse.py alone (inside the cycle)"):
        for name, body in files.items():
            parse_bytes(body, url=f"http://bench.test/{name}", headers=XML)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def peak_traced(action: Callable[[], object]) -> int:
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"needs the corpus at {CORPUS}")
    files = {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.xml"))}
    server, base = serve(files)
    figures: dict[str, list[float]] = {}
    entries = 0
    cpu_start = time.process_time()
    for _ in range(args.rounds):
        baseline(files, figures)
        entries = one_round(base, list(files), figures)
    cpu = (time.process_time() - cpu_start) / args.rounds
    peak = peak_traced(lambda: one_round(base, list(files), {}))
    server.shutdown()

    size = sum(len(b) for b in files.values())
    print(
        f"corpus: {len(files)} feeds, {size / 1e6:.1f} MB, {entries} entries stored; "
        f"{args.rounds} rounds"
    )
    base_ms = median_ms(figures["baseline: feedparser.parse only"])
    for name, samples in figures.items():
        ms = median_ms(samples)
        print(f"  {name:34s} median {ms:8.1f} ms   {ms / base_ms:5.2f}x baseline")
    print(f"  CPU per round (incl. baseline)     {cpu * 1000:8.1f} ms")
    print(f"  peak traced Python memory, 1 round {peak / 1e6:8.1f} MB")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"  max RSS of this process            {rss_mb:8.1f} MB")


if __name__ == "__main__":
    main()
