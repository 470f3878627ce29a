"""One reader's copy of a rendered issue: the MIME message, its Message-ID and List-Id.

Everything here is deterministic: the same issue for the same reader is the same bytes
(no "now", no random boundary), so a resumed delivery repeats exactly what it may have sent.
"""

from __future__ import annotations

import email.errors
import email.policy
import hashlib
import html as html_lib
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote, urlsplit, urlunsplit

from .config import SiteConfig
from .errors import RenderError
from .models import PERSONAL_LINK, DigestIssue, RenderedIssue, Unsubscribe
from .render import hostname, safe_url

INSPECTION_LINK = "https://unsubscribe.invalid/inspection-copy"
"""Replaces ``PERSONAL_LINK`` in a message built for no reader (an inspection copy in the
state folder): a link that is visibly a stand-in, goes nowhere and names nobody."""

# Characters a List-Unsubscribe URL may carry verbatim (RFC 3986 minus ",", which RFC 2369
# reserves as the list separator): anything else would need header encoding that breaks it.
_HEADER_URL = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+")
_MAX_HEADER_URL = 900  # keeps the header line under RFC 5322's hard limit of 998


def make_message_id(issue: DigestIssue, site: SiteConfig, recipient: str) -> str:
    """Deterministic Message-ID for one reader's copy of an issue.

    No content hash: an interrupted delivery resumed later (maybe after a template fix)
    must reuse the ids it may already have sent, so that clients see one message, not two.
    The recipient is hashed, so the id does not disclose the address.
    """
    address = (parseaddr(recipient)[1] or recipient).strip().lower()
    reader = hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]
    return f"<{issue.digest_id}.{issue.stamp}.{reader}@{_message_host(site)}>"


def make_list_id(digest_id: str, site: SiteConfig) -> str:
    """RFC 2919 List-Id: one list per digest, under the site's host."""
    return f"<{digest_id}.{_message_host(site)}>"


def _message_host(site: SiteConfig) -> str:
    """The site's host as ASCII (IDNA) for Message-ID and List-Id, which must be 7-bit:
    a raw "новини.укр" would make the message unencodable."""
    try:
        host = hostname(site.url).encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDNA name (e.g. an empty label)
        host = ""
    # ".invalid" (RFC 2606) rather than a made-up real-looking domain.
    return host or "aggregator.invalid"


# refold_source="none" leaves headers set with set_raw (List-Unsubscribe) as we fold them:
# the stdlib would otherwise turn a long URL into RFC 2047 encoded-words, which no client
# decodes in that header. Headers set the ordinary way are folded as usual.
_POLICY = email.policy.SMTP.clone(refold_source="none")


def build_message(
    rendered: RenderedIssue,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    list_id: str,
    date: datetime,
    unsubscribe: Unsubscribe | None,
) -> bytes:
    """One reader's copy of ``rendered``: multipart/alternative (text/plain, then text/html),
    both UTF-8 quoted-printable, addressed to ``recipient`` alone.

    ``PERSONAL_LINK`` in the bodies becomes ``unsubscribe.url``, which the List-Unsubscribe
    (RFC 2369, with the mailto when given) and List-Unsubscribe-Post (RFC 8058 one-click)
    headers carry too. Without ``unsubscribe`` (an inspection copy, sent to nobody) it becomes
    ``INSPECTION_LINK`` and neither header is written.
    Quoted-printable keeps the message 7-bit clean (no 8BITMIME needed) and, because QP never
    emits "==", lets us use a fixed boundary that cannot occur in a body.
    Raises RenderError for a header value that is unsafe or does not parse.
    """
    digest_id = rendered.issue.digest_id
    link = unsubscribe.url if unsubscribe is not None else INSPECTION_LINK
    if not safe_url(link) or link != link.strip():
        raise RenderError(f"cannot build message for digest {digest_id!r}: bad link {link!r}")
    text = rendered.text.replace(PERSONAL_LINK, link)
    # The link lands in an href attribute: escaped, a quote or "&" in it stays inside.
    html = rendered.html.replace(PERSONAL_LINK, html_lib.escape(link, quote=True))
    message = EmailMessage(policy=_POLICY)
    try:
        message["Subject"] = rendered.subject
        message["From"] = sender
        message["To"] = recipient
        message["Date"] = format_datetime(date)
        message["Message-ID"] = message_id
        message["List-Id"] = list_id
        if unsubscribe is not None:
            message.set_raw("List-Unsubscribe", _list_unsubscribe(unsubscribe))
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["X-Aggregator-Digest"] = digest_id
        message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        # The default boundary is random; derive it from the content so bytes are reproducible.
        seed = hashlib.sha256(f"{message_id}\0{text}\0{html}".encode()).hexdigest()[:32]
        message.set_boundary(f"=={seed}==")
        return message.as_bytes()
    except (ValueError, TypeError, IndexError, AttributeError, email.errors.MessageError) as exc:
        # e.g. a header value with a line break, or an address that does not parse (the
        # stdlib address parser fails on group syntax like "Desk: news; <a@b>" with an
        # AttributeError); UnicodeError is a ValueError
        raise RenderError(f"cannot build message for digest {digest_id!r}: {exc}") from exc


def _list_unsubscribe(unsubscribe: Unsubscribe) -> str:
    """The List-Unsubscribe value, one URL per line: each URL must reach clients verbatim."""
    urls = [_header_url(unsubscribe.url)]
    if unsubscribe.mailto:
        mailto = unsubscribe.mailto.strip()
        if not mailto.lower().startswith("mailto:"):
            mailto = "mailto:" + mailto
        urls.append(_header_url(mailto))
    return ",\n ".join(f"<{url}>" for url in urls)


def _header_url(url: str) -> str:
    """``url`` as 7-bit header text (IDNA host, percent-encoded path); ValueError when it
    cannot be written there unchanged."""
    if not url.isascii():
        parts = urlsplit(url)
        host = parts.hostname.encode("idna").decode("ascii") if parts.hostname else ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        safe = "/:@!$&'()*+;=%~?#[]-._"
        url = urlunsplit(
            (
                parts.scheme,
                netloc,
                quote(parts.path, safe=safe),
                quote(parts.query, safe=safe),
                quote(parts.fragment, safe=safe),
            )
        )
    if not _HEADER_URL.fullmatch(url) or len(url) > _MAX_HEADER_URL:
        raise ValueError(f"unsubscribe URL cannot go in a header: {url!r}")
    return url
