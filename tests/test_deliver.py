"""deliver.py against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aggregator.config import SmtpConfig
from aggregator.deliver import (
    MAX_ATTEMPTS,
    RETRY_PAUSES,
    Attempt,
    SmtpSession,
    deliver,
    describe_error,
    next_attempt,
)
from aggregator.errors import DeliveryError

from .conftest import free_port
from .smtp import Handler

SENDER = "War Desk <digest@example.org>"
USERNAME = "digest@example.org"
PASSWORD = "s3cret pass"
TRY_LATER = "451 4.7.1 Try again later"
NO_SUCH_USER = "550 5.1.1 No such user"


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


def start_server(handler: Handler, **kwargs: Any) -> Controller:
    # Not tests.smtp.running: some tests here need the Controller itself (auth, TLS options).
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def server(handler: Handler) -> Iterator[Controller]:
    controller = start_server(handler)
    yield controller
    controller.stop()


@pytest.fixture
def auth_server(handler: Handler) -> Iterator[Controller]:
    controller = start_server(handler, auth_require_tls=False, authenticator=authenticator)
    yield controller
    controller.stop()


def smtp_for(port: int, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": SENDER,
        "security": "none",
        "timeout": 5.0,
    }
    settings.update(overrides)
    return SmtpConfig(**settings)


def message_for(recipient: str) -> bytes:
    """A small multipart message of the kind the newsletter sends, one per reader."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient
    message["Subject"] = "Daily — 26 November"
    message["Message-ID"] = f"<2026-11-26T0900.{recipient.replace('@', '.')}@example.org>"
    message.set_content("Kyiv — morning update\nÜnïcode summary text.\n")
    message.add_alternative("<p>Kyiv — morning update</p><p>Ünïcode summary text.</p>", "html")
    return message.as_bytes(policy=email.policy.SMTP)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@dataclass
class Run:
    """One deliver() call with everything it reported on the way."""

    results: list[Attempt]
    reported: list[Attempt]
    sleeps: list[float]


def run(
    smtp: SmtpConfig,
    recipients: list[str],
    *,
    pauses: tuple[float, ...] | None = (0.0, 0.0),
    stop_after: int | None = None,
) -> Run:
    reported: list[Attempt] = []
    sleeps: list[float] = []

    def on_result(attempt: Attempt) -> bool:
        reported.append(attempt)
        return stop_after is None or len(reported) < stop_after

    extra: dict[str, Any] = {} if pauses is None else {"pauses": pauses}
    results = deliver(
        smtp, recipients, message_for, on_result=on_result, sleep=sleeps.append, **extra
    )
    return Run(results, reported, sleeps)


def send_one(smtp: SmtpConfig, recipient: str = "a@example.org") -> None:
    with SmtpSession(smtp) as session:
        session.send(message_for(recipient), sender=smtp.sender, recipient=recipient)


# ---------------------------------------------------------------- SmtpSession


def test_session_delivers_the_message_as_given(server: Controller, handler: Handler) -> None:
    data = message_for("a@example.org")
    with SmtpSession(smtp_for(server.port)) as session:
        session.send(data, sender=SENDER, recipient="a@example.org")
    (got,) = handler.received
    assert got.mail_from == "digest@example.org"  # address part of the From, not the name
    assert got.rcpt_tos == ["a@example.org"]
    message = parse(got.content)
    assert message["Message-ID"] == "<2026-11-26T0900.a.example.org@example.org>"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Ünïcode summary text." in plain.get_content()


def test_dead_server_is_transient_server_error() -> None:
    port = free_port()  # nothing listens here any more
    with pytest.raises(DeliveryError, match=rf"^127\.0\.0\.1:{port}: connection refused$") as info:
        send_one(smtp_for(port, timeout=2.0))
    assert info.value.permanent is False
    assert info.value.recipient_only is False


def test_starttls_without_server_support_is_refused(server: Controller, handler: Handler) -> None:
    with pytest.raises(DeliveryError, match=rf"^127\.0\.0\.1:{server.port}: .*STARTTLS") as info:
        send_one(smtp_for(server.port, security="starttls"))
    assert info.value.permanent is True
    assert info.value.recipient_only is False
    assert handler.rcpt_calls == []  # never falls back to sending in clear
    assert handler.received == []


def test_ssl_against_plain_server_is_delivery_error(server: Controller, handler: Handler) -> None:
    with pytest.raises(DeliveryError, match=rf"^127\.0\.0\.1:{server.port}: TLS failed: ") as info:
        send_one(smtp_for(server.port, security="ssl", timeout=3.0))
    assert info.value.recipient_only is False
    assert handler.rcpt_calls == []
    assert handler.received == []


def test_login_with_right_password(auth_server: Controller, handler: Handler) -> None:
    send_one(smtp_for(auth_server.port, username=USERNAME, password=PASSWORD))
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"]]


def test_login_with_wrong_password_is_permanent(auth_server: Controller, handler: Handler) -> None:
    smtp = smtp_for(auth_server.port, username=USERNAME, password="wrong")
    with pytest.raises(DeliveryError, match=r"authentication failed: 535") as info:
        send_one(smtp)
    assert info.value.permanent is True
    assert info.value.recipient_only is False
    assert handler.rcpt_calls == []
    assert handler.received == []


def test_username_without_password_is_delivery_error(
    auth_server: Controller, handler: Handler
) -> None:
    with pytest.raises(DeliveryError, match="AGGREGATOR_SMTP_PASSWORD") as info:
        send_one(smtp_for(auth_server.port, username=USERNAME))
    assert info.value.permanent is True
    assert handler.rcpt_calls == []


def test_sender_without_address_is_delivery_error(server: Controller, handler: Handler) -> None:
    with pytest.raises(DeliveryError, match="no address in sender") as info:
        send_one(smtp_for(server.port, sender="War Desk <>"))
    assert info.value.permanent is True
    assert handler.rcpt_calls == []


def test_refused_recipient_is_recipient_only(server: Controller, handler: Handler) -> None:
    handler.always["nobody@example.org"] = NO_SUCH_USER
    with pytest.raises(DeliveryError, match=r"recipient nobody@example\.org refused: 550") as info:
        send_one(smtp_for(server.port), "nobody@example.org")
    assert info.value.permanent is True
    assert info.value.recipient_only is True
    assert handler.received == []


# ---------------------------------------------------------------- deliver


def test_one_transaction_per_recipient_on_one_connection(
    server: Controller, handler: Handler
) -> None:
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients)
    assert [(a.recipient, a.sent) for a in result.results] == [(r, True) for r in recipients]
    assert result.reported == result.results
    assert result.sleeps == []
    # Each envelope names only its reader, and each reader gets their own message.
    assert [r.rcpt_tos for r in handler.received] == [[r] for r in recipients]
    assert [parse(r.content)["To"] for r in handler.received] == recipients
    assert {r.mail_from for r in handler.received} == {"digest@example.org"}
    assert handler.connections == 1


def test_transient_refusal_retried_until_accepted(server: Controller, handler: Handler) -> None:
    handler.answers["b@example.org"] = [TRY_LATER]
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients, pauses=(0.0,))
    assert all(a.sent for a in result.results)
    assert result.sleeps == [0.0]
    assert handler.rcpt_calls.count("b@example.org") == 2
    assert [r.rcpt_tos for r in handler.received] == [[r] for r in recipients]
    assert handler.connections == 1  # a refused address does not cost the session


def test_transient_refusal_every_time_fails_that_address_only(
    server: Controller, handler: Handler
) -> None:
    handler.always["b@example.org"] = TRY_LATER
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients, pauses=(0.0, 0.0))
    assert [a.sent for a in result.results] == [True, False, True]
    error = result.results[1].error
    assert error is not None
    assert error.permanent is False
    assert error.recipient_only is True
    assert str(error) == (
        f"127.0.0.1:{server.port}: recipient b@example.org refused: 451 4.7.1 Try again later"
    )
    assert result.sleeps == [0.0, 0.0]
    assert handler.rcpt_calls.count("b@example.org") == 3
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"], ["c@example.org"]]


def test_permanent_refusal_is_not_retried(server: Controller, handler: Handler) -> None:
    handler.always["b@example.org"] = NO_SUCH_USER
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients, pauses=(0.0, 0.0))
    assert [a.sent for a in result.results] == [True, False, True]
    error = result.results[1].error
    assert error is not None
    assert error.permanent is True
    assert error.recipient_only is True
    assert "550 5.1.1 No such user" in str(error)
    assert result.sleeps == []
    assert handler.rcpt_calls.count("b@example.org") == 1
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"], ["c@example.org"]]


def test_dead_server_stops_after_first_recipients_retries() -> None:
    port = free_port()
    result = run(
        smtp_for(port, timeout=2.0),
        ["a@example.org", "b@example.org", "c@example.org"],
        pauses=(0.0, 0.0),
    )
    (attempt,) = result.results
    assert attempt.recipient == "a@example.org"
    assert attempt.error is not None
    assert str(attempt.error) == f"127.0.0.1:{port}: connection refused"
    assert attempt.error.permanent is False
    assert attempt.error.recipient_only is False
    assert result.sleeps == [0.0, 0.0]
    assert result.reported == result.results


def test_default_pauses_are_the_retry_pauses() -> None:
    result = run(smtp_for(free_port(), timeout=2.0), ["a@example.org"], pauses=None)
    assert result.sleeps == list(RETRY_PAUSES)
    assert not result.results[0].sent


def test_wrong_password_stops_the_run_without_retry(
    auth_server: Controller, handler: Handler
) -> None:
    smtp = smtp_for(auth_server.port, username=USERNAME, password="wrong")
    result = run(smtp, ["a@example.org", "b@example.org"])
    (attempt,) = result.results
    assert attempt.error is not None
    assert attempt.error.permanent is True
    assert attempt.error.recipient_only is False
    assert result.sleeps == []
    assert handler.received == []


def test_slow_server_still_delivers(server: Controller, handler: Handler) -> None:
    # Each answer comes within the time-out, the whole transaction does not: the time-out
    # bounds each wait for the server, not the message.
    handler.delay = 1.2
    result = run(smtp_for(server.port, timeout=2.0), ["a@example.org"])
    assert [a.sent for a in result.results] == [True]
    assert result.sleeps == []
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"]]


def test_server_slower_than_the_timeout_is_transient(server: Controller, handler: Handler) -> None:
    handler.delay = 1.5
    result = run(smtp_for(server.port, timeout=0.5), ["a@example.org", "b@example.org"], pauses=())
    (attempt,) = result.results  # a server-level failure: b is not tried
    assert attempt.error is not None
    # smtplib reports a reply that never came as a disconnection "...: timed out".
    assert str(attempt.error).startswith(f"127.0.0.1:{server.port}: ")
    assert str(attempt.error).endswith("timed out")
    assert attempt.error.permanent is False
    assert attempt.error.recipient_only is False
    assert handler.rcpt_calls == ["a@example.org"]


def test_dropped_connection_is_reopened(server: Controller, handler: Handler) -> None:
    handler.drop_data_once = {"b@example.org"}
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients, pauses=(0.0,))
    assert all(a.sent for a in result.results)
    assert result.sleeps == [0.0]
    assert [r.rcpt_tos for r in handler.received] == [[r] for r in recipients]
    assert handler.connections == 2


def test_on_result_false_stops_the_run(server: Controller, handler: Handler) -> None:
    recipients = ["a@example.org", "b@example.org", "c@example.org"]
    result = run(smtp_for(server.port), recipients, stop_after=2)
    assert [a.recipient for a in result.results] == ["a@example.org", "b@example.org"]
    assert result.reported == result.results
    assert [r.rcpt_tos for r in handler.received] == [["a@example.org"], ["b@example.org"]]


def test_on_result_runs_before_the_next_recipient(server: Controller, handler: Handler) -> None:
    seen_by_server: list[int] = []

    def on_result(attempt: Attempt) -> bool:
        seen_by_server.append(len(handler.received))
        return True

    deliver(
        smtp_for(server.port),
        ["a@example.org", "b@example.org"],
        message_for,
        on_result=on_result,
        sleep=lambda _: None,
    )
    # Called right after each acceptance: a crash loses the record of one message at most.
    assert seen_by_server == [1, 2]


def test_no_recipients_opens_no_connection(server: Controller, handler: Handler) -> None:
    assert run(smtp_for(server.port), []).results == []
    assert handler.connections == 0


# ---------------------------------------------------------------- next_attempt

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (3, timedelta(minutes=20)),
        (4, timedelta(minutes=40)),
        (7, timedelta(minutes=320)),
        (8, timedelta(hours=6)),  # 640 minutes, capped
        (MAX_ATTEMPTS - 1, timedelta(hours=6)),
    ],
)
def test_next_attempt_doubles_up_to_six_hours(attempts: int, wait: timedelta) -> None:
    assert next_attempt(attempts, T0) == T0 + wait


@pytest.mark.parametrize("attempts", [MAX_ATTEMPTS, MAX_ATTEMPTS + 1, 100])
def test_next_attempt_gives_up(attempts: int) -> None:
    assert next_attempt(attempts, T0) is None


def test_retry_schedule_spans_about_a_day_and_a_half() -> None:
    waits = []
    for attempts in range(1, MAX_ATTEMPTS):
        when = next_attempt(attempts, T0)
        assert when is not None
        waits.append(when - T0)
    assert waits == sorted(waits)
    assert timedelta(days=1) < sum(waits, timedelta()) < timedelta(days=2)


# ---------------------------------------------------------------- describe_error


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            smtplib.SMTPRecipientsRefused({"b@example.org": (451, b"4.7.1  Try\r\n again")}),
            "recipient b@example.org refused: 451 4.7.1 Try again",
        ),
        (
            smtplib.SMTPSenderRefused(553, b"5.7.1 not yours", "digest@example.org"),
            "sender digest@example.org refused: 553 5.7.1 not yours",
        ),
        (
            smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
            "authentication failed: 535 5.7.8 bad credentials",
        ),
        (smtplib.SMTPDataError(554, b"5.6.0 rejected"), "server answered 554 5.6.0 rejected"),
        (smtplib.SMTPServerDisconnected(), "server disconnected"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError(), "timed out"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve host: Name or"),
        (OSError(113, "No route to host"), "connection failed: No route to host"),
    ],
)
def test_describe_error(exc: BaseException, text: str) -> None:
    assert describe_error(exc, "b@example.org").startswith(text)


def test_421_at_rcpt_ends_the_run_for_everyone(server: Controller, handler: Handler) -> None:
    handler.always["a@example.org"] = "421 4.3.2 Service shutting down"
    result = run(smtp_for(server.port), ["a@example.org", "b@example.org"], pauses=(0.0,))
    (attempt,) = result.results
    assert attempt.error is not None
    assert (attempt.error.permanent, attempt.error.recipient_only) == (False, False)
    assert handler.received == []


def test_an_address_that_cannot_be_encoded_fails_alone_and_for_good(
    server: Controller, handler: Handler
) -> None:
    result = run(smtp_for(server.port), ["jörg@example.org", "b@example.org"], pauses=(0.0,))
    first, second = result.results
    assert first.error is not None
    assert (first.error.permanent, first.error.recipient_only) == (True, True)
    assert result.sleeps == []
    assert second.sent
    assert [r.rcpt_tos for r in handler.received] == [["b@example.org"]]
