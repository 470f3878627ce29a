"""SMTP delivery, one transaction per recipient, so that delivery state is per recipient.

The caller records each success as it happens (``on_delivered``); a crash mid-issue
therefore re-sends at most the one message that was in flight.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence, Set
from email import message_from_bytes, policy
from email.utils import parseaddr

from .config import SmtpConfig
from .errors import DeliveryError
from .models import RenderedIssue


def send_message(smtp: SmtpConfig, message_bytes: bytes, *, sender: str, recipient: str) -> None:
    """Hand ``message_bytes`` to the SMTP server for ``recipient`` in one transaction.

    Raises DeliveryError("host:port: what happened") for every failure, including a
    server that cannot be reached or that lacks STARTTLS when it was asked for.
    """
    where = f"{smtp.host}:{smtp.port}"
    envelope_from = parseaddr(sender)[1]
    if not envelope_from:
        raise DeliveryError(f"{where}: no address in sender {sender!r}")
    if smtp.username and smtp.password is None:
        raise DeliveryError(
            f"{where}: username {smtp.username!r} set but no password "
            "(set AGGREGATOR_SMTP_PASSWORD)"
        )
    client: smtplib.SMTP | None = None
    try:
        client = _connect(smtp)
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.sendmail(envelope_from, [recipient], message_bytes)
    except DeliveryError as exc:
        raise DeliveryError(f"{where}: {exc}") from exc
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
        raise DeliveryError(f"{where}: {describe_error(exc, recipient)}") from exc
    finally:
        if client is not None:
            _close(client)


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


def addressed_to(eml: bytes, recipient: str) -> bytes:
    """The message with ``To`` naming only ``recipient``: a newsletter's readers must not
    see each other's addresses, and each gets its own transaction anyway."""
    message = message_from_bytes(eml, policy=policy.SMTP)
    message.replace_header("To", recipient)
    return message.as_bytes()


def deliver_issue(
    smtp: SmtpConfig,
    rendered: RenderedIssue,
    recipients: Sequence[str],
    *,
    already_delivered: Set[str],
    on_delivered: Callable[[str], None],
) -> list[DeliveryError]:
    """Send ``rendered`` to each recipient not in ``already_delivered``, one transaction each.

    ``on_delivered(recipient)`` runs right after each success. Failures do not stop the
    others; they are returned, each naming its recipient.
    """
    errors: list[DeliveryError] = []
    seen: set[str] = set()
    for recipient in recipients:
        if recipient in already_delivered or recipient in seen:
            continue
        seen.add(recipient)
        try:
            message = addressed_to(rendered.eml, recipient)
            send_message(smtp, message, sender=smtp.sender, recipient=recipient)
        except DeliveryError as exc:
            error = DeliveryError(f"{recipient}: {exc}")
            error.__cause__ = exc
            errors.append(error)
            continue
        on_delivered(recipient)
    return errors
