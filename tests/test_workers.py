"""Several workers on one database split each round: every feed is polled once, a dead
worker's feeds come back after its lease, and publishing runs one worker at a time.

Real servers only: a threaded HTTP server on 127.0.0.1 counting requests per feed, SQLite
files and (where AGGREGATOR_TEST_DATABASE_URL is set, as in CI) PostgreSQL schemas.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aggregator.app import make_aggregator
from aggregator.models import Feed
from aggregator.pipeline import DEFAULT_BACKLOG

from .conftest import write_config
from .feeds import Item, rss


class CountingServer:
    """``/feed/<n>`` answers a one-item RSS feed after ``delay`` seconds and counts requests."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self.base = f"http://127.0.0.1:{self._server.server_port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests[self.path] += 1
                time.sleep(owner.delay)
                n = self.path.rsplit("/", 1)[-1]
                body = rss([Item(f"item-{n}", f"Report number {n}", "Text.")], title=f"F{n}")
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def urls(self, count: int) -> list[str]:
        return [f"{self.base}/feed/{n}" for n in range(count)]

    def polled(self) -> Counter[str]:
        with self._lock:
            return Counter({f"{self.base}{path}": n for path, n in self.requests.items()})


@contextmanager
def counting_server(delay: float = 0.0) -> Iterator[CountingServer]:
    server = CountingServer(delay)
    thread = threading.Thread(target=server._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()


def config_for(
    directory: Path, database_url: str, urls: list[str], fetch: str = "concurrency: 10"
) -> Path:
    feeds = "\n".join(f"  - url: {url}" for url in urls)
    return write_config(
        directory,
        f"""
database: "{database_url}"
output_dir: out
fetch: {{per_host: 10, {fetch}}}
feeds:
{feeds}
""",
    )


def test_two_workers_poll_every_feed_exactly_once_per_round(
    tmp_path: Path, database_url: str
) -> None:
    with counting_server(delay=0.005) as server:
        urls = server.urls(500)
        path = config_for(tmp_path, database_url, urls)
        workers = [make_aggregator(path), make_aggregator(path)]
        polled_by: list[int] = [0, 0]
        start = threading.Barrier(2)

        def work(n: int) -> None:
            start.wait()
            polled_by[n] = len(workers[n].fetch().outcomes)

        try:
            threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert server.polled() == Counter(dict.fromkeys(urls, 1))
            assert sum(polled_by) == 500
            assert min(polled_by) > 0  # the round was split, not taken whole by one
            # Nothing is due any more: a second round by either polls nothing.
            assert workers[0].fetch().outcomes == workers[1].fetch().outcomes == ()
            stored = workers[0].store.feeds()
            assert all(f.last_success_at is not None for f in stored)
        finally:
            for worker in workers:
                worker.close()


def test_a_killed_workers_feeds_are_polled_by_another_once_its_lease_ends(
    tmp_path: Path, database_url: str
) -> None:
    with counting_server(delay=0.3) as server:
        urls = server.urls(16)
        path = config_for(tmp_path, database_url, urls, fetch="concurrency: 2, lease: 5s")
        doomed = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
            start_new_session=True,  # its parse workers die with it
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: sum(server.polled().values()) >= 3, seconds=30)
        finally:
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
        finished_by_dead = {f.url for f in stored_feeds(path) if f.last_success_at is not None}
        with make_aggregator(path) as survivor:
            # Within the lease the dead worker's feeds are still its own.
            assert survivor.fetch().outcomes == ()
            wait_for(lambda: bool(survivor.fetch().outcomes), seconds=20)
            assert survivor.fetch().outcomes == ()  # the round was completed in one go
            assert all(f.last_success_at is not None for f in survivor.store.feeds())
        polled = server.polled()
        assert set(polled) == set(urls)
        assert all(polled[url] == 1 for url in finished_by_dead)
        # Only the polls in flight at the kill were repeated: at most its concurrency plus
        # the bodies fetched and waiting for a parse worker.
        assert sum(1 for n in polled.values() if n > 1) <= 2 + DEFAULT_BACKLOG
        assert max(polled.values()) <= 2


def wait_for(condition: Callable[[], bool], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.1)


def stored_feeds(path: Path) -> list[Feed]:
    with make_aggregator(path) as reader:
        return reader.store.feeds()
