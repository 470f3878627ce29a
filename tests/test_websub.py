"""WebSub: the hub is linked from live feeds and pinged after a publish that changed them."""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.app import make_aggregator

from .conftest import FakeClock, write_config
from .feeds import Item, rss


def config_with_hub(tmp_path: Path, feed_url: str, hub: str) -> Path:
    config = write_config(
        tmp_path,
        f"database: sqlite:///state/w.db\ntopics:\n  war:\n    keywords: [Kyiv]\n"
        f"feeds:\n  - {feed_url}\n",
    )
    text = config.read_text().replace("site:\n", f"site:\n  hub: {hub}\n", 1)
    config.write_text(text)
    return config


def test_a_changed_publish_pings_the_hub_once_with_every_changed_feed(
    tmp_path: Path, httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request("/f.xml").respond_with_data(rss([Item("a", "Kyiv")]))
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    config = config_with_hub(tmp_path, httpserver.url_for("/f.xml"), httpserver.url_for("/hub"))
    with make_aggregator(config, clock=clock, sleep=lambda _: None) as app:
        app.fetch(all_feeds=True)
        app.publish()
        app.publish()  # nothing changed: no ping

    pings = [r for r, _ in httpserver.log if r.path == "/hub"]
    assert len(pings) == 1
    form = urllib.parse.parse_qs(pings[0].get_data(as_text=True))
    assert form["hub.mode"] == ["publish"]
    assert set(form["hub.url"]) == {
        "https://news.test/feed.atom",
        "https://news.test/feed.json",
        "https://news.test/topics/war.atom",
        "https://news.test/topics/war.json",
    }
    feed = (tmp_path / "output" / "feed.atom").read_text()
    assert f'href="{httpserver.url_for("/hub")}" rel="hub"' in feed


def test_a_dead_hub_never_fails_the_publish(
    tmp_path: Path, httpserver: HTTPServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/f.xml").respond_with_data(rss([Item("a", "Kyiv")]))
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=503)
    config = config_with_hub(tmp_path, httpserver.url_for("/f.xml"), httpserver.url_for("/hub"))
    with make_aggregator(config, clock=clock, sleep=lambda _: None) as app:
        app.fetch(all_feeds=True)
        with caplog.at_level(logging.WARNING):
            changed = app.publish()

    assert changed
    assert sum(1 for r, _ in httpserver.log if r.path == "/hub") == 2  # one retry
    assert "was not notified (HTTP 503); readers will still poll" in caplog.text
