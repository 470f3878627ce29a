"""stream_round against a real server: bounded memory, order kept, slow work isolated."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.models import FetchRequest, FetchResult
from aggregator.pipeline import stream_round

SETTINGS = FetchSettings(concurrency=4, per_host=4, timeout=timedelta(seconds=5))


def requests(httpserver: HTTPServer, count: int) -> list[FetchRequest]:
    httpserver.expect_request("/missing").respond_with_data("", status=404)
    for n in range(count):
        httpserver.expect_request(f"/f{n}").respond_with_data(f"body {n}")
    return [FetchRequest(httpserver.url_for(f"/f{n}")) for n in range(count)]


class Watcher:
    """A handler that records how many bodies the round held at once."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.lock = threading.Lock()
        self.holding = 0
        self.most = 0

    def fetched(self) -> None:
        with self.lock:
            self.holding += 1
            self.most = max(self.most, self.holding)

    def __call__(self, index: int, outcome: FetchResult | FetchError) -> str:
        time.sleep(self.pause)
        with self.lock:
            self.holding -= 1
        if isinstance(outcome, FetchError):
            return f"{index}: failed"
        return f"{index}: {outcome.content!r}"


def test_results_come_back_in_request_order_failures_included(httpserver: HTTPServer) -> None:
    wanted = [*requests(httpserver, 12), FetchRequest(httpserver.url_for("/missing"))]
    watcher = Watcher()
    watcher.holding = -(10**6)  # not counting here

    results = stream_round(wanted, SETTINGS, watcher, workers=2)

    assert results[:12] == [f"{n}: {f'body {n}'.encode()!r}" for n in range(12)]
    assert results[12] == "12: failed"


def test_a_round_never_holds_more_bodies_than_fetch_slots_plus_backlog(
    httpserver: HTTPServer,
) -> None:
    watcher = Watcher(pause=0.02)  # handling is slower than fetching: bodies would pile up

    def serve(request: Request) -> Response:
        watcher.fetched()  # a body leaves the server: from now on the round holds it
        return Response("body")

    for n in range(40):
        httpserver.expect_request(f"/s{n}").respond_with_handler(serve)
    wanted = [FetchRequest(httpserver.url_for(f"/s{n}")) for n in range(40)]

    results = stream_round(wanted, SETTINGS, watcher, workers=1, backlog=2)

    assert len(results) == 40
    assert watcher.most <= SETTINGS.concurrency + 2


def test_a_slow_handler_delays_only_its_own_feed(httpserver: HTTPServer) -> None:
    wanted = requests(httpserver, 6)
    finished: list[int] = []

    def handle(index: int, outcome: FetchResult | FetchError) -> int:
        if index == 0:
            time.sleep(1.0)  # a pathological feed's parse
        finished.append(index)
        return index

    stream_round(wanted, SETTINGS, handle, workers=2)

    assert finished[-1] == 0  # the other five were handled meanwhile
    assert sorted(finished) == list(range(6))


def test_a_handler_bug_is_raised_after_the_round(httpserver: HTTPServer) -> None:
    wanted = requests(httpserver, 3)

    def handle(index: int, outcome: FetchResult | FetchError) -> int:
        if index == 1:
            raise ValueError("a bug")
        return index

    with pytest.raises(ValueError, match="a bug"):
        stream_round(wanted, SETTINGS, handle, workers=2)
