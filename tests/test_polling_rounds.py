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
from .hostile import HostileServer, hostile_server

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
FEED = rss([Item("a1", "Kyiv update", "News.")])
# Quadratic for feedparser (RSS 0.91: the fast path declines it), so only the deadline ends it.
HOSTILE = (
    b'<?xml version="1.0"?><rss version="0.91"><channel><title>h</title><item><title>x</title>'
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


# ---------------------------------------------------------------- every misbehaviour at once

# kind → (state after a round, a fragment of the error or warning)
EXPECTED = {
    "ok": ("changed", ""),
    "same": ("changed", ""),
    "moved": ("changed", ""),
    "moved308": ("changed", ""),
    "latin1": ("changed", ""),
    "error500": ("failed", "HTTP 500 Internal Server Error"),
    "notfound": ("failed", "HTTP 404 Not Found"),
    "gone": ("failed", "HTTP 410 Gone"),
    "limited": ("failed", "HTTP 429 Too Many Requests"),
    "unavailable": ("failed", "HTTP 503 Service Unavailable"),
    "loop": ("failed", "redirect loop"),
    "chain": ("failed", "too many redirects"),
    "sneaky": ("failed", "refused to follow a redirect to 127.0.0.2"),
    "slow": ("failed", "timed out after 1s"),
    "drip": ("failed", "the server is sending too slowly"),
    "reset": ("failed", "connection reset by the server"),
    "bomb": ("failed", "response larger than 2097152 bytes"),
    "oversized": ("failed", "response larger than 2097152 bytes"),
    "html": ("failed", "an HTML page, not a feed; it advertises a feed at"),
    "garbage": ("failed", "no RSS or Atom feed found (not well-formed XML"),
    "empty": ("failed", "empty response"),
    "pathological": ("failed", "parsing took longer than 2 s"),
}


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Aggregator, FakeClock, HostileServer]]:
    with hostile_server() as server:
        kinds = [*EXPECTED, "xxe", "laughs"]
        # Rate-limited kinds on their own host name, or their pause would hold every feed.
        paused = {"limited", "unavailable"}
        feeds = "".join(
            f"  - url: {server.url(kind, host='localhost' if kind in paused else '127.0.0.1')}\n"
            for kind in kinds
        )
        config = write_config(
            tmp_path,
            "database: sqlite:///state/test.db\n"
            "defaults:\n  interval: 10m\n"
            "fetch:\n  timeout: 1s\n  max_size: 2MB\n  parse_timeout: 2s\n"
            f"feeds:\n{feeds}",
        )
        clock = FakeClock(START)
        with make_aggregator(config, clock=clock) as aggregator:
            yield aggregator, clock, server


def test_every_misbehaviour_gets_its_state_and_the_healthy_feeds_publish(
    hostile: tuple[Aggregator, FakeClock, HostileServer],
) -> None:
    aggregator, _, server = hostile

    report = aggregator.fetch(all_feeds=True)

    outcomes = {o.url.split("/")[3]: o for o in report.outcomes}
    for kind, (state, fragment) in EXPECTED.items():
        outcome = outcomes[kind]
        assert outcome.state == state, (kind, outcome)
        assert fragment in (outcome.error or outcome.warning or ""), (kind, outcome)
    assert server.hits("/secret") == 0
    # The parsers' defences: no file read through an entity, no entity explosion.
    titles = {e.title for e in aggregator.store.entries()}
    assert not any("root:" in t for t in titles)
    assert all(len(t) < 1000 for t in titles)
    aggregator.publish()
    published = (aggregator.config.output_dir / "feed.atom").read_text()
    for kind in ("ok", "same", "moved", "moved308"):
        assert f"Kyiv report from /{'ok' if kind.startswith('moved') else kind}" in published
    for feed in aggregator.status():
        assert feed.next_due_at is not None
        assert feed.next_due_at >= START + timedelta(minutes=10)  # interval, or later


def test_a_second_round_keeps_failures_backing_off_and_healthy_feeds_cheap(
    hostile: tuple[Aggregator, FakeClock, HostileServer],
) -> None:
    aggregator, clock, _ = hostile
    aggregator.fetch(all_feeds=True)
    clock.advance(timedelta(minutes=30))  # past every first backoff, not past Retry-After

    report = aggregator.fetch()

    outcomes = {o.url.split("/")[3]: o for o in report.outcomes}
    assert outcomes["ok"].state == "not-modified"  # a 304
    assert outcomes["same"].state == "not-modified"  # the same bytes, by content hash
    assert {"limited", "unavailable", "gone"}.isdisjoint(outcomes)
    feeds = {f.url.split("/")[3]: f for f in aggregator.status()}
    assert feeds["error500"].error_count == 2
    assert feeds["error500"].next_due_at is not None
    # The interval, doubled for each of the two failures.
    assert feeds["error500"].next_due_at >= clock.now + timedelta(minutes=40)
    states = {h.feed.url.split("/")[3]: h.state for h in aggregator.feed_health()}
    assert states["gone"] == "gone"
    assert states["limited"] == "rate-limited"
    assert states["error500"] == "backing-off"
    assert states["ok"] == "not-modified"


def test_a_rarely_publishing_feed_is_polled_less_often(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    days = [START - timedelta(days=d) for d in (1, 4, 8, 11)]  # twice a week
    items = [
        Item(f"r{i}", f"Weekly column {i}", pub_date=format_datetime(day, usegmt=True))
        for i, day in enumerate(days)
    ]
    httpserver.expect_request("/rare").respond_with_data(rss(items))
    httpserver.expect_request("/busy").respond_with_data(FEED)
    rare, busy = httpserver.url_for("/rare"), httpserver.url_for("/busy")
    config = write_config(
        tmp_path,
        f"database: sqlite:///state/test.db\nfeeds:\n"
        f"  - url: {rare}\n    interval: 15m\n"
        f"  - url: {busy}\n    interval: 15m\n    adaptive: false\n",
    )
    with make_aggregator(config, clock=FakeClock(START)) as aggregator:
        aggregator.fetch(all_feeds=True)  # the first poll learns the rhythm
        aggregator.fetch(all_feeds=True)  # the second uses it

        due = {f.url: f.next_due_at for f in aggregator.status()}
        rate = {h.feed.url: h.items_per_day for h in aggregator.feed_health()}

    assert due[rare] is not None
    assert due[busy] is not None
    assert due[rare] >= START + timedelta(hours=6)
    assert due[busy] < START + timedelta(minutes=17)
    assert rate[rare] == pytest.approx(4 / 11)
