"""End to end through the façade: a real HTTP server, a real SQLite file, a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.app import Aggregator, make_aggregator

from .conftest import FakeClock, SmtpSink, write_config
from .feeds import Item, rss

ATOM = "{http://www.w3.org/2005/Atom}"

WAR = Item("w1", "Drone strikes hit Kyiv overnight", "Air defence was active over the capital.")
TECH = Item("t1", "New software release", "A changelog.", pub_date="Thu, 26 Nov 2026 04:00:00 GMT")


class ConditionalFeed:
    """Serves one document with an ETag and answers 304 when the client already has it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.version = 1
        self.requests: list[dict[str, str]] = []

    def set(self, body: bytes) -> None:
        self.body, self.version = body, self.version + 1

    def __call__(self, request: Request) -> Response:
        self.requests.append(dict(request.headers))
        etag = f'"v{self.version}"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(self.body, content_type="application/rss+xml", headers={"ETag": etag})


def make_config(tmp_path: Path, feed_urls: list[str], smtp_port: int = 1) -> Path:
    feeds = "".join(f"  - url: {url}\n" for url in feed_urls)
    return write_config(
        tmp_path,
        f"""\
database: sqlite:///state/test.db
topics:
  ukraine-war:
    title: Ukraine war
    keywords: [Ukrain*, Kyiv]
  tech:
    title: Technology
    keywords: [software]
digests:
  daily:
    title: Daily brief
    schedule: "0 7 * * *"
    timezone: Europe/Kyiv
    to: [reader@example.org]
smtp:
  host: 127.0.0.1
  port: {smtp_port}
  security: none
  from: "Test Desk <digest@news.test>"
  timeout: 5s
feeds:
"""
        + feeds,
    )


@pytest.fixture(autouse=True)
def _every_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each scenario on SQLite and, where available, PostgreSQL."""
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", "app-test-secret-0123456789")


@pytest.fixture
def feed(httpserver: HTTPServer) -> ConditionalFeed:
    handler = ConditionalFeed(rss([WAR, TECH]))
    httpserver.expect_request("/feed.xml").respond_with_handler(handler)
    return handler


def open_app(config: Path, clock: FakeClock) -> Aggregator:
    return make_aggregator(config, clock=clock)


def test_second_poll_is_conditional_and_parses_nothing(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    with open_app(make_config(tmp_path, [httpserver.url_for("/feed.xml")]), clock) as app:
        first = app.fetch(all_feeds=True)
        second = app.fetch(all_feeds=True)
    assert first.new_entries == 2
    assert [(o.state, o.title) for o in second.outcomes] == [("not-modified", "Test Source")]
    assert feed.requests[1]["If-None-Match"] == '"v1"'
    assert "aggregator" in feed.requests[0]["User-Agent"]


def test_an_html_page_is_a_clear_failure_and_other_feeds_go_on(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    httpserver.expect_request("/page").respond_with_data(
        '<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" '
        'href="/feed.xml"></head><body>Hi</body></html>',
        content_type="text/html",
    )
    page = httpserver.url_for("/page")
    config = make_config(tmp_path, [page, httpserver.url_for("/feed.xml")])
    with open_app(config, clock) as app:
        report = app.fetch(all_feeds=True)
        status = {f.url: f for f in app.status()}
    [failed] = report.failed
    assert failed.url == page
    assert "HTML page" in (failed.error or "")
    assert httpserver.url_for("/feed.xml") in (failed.error or "")  # the feed it advertises
    assert status[page].last_error == failed.error
    assert report.new_entries == 2


def test_retry_after_on_503_postpones_the_next_poll(
    tmp_path: Path, httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request("/busy.xml").respond_with_data(
        "busy", status=503, headers={"Retry-After": "7200"}
    )
    with open_app(make_config(tmp_path, [httpserver.url_for("/busy.xml")]), clock) as app:
        [outcome] = app.fetch(all_feeds=True).outcomes
        [feed] = app.status()
        clock.advance(timedelta(hours=1))
        due_after_an_hour = app.fetch().outcomes
    assert (outcome.state, outcome.status) == ("failed", 503)
    assert feed.next_due_at is not None
    assert feed.next_due_at >= clock.now + timedelta(hours=1)  # 2 h after the 503
    assert due_after_an_hour == ()


def test_entry_edited_in_place_is_updated_not_duplicated(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    with open_app(make_config(tmp_path, [httpserver.url_for("/feed.xml")]), clock) as app:
        app.fetch(all_feeds=True)
        feed.set(rss([Item("w1", "Drone strikes hit Kyiv and Lviv overnight"), TECH]))
        report = app.fetch(all_feeds=True)
        titles = [e.title for e in app.store.entries()]
    assert (report.new_entries, report.updated_entries) == (0, 1)
    assert titles == ["Drone strikes hit Kyiv and Lviv overnight", "New software release"]


def test_publish_writes_merged_and_topic_feeds(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    with open_app(make_config(tmp_path, [httpserver.url_for("/feed.xml")]), clock) as app:
        app.fetch(all_feeds=True)
        changed = app.publish()
        unchanged = app.publish()
    out = tmp_path / "output"
    assert sorted(p.relative_to(out).as_posix() for p in changed) == [
        "archive/2026-11.atom",  # the current month's page
        "feed.atom",
        "feed.json",
        "index.html",
        "sources.opml",
        "status.html",
        "topics/tech.atom",
        "topics/tech.json",
        "topics/ukraine-war.atom",
        "topics/ukraine-war.json",
    ]
    assert unchanged == []  # the status page too: dated by the last poll, not by "now"
    merged = etree.parse(str(out / "feed.atom"))
    assert [t.text for t in merged.iterfind(f"{ATOM}entry/{ATOM}title")] == [
        WAR.title,
        TECH.title,
    ]
    war = etree.parse(str(out / "topics" / "ukraine-war.atom"))
    assert [t.text for t in war.iterfind(f"{ATOM}entry/{ATOM}title")] == [WAR.title]
    terms = [c.get("term") for c in war.iterfind(f"{ATOM}entry/{ATOM}category")]
    assert terms == ["ukraine-war"]


def test_a_removed_topic_stops_being_published(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    config = make_config(tmp_path, [httpserver.url_for("/feed.xml")])
    with open_app(config, clock) as app:
        app.fetch(all_feeds=True)
        app.publish()
        config.write_text(config.read_text().replace("  tech:\n", "  gadgets:\n"))
        app.reload_config()
        changed = app.publish()
    topics = tmp_path / "output" / "topics"
    assert sorted(p.name for p in topics.iterdir()) == [
        "gadgets.atom",
        "gadgets.json",
        "ukraine-war.atom",
        "ukraine-war.json",
    ]
    assert topics / "tech.atom" in changed
    # stored entries were re-classified under the renamed topic
    assert TECH.title in (topics / "gadgets.atom").read_text()


def test_unreachable_feeds_fail_cleanly_and_the_cycle_finishes(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    clock.step = timedelta(seconds=1)  # the digest window ends after the fetch
    dead = "http://127.0.0.1:9/feed.xml"  # discard port: nothing listens
    config = make_config(tmp_path, [dead, httpserver.url_for("/feed.xml")])
    with open_app(config, clock) as app:
        report = app.run_once()
        status = {f.url: f for f in app.status()}
    assert [o.url for o in report.fetch.failed] == [dead]
    assert status[dead].last_error
    assert status[dead].error_count == 1
    assert (tmp_path / "output" / "feed.atom").exists()
    assert [d.item_count for d in report.digests] == [2]


def test_feeds_yaml_edit_is_picked_up_and_removed_feed_keeps_its_entries(
    tmp_path: Path, httpserver: HTTPServer, feed: ConditionalFeed, clock: FakeClock
) -> None:
    httpserver.expect_request("/other.xml").respond_with_data(
        rss([Item("o1", "Other source story")], title="Other"), content_type="application/rss+xml"
    )
    first_url, other_url = httpserver.url_for("/feed.xml"), httpserver.url_for("/other.xml")
    config = make_config(tmp_path, [first_url])
    with open_app(config, clock) as app:
        app.run_once()
        make_config(tmp_path, [other_url])
        assert app.reload_config() is True
        report = app.run_once()
        active = [f.url for f in app.status()]
        stored = {e.feed_url for e in app.store.entries()}
    assert [o.url for o in report.fetch.outcomes] == [other_url]
    assert active == [other_url]
    assert stored == {first_url, other_url}


def test_digest_is_delivered_once_with_text_and_html(
    tmp_path: Path,
    httpserver: HTTPServer,
    feed: ConditionalFeed,
    clock: FakeClock,
    smtp_sink: SmtpSink,
) -> None:
    config = make_config(tmp_path, [httpserver.url_for("/feed.xml")], smtp_sink.port)
    with open_app(config, clock) as app:
        app.fetch(all_feeds=True)
        clock.advance(timedelta(hours=1))
        [first] = app.digest("daily", send=True)
        clock.advance(timedelta(hours=1))
        [second] = app.digest("daily", send=True)
    assert first.sent_to == ("reader@example.org",)
    assert second.sent_to == ()
    assert second.skipped_reason
    assert second.item_count == 0
    [message] = smtp_sink.messages()
    kinds = sorted(part.get_content_type() for part in message.walk() if not part.is_multipart())
    assert kinds == ["text/html", "text/plain"]
    assert WAR.title in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert sorted(p.suffix for p in first.paths) == [".eml", ".html", ".html", ".txt", ".txt"]
    assert {p.suffix for p in first.paths if "output" in p.parts} == {".html", ".txt"}


def test_a_second_issue_in_the_same_minute_leaves_the_sent_one_alone(
    tmp_path: Path,
    httpserver: HTTPServer,
    feed: ConditionalFeed,
    clock: FakeClock,
    smtp_sink: SmtpSink,
) -> None:
    config = make_config(tmp_path, [httpserver.url_for("/feed.xml")], smtp_sink.port)
    with open_app(config, clock) as app:
        app.fetch(all_feeds=True)
        clock.advance(timedelta(seconds=5))
        [sent] = app.digest("daily", send=True)
        sent_html = sent.paths[0].read_bytes()
        feed.set(rss([WAR, TECH, Item("w2", "Kyiv: a later report")]))
        app.fetch(all_feeds=True)
        clock.advance(timedelta(seconds=30))
        [again] = app.digest("daily", send=True)
    assert "this minute" in (again.skipped_reason or "")
    assert again.paths == ()
    assert sent.paths[0].read_bytes() == sent_html
    assert len(smtp_sink.envelopes) == 1


def test_hostile_titles_are_escaped_in_html_and_harmless_in_headers(
    tmp_path: Path, httpserver: HTTPServer, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    evil = Item(
        "x1",
        'Kyiv <script>alert(1)</script>"><img src=x onerror=alert(1)> 1 < 2 & co'
        "\r\nBcc: victim@example.org",
    )
    httpserver.expect_request("/evil.xml").respond_with_data(
        rss([evil], title="Evil\r\nBcc: victim@example.org"), content_type="application/rss+xml"
    )
    config = make_config(tmp_path, [httpserver.url_for("/evil.xml")], smtp_sink.port)
    with open_app(config, clock) as app:
        app.fetch(all_feeds=True)
        clock.advance(timedelta(minutes=5))
        app.digest("daily", send=True)
    [envelope] = smtp_sink.envelopes
    assert envelope.rcpt_tos == ["reader@example.org"]
    [message] = smtp_sink.messages()
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script" not in html
    assert "onerror" not in html
    assert "1 &lt; 2 &amp; co" in html
    assert "1 < 2 & co" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
