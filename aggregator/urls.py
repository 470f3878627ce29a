"""The one URL helper for everything we publish or log: no credentials in the open.

Feed URLs may carry secrets: ``https://user:token@host/feed`` or ``?apikey=…``. They are
needed to fetch, and must never appear in ``output/`` (public), in logs or in error messages.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["as_uri", "public_url"]

_SECRET_PARAM = re.compile(
    r"(?i)^(?:.*[_-])?(?:key|apikey|token|secret|password|passwd|pass|auth|sig|signature"
    r"|session|sessionid|sid|credential|credentials)$"
)


def public_url(url: str) -> str:
    """``url`` without userinfo and with credential-like query values replaced by ``***``;
    everything else byte for byte as it was."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(_hide_secret(pair) for pair in parts.query.split("&")) if parts.query else ""
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _hide_secret(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    if equals and _SECRET_PARAM.match(urllib.parse.unquote_plus(name)):
        return f"{name}=***"
    return pair


# RFC 3986 reserved and unreserved characters, and "%" so existing escapes stay as they are.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%-._~"


def as_uri(iri: str) -> str:
    """An IRI as the URI it maps to (RFC 3987 section 3.1): non-ASCII characters become
    UTF-8 percent-escapes (punycode in the host), so every validator and client reads it;
    an ASCII URI comes back unchanged."""
    if iri.isascii():
        return iri.replace(" ", "%20")
    try:
        parts = urllib.parse.urlsplit(iri)
        host = parts.hostname or ""
        netloc = parts.netloc
        if host and not host.isascii():
            netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
    except (ValueError, UnicodeError):
        return urllib.parse.quote(iri, safe=_URI_SAFE)
    path, query, fragment = (
        urllib.parse.quote(part, safe=_URI_SAFE)
        for part in (parts.path, parts.query, parts.fragment)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, query, fragment))
