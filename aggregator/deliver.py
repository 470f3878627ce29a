"""SMTP delivery: one session, one transaction per recipient, each failure classified.

A recipient refused with 5xx is a permanent failure for that address only; 4xx answers,
dropped connections and time-outs are transient and retried. The caller records each
result as it happens, so a crash re-sends at most the one message in flight.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from types import TracebackType

from .config import SmtpConfig
from .errors import AggregatorError, DeliveryError

RETRY_PAUSES: tuple[float, ...] = (1.0, 5.0)
"""Pauses before the second and third try of a transient failure within one run."""

FIRST_RETRY = timedelta(minutes=5)
LONGEST_WAIT = timedelta(hours=6)
MAX_ATTEMPTS = 12
"""Runs that try one delivery before it is given up: with the waits doubling from five
minutes up to six hours, about a day and a half, as mail servers themselves do."""


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try a transiently failed delivery again, after ``attempts`` tries; None
    once it is time to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + min(FIRST_RETRY * (1 << max(attempts - 1, 0)), LONGEST_WAIT)


class SmtpSession:
    """A connection opened on first use and reopened after the server drops it."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self._smtp = smtp
        self._where = f"{smtp.host}:{smtp.port}"
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            _close(self._client)
            self._client = None

    def send(self, message: bytes, *, sender: str, recipient: str) -> None:
        """Hand ``message`` to the server for ``recipient`` in one transaction.

        Raises DeliveryError("host:port: what happened") for every failure, with
        ``permanent``/``recipient_only`` set from the server's answer.
        """
        envelope_from = parseaddr(sender)[1]
        if not envelope_from:
            raise DeliveryError(f"{self._where}: no address in sender {sender!r}", permanent=True)
        try:
            client = self._connected()
            client.sendmail(envelope_from, [recipient], message)
        except DeliveryError:
            self.close()
            raise
        except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
            if not _session_survives(exc):
                self.close()
            else:
                self._reset()
            raise DeliveryError(
                f"{self._where}: {describe_error(exc, recipient)}",
                permanent=_is_permanent(exc),
                recipient_only=_concerns_recipient_only(exc),
            ) from exc

    def _connected(self) -> smtplib.SMTP:
        if self._client is None:
            smtp = self._smtp
            if smtp.username and smtp.password is None:
                raise DeliveryError(
                    f"{self._where}: username {smtp.username!r} set but no password "
                    "(set AGGREGATOR_SMTP_PASSWORD)",
                    permanent=True,
                )
            try:
                client = _connect(smtp)
            except DeliveryError as exc:
                raise DeliveryError(f"{self._where}: {exc}", permanent=True) from exc
            try:
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
            except BaseException:
                _close(client)
                raise
            self._client = client
        return self._client

    def _reset(self) -> None:
        if self._client is None:
            return
        try:
            self._client.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


@dataclass(frozen=True)
class Attempt:
    """The result for one recipient: sent, or the last error (permanent or not)."""

    recipient: str
    error: DeliveryError | None = None

    @property
    def sent(self) -> bool:
        return self.error is None


def deliver(
    smtp: SmtpConfig,
    recipients: Sequence[str],
    message_for: Callable[[str], bytes],
    *,
    on_result: Callable[[Attempt], bool],
    pauses: Iterable[float] = RETRY_PAUSES,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Attempt]:
    """Send each recipient its message, retrying transient failures after ``pauses``.

    ``on_result`` runs right after each recipient's outcome is known; returning False
    stops the run (the caller lost its claim). A failure of the server itself (not of
    one address) that outlasts the retries ends the run too: the others would fail alike.
    Returns every result, in order.
    """
    pause_list = tuple(pauses)
    results: list[Attempt] = []
    with SmtpSession(smtp) as session:
        for recipient in recipients:
            attempt = _try(session, smtp.sender, recipient, message_for, pause_list, sleep)
            results.append(attempt)
            if not on_result(attempt):
                break
            error = attempt.error
            if error is not None and not error.recipient_only:
                break
    return results


def _try(
    session: SmtpSession,
    sender: str,
    recipient: str,
    message_for: Callable[[str], bytes],
    pauses: Sequence[float],
    sleep: Callable[[float], None],
) -> Attempt:
    try:
        message = message_for(recipient)
    except (AggregatorError, UnicodeError, ValueError) as exc:
        # e.g. an address no header can carry: that reader's problem, not the others'
        error = DeliveryError(
            f"cannot build the message: {exc}", permanent=True, recipient_only=True
        )
        return Attempt(recipient, error)
    for pause in (*pauses, None):
        try:
            session.send(message, sender=sender, recipient=recipient)
        except DeliveryError as exc:
            if exc.permanent or pause is None:
                return Attempt(recipient, exc)
            sleep(pause)
            continue
        return Attempt(recipient)
    raise AssertionError("unreachable: the last pause is None")


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, UnicodeError):  # an address smtplib cannot put on the wire
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _text in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPServerDisconnected)
    return isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)


def _concerns_recipient_only(exc: BaseException) -> bool:
    """A refusal of this one address (or an address we cannot encode), not of the server:
    421 at RCPT means the server is closing the session, for everyone."""
    if isinstance(exc, UnicodeError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code != 421 for code, _text in exc.recipients.values())
    return False


def _session_survives(exc: BaseException) -> bool:
    """After a refused recipient or message the session can go on (with RSET)."""
    return isinstance(
        exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError | smtplib.SMTPSenderRefused
    )


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
        )
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    if smtp.security == "starttls":
        try:
            client.ehlo()
            # Never fall back to clear text: credentials and mail would travel unprotected.
            if not client.has_extn("starttls"):
                raise DeliveryError("server does not offer STARTTLS (security: starttls)")
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        except BaseException:
            _close(client)
            raise
    return client


def _close(client: smtplib.SMTP) -> None:
    # Once DATA was accepted the message is delivered; a failing QUIT must not turn
    # that into an error (the caller would send it again).
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def describe_error(exc: BaseException, recipient: str) -> str:
    """A one-line account of an smtplib/socket/ssl failure, for people, not tracebacks."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = exc.recipients.get(recipient, (0, b""))
        return f"recipient {recipient} refused: {code} {_decode(text)}".rstrip()
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused: {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication failed: {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server answered {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"not supported by the server: {exc}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"server disconnected: {exc}" if str(exc) else "server disconnected"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())
