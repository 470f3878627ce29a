"""A newsletter run as its operator runs it: subscribers, one-click unsubscribe, outages,
refusals, carried-over items — through the façade, with a real SMTP server (aiosmtpd on
127.0.0.1), real feed files and a real database (SQLite, and PostgreSQL where available).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from aggregator.app import Aggregator, make_aggregator
from aggregator.errors import ConfigError
from aggregator.subscribers import UnsubscribeOutcome, read_token

from .conftest import FakeClock, free_port, write_config
from .feeds import Item, rss
from .smtp import Handler, running

SECRET = "test-secret-key-0123456789abcdef"
READER = "reader@example.org"
SECOND = "second@example.org"


@pytest.fixture(autouse=True)
def _environment(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", SECRET)


@pytest.fixture
def mailbox() -> Iterator[Handler]:
    box = Handler()
    with running(box):
        yield box


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))


def make_config(tmp_path: Path, port: int, *, max_items: int = 40) -> Path:
    return write_config(
        tmp_path,
        f"""\
        topics:
          ukraine-war:
            title: Ukraine war
            keywords: [Kyiv]
        feeds:
          - url: news.xml
        digests:
          daily:
            title: Daily brief
            schedule: "0 7 * * *"
            timezone: Europe/Kyiv
            to: [{READER}]
            max_items: {max_items}
        smtp:
          host: 127.0.0.1
          port: {port}
          security: none
          from: "Test Desk <digest@news.test>"
          timeout: 5s
        """,
    )


def publish_items(tmp_path: Path, *items: Item) -> None:
    path = tmp_path / "news.xml"
    before = path.stat().st_mtime if path.exists() else None
    path.write_bytes(rss(items))
    if before is not None:
        # A file's Last-Modified has whole seconds: make each edit a visible change.
        os.utime(path, (before + 2, before + 2))


def item(n: int, hour: int = 5) -> Item:
    return Item(f"n{n}", f"Kyiv report {n}", f"Story {n}.", f"Thu, 26 Nov 2026 0{hour}:00:00 GMT")


def open_aggregator(config: Path, clock: FakeClock) -> Aggregator:
    return make_aggregator(config, clock=clock, sleep=lambda _seconds: None)


def fetch(agg: Aggregator, clock: FakeClock) -> None:
    """Fetch every feed, then let a minute pass: an issue holds what was seen before it."""
    report = agg.fetch(all_feeds=True)
    assert not report.failed, report.failed
    clock.advance(timedelta(minutes=1))


def titles(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def unsubscribe_url(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    return next(part.strip("<> ") for part in header.split(",") if "https://" in part)


# ---------------------------------------------------------------- subscribers, headers, archive


def test_every_reader_gets_the_issue_once_with_one_click_unsubscribe(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1), item(2))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        agg.subscribers().add("daily", ["Second@Example.org"])
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
        assert (report.item_count, report.pending, report.errors) == (2, 0, ())
        again = agg.digest("daily", send=True)
    assert again[-1].skipped_reason
    assert "no new items" in again[-1].skipped_reason
    assert mailbox.count() == 2
    ids = set()
    for address in (READER, SECOND):
        [message] = mailbox.to(address)
        assert message["To"] == address
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "mailto:digest@news.test?subject=unsubscribe" in message["List-Unsubscribe"]
        url = unsubscribe_url(message)
        assert url.startswith("https://news.test/unsubscribe?token=")
        html = message.get_body(("html",))
        assert html is not None
        assert url in str(html.get_content())
        assert message["List-Id"] == "<daily.news.test>"
        ids.add(message["Message-ID"])
    assert len(ids) == 2


def test_public_archive_names_no_reader_and_eml_stays_private(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        agg.subscribers().add("daily", [SECOND])
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
    archive = tmp_path / "output" / "digests" / "daily"
    assert (archive / f"{report.stamp}.html").is_file()
    assert (archive / "index.html").is_file()
    published = [p for p in (tmp_path / "output").rglob("*") if p.is_file()]
    assert not [p for p in published if p.suffix == ".eml"]
    for path in published:
        data = path.read_bytes()
        for secret in (READER.encode(), SECOND.encode(), b"token=", SECRET.encode()):
            assert secret not in data, (path, secret)
    assert list((tmp_path / "state" / "digests" / "daily").glob("*.eml"))


def test_sending_without_a_secret_key_is_a_clear_error(
    tmp_path: Path, mailbox: Handler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGGREGATOR_SECRET_KEY")
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        with pytest.raises(ConfigError, match="AGGREGATOR_SECRET_KEY"):
            agg.digest("daily", send=True)
    assert mailbox.count() == 0


# ---------------------------------------------------------------- unsubscribe


def test_unsubscribe_link_is_idempotent_and_ends_every_delivery(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    config = make_config(tmp_path, mailbox.port)
    with open_aggregator(config, clock) as agg:
        agg.subscribers().add("daily", [SECOND])
        fetch(agg, clock)
        agg.digest("daily", send=True)
        [message] = mailbox.to(SECOND)
        token = parse_qs(urlsplit(unsubscribe_url(message)).query)["token"][0]
        claim = read_token(SECRET.encode(), token)
        assert agg.subscribers().unsubscribe(claim) is UnsubscribeOutcome.UNSUBSCRIBED
        assert agg.subscribers().unsubscribe(claim) is UnsubscribeOutcome.ALREADY
        publish_items(tmp_path, item(1), item(2, hour=6))
        clock.advance(timedelta(hours=2))
        fetch(agg, clock)
        agg.digest("daily", send=True)
        assert len(mailbox.to(SECOND)) == 1  # nothing after unsubscribing
        assert len(mailbox.to(READER)) == 2
        # Subscribing again starts a new subscription: the old link no longer ends it.
        assert agg.subscribers().add("daily", [SECOND]).reactivated == (SECOND,)
        assert agg.subscribers().unsubscribe(claim) is UnsubscribeOutcome.STALE


def test_a_listed_reader_who_unsubscribed_stays_unsubscribed(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        agg.digest("daily", send=True)
        assert agg.subscribers().remove("daily", READER)
        publish_items(tmp_path, item(1), item(2, hour=6))
        clock.advance(timedelta(hours=2))
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
    assert report.skipped_reason is not None
    assert "no subscribers" in report.skipped_reason
    assert len(mailbox.to(READER)) == 1


# ---------------------------------------------------------------- failures


def test_a_451_is_retried_and_accepted_in_the_same_run(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    mailbox.answers[READER] = ["451 4.7.1 Greylisted, try again"]
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
    assert (report.sent_to, report.pending, report.failed) == ((READER,), 0, False)
    assert len(mailbox.to(READER)) == 1


def test_a_recipient_refused_for_now_gets_the_same_issue_on_the_next_run(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    mailbox.answers[SECOND] = ["451 4.3.0 Mailbox busy"] * 3
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        agg.subscribers().add("daily", [SECOND])
        fetch(agg, clock)
        [first] = agg.digest("daily", send=True)
        assert first.failed
        assert first.pending == 1
        assert first.sent_to == (READER,)
        publish_items(tmp_path, item(1), item(2, hour=6))
        clock.advance(timedelta(hours=1))
        fetch(agg, clock)
        resumed, new = agg.digest("daily", send=True)
    assert (resumed.resumed, resumed.stamp, resumed.sent_to) == (True, first.stamp, (SECOND,))
    assert new.stamp != first.stamp
    assert new.item_count == 1
    first_copy, second_copy = mailbox.to(SECOND)
    assert "Kyiv report 1" in titles(first_copy)
    assert "Kyiv report 2" not in titles(first_copy)
    assert "Kyiv report 2" in titles(second_copy)
    assert "Kyiv report 1" not in titles(second_copy)
    assert len(mailbox.to(READER)) == 2


def test_a_permanent_refusal_is_recorded_and_blocks_no_one(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    mailbox.answers[SECOND] = ["550 5.1.1 No such user"]
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        agg.subscribers().add("daily", [SECOND])
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
        [status] = agg.digest_status()
    assert report.pending == 0
    assert report.sent_to == (READER,)
    assert [e for e in report.errors if SECOND in e and "550" in e]
    assert [(d.recipient, d.status) for d in status.failed] == [(SECOND, "failed")]
    assert status.last_complete


def test_an_outage_leaves_the_issue_to_be_resumed_before_any_new_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    port = free_port()  # nothing listens there yet
    publish_items(tmp_path, item(1))
    config = make_config(tmp_path, port)
    with open_aggregator(config, clock) as agg:
        fetch(agg, clock)
        [down] = agg.digest("daily", send=True)
        assert down.failed
        assert down.pending == 1
        assert down.sent_to == ()
        [delivery] = agg.store.ledger.deliveries("daily", down.stamp)
    box = Handler()
    with running(box, port), open_aggregator(config, clock) as agg:
        clock.advance(timedelta(minutes=30))
        reports = agg.digest("daily", send=True)
    assert next((r.stamp, r.resumed) for r in reports) == (down.stamp, True)
    [message] = box.to(READER)
    assert message["Message-ID"] == delivery.message_id
    assert "Kyiv report 1" in titles(message)


# ---------------------------------------------------------------- no item falls between issues


def test_items_over_max_items_lead_the_next_issues(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, *(item(n) for n in range(1, 6)))
    with open_aggregator(make_config(tmp_path, mailbox.port, max_items=2), clock) as agg:
        fetch(agg, clock)
        counts = []
        for _ in range(4):
            reports = agg.digest("daily", send=True)
            counts.append((reports[-1].item_count, reports[-1].more))
            clock.advance(timedelta(minutes=5))
    assert counts[:3] == [(2, 3), (2, 1), (1, 0)]
    bodies = " ".join(titles(m) for m in mailbox.to(READER))
    for n in range(1, 6):
        assert f"Kyiv report {n}" in bodies


def test_an_entry_stamped_before_an_issue_but_stored_after_it_is_not_lost(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    config = make_config(tmp_path, mailbox.port)
    with open_aggregator(config, clock) as agg:
        fetch(agg, clock)
        agg.digest("daily", send=True)
        # Another process's fetch, stamped ten minutes before that issue's end, commits now.
        clock.advance(timedelta(minutes=-10))
        publish_items(tmp_path, item(1), item(2))
        fetch(agg, clock)
        clock.advance(timedelta(hours=24))
        [report] = agg.digest("daily", send=True)
    assert report.item_count == 1
    assert "Kyiv report 2" in titles(mailbox.to(READER)[-1])


def test_a_source_back_after_two_days_is_news_but_a_new_sources_archive_is_not(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    old = "Mon, 23 Nov 2026 05:00:00 GMT"  # three days before the clock
    publish_items(tmp_path, Item("a1", "Kyiv archive piece", pub_date=old), item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)  # the source's first fetch: its archive
        [first] = agg.digest("daily", send=True)
        assert first.item_count == 1
        # The source was down; it comes back with a piece written while it was.
        clock.advance(timedelta(hours=2))
        publish_items(tmp_path, Item("b1", "Kyiv missed piece", pub_date=old), item(1))
        fetch(agg, clock)
        [second] = agg.digest("daily", send=True)
    assert second.item_count == 1
    assert "Kyiv missed piece" in titles(mailbox.to(READER)[-1])
    assert "Kyiv archive piece" not in " ".join(titles(m) for m in mailbox.to(READER))


# ---------------------------------------------------------------- one sender at a time


def test_a_live_sender_is_left_alone_and_a_dead_one_is_taken_over(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        ledger = agg.store.ledger
        now, host, until = clock.now, socket.gethostname(), clock.now + timedelta(minutes=10)
        assert ledger.take_lease(
            "daily", owner="other", host=host, pid=os.getpid(), now=now, expires_at=until
        )
        [report] = agg.digest("daily", send=True)
        assert report.skipped_reason
        assert "another sender" in report.skipped_reason
        assert mailbox.count() == 0
        dead = subprocess.Popen(["true"])
        dead.wait()
        ledger.release_lease("daily", "other")
        assert ledger.take_lease(
            "daily", owner="dead", host=host, pid=dead.pid, now=now, expires_at=until
        )
        [report] = agg.digest("daily", send=True)
    assert report.sent_to == (READER,)


# ---------------------------------------------------------------- retention


def test_retention_forgets_old_issues_and_removes_their_files(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        [report] = agg.digest("daily", send=True)
        web_copy = tmp_path / "output" / "digests" / "daily" / f"{report.stamp}.html"
        assert web_copy.is_file()
        clock.advance(timedelta(days=91))
        agg.prune()
        assert agg.store.ledger.issues("daily") == []
    assert not web_copy.exists()
    index = (tmp_path / "output" / "digests" / "daily" / "index.html").read_text()
    assert report.stamp not in index


def test_an_unwritable_archive_fails_the_run_before_anything_is_claimed(
    tmp_path: Path, mailbox: Handler, clock: FakeClock
) -> None:
    publish_items(tmp_path, item(1))
    blocker = tmp_path / "output" / "digests"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # root ignores permissions; this stops even root
    with open_aggregator(make_config(tmp_path, mailbox.port), clock) as agg:
        fetch(agg, clock)
        cycle = agg.run_once(send=True)
        assert cycle.digests_failed
        assert agg.store.ledger.issues("daily") == []
        assert mailbox.count() == 0
        blocker.unlink()
        [report] = agg.digest("daily", send=True)
    assert report.sent_to == (READER,)
