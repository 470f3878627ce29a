"""Subscribers, pure: address normalisation, signed unsubscribe tokens, CSV imports, and the
decision an unsubscribe link leads to.

An unsubscribe token is ``v1.<payload>.<signature>``, every part base64url without padding:

* payload: ``digest_id``, ``address`` and ``nonce`` joined by newlines (none may contain one);
* signature: HMAC-SHA256 under ``AGGREGATOR_SECRET_KEY`` over a context string, the version
  and the encoded payload, truncated to 128 bits.

The token is signed, not encrypted: whoever holds the link can read the address in it (it is
the reader's own address, in the reader's own mail). The nonce is stored with the
subscription and replaced when the reader subscribes again, so links from an earlier
subscription stop working (``UnsubscribeOutcome.STALE``) without keeping a list of old tokens.
"""

from __future__ import annotations

import base64
import binascii
import csv
import enum
import hashlib
import hmac
import io
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

# BadTokenError lives in errors.py's tree; re-exported here beside the tokens it is about.
from aggregator.errors import BadTokenError as BadTokenError
from aggregator.models import Unsubscribe

# ------------------------------------------------------------------ addresses

MAX_ADDRESS_LENGTH = 254  # RFC 5321's limit on a forward path, less the angle brackets
_MAX_LOCAL_LENGTH = 64
_MAX_LABEL_LENGTH = 63
# RFC 5322 atext (dot-atom); quoted local parts are legal but no reader of ours has one, and
# letting them in would let quotes, spaces and '@' through into headers and CSVs.
_LOCAL_ATOM = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def normalise_address(address: str) -> str:
    """``address`` stripped and lower-cased, or ValueError saying why it is not a plain
    ``local@host`` address (display names, quoted local parts, IP literals, non-ASCII and
    single-label hosts are all refused).

    Lower-casing the local part is not what RFC 5321 promises, but every real mailbox
    treats it so, and it is what makes ``Bob@x.org`` and ``bob@x.org`` one subscriber.
    """
    value = address.strip().lower()
    reason = _address_problem(value)
    if reason is not None:
        raise ValueError(f"'{_shown(address.strip())}' is not an email address: {reason}")
    return value


def _address_problem(value: str) -> str | None:
    if not value:
        return "it is empty"
    if not value.isascii():
        return "non-ASCII addresses are not supported"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "it contains spaces or control characters"
    if "<" in value or ">" in value:
        return "give the bare address, without a name or angle brackets"
    if value.count("@") != 1:
        return "it needs exactly one '@'"
    if len(value) > MAX_ADDRESS_LENGTH:
        return f"it is longer than {MAX_ADDRESS_LENGTH} characters"
    local, host = value.split("@")
    return _local_problem(local) or _host_problem(host)


def _local_problem(local: str) -> str | None:
    if not local:
        return "nothing before the '@'"
    if len(local) > _MAX_LOCAL_LENGTH:
        return f"the part before '@' is longer than {_MAX_LOCAL_LENGTH} characters"
    if not all(_LOCAL_ATOM.fullmatch(atom) for atom in local.split(".")):
        return "the part before '@' has a character or dot out of place"
    return None


def _host_problem(host: str) -> str | None:
    if not host:
        return "nothing after the '@'"
    labels = host.split(".")
    # A newsletter's readers live on internet domains; "bob@gmail" is a typo, not a host.
    if len(labels) < 2:
        return f"the host {host!r} has no dot"
    if not all(len(label) <= _MAX_LABEL_LENGTH and _LABEL.fullmatch(label) for label in labels):
        return f"the host {host!r} is not a valid domain name"
    if labels[-1].isdigit():
        return "IP-address hosts are not supported"
    return None


def mask_address(address: str) -> str:
    """``address`` with its local part hidden after the first character: ``j***@example.org``.

    Enough for a reader to recognise their own address on a page that may be forwarded,
    screenshotted or shown over a shoulder; the length of the hidden part is not revealed.
    """
    local, at, host = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{host}"


def _shown(value: str, limit: int = 80) -> str:
    # Keeps a problem on one line however hostile the input: problems are listed one a line.
    printable = value if value.isprintable() else value.encode("unicode_escape").decode("ascii")
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


# ------------------------------------------------------------------ tokens


@dataclass(frozen=True)
class TokenClaim:
    """What a valid unsubscribe token says: this address may leave this digest, provided
    ``nonce`` is still the subscription's current one."""

    digest_id: str
    address: str
    nonce: str


TOKEN_VERSION = "v1"
SIGNATURE_BYTES = 16
MAX_TOKEN_LENGTH = 1024  # a real token is well under 500 characters
_CONTEXT = b"aggregator unsubscribe token\x00"
_SEPARATOR = "\n"
_B64 = r"[A-Za-z0-9_-]"
# The signature length is fixed, so a truncated or padded signature is malformed, not merely
# unequal.
_SIGNATURE_CHARS = (SIGNATURE_BYTES * 8 + 5) // 6
_TOKEN = re.compile(rf"{TOKEN_VERSION}\.({_B64}+)\.({_B64}{{{_SIGNATURE_CHARS}}})")


def make_token(secret: bytes, digest_id: str, address: str, nonce: str) -> str:
    """A URL-safe token (only ``[A-Za-z0-9_.-]``) that lets ``address`` leave ``digest_id``
    while ``nonce`` is the subscription's current nonce."""
    _check_secret(secret)
    for name, value in (("digest_id", digest_id), ("address", address), ("nonce", nonce)):
        if not value or _SEPARATOR in value:
            raise ValueError(f"{name} must be non-empty and on one line, got {value!r}")
    payload = _b64encode(_SEPARATOR.join((digest_id, address, nonce)).encode("utf-8"))
    return f"{TOKEN_VERSION}.{payload}.{_signature(secret, payload)}"


def read_token(secret: bytes, token: str) -> TokenClaim:
    """The claim ``token`` carries, once its signature checks out under ``secret``.

    Raises BadTokenError for anything malformed, altered (any character) or signed with
    another key; its message never contains the token (a credential that names an address).
    """
    _check_secret(secret)
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise BadTokenError("the unsubscribe token is malformed")
    payload, signature = match.groups()
    # Comparing the canonical encoding, not decoded bytes: base64 ignores the spare low bits
    # of the last character, so a decoded comparison would accept an altered character.
    if not hmac.compare_digest(_signature(secret, payload), signature):
        raise BadTokenError("the unsubscribe token's signature does not match")
    try:
        parts = _b64decode(payload).decode("utf-8").split(_SEPARATOR)
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadTokenError("the unsubscribe token's payload is unreadable") from exc
    if len(parts) != 3 or not all(parts):
        raise BadTokenError("the unsubscribe token's payload is incomplete")
    digest_id, address, nonce = parts
    return TokenClaim(digest_id=digest_id, address=address, nonce=nonce)


def new_nonce() -> str:
    """A fresh per-subscription nonce (72 random bits, URL-safe)."""
    return secrets.token_urlsafe(9)


def _check_secret(secret: bytes) -> None:
    # An empty key would make every token forgeable; config enforces the real minimum length.
    if not secret:
        raise ValueError("the secret key is empty (set AGGREGATOR_SECRET_KEY)")


def _signature(secret: bytes, payload: str) -> str:
    message = _CONTEXT + f"{TOKEN_VERSION}.{payload}".encode("ascii")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return _b64encode(digest[:SIGNATURE_BYTES])


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_links(app_url: str, token: str, mailbox: str | None, digest_id: str) -> Unsubscribe:
    """The reader's ways out, for List-Unsubscribe and the footer: the one-click URL under
    ``app_url`` (where the web app is served; it must end with '/') and, with a ``mailbox``,
    a mailto URL whose subject carries the token."""
    if not app_url.endswith("/"):
        raise ValueError(f"app_url must end with '/', got {app_url!r}")
    url = f"{app_url}unsubscribe?token={token}"
    mailto = None
    if mailbox:
        mailto = f"mailto:{mailbox}?subject=unsubscribe%20{quote(digest_id, safe='')}%20{token}"
    return Unsubscribe(url=url, mailto=mailto)


# ------------------------------------------------------------------ decisions


class UnsubscribeOutcome(enum.Enum):
    """What following an unsubscribe link did."""

    UNSUBSCRIBED = "unsubscribed"
    ALREADY = "already"  # the same link again: nothing to do, and no error
    STALE = "stale"  # a link from before the reader subscribed again
    UNKNOWN = "unknown"  # no such subscriber for that digest (or no such digest)


def decide_unsubscribe(
    claim: TokenClaim, *, current_nonce: str | None, active: bool
) -> UnsubscribeOutcome:
    """What a verified ``claim`` should do to the subscription it names, given that
    subscription's stored nonce (None when there is no such subscription) and status.

    Only UNSUBSCRIBED asks the caller to change anything.
    """
    if current_nonce is None:
        return UnsubscribeOutcome.UNKNOWN
    if not hmac.compare_digest(claim.nonce.encode(), current_nonce.encode()):
        return UnsubscribeOutcome.STALE
    return UnsubscribeOutcome.UNSUBSCRIBED if active else UnsubscribeOutcome.ALREADY


# ------------------------------------------------------------------ CSV import

_ADDRESS_COLUMNS = frozenset({"email", "emailaddress", "address", "mail", "mailaddress"})


def parse_subscriber_csv(text: str, source_name: str) -> list[str]:
    """The normalised addresses in a CSV export, in file order, duplicates dropped.

    The address column is the header cell named email / e-mail / address / mail (case,
    spaces, dashes and underscores ignored, so Mailchimp's "Email Address" counts); with no
    such header the first row is data and the first column holds the address. Rows with
    nothing in them are skipped.

    All or nothing: when any row is bad, raises one ValueError listing every bad row, one a
    line, as ``{source_name}:{line}: '{value}' is not an email address: {why}``, so that a
    whole export is fixed in one pass and never half-imported.
    """
    rows = _csv_rows(text.removeprefix("\ufeff"), source_name)
    column = 0
    if rows:
        _, header = rows[0]
        named = [i for i, cell in enumerate(header) if _column_key(cell) in _ADDRESS_COLUMNS]
        if named:
            column = named[0]
            rows = rows[1:]
    addresses: dict[str, None] = {}  # an ordered set
    problems: list[str] = []
    for line, row in rows:
        value = row[column].strip() if column < len(row) else ""
        try:
            addresses.setdefault(normalise_address(value))
        except ValueError as exc:
            problems.append(f"{source_name}:{line}: {exc}")
    if problems:
        raise ValueError("\n".join(problems))
    return list(addresses)


def _csv_rows(text: str, source_name: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValueError(f"{source_name}:{reader.line_num}: not readable as CSV: {exc}") from exc
    return rows


def _column_key(cell: str) -> str:
    return re.sub(r"[\s_-]+", "", cell.strip().lower())
