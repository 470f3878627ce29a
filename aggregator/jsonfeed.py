"""JSON Feed 1.0 and 1.1 (https://www.jsonfeed.org/version/1.1/) bytes → ``ParsedFeed``.

feedparser reads only XML, so ``parse.py`` hands JSON Feeds here. Every field is normalised
with parse.py's own helpers, so an item reads the same whichever format carried it: the same
HTML sanitizer, plain-text titles, absolute links, bounded ids and hashed ids for items
without one. JSON Feed has no feed-level date, refresh hints or categories, and
ParsedFeed/ParsedEntry have no field for ``language``, attachments, images or ``expired``.

The decoded document is only ever walked by loops over its top level, its items and their
authors and tags; a nested value anywhere else is never looked into.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from aggregator.errors import ParseError
from aggregator.feedbytes import strip_bom
from aggregator.identity import unique_ids
from aggregator.models import ParsedEntry, ParsedFeed
from aggregator.parse import (
    _HTML_ELEMENT,
    _bounded_id,
    _clean,
    _hash_id,
    _html,
    _plain_text,
    _safe_link,
    language_tag,
)

__all__ = ["looks_like_json_feed", "parse_json_feed"]

_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
# Searched over the whole body: object keys may come in any order. "\/" is how PHP's
# json_encode (WordPress) writes "/" by default, and some feeds still declare http://.
_VERSION = re.compile(rb'"version"\s*:\s*"https?:\\?/\\?/jsonfeed\.org\\?/version\\?/')
_DECLARED = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
# An entity reference in text the spec calls plain: WordPress writes "Blog &#8211; Name".
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
_MAX_DATE_CHARS = 64
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


# ---------------------------------------------------------------- public API


def looks_like_json_feed(content: bytes, media_type: str) -> bool:
    """Whether ``content`` should be read as a JSON Feed rather than handed to feedparser.

    A JSON media type is believed unless the body is plainly markup: servers mislabel feeds.
    """
    body = strip_bom(content).lstrip()
    if media_type.partition(";")[0].strip().lower() in _MEDIA_TYPES:
        return not body.startswith(b"<")
    return body.startswith(b"{") and _VERSION.search(body) is not None


def parse_json_feed(content: bytes, *, url: str, base: str) -> ParsedFeed:
    """Parse a JSON Feed; ``url`` names it and ``base`` resolves its relative links.

    Raises ParseError for invalid JSON or a document without an ``items`` list; an item
    that is not an object is skipped with a warning.
    """
    text, notes = _decode(content)
    doc = _load(text, url)
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "a JSON Feed needs an items list")
    version = doc.get("version")
    if not (isinstance(version, str) and version.startswith(_DECLARED)):
        notes.append("no JSON Feed version declared; read as JSON Feed 1.1")
    feed_author = _authors(doc)
    objects = [item for item in items if isinstance(item, dict)]
    candidates = [_entry(item, base, feed_author) for item in objects]
    readable = [e for e in candidates if e.title or e.summary or e.content]
    entries, shared = unique_ids(readable)
    notes.extend(_item_notes(len(items), objects, len(readable), shared))
    return ParsedFeed(
        url=url,
        title=_text(doc.get("title")) or urlsplit(url).hostname or url,
        link=_safe_link(base, doc.get("home_page_url")),
        # The spec makes feed_url the feed's unique identifier, as Atom's <id> is.
        feed_id=_safe_link(base, doc.get("feed_url")),
        updated=None,
        entries=tuple(entries),
        subtitle=_text(doc.get("description")),
        warning="; ".join(notes) or None,
        language=language_tag(doc.get("language")),
    )


# ---------------------------------------------------------------- document


def _decode(content: bytes) -> tuple[str, list[str]]:
    # The spec requires UTF-8; a stray bad byte should cost one character, not the feed.
    body = strip_bom(content)
    try:
        return body.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        note = f"not valid UTF-8 at byte {exc.start}; undecodable bytes replaced"
        return body.decode("utf-8", errors="replace"), [note]


def _load(text: str, url: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise ParseError(url, message) from exc
    except RecursionError:
        # The decoder is recursive (in C, but bounded); a document this deep is no feed.
        raise ParseError(url, "not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python will convert
        raise ParseError(url, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        kind = "null" if doc is None else _JSON_TYPES.get(type(doc), "a number")
        raise ParseError(url, f"a JSON Feed is a JSON object, not {kind}")
    return doc


def _item_notes(total: int, objects: list[Any], readable: int, shared: int) -> list[str]:
    notes = []
    if total > len(objects):
        notes.append(f"{total - len(objects)} item(s) that are not JSON objects skipped")
    if readable < len(objects):
        notes.append(f"{len(objects) - readable} item(s) with no title or text skipped")
    if shared:
        notes.append(f"{shared} item(s) reuse another item's id; kept under derived ids")
    if bad := sum(_has_bad_date(item) for item in objects):
        notes.append(f"{bad} item(s) with dates that are not RFC 3339 read as undated")
    return notes


# ---------------------------------------------------------------- items


def _entry(item: dict[str, Any], base: str, feed_author: str | None) -> ParsedEntry:
    title = _text(item.get("title"))
    link = _safe_link(base, item.get("url")) or _safe_link(base, item.get("external_url"))
    body = _html(item.get("content_html"), "text/html") or _paragraphs(item.get("content_text"))
    summary = _html(_text(item.get("summary")), "text/plain") or body
    published = _date(item.get("date_published"))
    updated = _date(item.get("date_modified"))
    entry_id = _id(item.get("id")) or link or _hash_id(title, published or updated)
    return ParsedEntry(
        entry_id=_bounded_id(entry_id),
        title=title,
        link=link,
        summary=summary,
        # As parse.py does for Atom: a lone body is the summary, never stored twice.
        content="" if body == summary else body,
        published=published,
        updated=updated,
        author=_authors(item) or feed_author,
        categories=_tags(item.get("tags")),
    )


def _id(value: Any) -> str:
    # The spec: "If an id is presented as a number or other type, a JSON Feed reader must
    # coerce it to a string." Objects and arrays are not coerced: no one could mean them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return _clean(value).strip()


def _authors(obj: dict[str, Any]) -> str | None:
    """Names from 1.1 ``authors``, else from 1.0 ``author``, joined; None when nameless."""
    return _names(obj.get("authors")) or _names([obj.get("author")])


def _names(people: Any) -> str | None:
    if not isinstance(people, list):
        return None
    names = dict.fromkeys(_text(p.get("name")) for p in people if isinstance(p, dict))
    return ", ".join(name for name in names if name) or None


def _tags(tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list):
        return ()
    terms = dict.fromkeys(_text(tag) for tag in tags)  # an ordered set
    return tuple(term for term in terms if term)


# ---------------------------------------------------------------- text and dates


def _text(value: Any) -> str:
    """Plain text, as the spec says, unless it carries HTML elements or entity references
    (then tags are stripped and entities unescaped): "std::vector<int>" keeps its brackets."""
    text = _clean(value)
    if _HTML_ELEMENT.search(text) or _ENTITY.search(text):
        return _plain_text(text)
    return " ".join(text.split())


def _paragraphs(value: Any) -> str:
    """Plain text as HTML: blank lines separate paragraphs, other line breaks are kept."""
    text = _clean(value).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        "<p>" + html.escape(part.strip(), quote=False).replace("\n", "<br>") + "</p>"
        for part in _PARAGRAPH_BREAK.split(text)
        if part.strip()
    )


def _date(value: Any) -> datetime | None:
    """An RFC 3339 date-time as aware UTC; None when absent or not RFC 3339 (a missing
    offset is read as UTC, as feedparser reads undeclared zones)."""
    if not isinstance(value, str) or len(value) > _MAX_DATE_CHARS:
        return None
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    try:
        # RFC 3339 allows a leap second (60); datetime does not.
        stamp = datetime(year, month, day, hour, minute, min(second, 59), micro, _zone(match[8]))
        return stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _zone(offset: str | None) -> timezone:
    if offset is None or offset in "Zz":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _has_bad_date(item: dict[str, Any]) -> bool:
    dates = (item.get("date_published"), item.get("date_modified"))
    return any(value is not None and _date(value) is None for value in dates)
