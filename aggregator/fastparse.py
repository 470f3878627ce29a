"""The fast parse path: plain RSS 2.0 and Atom 1.0 read with lxml into the shape that
feedparser gives ``parse.py``, or ``None`` so that feedparser (the reference) reads it.

feedparser spends most of a large feed's time in its pure-Python SAX handlers and its
sgmllib HTML passes. Most news feeds need none of its leniency: they are well-formed UTF-8,
with absolute links and no DTD. For those this module builds the same fields parse.py reads
(``version``, ``feed``, ``entries`` with ``title_detail``, ``summary``, ``content``, the
``*_parsed`` dates from feedparser's own date parser, …) about ten times faster. HTML is
not cleaned here: parse.py sanitizes every HTML field with the allowlist either way.

Anything this path does not reproduce exactly sends the document to feedparser instead:
another encoding, a DOCTYPE, ``xml:base``, relative URLs inside HTML, markup nested inside
an RSS element, Atom ``xhtml`` or out-of-line content, e-mail addresses in authors, the
Media RSS and iTunes elements feedparser maps onto titles and summaries, any XML error.
``benchmarks/parse_agreement.py`` measures agreement with feedparser on the corpora.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from lxml import etree

from aggregator.sanitize import sanitize_html

__all__ = ["fast_document"]

_ATOM = "http://www.w3.org/2005/Atom"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_DC = "http://purl.org/dc/elements/1.1/"
_SY = "http://purl.org/rss/1.0/modules/syndication/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_MEDIA = "http://search.yahoo.com/mrss/"
_UNSUPPORTED_BYTES = (b"<!DOCTYPE", b"<!doctype", b"<!ENTITY")
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
# An href/src/… that is not absolute: feedparser would resolve it against the base.
_RELATIVE_URL = re.compile(
    r"""\b(?:href|src|cite|action|longdesc|poster|background|data)\s*=\s*["']?\s*"""
    r"""(?![A-Za-z][A-Za-z0-9+.-]*:|//|["'>]|$)""",
    re.IGNORECASE,
)
_ATOM_TYPES = {None: "text/plain", "text": "text/plain", "html": "text/html"}
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
)


class _Unsupported(Exception):
    """Raised anywhere below: this document is feedparser's to read."""


def fast_document(content: bytes, *, http_charset: str | None) -> dict[str, Any] | None:
    """feedparser's result shape for a plain RSS 2.0 or Atom 1.0 document, else None."""
    if http_charset not in (None, "utf-8", "utf8") or not _utf8(content):
        return None
    head = content[:4096]
    if any(marker in head for marker in _UNSUPPORTED_BYTES) or b"xml:base" in content:
        return None
    try:
        root = etree.fromstring(content, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        if root.tag == "rss" and root.get("version") == "2.0":
            return _rss(root)
        if root.tag == f"{{{_ATOM}}}feed":
            return _atom(root)
    except _Unsupported:
        return None
    return None


def _utf8(content: bytes) -> bool:
    if content.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"\x3c\x00")):
        return False
    declared = _XML_DECLARATION.match(content.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _document(version: str, feed: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": version, "feed": feed, "entries": entries, "encoding": "utf-8", "bozo": 0}


# ---------------------------------------------------------------- RSS 2.0

# What feedparser makes of each element parse.py cares about (dc: elements are aliases).
_CHANNEL_FIELDS = {
    "title": "title",
    f"{{{_DC}}}title": "title",
    "link": "link",
    "description": "subtitle",
    f"{{{_DC}}}description": "subtitle",
    "language": "language",
    f"{{{_DC}}}language": "language",
    "copyright": "rights",
    f"{{{_DC}}}rights": "rights",
    "lastBuildDate": "updated",
    f"{{{_DC}}}date": "updated",
    "pubDate": "published",
    "ttl": "ttl",
    "category": "tag",
    f"{{{_DC}}}subject": "tag",
    f"{{{_SY}}}updatePeriod": "sy_updateperiod",
    f"{{{_SY}}}updateFrequency": "sy_updatefrequency",
}
_ITEM_FIELDS = {
    "title": "title",
    f"{{{_DC}}}title": "title",
    "link": "link",
    "guid": "guid",
    "description": "summary",
    f"{{{_DC}}}description": "summary",
    f"{{{_CONTENT}}}encoded": "content",
    "pubDate": "published",
    f"{{{_DC}}}date": "updated",
    "author": "author",
    f"{{{_DC}}}creator": "author",
    f"{{{_DC}}}author": "author",
    "category": "tag",
    f"{{{_DC}}}subject": "tag",
    # RSS 2.0 elements that feedparser keeps under keys parse.py does not read
    "comments": "",
    "enclosure": "",
    "source": "",
}
# Elements feedparser has handlers for, and the namespaces it knows (lower-cased URIs).
_FEEDPARSER_HANDLERS = frozenset(
    name.split("_", 2)[2].lower()
    for name in dir(StrictFeedParser)
    if name.startswith(("_start_", "_end_"))
)
_NAMESPACE_PREFIXES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
# Handled elements whose values parse.py never reads (media:content is kept as media_content).
_HARMLESS_IN_ITEM = frozenset(
    {"enclosure", "source", "media_content", "media_thumbnail", "media_credit",
     "media_rating", "media_restriction", "media_license", "media_player"}
)  # fmt: skip
_HARMLESS_IN_CHANNEL = _HARMLESS_IN_ITEM | frozenset(
    {"image", "textinput", "cloud", "generator", "managingeditor", "webmaster", "docs"}
)
# Media RSS elements feedparser maps onto the title, summary or tags, wherever they nest.
_MEDIA_MAPPED = frozenset(
    f"{{{_MEDIA}}}{name}" for name in ("title", "description", "category", "keywords")
)
_SIMPLE_FIELDS = ("link", "language", "ttl", "sy_updateperiod", "sy_updatefrequency")


def _rss(root: Any) -> dict[str, Any]:
    channel = root.find("channel")
    if channel is None:
        raise _Unsupported
    feed: dict[str, Any] = {}
    for child in channel:
        if child.tag == "item":
            continue
        field = _CHANNEL_FIELDS.get(child.tag)
        if field is None:
            _refuse_channel_element(child)
        elif field in _SIMPLE_FIELDS:
            feed[field] = _text(child)
        elif field:
            _store_rss(feed, field, child)
    language = channel.get(_XML_LANG) or root.get(_XML_LANG)
    if language and "language" not in feed:
        feed["language"] = language
    entries = [_rss_item(item) for item in channel.iter("item")]
    if not entries and "title" not in feed:
        raise _Unsupported  # found nothing: feedparser may find more
    return _document("rss20", feed, entries)


def _rss_item(item: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    guid_link: str | None = None
    for child in item:
        field = _ITEM_FIELDS.get(child.tag)
        if field is None:
            _refuse_item_element(child)
        elif field == "guid":
            entry["id"] = _text(child)
            if child.get("isPermaLink", "true") == "true":
                guid_link = entry["id"]
        elif field == "link":
            entry["link"] = _text(child)
        elif field == "author":
            entry["author"] = _author(_text(child))
        elif field:
            _store_rss(entry, field, child)
    if "link" not in entry and guid_link:
        entry["link"] = guid_link
    return _readable(entry)


def _store_rss(target: dict[str, Any], field: str, element: Any) -> None:
    if field == "title":
        target["title"], target["title_detail"] = _guessed(_text(element))
    elif field in ("subtitle", "rights"):
        target[field] = _markup(_html_text(element))
    elif field == "summary":
        target["summary"] = _html_text(element)
        target["summary_detail"] = {"type": "text/html"}
    elif field == "content":
        value = _html_text(element)
        target.setdefault("content", []).append({"type": "text/html", "value": value})
    elif field in ("updated", "published"):
        target[f"{field}_parsed"] = _parse_date(_text(element))
    elif field == "tag":
        target.setdefault("tags", []).append({"term": _text(element)})


def _refuse_channel_element(element: Any) -> None:
    _refuse_unmapped(element, harmless=_HARMLESS_IN_CHANNEL)


def _refuse_item_element(element: Any) -> None:
    _refuse_unmapped(element, harmless=_HARMLESS_IN_ITEM)


def _refuse_unmapped(element: Any, *, harmless: frozenset[str]) -> None:
    """Hand the document to feedparser if it has a handler for this element (it may read
    it into a title, summary, date, link…) that this path does not reproduce."""
    tag = element.tag
    if not isinstance(tag, str):
        return  # a processing instruction
    if tag == f"{{{_ATOM}}}link" and element.get("rel", "alternate") != "alternate":
        return  # rel="self", "hub", "related": not the link parse.py reads
    name = _feedparser_name(tag)
    if name in _FEEDPARSER_HANDLERS and name not in harmless:
        raise _Unsupported
    nests = name == "media_group" or name in _HARMLESS_IN_ITEM
    if nests and any(e.tag in _MEDIA_MAPPED for e in element.iter()):
        raise _Unsupported  # a media:title inside media:content becomes the title


def _feedparser_name(tag: str) -> str | None:
    """The name feedparser dispatches ``tag`` on (``_start_<name>``), None for a namespace
    it does not know (it keeps those under their own prefixed keys)."""
    if not tag.startswith("{"):
        return tag.lower()
    uri, local = tag[1:].split("}", 1)
    prefix = _NAMESPACE_PREFIXES.get(uri.lower())
    if prefix is None:
        return None
    return f"{prefix}_{local}".lower() if prefix else local.lower()


def _readable(entry: dict[str, Any]) -> dict[str, Any]:
    if "summary" not in entry and entry.get("content"):
        entry["summary"] = entry["content"][0]["value"]  # as feedparser copies it
    if not (entry.get("title") or entry.get("summary")):
        raise _Unsupported  # nothing to read here: feedparser may find more
    return entry


def _guessed(value: str) -> tuple[str, dict[str, str]]:
    """feedparser's guess for an RSS title: HTML if it looks like HTML, else plain text."""
    if _FeedParserMixin.looks_like_html(value):
        return _markup(value), {"type": "text/html"}
    return value, {"type": "text/plain"}


def _markup(value: str) -> str:
    """HTML that parse.py will reduce to text, made well-formed first as feedparser's
    sanitizer would ("<img alt='a<br>b'>" is one tag, not two)."""
    return sanitize_html(value) if "<" in value else value


# ---------------------------------------------------------------- Atom 1.0


def _atom(root: Any) -> dict[str, Any]:
    feed: dict[str, Any] = {}
    if language := root.get(_XML_LANG):
        feed["language"] = language
    for child in root:
        tag = _atom_tag(child, harmless=_HARMLESS_IN_CHANNEL)
        if tag == "entry":
            continue
        _atom_common(child, tag, feed)
        if tag in ("subtitle", "rights"):
            feed[tag] = _markup(_atom_text(child)[0])
    _link_or_id(feed)
    entries = [_atom_entry(entry) for entry in root.iterchildren(f"{{{_ATOM}}}entry")]
    if not entries and "title" not in feed:
        raise _Unsupported  # found nothing: feedparser may find more
    return _document("atom10", feed, entries)


def _atom_entry(element: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for child in element:
        tag = _atom_tag(child)
        _atom_common(child, tag, entry)
        if tag == "summary":
            entry["summary"], entry["summary_detail"] = _atom_text(child)
        elif tag == "content":
            if child.get("src") is not None:
                raise _Unsupported
            value, detail = _atom_text(child)
            entry.setdefault("content", []).append({**detail, "value": value})
        elif tag == "author":
            entry["author"] = _atom_author(child)  # the last one, as feedparser
    _link_or_id(entry)
    return _readable(entry)


def _link_or_id(target: dict[str, Any]) -> None:
    # feedparser reads an atom:id as a permalink too (its RSS guid handling): with no
    # alternate link, the id is the link (parse.py keeps it only if it is http(s)).
    if "link" not in target and target.get("id"):
        target["link"] = target["id"]


def _atom_common(child: Any, tag: str, target: dict[str, Any]) -> None:
    """The elements a feed and an entry share."""
    if tag == "title":
        value, detail = _atom_text(child)
        target["title"] = _markup(value) if detail["type"] == "text/html" else value
        target["title_detail"] = detail
    elif tag == "link":
        rel = child.get("rel", "alternate")
        media_type = child.get("type", "text/html")
        if rel == "alternate" and media_type in ("text/html", "application/xhtml+xml"):
            target["link"] = (child.get("href") or "").strip()  # the last one, as feedparser
    elif tag == "id":
        target["id"] = _text(child)
    elif tag in ("updated", "published"):
        target[f"{tag}_parsed"] = _parse_date(_text(child))
    elif tag == "category" and child.get("term"):
        target.setdefault("tags", []).append({"term": child.get("term").strip()})


def _atom_tag(element: Any, *, harmless: frozenset[str] = _HARMLESS_IN_ITEM) -> str:
    """The Atom element's local name; "" for another vocabulary's that feedparser would not
    read into a field parse.py uses (else the document is feedparser's)."""
    tag = element.tag
    if isinstance(tag, str) and tag.startswith(f"{{{_ATOM}}}"):
        return tag[len(_ATOM) + 2 :]
    _refuse_unmapped(element, harmless=harmless)
    return ""


def _atom_text(element: Any) -> tuple[str, dict[str, str]]:
    kind = element.get("type")
    if kind not in _ATOM_TYPES or len(element):
        raise _Unsupported  # xhtml, a MIME type, or markup where text belongs
    media_type = _ATOM_TYPES[kind]
    value = _html_text(element) if media_type == "text/html" else _text(element)
    return value, {"type": media_type}


def _atom_author(element: Any) -> str:
    name = email = ""
    for child in element:
        tag = _atom_tag(child)
        if tag == "name":
            name = _text(child)
        elif tag == "email":
            email = _text(child)
    return f"{name} ({email})" if name and email else name or email


# ---------------------------------------------------------------- text


def _text(element: Any) -> str:
    if len(element):
        raise _Unsupported  # markup inside a text element: feedparser serializes it
    return _fixups((element.text or "").strip())


def _html_text(element: Any) -> str:
    value = _text(element)
    if _RELATIVE_URL.search(value):
        raise _Unsupported  # feedparser resolves these against the base
    return value


def _author(value: str) -> str:
    if "@" in value:
        raise _Unsupported  # feedparser takes the address apart
    return value


def _fixups(value: str) -> str:
    """What feedparser does to every value of a UTF-8 document: undo UTF-8 read as Latin-1,
    and read C1 controls as the Windows-1252 characters they were meant to be."""
    with suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_cp1252)
