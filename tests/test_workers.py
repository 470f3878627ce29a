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
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from aggregator.analysis import classify_entry
from aggregator.app import make_aggregator
from aggregator.cli import cli
from aggregator.config import TopicRule
from aggregator.models import Entry, Feed, TopicMatch
from aggregator.pipeline import DEFAULT_BACKLOG
from aggregator.store import open_store
from aggregator.topics import compile_topics

from .conftest import FakeClock, write_config
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


def test_reclassify_never_writes_topics_from_content_a_concurrent_ingest_replaced(
    tmp_path: Path, database_url: str, httpserver: HTTPServer
) -> None:
    def serve(word: str) -> None:
        items = [Item(f"i{n}", f"{word} report {n}") for n in range(600)]
        httpserver.clear()
        httpserver.expect_request("/feed.xml").respond_with_data(rss(items))

    path = write_config(
        tmp_path,
        f"""
        database: "{database_url}"
        topics:
          war: {{title: War, keywords: [Kyiv]}}
          tech: {{title: Tech, keywords: [chip]}}
        feeds:
          - url: {httpserver.url_for("/feed.xml")}
        """,
    )
    serve("Kyiv")
    clock = FakeClock(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))
    with make_aggregator(path, clock=clock) as agg:
        agg.fetch()
        # New rules (as after a reload) that would add a topic to the old content.
        rules = compile_topics([*agg.config.topics, TopicRule("kyiv", "Kyiv", ("Kyiv",))])
        reading = threading.Event()

        def slow_classify(entry: Entry) -> tuple[TopicMatch, ...]:
            reading.set()
            time.sleep(0.001)  # the ingest below commits while this page is classified
            return classify_entry(entry, rules, ())

        failures: list[BaseException] = []

        def reclassify() -> None:
            try:
                agg.store.reclassify(slow_classify)
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=reclassify)
        thread.start()
        assert reading.wait(10)
        serve("Chip")
        clock.advance(timedelta(hours=1))
        assert agg.fetch(all_feeds=True).updated_entries == 600
        thread.join(timeout=60)
        stored = agg.store.entries(limit=1000)
    assert failures == []  # no deadlock, no error
    assert {e.title.split()[0] for e in stored} == {"Chip"}
    assert {tuple(m.topic_id for m in e.topics) for e in stored} == {("tech",)}


def test_sqlite_and_postgresql_publish_identical_files_from_identical_input(
    tmp_path: Path, postgresql_url: str, httpserver: HTTPServer
) -> None:
    def serve(round_: int) -> None:
        httpserver.clear()
        for source in ("a", "b"):
            items = [
                Item(
                    f"{source}{n}" if n % 3 else "shared",  # one article in both feeds
                    f"Kyiv report {n} from {source}" + (" (updated)" if round_ and n == 1 else ""),
                    f"Missiles hit Kharkiv overnight, officials said ({n}). <b>More</b> later.",
                    pub_date=f"Thu, 26 Nov 2026 0{n}:00:00 GMT",
                )
                for n in range(round_, 6 + round_)
            ]
            httpserver.expect_request(f"/{source}.xml").respond_with_data(
                rss(items, title=f"Source {source}"), content_type="application/rss+xml"
            )

    outputs = {}
    for name, url in (
        ("sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'state.db'}"),
        ("pg", postgresql_url),
    ):
        (tmp_path / name).mkdir()
        path = write_config(
            tmp_path / name,
            f"""
            database: "{url}"
            output_dir: out
            topics:
              war: {{title: War, keywords: [Kyiv, Kharkiv]}}
            feeds:
              - url: {httpserver.url_for("/a.xml")}
              - url: {httpserver.url_for("/b.xml")}
            """,
        )
        clock = FakeClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
        with make_aggregator(path, clock=clock) as agg:
            for round_ in range(2):
                serve(round_)
                agg.fetch(all_feeds=True)
                agg.publish()
                clock.advance(timedelta(hours=1))
        out = tmp_path / name / "out"
        outputs[name] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(outputs["sqlite"]) == sorted(outputs["pg"])
    assert len(outputs["sqlite"]) > 5
    for relative, content in outputs["sqlite"].items():
        assert content == outputs["pg"][relative], relative


def test_an_exclusive_section_runs_one_worker_at_a_time(postgresql_url: str) -> None:
    stores = [open_store(postgresql_url), open_store(postgresql_url)]
    inside: list[str] = []
    overlaps: list[list[str]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for _ in range(5):
            with stores[n].exclusive("publish"):
                with lock:
                    inside.append(f"w{n}")
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                time.sleep(0.01)
                with lock:
                    inside.remove(f"w{n}")
            with stores[n].exclusive("stories"):  # another section: no wait on "publish"
                pass

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert overlaps == []
    finally:
        for store in stores:
            store.close()


def test_db_copy_moves_a_sqlite_state_to_postgresql_and_nothing_is_fetched_or_sent_again(
    tmp_path: Path, postgresql_url: str, httpserver: HTTPServer
) -> None:
    items = [Item(f"i{n}", f"Kyiv report {n}", "Missiles over Kharkiv.") for n in range(5)]
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    config = write_config(
        tmp_path,
        f"""
        database: sqlite:///state/aggregator.db
        output_dir: out
        topics:
          war: {{title: War, keywords: [Kyiv]}}
        feeds:
          - url: {httpserver.url_for("/feed.xml")}
        """,
    )
    run = CliRunner().invoke
    assert run(cli, ["--config", str(config), "fetch"]).exit_code == 0
    assert run(cli, ["--config", str(config), "publish"]).exit_code == 0
    before = (tmp_path / "out" / "feed.atom").read_bytes()

    copied = run(cli, ["--config", str(config), "db", "copy", postgresql_url])
    assert copied.exit_code == 0, copied.output
    assert "5 entries" in copied.stdout
    again = run(cli, ["--config", str(config), "db", "copy", postgresql_url])
    assert again.exit_code == 1
    assert "already holds rows; copy only into an empty database" in again.stderr

    config.write_text(config.read_text().replace("sqlite:///state/aggregator.db", postgresql_url))
    (tmp_path / "out" / "feed.atom").unlink()
    requests = len(httpserver.log)
    with make_aggregator(config) as moved:
        assert moved.fetch().outcomes == ()  # the feed is not due: its polling state came too
        moved.publish()
        assert len(moved.store.entries(limit=10)) == 5
    assert len(httpserver.log) == requests
    assert (tmp_path / "out" / "feed.atom").read_bytes() == before
