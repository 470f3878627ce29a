"""The daemon in a real subprocess: polls a local feed server, publishes, picks up an edit
of feeds.yaml without a restart, and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from .conftest import write_config
from .feeds import Item, rss

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def daemon_config(tmp_path: Path, urls: list[str]) -> Path:
    feeds = "".join(f"  - url: {u}\n    interval: 1m\n" for u in urls)
    return write_config(tmp_path, "database: sqlite:///state/daemon.db\nfeeds:\n" + feeds)


def test_daemon_polls_publishes_reloads_and_stops_on_sigterm(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    for name in ("first", "second"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(
            rss([Item(f"{name}-1", f"Story from the {name} source")]),
            content_type="application/rss+xml",
        )
    config = daemon_config(tmp_path, [httpserver.url_for("/first.xml")])
    merged = tmp_path / "output" / "feed.atom"
    log = (tmp_path / "daemon.log").open("w")
    env = {**os.environ, "AGGREGATOR_CONFIG": str(config)}
    env.pop("AGGREGATOR_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", "--tick", "0.5"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        published = lambda: merged.exists() and "first source" in merged.read_text()  # noqa: E731
        wait_for(published, 30, "the first publish")

        daemon_config(
            tmp_path, [httpserver.url_for("/first.xml"), httpserver.url_for("/second.xml")]
        )
        reloaded = lambda: "second source" in merged.read_text()  # noqa: E731
        wait_for(reloaded, 30, "the edited feeds.yaml to be picked up")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "daemon.log").read_text()
    assert "feeds.yaml reloaded" in output
    assert "received SIGTERM" in output
    assert not list((tmp_path / "output").glob(".*.tmp")), "a temp file was left behind"
