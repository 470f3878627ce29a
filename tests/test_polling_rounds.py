"""Rounds of polls against a fault-injecting server on 127.0.0.1, through the façade.

One endpoint per misbehaviour; after each round the test checks every feed's state and
next poll, and that the healthy feeds were fetched and stored whatever the others did.
Rate-limited endpoints live on "localhost", the rest on "127.0.0.1": one server, two host
names, so that a host-wide pause can be told apart from a feed's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.app import Aggregator, make_aggregator
from aggregator.models import Feed

from .conftest import FakeClock, write_config
from .feeds import Item, rss

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
FEED = rss([Item("a1", "Kyiv update", "News.")])
HOSTILE = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>h</title><item><title>x</title>'
    b"<description>" + b"&lt;!--" * 200_000 + b"</description></item></channel></rss>"
)


@pytest.fixture
def farm(httpserver: HTTPServer) -> dict[str, str]:
    serve = httpserver.expect_request
    serve("/ok").respond_with_data(FEED, content_type="application/rss+xml")
    serve("/same").respond_with_data(FEED, content_type="application/rss+xml")  # no validators
    serve("/limited").respond_with_data("slow down", status=429, headers={"Retry-After": "3600"})
    later = format_datetime(START + timedelta(hours=2), usegmt=True)
    serve("/unavailable").respond_with_data("", status=503, headers={"Retry-After": later})
    serve("/gone").respond_with_data("", status=410)
    serve("/moved").respond_with_data("", status=301, headers={"Location": "/new"})
    serve("/new").respond_with_data(FEED, content_type="application/rss+xml")
    serve("/hostile").respond_with_data(HOSTILE, content_type="application/rss+xml")
    port = httpserver.port
    serve("/sneaky").respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.2:{port}/secret"}
    )
    serve("/secret").respond_with_data("password=hunter2")
    local, named = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    return {
        "ok": f"{local}/ok",
        "same": f"{local}/same",
        "gone": f"{local}/gone",
        "moved": f"{local}/moved",
        "hostile": f"{local}/hostile",
        "sneaky": f"{local}/sneaky",
        "limited": f"{named}/limited",
        "unavailable": f"{named}/unavailable?x=1",
        "neighbour": f"{named}/ok",  # healthy, but its host asked us to slow down
    }


@pytest.fixture
def app(tmp_path: Path, farm: dict[str, str]) -> Iterator[tuple[Aggregator, FakeClock]]:
    feeds = "".join(f"  - url: {url}\n    interval: 10m\n" for url in farm.values())
    config = write_config(
        tmp_path,
        f"database: sqlite:///state/test.db\nfetch:\n  parse_timeout: 2s\nfeeds:\n{feeds}",
    )
    clock = FakeClock(START)
    with make_aggregator(config, clock=clock) as aggregator:
        yield aggregator, clock


def hits(httpserver: HTTPServer, path: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == path)


def stored(aggregator: Aggregator, url: str) -> Feed:
    return next(f for f in aggregator.status() if f.url == url)


def test_hostile_endpoints_get_the_right_state_and_healthy_feeds_still_publish(
    app: tuple[Aggregator, FakeClock], farm: dict[str, str], httpserver: HTTPServer
) -> None:
    aggregator, _ = app

    report = aggregator.fetch(all_feeds=True)

    states = {o.url: o for o in report.outcomes}
    assert states[farm["ok"]].state == "changed"
    assert states[farm["moved"]].state == "changed"
    assert "parsing took longer than 2 s" in (states[farm["hostile"]].error or "")
    assert "refused to follow a redirect" in (states[farm["sneaky"]].error or "")
    assert hits(httpserver, "/secret") == 0
    limited = stored(aggregator, farm["limited"])
    assert limited.retry_until == START + timedelta(hours=1)
    assert limited.next_due_at is not None
    assert limited.next_due_at >= START + timedelta(hours=1)
    unavailable = stored(aggregator, farm["unavailable"])
    assert unavailable.retry_until == START + timedelta(hours=2)
    assert stored(aggregator, farm["gone"]).gone_at == START
    assert {f.url for f in aggregator.store.feeds() if f.entry_count} == {
        farm["ok"],
        farm["same"],
        farm["moved"],
        farm["neighbour"],
    }
    aggregator.publish()
    published = (aggregator.config.output_dir / "feed.atom").read_text()
    assert "Kyiv update" in published
    assert "hunter2" not in published


def test_fetch_all_never_overrides_retry_after_or_retirement(
    app: tuple[Aggregator, FakeClock], farm: dict[str, str], httpserver: HTTPServer
) -> None:
    aggregator, clock = app
    aggregator.fetch(all_feeds=True)
    clock.advance(timedelta(minutes=10))

    report = aggregator.fetch(all_feeds=True)

    held = {h.feed.url: h.reason for h in report.held}
    assert set(held) == {farm["limited"], farm["unavailable"], farm["gone"], farm["neighbour"]}
    assert "410 Gone" in held[farm["gone"]]
    assert "asked us to wait until 2026-12-05 11:00 UTC" in held[farm["unavailable"]]
    assert "localhost asked us to slow down until 2026-12-05 11:00" in held[farm["neighbour"]]
    assert hits(httpserver, "/limited") == 1
    assert hits(httpserver, "/gone") == 1
    assert {o.url: o.state for o in report.outcomes}[farm["same"]] == "not-modified"

    forced = aggregator.fetch(only=[farm["limited"]], force=True)

    assert [o.url for o in forced.outcomes] == [farm["limited"]]
    assert hits(httpserver, "/limited") == 2


def test_a_permanent_move_is_adopted_and_then_requested_directly(
    app: tuple[Aggregator, FakeClock], farm: dict[str, str], httpserver: HTTPServer
) -> None:
    aggregator, clock = app
    for _ in range(3):
        aggregator.fetch(only=[farm["moved"]])
        clock.advance(timedelta(minutes=10))
    assert hits(httpserver, "/moved") == 3

    aggregator.fetch(only=[farm["moved"]])

    assert hits(httpserver, "/moved") == 3
    assert hits(httpserver, "/new") == 4
    [health] = [h for h in aggregator.feed_health() if h.feed.url == farm["moved"]]
    assert health.state == "moved"
    assert health.advice is not None
    assert f"change its url to {farm['moved'].removesuffix('moved')}new" in health.advice
    assert stored(aggregator, farm["moved"]).entry_count == 1  # same entries, no duplicates
