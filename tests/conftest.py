"""Fixtures shared by the integration tests: a settable clock, a real SMTP sink,
a config writer, and the ../shared corpus (skipped with a reason when absent)."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"needs the shared corpus at {SHARED} (present in CI, absent in a plain clone)")
    return SHARED


class FakeClock:
    """A clock the test moves by hand (and, with ``step``, one that ticks on every read)."""

    def __init__(self, start: datetime, step: timedelta = timedelta(0)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))


@dataclass
class SmtpSink:
    """What a real aiosmtpd server on 127.0.0.1 received."""

    host: str
    port: int
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.content, policy=policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def write_config(directory: Path, body: str, *, name: str = "feeds.yaml") -> Path:
    """Write a feeds.yaml with a standard site header and the given body."""
    path = directory / name
    header = textwrap.dedent(
        """\
        site:
          title: Test Desk
          url: https://news.test/
          author: Test editors
        """
    )
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path
