"""ingest.parse_ahead: a round's bodies parsed concurrently, each outcome handed out once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError
from aggregator.ingest import parse_ahead
from aggregator.models import FetchResult, ParsedFeed

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def result(name: str) -> FetchResult:
    return FetchResult(f"https://{name}.test/", f"https://{name}.test/", 200, {}, b"x", NOW)


class SlowParser:
    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, fetched: FetchResult) -> ParsedFeed:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        if "bad" in fetched.url:
            raise ParseError(fetched.url, "not a feed")
        return ParsedFeed(fetched.url, fetched.url, None, None, None, ())


def test_parses_concurrently_and_hands_each_outcome_out_once() -> None:
    parser = SlowParser()
    results = [result(f"f{n}") for n in range(6)] + [result("bad")]

    parse = parse_ahead(parser, results, workers=2)

    assert parser.most == 2  # both workers busy, never more
    assert [parse(r).url for r in results[:-1]] == [r.url for r in results[:-1]]
    with pytest.raises(ParseError, match="not a feed"):
        parse(results[-1])
    assert parser.calls == 7  # nothing parsed twice
    parse(results[0])  # asked again: parsed on demand, like any other result
    assert parser.calls == 8


def test_one_worker_is_the_plain_parser() -> None:
    parser = SlowParser()
    assert parse_ahead(parser, [result("a"), result("b")], workers=1) is parser
