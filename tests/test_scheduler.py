"""The daemon's jobs, driven directly (the subprocess test covers signals and timing)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.app import Aggregator, make_aggregator
from aggregator.scheduler import Daemon

from .conftest import FakeClock, SmtpSink, write_config
from .feeds import Item, rss

DIGEST = """\
digests:
  daily:
    title: Daily
    schedule: "0 7 * * *"
    timezone: Europe/Kyiv
    to: [reader@example.org]
"""


def config_text(feed_url: str, *, digest: bool = False, smtp_port: int | None = None) -> str:
    text = f"database: sqlite:///state/d.db\nfeeds:\n  - {feed_url}\n"
    if digest:
        text += DIGEST
    if smtp_port is not None:
        text += f"smtp:\n  host: 127.0.0.1\n  port: {smtp_port}\n  security: none\n"
        text += "  from: desk@news.test\n"
    return text


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", "scheduler-test-secret-0123")


@pytest.fixture
def feed_url(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([Item("k1", "Kyiv update")]), content_type="application/rss+xml"
    )
    return httpserver.url_for("/feed.xml")


@pytest.fixture
def app(tmp_path: Path, feed_url: str, clock: FakeClock) -> Iterator[Aggregator]:
    clock.step = timedelta(seconds=1)
    config = write_config(tmp_path, config_text(feed_url))
    with make_aggregator(config, clock=clock) as aggregator:
        yield aggregator


@pytest.fixture
def daemon(app: Aggregator) -> Iterator[Daemon]:
    daemon = Daemon(app, tick=3600)  # jobs are called by hand below
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_invalid_edit_keeps_the_running_config_and_a_valid_one_reschedules(
    tmp_path: Path, app: Aggregator, daemon: Daemon, feed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    running = app.config
    write_config(tmp_path, config_text(feed_url) + "digests: [oops\n")
    with caplog.at_level(logging.ERROR, logger="aggregator.scheduler"):
        daemon.check_config()
    assert app.config == running
    assert "feeds.yaml not reloaded" in caplog.text
    assert "(yaml)" in caplog.text

    write_config(tmp_path, config_text(feed_url, digest=True))
    daemon.check_config()
    assert [d.id for d in app.config.digests] == ["daily"]
    assert "digest:daily" in daemon.job_ids()


def test_poll_publishes_and_the_digest_job_sends(
    tmp_path: Path, app: Aggregator, daemon: Daemon, feed_url: str, smtp_sink: SmtpSink
) -> None:
    daemon.poll()
    assert "Kyiv update" in (tmp_path / "output" / "feed.atom").read_text()

    write_config(tmp_path, config_text(feed_url, digest=True, smtp_port=smtp_sink.port))
    daemon.check_config()
    daemon.send_digest("daily")
    [message] = smtp_sink.messages()
    assert "Kyiv update" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    daemon.send_digest("daily")  # nothing new: nothing sent
    assert len(smtp_sink.envelopes) == 1


def test_a_failing_job_is_logged_and_the_daemon_survives(
    tmp_path: Path, daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="aggregator.scheduler"):
        daemon.send_digest("no-such-digest")
    assert "digest no-such-digest failed" in caplog.text


def test_a_new_database_url_needs_a_restart(
    tmp_path: Path, app: Aggregator, feed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    daemon_db = tmp_path / "state" / "d.db"
    write_config(tmp_path, config_text(feed_url).replace("state/d.db", "state/other.db"))
    with caplog.at_level(logging.WARNING, logger="aggregator.app"):
        assert app.reload_config() is True
    assert "restart to use it" in caplog.text
    assert str(daemon_db) in app.store.display_url
    assert not (tmp_path / "state" / "other.db").exists()


def test_reload_is_all_or_nothing_and_retried_after_a_storage_error(
    tmp_path: Path,
    feed_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("aggregator.store.database._BUSY_TIMEOUT_MS", 200)  # fail fast
    config = write_config(tmp_path, config_text(feed_url))
    with make_aggregator(config, clock=clock) as app:
        daemon = Daemon(app, tick=3600)
        daemon.start()
        try:
            running = app.config
            added = feed_url.replace("/feed.xml", "/other.xml")
            write_config(tmp_path, config_text(feed_url) + f"  - {added}\n")
            blocker = sqlite3.connect(tmp_path / "state" / "d.db")
            blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
            with caplog.at_level(logging.ERROR, logger="aggregator.scheduler"):
                daemon.check_config()
            assert app.config == running  # nothing half-applied
            assert "not reloaded yet" in caplog.text

            blocker.rollback()
            blocker.close()
            daemon.check_config()  # the same file, tried again

            assert [f.url for f in app.config.feeds] == [feed_url, added]
            assert added in {f.url for f in app.status()}
        finally:
            daemon.stop()


def test_read_only_use_needs_no_write_lock(
    tmp_path: Path, feed_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status and export open the state while a daemon is mid-write, without waiting."""
    monkeypatch.setattr("aggregator.store.database._BUSY_TIMEOUT_MS", 200)  # fail fast
    config = write_config(tmp_path, config_text(feed_url))
    with make_aggregator(config, clock=clock) as app:
        app.fetch()
    writer = sqlite3.connect(tmp_path / "state" / "d.db")
    writer.execute("BEGIN IMMEDIATE")  # the daemon, holding the write lock
    try:
        with make_aggregator(config, clock=clock) as reader:  # migrated, feeds in sync
            assert [f.entry_count for f in reader.status()] == [1]
            assert [row["title"] for row in reader.export()] == ["Kyiv update"]
    finally:
        writer.rollback()
        writer.close()
