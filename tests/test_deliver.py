"""deliver.py against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aggregator.config import DigestConfig, SiteConfig, SmtpConfig
from aggregator.deliver import deliver_issue, send_message
from aggregator.errors import DeliveryError
from aggregator.models import DigestIssue, DigestItem, DigestSection, EntryKey, RenderedIssue
from aggregator.render import make_environment, render_issue

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
SENDER = "War Desk <digest@example.org>"
USERNAME = "digest@example.org"
PASSWORD = "s3cret pass"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class StoringHandler:
    """Keeps every envelope; rejects recipients at ``refused.example``."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: let aiosmtpd answer 535 itself (handled=True means "I already replied")
    return AuthResult(success=ok, handled=False)


def start_server(handler: StoringHandler, **kwargs: Any) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def handler() -> StoringHandler:
    return StoringHandler()


@pytest.fixture
def server(handler: StoringHandler) -> Iterator[Controller]:
    controller = start_server(handler)
    yield controller
    controller.stop()


@pytest.fixture
def auth_server(handler: StoringHandler) -> Iterator[Controller]:
    controller = start_server(handler, auth_require_tls=False, authenticator=authenticator)
    yield controller
    controller.stop()


def smtp_for(controller: Controller, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": controller.port,
        "sender": SENDER,
        "security": "none",
        "timeout": 5.0,
    }
    settings.update(overrides)
    return SmtpConfig(**settings)


@pytest.fixture(scope="module")
def rendered() -> RenderedIssue:
    item = DigestItem(
        key=EntryKey("https://feeds.example.net/rss", "e1"),
        title="Kyiv — morning update",
        link="https://feeds.example.net/e1",
        source="Example Wire",
        published=datetime(2026, 11, 26, 4, 0, tzinfo=UTC),
        summary_text="Ünïcode summary text.",
    )
    issue = DigestIssue(
        digest_id="daily",
        title="Daily",
        stamp="2026-11-26T0700",
        window_start=datetime(2026, 11, 25, 5, tzinfo=UTC),
        window_end=datetime(2026, 11, 26, 5, tzinfo=UTC),
        sections=(DigestSection("t", "Topic", (item,)),),
    )
    digest = DigestConfig(
        id="daily",
        title="Daily",
        schedule="0 7 * * *",
        timezone="Europe/Kyiv",
        to=("a@example.org", "b@example.org"),
    )
    site = SiteConfig(title="War Desk", url="https://news.example.org/", author="Editors")
    return render_issue(
        issue, digest=digest, site=site, sender=SENDER, env=make_environment(TEMPLATES)
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# ---------------------------------------------------------------- send_message


def test_send_message_delivers_both_parts(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    send_message(smtp_for(server), rendered.eml, sender=SENDER, recipient="a@example.org")
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.mail_from == "digest@example.org"  # address part of the From, not the name
    assert got.rcpt_tos == ["a@example.org"]
    message = parse(got.content)
    assert message["Message-ID"] == rendered.message_id
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Ünïcode summary text." in plain.get_content()


def test_dead_server_is_delivery_error(rendered: RenderedIssue) -> None:
    port = free_port()  # nothing listens here any more
    smtp = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, security="none", timeout=2.0)
    with pytest.raises(DeliveryError, match=rf"^127\.0\.0\.1:{port}: connection refused"):
        send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")


def test_starttls_without_server_support_is_refused(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    smtp = smtp_for(server, security="starttls")
    with pytest.raises(DeliveryError, match="STARTTLS"):
        send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")
    assert handler.received == []  # never falls back to sending in clear


def test_ssl_against_plain_server_is_delivery_error(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    smtp = smtp_for(server, security="ssl", timeout=3.0)
    with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{server.port}: "):
        send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")
    assert handler.received == []


def test_login_with_right_password(
    auth_server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    smtp = smtp_for(auth_server, username=USERNAME, password=PASSWORD)
    send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"]]


def test_login_with_wrong_password_is_delivery_error(
    auth_server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    smtp = smtp_for(auth_server, username=USERNAME, password="wrong")
    with pytest.raises(DeliveryError, match=r"authentication failed: 535"):
        send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")
    assert handler.received == []


def test_username_without_password_is_delivery_error(
    auth_server: Controller, rendered: RenderedIssue
) -> None:
    smtp = smtp_for(auth_server, username=USERNAME)
    with pytest.raises(DeliveryError, match="AGGREGATOR_SMTP_PASSWORD"):
        send_message(smtp, rendered.eml, sender=SENDER, recipient="a@example.org")


def test_refused_recipient_is_delivery_error(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    with pytest.raises(DeliveryError, match=r"nobody@refused\.example refused: 550"):
        send_message(
            smtp_for(server), rendered.eml, sender=SENDER, recipient="nobody@refused.example"
        )
    assert handler.received == []


# ---------------------------------------------------------------- deliver_issue


def test_deliver_issue_skips_delivered_and_records_each(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    delivered: list[str] = []
    errors = deliver_issue(
        smtp_for(server),
        rendered,
        ["a@example.org", "b@example.org", "c@example.org", "b@example.org"],
        already_delivered={"a@example.org"},
        on_delivered=delivered.append,
    )
    assert errors == []
    assert delivered == ["b@example.org", "c@example.org"]
    # one transaction per recipient, each with only that recipient in the envelope
    assert [r.rcpt_tos for r in handler.received] == [["b@example.org"], ["c@example.org"]]
    received = [parse(r.content) for r in handler.received]
    # each reader sees only their own address; everything else is the rendered issue
    assert [m["To"] for m in received] == ["b@example.org", "c@example.org"]
    original = parse(rendered.eml)
    for message in received:
        assert message["Message-ID"] == original["Message-ID"]
        assert message["Subject"] == original["Subject"]
        assert (
            message.get_body(("html",)).get_content() == original.get_body(("html",)).get_content()
        )  # type: ignore[union-attr]


def test_deliver_issue_continues_after_failure(
    server: Controller, handler: StoringHandler, rendered: RenderedIssue
) -> None:
    delivered: list[str] = []
    errors = deliver_issue(
        smtp_for(server),
        rendered,
        ["x@refused.example", "b@example.org"],
        already_delivered=frozenset(),
        on_delivered=delivered.append,
    )
    assert delivered == ["b@example.org"]
    assert len(errors) == 1
    assert str(errors[0]).startswith("x@refused.example: 127.0.0.1:")
    assert isinstance(errors[0].__cause__, DeliveryError)
    assert [r.rcpt_tos for r in handler.received] == [["b@example.org"]]


def test_deliver_issue_against_dead_server_reports_every_recipient(
    rendered: RenderedIssue,
) -> None:
    port = free_port()
    smtp = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, security="none", timeout=2.0)
    delivered: list[str] = []
    errors = deliver_issue(
        smtp,
        rendered,
        ["a@example.org", "b@example.org"],
        already_delivered=set(),
        on_delivered=delivered.append,
    )
    assert delivered == []
    assert [str(e).split(":")[0] for e in errors] == ["a@example.org", "b@example.org"]
    assert all(f"127.0.0.1:{port}" in str(e) for e in errors)
