"""Feed bytes + HTTP headers → ``ParsedFeed``. The only module that imports feedparser.

feedparser always gets a byte stream, never a URL or path: it would fetch a URL itself, and
given bare ``bytes`` it first tries them as a *file name*. It also gets the response headers
that matter (Content-Type for the charset, Content-Location as the base for relative links,
Content-Language). Everything it returns is then normalised here: plain-text titles,
sanitized HTML (feedparser's sanitizer plus a small lxml pass for what it lets through),
UTC-aware datetimes, absolute http(s)/ftp/mailto links and stable entry ids.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType
from feedparser.mixin import _FeedParserMixin
from lxml import etree

from aggregator.errors import ParseError
from aggregator.fastparse import fast_document
from aggregator.feedbytes import encoding_note, head, replace_bad_char_refs, strip_bom, xml_error
from aggregator.identity import unique_ids
from aggregator.models import FetchResult, ParsedEntry, ParsedFeed
from aggregator.polling import source_rhythm
from aggregator.sanitize import sanitize_html

__all__ = ["parse_bytes", "parse_feed"]

# feedparser resolves RSS <guid> and atom:id against the document URL as if they were links.
# Guids are opaque strings: tagesschau and livemint use bare UUIDs and numbers, which came out
# as "https://<feed url>/<uuid>", so every id would change whenever the feed URL (or where it
# redirects) changes, re-announcing the whole feed. parse.py is the only feedparser user
# (DESIGN.md), so narrowing this class attribute once, at import, is safe. Links are still
# resolved (a guid used as the link is resolved by ``_safe_link`` below).
_FeedParserMixin.can_be_relative_uri = frozenset(_FeedParserMixin.can_be_relative_uri) - {"id"}

_LINK_SCHEMES = frozenset({"http", "https", "ftp", "mailto"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml"})
# Encoding problems feedparser reports as "bozo" that do not mean the XML was broken;
# a real mismatch between declared and actual charset is reported by encoding_note instead.
_BENIGN_BOZO = (NonXMLContentType, CharacterEncodingOverride)

# C0 controls (bar tab/newline/CR), DEL and lone surrogates: not allowed in XML, rejected by
# PostgreSQL text columns and by UTF-8 encoders, yet feedparser's loose parser can emit them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Tag stripping for plain text. The lazy comment and script/style patterns rescan to the end
# of the text from every opener that has no closer, so they only ever run where one can close
# (see _strip_tags, _strip_script_and_style): otherwise a title of repeated "<script" or
# "<!--" takes quadratic time (minutes for a few hundred kB).
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
# Elements whose tags in an RSS title mean it is HTML, not text that mentions a tag.
_HTML_ELEMENT = re.compile(
    r"</?(?:a|abbr|b|big|br|cite|code|del|div|em|font|h[1-6]|i|iframe|img|ins|mark|p|q|s"
    r"|script|small|span|strike|strong|style|sub|sup|u)\b[^<>]*>",
    re.IGNORECASE,
)
_TAG_OR_COMMENT = re.compile(r"<(?:/?[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)
_SCRIPT_OR_STYLE_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)
_SCRIPT_OR_STYLE_CLOSE = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")
}
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
# Ids are primary-key columns: PostgreSQL refuses an index entry over ~2.7 kB (SQLite has no
# limit), so a longer id (a guid or link of many kB) is replaced by its hash.
_MAX_ID_BYTES = 1024


# ---------------------------------------------------------------- public API


def parse_feed(result: FetchResult) -> ParsedFeed:
    """Parse a fetched body; relative links resolve against where it actually came from.

    ``ParsedFeed.url`` and any ``ParseError`` carry ``result.url`` (the feed as configured).
    """
    if result.content is None:
        raise ParseError(result.url, "nothing to parse: the server answered 304 Not Modified")
    return _parse(result.content, url=result.url, base_url=result.final_url, headers=result.headers)


def parse_bytes(
    content: bytes, *, url: str, headers: Mapping[str, str] | None = None
) -> ParsedFeed:
    """Parse a feed document; ``url`` names it and is the base for relative links."""
    return _parse(content, url=url, base_url=url, headers=headers or {})


# ---------------------------------------------------------------- document


def _parse(content: bytes, *, url: str, base_url: str, headers: Mapping[str, str]) -> ParsedFeed:
    if not strip_bom(content).strip():
        raise ParseError(url, "empty response")
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type") or ""
    media_type, charset = _split_content_type(content_type)
    base = _base_url(base_url, lowered.get("content-location"))
    # Imported here, not at the top: jsonfeed reuses this module's helpers.
    from aggregator.jsonfeed import looks_like_json_feed, parse_json_feed

    if looks_like_json_feed(content, media_type):
        return parse_json_feed(content, url=url, base=base)
    doc = fast_document(content, http_charset=charset) or _run_feedparser(
        content, url=url, base=base, headers=lowered
    )

    version = str(doc.get("version") or "")
    raw_entries = doc.get("entries") or []
    data = doc.get("feed") or {}
    # Only when feedparser found no feed at all: some servers send real feeds as text/html.
    if not version and (media_type in _HTML_TYPES or _HTML_START.match(head(content))):
        raise ParseError(url, _html_page_message(content, base))
    title = _title(
        _get(data, "title"), _get(data, "title_detail"), declared_exactly=version.startswith("atom")
    )
    if not raw_entries and not title and not version:
        raise ParseError(url, _not_a_feed_message(content, doc))

    rdf = version in ("rss090", "rss10")
    atom = version.startswith("atom")
    candidates = [_entry(raw, base, atom=atom, about_is_link=rdf) for raw in raw_entries]
    # Nothing to read (a bare rdf:about, an empty <item>): publishing it would be a blank entry.
    readable = [e for e in candidates if e.title or e.summary or e.content]
    entries, shared = unique_ids(readable)
    warning = _warning(doc, content, charset, len(raw_entries))
    notes = [warning] if warning else []
    if shared:
        notes.append(f"{shared} item(s) reuse another item's id; kept under derived ids")
    if len(readable) < len(candidates):
        skipped = len(candidates) - len(readable)
        notes.append(f"{skipped} item(s) with no title or text skipped")
    warning = "; ".join(notes) or None
    return ParsedFeed(
        url=url,
        title=title or urlsplit(url).hostname or url,
        link=_safe_link(base, _get(data, "link")),
        feed_id=_clean(_get(data, "id")).strip() or None,
        updated=_first_date(data, "updated_parsed", "published_parsed"),
        entries=tuple(entries),
        subtitle=_plain_text(_get(data, "subtitle")),
        warning=warning,
        categories=_categories(_get(data, "tags")),
        language=language_tag(_get(data, "language")),
        rights=_plain_text(_get(data, "rights")) or None,
        rhythm=source_rhythm(
            ttl=_text_or_none(_get(data, "ttl")),
            period=_text_or_none(_get(data, "sy_updateperiod")),
            frequency=_text_or_none(_get(data, "sy_updatefrequency")),
            body=content,
        ),
    )


def language_tag(value: Any) -> str | None:
    """A feed's language as a BCP 47 tag ("en-us", "uk"), or None when it is not one."""
    text = _clean(value).strip()
    return text if _LANGUAGE_TAG.fullmatch(text) else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _run_feedparser(content: bytes, *, url: str, base: str, headers: Mapping[str, str]) -> Any:
    response_headers = {
        # No Content-Type: decide by the XML declaration (else UTF-8), as for a local file.
        # Without this feedparser assumes ISO-8859-1 whenever any header is passed.
        "content-type": headers.get("content-type") or "application/xml",
        "content-location": base,
    }
    if language := headers.get("content-language"):
        response_headers["content-language"] = language
    try:
        return feedparser.parse(
            io.BytesIO(replace_bad_char_refs(content)),
            response_headers=response_headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except Exception as exc:
        # feedparser is a large hand-written parser fed hostile input; a bug in it must
        # fail this one feed as a ParseError, never the whole polling cycle.
        raise ParseError(url, f"feed parser failed: {type(exc).__name__}: {exc}") from exc


def _get(mapping: Any, key: str) -> Any:
    # dict.get, not FeedParserDict.get: the latter maps "updated" to "published" with a
    # DeprecationWarning, which would blur the two dates.
    return dict.get(mapping, key) if isinstance(mapping, dict) else None


def _base_url(url: str, content_location: str | None) -> str:
    if not content_location or not content_location.strip():
        return url
    try:
        return urljoin(url, content_location.strip())
    except ValueError:
        return url


def _split_content_type(value: str) -> tuple[str, str | None]:
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "charset" and raw.strip(" \t\"'"):
            charset = raw.strip(" \t\"'").lower()
    return media_type.strip().lower(), charset


# ---------------------------------------------------------------- entries


def _entry(raw: Any, base: str, *, atom: bool, about_is_link: bool) -> ParsedEntry:
    title = _title(_get(raw, "title"), _get(raw, "title_detail"), declared_exactly=atom)
    link = _safe_link(base, _get(raw, "link"))
    if link is None and about_is_link:
        # RSS 1.0 names each item by its rdf:about, feedparser's "id": the item's own URL.
        link = _safe_link(base, _get(raw, "id"))
    summary = _html(_get(raw, "summary"), _detail_type(_get(raw, "summary_detail")))
    content = _content(_get(raw, "content"), summary)
    # Atom 0.3 <issued> arrives as published_parsed; <created> stays separate.
    published = _first_date(raw, "published_parsed", "created_parsed")
    updated = _first_date(raw, "updated_parsed")
    entry_id = _clean(_get(raw, "id")).strip() or link or _hash_id(title, published or updated)
    return ParsedEntry(
        entry_id=_bounded_id(entry_id),
        title=title,
        link=link,
        summary=summary,
        content=content,
        published=published,
        updated=updated,
        author=_plain_text(_get(raw, "author")) or None,
        categories=_categories(_get(raw, "tags")),
    )


def _content(values: Any, summary: str) -> str:
    """The first HTML content block, else the first plain-text one escaped; "" rather than
    a copy of the summary."""
    if not isinstance(values, list):
        return ""
    blocks = [(_detail_type(value), _get(value, "value")) for value in values]
    chosen = next((b for b in blocks if b[0] in _HTML_TYPES), None)
    chosen = chosen or next((b for b in blocks if b[0] == "text/plain"), None)
    if chosen is None:
        return ""
    content = _html(chosen[1], chosen[0])
    return "" if content == summary else content


def _detail_type(detail: Any) -> str:
    return str(_get(detail, "type") or "text/html").lower()


def _hash_id(title: str, date: datetime | None) -> str:
    """An id for an item with neither guid nor link: title and date, not the body, so that
    editing the text updates the entry instead of making a new one."""
    stamp = date.isoformat() if date is not None else ""
    return "sha256:" + hashlib.sha256(f"{title}\n{stamp}".encode()).hexdigest()


def _bounded_id(entry_id: str) -> str:
    encoded = entry_id.encode()
    if len(encoded) <= _MAX_ID_BYTES:
        return entry_id
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _categories(tags: Any) -> tuple[str, ...]:
    terms: dict[str, None] = {}  # an ordered set
    for tag in tags if isinstance(tags, list) else ():
        if term := _plain_text(_get(tag, "term")):
            terms.setdefault(term, None)
    return tuple(terms)


def _first_date(mapping: Any, *keys: str) -> datetime | None:
    return next((d for d in (_datetime(_get(mapping, key)) for key in keys) if d), None)


def _datetime(value: Any) -> datetime | None:
    """feedparser's *_parsed (a UTC struct_time) → aware UTC datetime; None if absent or absurd."""
    if not isinstance(value, tuple) or len(value) < 6:
        return None
    year, month, day, hour, minute, second = value[:6]
    try:
        # struct_time allows leap seconds (60, 61); datetime does not.
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _safe_link(base: str, link: Any) -> str | None:
    text = _clean(link).strip()
    if not text:
        return None
    try:
        absolute = urljoin(base, text)
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:  # e.g. an invalid IPv6 host "http://[::1"
        return None
    return absolute if scheme in _LINK_SCHEMES else None


# ---------------------------------------------------------------- text and HTML


def _clean(value: Any) -> str:
    return _CONTROL.sub("", value) if isinstance(value, str) else ""


def _title(value: Any, detail: Any, *, declared_exactly: bool) -> str:
    """A title is text, unescaped exactly once by its declared type.

    Plain text is taken as written: "std::vector<int>" and "The <dialog> element" keep their
    brackets (every output escapes them). HTML loses its tags and is unescaped once. Atom
    declares the type (``declared_exactly``); an RSS title has none, and feedparser guesses
    "text/plain" for escaped markup such as ``&lt;b&gt;`` or ``&lt;script&gt;``, so there a
    real HTML element in the text makes it HTML.
    """
    text = _clean(value)
    declared = str(_get(detail, "type") or "text/html").lower()
    as_written = declared == "text/plain" and (declared_exactly or not _HTML_ELEMENT.search(text))
    if not as_written and ("<" in text or "&" in text):
        text = _CONTROL.sub("", html.unescape(_strip_tags(_strip_script_and_style(text))))
    return " ".join(text.split())


def _plain_text(value: Any) -> str:
    """Tags stripped, entities unescaped, whitespace collapsed.

    Stripped again after unescaping: feeds double-escape ("&amp;lt;b&amp;gt;"), and a title
    must never carry markup whatever its declared type.
    """
    text = _clean(value)
    if "<" in text or "&" in text:
        for _ in range(2):
            text = _strip_tags(_strip_script_and_style(text))
            text = _CONTROL.sub("", html.unescape(text))
    return " ".join(text.split())


def _strip_script_and_style(text: str) -> str:
    r"""Drop each <script>/<style> opener through the next closer of its name, in linear time.

    The same as re.sub(r"<(script|style)\b.*?</\1\s*>", "", text, flags=re.I | re.S), but
    an opener without a closer is tried once per name, not rescanned to the end each time.
    """
    kept: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    for opener in _SCRIPT_OR_STYLE_OPEN.finditer(text):
        name = opener.group(1).lower()
        if opener.start() < pos or name in unclosed:
            continue
        closer = _SCRIPT_OR_STYLE_CLOSE[name].search(text, opener.end())
        if closer is None:
            unclosed.add(name)  # so no later opener of this name has one either
            continue
        kept.append(text[pos : opener.start()])
        pos = closer.end()
    kept.append(text[pos:])
    return "".join(kept)


def _strip_tags(text: str) -> str:
    """Drop tags and comments. No comment can close after the last "-->" (and no match
    spans its ">"), so the comment pattern only runs on the text up to there."""
    last = text.rfind("-->")
    cut = last + 3 if last >= 0 else 0
    return _TAG_OR_COMMENT.sub("", text[:cut]) + _TAG.sub("", text[cut:])


def _html(value: Any, media_type: str) -> str:
    text = _clean(value)
    if not text.strip():
        return ""
    if media_type == "text/plain":
        return html.escape(text, quote=False)
    return _sanitize_html(text)


def _sanitize_html(fragment: str) -> str:
    # feedparser's own sanitizer ran first for HTML types; the allowlist runs for every type.
    return sanitize_html(fragment)


# ---------------------------------------------------------------- errors and warnings


def _html_page_message(content: bytes, base: str) -> str:
    message = "this is an HTML page, not a feed"
    advertised = _advertised_feed(content, base)
    return f"{message}; it advertises a feed at {advertised}" if advertised else message


def _advertised_feed(content: bytes, base: str) -> str | None:
    """The first <link rel="alternate" type="application/(rss|atom)+xml"> of a page, absolute."""
    try:
        page = lxml.html.document_fromstring(content)
    except (etree.LxmlError, ValueError):
        return None
    base_element = page.find(".//base")
    if base_element is not None and base_element.get("href"):
        base = _safe_link(base, base_element.get("href")) or base
    for link in page.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        media_type = (link.get("type") or "").partition(";")[0].strip().lower()
        if "alternate" in rels and media_type in _FEED_LINK_TYPES:
            href = _safe_link(base, link.get("href"))
            if href:
                return href
    return None


def _not_a_feed_message(content: bytes, doc: Any) -> str:
    if head(content).lstrip()[:1] in (b"{", b"["):
        return "this is JSON, not an RSS, Atom or JSON Feed"
    error = doc.get("bozo_exception")
    if isinstance(error, xml.sax.SAXParseException):
        return f"no RSS or Atom feed found (not well-formed XML: {xml_error(error, content)})"
    return "no RSS or Atom feed found"


def _warning(doc: Any, content: bytes, charset: str | None, entry_count: int) -> str | None:
    notes: list[str] = []
    if note := encoding_note(content, charset, str(doc.get("encoding") or "")):
        notes.append(note)
    error = doc.get("bozo_exception") if doc.get("bozo") else None
    if isinstance(error, xml.sax.SAXParseException):
        notes.append(f"not well-formed XML: {xml_error(error, content)}")
    elif error is not None and not isinstance(error, _BENIGN_BOZO):
        notes.append(str(error) or type(error).__name__)
    else:
        return "; ".join(notes) or None
    return "; ".join([*notes, f"recovered {entry_count} entries"])
