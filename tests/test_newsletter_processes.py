"""Exactly-once with real processes: two senders at once, and a sender killed with SIGKILL
mid-issue, against a real (slow) SMTP server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.app import make_aggregator
from aggregator.scheduler import Daemon

from .conftest import free_port, write_config
from .feeds import Item, rss
from .smtp import Handler, running

pytestmark = pytest.mark.slow

READERS = [f"reader{n}@example.org" for n in range(6)]
SECRET = "process-test-secret-0123456789"


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": database_url,
        "AGGREGATOR_SECRET_KEY": SECRET,
    }


@pytest.fixture
def slow_mailbox() -> Iterator[Handler]:
    box = Handler(delay=0.15)
    with running(box):
        yield box


def aggregator(
    config: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def newsletter(tmp_path: Path, env: dict[str, str], port: int) -> Path:
    """A config whose one digest has six readers and two stored items."""
    items = [Item(f"k{n}", f"Kyiv update {n}") for n in (1, 2)]
    (tmp_path / "news.xml").write_bytes(rss(items))
    config = write_config(
        tmp_path,
        f"""\
        feeds:
          - url: news.xml
        digests:
          daily:
            schedule: "0 7 * * *"
            to: [{READERS[0]}]
            lookback: 3650d
        smtp:
          host: 127.0.0.1
          port: {port}
          security: none
          from: digest@news.test
          timeout: 10s
        """,
    )
    for args in (("fetch", "--all"), ("subscribers", "add", "daily", *READERS[1:])):
        done = aggregator(config, env, *args)
        assert done.returncode == 0, done.stderr
    return config


def test_two_senders_at_once_deliver_each_reader_exactly_once(
    tmp_path: Path, env: dict[str, str], slow_mailbox: Handler
) -> None:
    config = newsletter(tmp_path, env, slow_mailbox.port)
    first = start(config, env, "digest", "daily", "--send")
    second = start(config, env, "digest", "daily", "--send")
    outputs = [p.communicate(timeout=60) for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    for reader in READERS:
        assert len(slow_mailbox.to(reader)) == 1, reader
    said = " ".join(out for out, _ in outputs)
    assert "another sender" in said or "no new items" in said


def test_the_daemons_cron_job_and_a_hand_run_send_each_reader_one_copy(
    tmp_path: Path, env: dict[str, str], slow_mailbox: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = newsletter(tmp_path, env, slow_mailbox.port)
    for name in ("AGGREGATOR_DATABASE_URL", "AGGREGATOR_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    with make_aggregator(config) as app:
        daemon = Daemon(app)  # its cron job, run by hand: the schedule is APScheduler's business
        by_hand = start(config, env, "digest", "daily", "--send")
        cron = threading.Thread(target=daemon.send_digest, args=("daily",))
        cron.start()
        out, err = by_hand.communicate(timeout=60)
        cron.join(timeout=60)
    assert by_hand.returncode == 0, err
    for reader in READERS:
        assert len(slow_mailbox.to(reader)) == 1, (reader, out)


def test_a_sender_killed_mid_issue_is_resumed_with_the_same_message_ids(
    tmp_path: Path, env: dict[str, str], slow_mailbox: Handler
) -> None:
    config = newsletter(tmp_path, env, slow_mailbox.port)
    sender = start(config, env, "digest", "daily", "--send")
    deadline = time.monotonic() + 30
    while slow_mailbox.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_mailbox.count() >= 2
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait(timeout=10)
    delivered_before = slow_mailbox.count()
    assert delivered_before < len(READERS), "the kill came too late to test anything"

    done = aggregator(config, env, "digest", "daily", "--send")
    assert done.returncode == 0, done.stderr
    assert "resumed issue" in done.stdout
    message_ids = {}
    for reader in READERS:
        copies = slow_mailbox.to(reader)
        assert 1 <= len(copies) <= 2, reader
        assert len({m["Message-ID"] for m in copies}) == 1, "a repeat keeps its Message-ID"
        message_ids[reader] = copies[0]["Message-ID"]
    # At most the one message in flight at the kill is repeated.
    assert slow_mailbox.count() <= len(READERS) + 1
    stamps = {mid.split(".")[1] for mid in message_ids.values()}
    assert len(stamps) == 1, "one issue, not a second one with the same items"


def test_a_reader_refused_with_451_gets_the_same_issue_from_the_next_process(
    tmp_path: Path, env: dict[str, str]
) -> None:
    greylisted = READERS[3]
    box = Handler()
    with running(box):
        box.answers[greylisted] = ["451 4.7.1 Greylisted, come back later"] * 3  # one run's tries
        config = newsletter(tmp_path, env, box.port)
        first = aggregator(config, env, "digest", "daily", "--send")
        assert first.returncode == 2, first.stdout
        assert "1 delivery(ies) still pending" in first.stderr
        assert box.to(greylisted) == []
        second = aggregator(config, env, "digest", "daily", "--send")
        assert second.returncode == 0, second.stderr
        assert "resumed issue" in second.stdout
        for reader in READERS:
            assert len(box.to(reader)) == 1, reader


def test_run_once_send_exits_2_when_the_digest_cannot_be_delivered(
    tmp_path: Path, env: dict[str, str]
) -> None:
    config = newsletter(tmp_path, env, free_port())  # nothing listens there
    done = aggregator(config, env, "run", "--once", "--send")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "delivery failed" in done.stderr
    status = aggregator(config, env, "status")
    assert "pending" in status.stdout
