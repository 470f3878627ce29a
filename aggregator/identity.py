"""Article identity, pure: which entries of which feeds are one piece of journalism.

An *entry* is what one feed said; an *article* is the piece itself, whichever feeds carry
it. Two entries are one article when they share an identity key:

- ``guid:…`` — the entry's id when it is an absolute IRI (``urn:``, ``tag:``, or an http(s)
  URL, which is canonicalised like a link); a bare id such as ``12345`` means something
  only inside its own feed and is no key;
- ``link:…`` — the canonical form of its link: scheme and host case, ``www.``/``m.``/
  ``amp.`` hosts, default ports, trailing slashes, fragments, AMP paths and tracking
  parameters (``utm_*``, ``fbclid``, ``gclid``, ``ocid``, ``cmpid`` …) do not matter, and
  ``http`` is ``https``.

The article's id is derived from its first key (or, with no key, from feed and id), so a
rebuilt database, a feed whose URL changed, or a second feed carrying the same piece all
arrive at the same article id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.models import ParsedEntry

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "ocid", "cmpid", "cmp", "mc_cid", "mc_eid", "_ga", "_gl", "ref_src", "ref_url",
        "smid", "smtyp", "ito", "rss", "at_medium", "at_campaign",
        "at_custom1", "at_custom2", "at_custom3", "at_custom4", "spm", "share", "mkt_tok",
        "guccounter", "outputtype", "amp",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_", "oly_")
_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_AMP_PATH = re.compile(r"(?:/amp|\.amp)(?=/?$|\.html?$)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_IRI_SCHEMES = ("urn", "tag")


def canonical_link(url: str | None) -> str | None:
    """The form of ``url`` that every variant of one page shares; None for non-web links."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    for prefix in _HOST_PREFIXES:
        host = host.removeprefix(prefix)
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _AMP_PATH.sub("", parts.path).rstrip("/") or "/"
    query = urlencode(sorted(_kept_params(parts.query)))
    # One scheme: a page is the same page over http and https.
    return urlunsplit(("https", netloc, path, query, ""))


def _kept_params(query: str) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if name.lower() not in TRACKING_PARAMS and not name.lower().startswith(TRACKING_PREFIXES)
    ]


def guid_key(entry_id: str) -> str | None:
    """``guid:…`` for an id that names the article everywhere (an absolute IRI), else None."""
    scheme = entry_id.split(":", 1)[0].lower() if ":" in entry_id else ""
    if scheme in _DEFAULT_PORTS:
        link = canonical_link(entry_id)
        return None if link is None else f"guid:{link}"
    if scheme in _IRI_SCHEMES and len(entry_id) > len(scheme) + 1:
        return f"guid:{scheme}:{entry_id.split(':', 1)[1]}"
    return None


def identity_keys(entry_id: str, link: str | None) -> tuple[str, ...]:
    """The keys an entry can be recognised by in other feeds, strongest first."""
    keys = [guid_key(entry_id)]
    canonical = canonical_link(link)
    keys.append(None if canonical is None else f"link:{canonical}")
    # A guid that is the page's own URL is the same key as its link.
    if keys[0] is not None and keys[1] is not None and keys[0][5:] == keys[1][5:]:
        keys[1] = None
    return tuple(k for k in keys if k is not None)


def article_id(keys: tuple[str, ...], feed_url: str, entry_id: str) -> str:
    """A new article's id: from its first key, or from feed and id when it has none."""
    seed = keys[0] if keys else f"entry:{feed_url}\n{entry_id}"
    return "a:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]


def unique_ids(parsed: Iterable[ParsedEntry]) -> tuple[list[ParsedEntry], int]:
    """One entry per id within one feed document. A repeat of the same item (same title
    and link) keeps the later copy; a *different* item under an id already used is kept
    under a derived id (``<id>#<hash of title and link>``). Returns the entries, in order,
    and how many items had to take a derived id."""
    by_id: dict[str, ParsedEntry] = {}
    shared = 0
    for entry in parsed:
        first = by_id.get(entry.entry_id)
        if first is not None and (first.title, first.link) != (entry.title, entry.link):
            shared += 1
            entry = replace(entry, entry_id=_derived_id(entry))
        by_id[entry.entry_id] = entry
    return list(by_id.values()), shared


def _derived_id(entry: ParsedEntry) -> str:
    digest = hashlib.sha256(f"{entry.title}\n{entry.link}".encode()).hexdigest()[:16]
    return f"{entry.entry_id[:900]}#{digest}"


def feed_form(url: str) -> str:
    """What two URLs of one feed share: a trailing slash and the case of scheme and host
    do not make another feed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )
