"""``/unsubscribe?token=…``: a confirmation page on GET, the change on POST.

GET never changes anything: mail scanners and link previewers fetch every URL in a message,
and a reader must not be unsubscribed by their spam filter. POST is RFC 8058 one-click (the
mailbox provider posts ``List-Unsubscribe=One-Click``, url-encoded or multipart) and is also
what the confirmation page's own button sends, so both take one path.
"""

from __future__ import annotations

import html
import logging
from email import policy
from email.message import Message
from email.parser import BytesParser
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, quote
from wsgiref.types import WSGIEnvironment

from aggregator.errors import AggregatorError, BadTokenError
from aggregator.subscribers import (
    TokenClaim,
    UnsubscribeOutcome,
    mask_address,
    read_token,
)
from aggregator.web.responses import Headers, Response, html_page, method_not_allowed

UNSUBSCRIBE_METHODS = ("GET", "HEAD", "POST")
MAX_BODY_BYTES = 64 * 1024
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
RETRY_AFTER_SECONDS = 60

_NO_STORE: Headers = (("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex"))

_log = logging.getLogger("aggregator.web")


class Unsubscriber(Protocol):
    """The web app's seam to the subscriber store."""

    def unsubscribe(self, claim: TokenClaim) -> UnsubscribeOutcome:
        """End the subscription ``claim`` names if its nonce is current; idempotent.
        May raise AggregatorError (e.g. StorageError): the reader then gets a 503."""
        ...

    def digest_title(self, digest_id: str) -> str | None:
        """The digest's title, or None when no such digest is configured."""
        ...


def unsubscribe_response(
    environ: WSGIEnvironment, *, secret: bytes | None, unsubscriber: Unsubscriber | None
) -> Response:
    method = environ.get("REQUEST_METHOD", "")
    if method not in UNSUBSCRIBE_METHODS:
        return method_not_allowed(UNSUBSCRIBE_METHODS, _NO_STORE)
    if secret is None or unsubscriber is None:
        return _page(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "Unsubscribing is not available here",
            "This server is not set up to handle unsubscribe links. Please reply to the "
            "digest email and ask to be removed.",
        )
    token, claim = _claim(environ, secret)
    if token is None or claim is None:
        return _page(
            HTTPStatus.BAD_REQUEST,
            "This unsubscribe link is not valid",
            "The link may have been cut short or changed when it was copied. Nothing was "
            "changed. Please use the unsubscribe link in a recent issue, exactly as sent.",
        )
    try:
        if method == "POST":
            return _post(environ, claim, unsubscriber)
        return _confirmation(token, claim, unsubscriber)
    except AggregatorError:
        _log.exception("unsubscribe from %s failed", claim.digest_id)
        return _page(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "Please try again in a minute",
            "Your request could not be handled just now. Nothing was changed.",
            (("Retry-After", str(RETRY_AFTER_SECONDS)),),
        )


def _claim(environ: WSGIEnvironment, secret: bytes) -> tuple[str | None, TokenClaim | None]:
    try:
        query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20)
        tokens = query.get("token", [])
        if len(tokens) != 1:
            return None, None
        return tokens[0], read_token(secret, tokens[0])
    except (BadTokenError, ValueError):
        return None, None


def _confirmation(token: str, claim: TokenClaim, unsubscriber: Unsubscriber) -> Response:
    title = unsubscriber.digest_title(claim.digest_id)
    if title is None:
        return _unknown()
    address = html.escape(mask_address(claim.address))
    # Only a verified token reaches here, and it is quoted and escaped all the same.
    action = html.escape(f"?token={quote(token, safe='')}")
    return _page(
        HTTPStatus.OK,
        "Unsubscribe?",
        f"Unsubscribe <strong>{address}</strong> from <strong>{html.escape(title)}</strong>?",
        form=(
            f'<form method="post" action="{action}">\n'
            f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">\n'
            '<button type="submit">Unsubscribe</button>\n</form>\n'
            '<p class="note">Nothing changes until you press the button.</p>'
        ),
    )


def _post(environ: WSGIEnvironment, claim: TokenClaim, unsubscriber: Unsubscriber) -> Response:
    problem = _one_click_problem(environ)
    if problem is not None:
        return problem
    outcome = unsubscriber.unsubscribe(claim)
    _log.info("unsubscribe from %s: %s", claim.digest_id, outcome.value)
    title = html.escape(unsubscriber.digest_title(claim.digest_id) or claim.digest_id)
    address = html.escape(mask_address(claim.address))
    if outcome is UnsubscribeOutcome.UNSUBSCRIBED:
        return _page(
            HTTPStatus.OK,
            "You are unsubscribed",
            f"<strong>{address}</strong> will get no more issues of <strong>{title}</strong>.",
        )
    if outcome is UnsubscribeOutcome.ALREADY:
        return _page(
            HTTPStatus.OK,
            "You are already unsubscribed",
            f"<strong>{address}</strong> was already unsubscribed from "
            f"<strong>{title}</strong>. Nothing else to do.",
        )
    if outcome is UnsubscribeOutcome.STALE:
        return _page(
            HTTPStatus.GONE,
            "This link is from an earlier subscription",
            f"You subscribed to <strong>{title}</strong> again after this link was sent, so it "
            "no longer works and nothing was changed. Please use the unsubscribe link in "
            "a recent issue.",
        )
    return _unknown()


def _unknown() -> Response:
    return _page(
        HTTPStatus.NOT_FOUND,
        "Subscription not found",
        "There is no such subscription (the digest may have been discontinued, or the "
        "address removed). You will not get issues through it.",
    )


def _one_click_problem(environ: WSGIEnvironment) -> Response | None:
    """None when the body says ``List-Unsubscribe=One-Click``, else the page saying why not."""
    body = _read_body(environ)
    if body is None:
        return _page(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "This request is too large",
            "An unsubscribe request is a few bytes. Nothing was changed.",
        )
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        values = _multipart_values(content_type, body)
    else:
        # Also for a missing or text/plain type: the fields, not the label, carry the request.
        values = _urlencoded_values(body)
    if any(v.strip().lower() == ONE_CLICK_VALUE.lower() for v in values):
        return None
    return _page(
        HTTPStatus.BAD_REQUEST,
        "This request did not confirm the unsubscribe",
        f"It must carry {ONE_CLICK_FIELD}={ONE_CLICK_VALUE}. Nothing was changed.",
    )


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY_BYTES (then unread)."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH", "")
    if not length_text:
        # Without a length only a server that ends the stream itself may be read to the end.
        if not environ.get("wsgi.input_terminated"):
            return b""
        body: bytes = stream.read(MAX_BODY_BYTES + 1)
        return body if len(body) <= MAX_BODY_BYTES else None
    try:
        length = int(length_text)
    except ValueError:
        return b""
    if length > MAX_BODY_BYTES:
        return None
    data: bytes = stream.read(max(length, 0))
    return data


def _urlencoded_values(body: bytes) -> list[str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return []
    return fields.get(ONE_CLICK_FIELD, [])


def _multipart_values(content_type: str, body: bytes) -> list[str]:
    values = _multipart_parts(content_type, body)
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not values and isinstance(boundary, str) and boundary.startswith("--"):
        # RFC 8058's own example writes the boundary parameter with the delimiter's two
        # leading dashes included; senders that copied it deserve to be understood.
        values = _multipart_parts(content_type.replace(boundary, boundary[2:], 1), body)
    return values


def _multipart_parts(content_type: str, body: bytes) -> list[str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return []
    values: list[str] = []
    for part in message.walk():
        if part.get_param("name", header="content-disposition") != ONE_CLICK_FIELD:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            values.append(payload.decode("utf-8", "replace"))
    return values


def _page(
    status: HTTPStatus,
    heading: str,
    text_html: str,
    headers: Headers = (),
    *,
    form: str = "",
) -> Response:
    return html_page(status, heading, f"<p>{text_html}</p>\n{form}".rstrip(), headers)
