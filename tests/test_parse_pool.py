"""Tests for aggregator.parse_pool: parsing in worker processes under a deadline."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.analysis import Classifier, analyse
from aggregator.errors import ParseError
from aggregator.models import FetchResult
from aggregator.parse import parse_feed
from aggregator.parse_pool import ParsePool
from aggregator.settings import TopicRule

URL = "https://example.org/feed.xml"
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
  <title>Example &amp; Co</title><link>https://example.org/</link>
  <item>
    <title>First <b>item</b></title><link>/one</link><guid>one</guid>
    <description>&lt;p&gt;Hello&lt;/p&gt;</description>
    <pubDate>Tue, 03 Jun 2025 09:39:21 GMT</pubDate>
  </item>
  <item><title>Second</title><link>https://example.org/two</link></item>
</channel></rss>
"""
# feedparser's pop_content is quadratic in this: minutes in-process, so only a deadline ends it
# (RSS 0.91, so the fast path, which reads the same markup as RSS 2.0 in linear time, declines).
HOSTILE = (
    b'<?xml version="1.0"?><rss version="0.91"><channel><title>t</title><item><title>x</title>'
    b"<description>" + b"&lt;!--" * 200_000 + b"</description></item></channel></rss>"
)
# Behaviour, not a benchmark: far below the minutes the hostile feed takes unbounded, far
# above a 1 s deadline plus starting a worker on a loaded machine.
BOUNDED = 15.0


def fetched(content: bytes | None, url: str = URL) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=url,
        status=200 if content is not None else 304,
        headers={"content-type": "application/rss+xml; charset=utf-8"},
        content=content,
        fetched_at=datetime(2025, 6, 3, tzinfo=UTC),
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def pool() -> Iterator[ParsePool]:
    with ParsePool() as shared:
        yield shared


# ---------------------------------------------------------------- in-process mode


def test_no_workers_parses_in_process() -> None:
    with ParsePool(workers=0) as inline:
        assert inline.parse(fetched(FEED), deadline=1.0) == parse_feed(fetched(FEED))
        with pytest.raises(ParseError, match="empty response"):
            inline.parse(fetched(b"  "))
        assert inline.pids == ()


def test_no_deadline_parses_in_process() -> None:
    with ParsePool() as lazy:
        assert lazy.parse(fetched(FEED), deadline=None) == parse_feed(fetched(FEED))
        assert lazy.pids == ()  # no worker was started for it


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        ParsePool(workers=-1)
    with ParsePool() as lazy, pytest.raises(ValueError, match="deadline"):
        lazy.parse(fetched(FEED), deadline=0)


# ---------------------------------------------------------------- worker processes


@pytest.mark.slow
def test_worker_parses_the_same_as_in_process(pool: ParsePool) -> None:
    assert pool.parse(fetched(FEED), deadline=10) == parse_feed(fetched(FEED))
    assert len(pool.pids) == 1


def test_a_worker_parses_and_classifies_in_one_call(pool: ParsePool) -> None:
    rules = (
        TopicRule("greetings", "Greetings", keywords=("hello",), threshold=2),
        TopicRule("firsts", "Firsts", keywords=("first",)),
    )
    job = functools.partial(analyse, classifier=Classifier(rules, feed_topics=("firsts",)))
    analysed = pool.run(job, fetched(FEED), deadline=BOUNDED)
    assert analysed == analyse(fetched(FEED), Classifier(rules, ("firsts",)))
    assert analysed.parsed == parse_feed(fetched(FEED))
    topics = {entry_id: [m.topic_id for m in found] for entry_id, found in analysed.topics.items()}
    # "Hello" in the first summary scores 2 points; every item has the feed's hint.
    assert topics == {"one": ["greetings", "firsts"], "https://example.org/two": ["firsts"]}


def test_a_broken_body_fails_its_analysis_like_its_parse(pool: ParsePool) -> None:
    job = functools.partial(analyse, classifier=Classifier(()))
    with pytest.raises(ParseError, match=r"example\.org/feed\.xml"):
        pool.run(job, fetched(b"<html><body>not a feed</body></html>"), deadline=BOUNDED)


@pytest.mark.slow
def test_corpus_feeds_parse_the_same_as_in_process(pool: ParsePool, shared_dir: Path) -> None:
    paths = sorted((shared_dir / "corpus" / "feeds").glob("*.xml"))[:5]
    assert paths
    for path in paths:
        result = fetched(path.read_bytes(), url=f"https://example.org/{path.name}")
        try:
            expected: object = parse_feed(result)
        except ParseError as error:
            expected = str(error)
        try:
            actual: object = pool.parse(result, deadline=10)
        except ParseError as error:
            actual = str(error)
        assert actual == expected, path.name


@pytest.mark.slow
def test_parse_error_in_worker_comes_back_with_its_message(pool: ParsePool) -> None:
    with pytest.raises(ParseError, match=r"^https://example.org/feed.xml: empty response$") as e:
        pool.parse(fetched(b"\xef\xbb\xbf \n"), deadline=10)
    assert e.value.url == URL
    with pytest.raises(ParseError, match="304 Not Modified"):
        pool.parse(fetched(None), deadline=10)
    page = fetched(b"<!DOCTYPE html><html><body>Hello</body></html>")
    with pytest.raises(ParseError) as in_process:
        parse_feed(page)
    with pytest.raises(ParseError) as in_worker:
        pool.parse(page, deadline=10)
    assert str(in_worker.value) == str(in_process.value)


@pytest.mark.slow
def test_hostile_feed_is_abandoned_at_its_deadline_and_the_next_parse_works(
    pool: ParsePool,
) -> None:
    pool.parse(fetched(FEED), deadline=10)  # a worker is up, so the deadline is all parsing
    (before,) = pool.pids
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        pool.parse(fetched(HOSTILE, url="https://hostile.example/feed"), deadline=1.0)
    assert time.monotonic() - started < BOUNDED
    assert str(caught.value) == (
        "https://hostile.example/feed: parsing took longer than 1 s and was abandoned; "
        "the feed's markup is pathological or too large"
    )
    assert gone(before)
    assert pool.parse(fetched(FEED), deadline=10) == parse_feed(fetched(FEED))
    assert pool.pids != (before,)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_worker_killed_mid_parse_fails_that_feed_and_is_replaced(pool: ParsePool) -> None:
    pool.parse(fetched(FEED), deadline=10)
    (victim,) = pool.pids
    # What the kernel's OOM killer does to a parse that grew too large.
    killer = threading.Timer(0.3, os.kill, (victim, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(ParseError, match="parse worker was killed by SIGKILL"):
            pool.parse(fetched(HOSTILE), deadline=20)
    finally:
        killer.join()
    assert pool.parse(fetched(FEED), deadline=10) == parse_feed(fetched(FEED))


@pytest.mark.slow
def test_an_unexpected_exception_in_the_worker_fails_only_that_feed(
    pool: ParsePool, caplog: pytest.LogCaptureFixture
) -> None:
    # Not bytes: parse.py raises TypeError, standing in for any bug in it.
    broken: Any = fetched(FEED)
    object.__setattr__(broken, "content", "not bytes")
    with (
        caplog.at_level(logging.ERROR, logger="aggregator.parse_pool"),
        pytest.raises(ParseError, match="parser failed: TypeError"),
    ):
        pool.parse(broken, deadline=10)
    assert "Traceback" in caplog.text
    assert pool.parse(fetched(FEED), deadline=10) == parse_feed(fetched(FEED))


@pytest.mark.slow
def test_threads_share_the_workers_and_close_stops_them() -> None:
    feeds = [fetched(FEED, url=f"https://example.org/{n}.xml") for n in range(6)]
    with ParsePool(workers=2) as two, ThreadPoolExecutor(max_workers=4) as threads:
        parsed = list(threads.map(lambda result: two.parse(result, deadline=10), feeds))
        pids = two.pids
    assert parsed == [parse_feed(result) for result in feeds]
    assert 1 <= len(pids) <= 2
    assert all(gone(pid) for pid in pids)
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]
    with pytest.raises(RuntimeError, match="closed"):
        two.parse(feeds[0], deadline=10)
