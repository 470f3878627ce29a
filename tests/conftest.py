"""Fixtures shared by the integration tests: a settable clock, a real SMTP sink,
a config writer, and the ../shared corpus (skipped with a reason when absent)."""

from __future__ import annotations

import os
import socket
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, make_url, text

from .browser import chromium  # noqa: F401  (a fixture: imported here, every test may use it)

SHARED = Path(__file__).resolve().parents[2] / "shared"
PG_ENV = "AGGREGATOR_TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh schema in the PostgreSQL
    that AGGREGATOR_TEST_DATABASE_URL names (skipped where it is unset)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'aggregator.db'}"
        return
    with postgresql_schema() as url:
        yield url


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL (skipped where it is not configured)."""
    with postgresql_schema() as url:
        yield url


@contextmanager
def postgresql_schema() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set; PostgreSQL variant not run")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
