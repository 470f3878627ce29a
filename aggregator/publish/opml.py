"""``output/sources.opml``: every active source as an OPML 2.0 subscription list, so a reader
can follow the same feeds directly.

Pure and deterministic: sources in, bytes out, sorted by name. No date: nothing in the list
says when it last changed, and "now" would rewrite the file on every run. No ``docs`` either:
OPML 2.0 allows it, but the W3C Feed Validator reports it as an undefined element. ``output/``
is public, so every URL loses its credentials (:func:`aggregator.urls.public_url`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lxml import etree

from aggregator.config import SiteConfig
from aggregator.errors import RenderError
from aggregator.models import Feed
from aggregator.publish.common import clean_text, is_absolute_iri
from aggregator.urls import public_url

OPML_PATH = "sources.opml"
_WEB = re.compile(r"(?i)https?://")


def render_opml(sources: Sequence[Feed], *, site: SiteConfig) -> bytes:
    """Pretty-printed UTF-8 OPML 2.0: one ``outline type="rss"`` per active source."""
    try:
        root = etree.Element("opml", version="2.0")
        root.append(_head(site))
        body = etree.SubElement(root, "body")
        for feed in sorted((f for f in sources if f.active), key=_order):
            body.append(_outline(feed))
        return etree.tostring(
            root.getroottree(), pretty_print=True, xml_declaration=True, encoding="UTF-8"
        )
    except (ValueError, TypeError, etree.LxmlError) as exc:
        raise RenderError(f"cannot render {OPML_PATH}: {exc}") from exc


def _head(site: SiteConfig) -> etree._Element:
    head = etree.Element("head")
    etree.SubElement(head, "title").text = clean_text(f"{site.title}: sources")
    if clean_text(site.author):
        etree.SubElement(head, "ownerName").text = clean_text(site.author)
    return head


def _outline(feed: Feed) -> etree._Element:
    name = _name(feed)
    outline = etree.Element("outline", type="rss", text=name, title=name)
    outline.set("xmlUrl", clean_text(_xml_url(feed)))
    home = (feed.link or "").strip()
    # The site link comes from the feed itself: only a web page is worth offering.
    if _WEB.match(home) and is_absolute_iri(home):
        outline.set("htmlUrl", clean_text(public_url(home)))
    return outline


def _xml_url(feed: Feed) -> str:
    # A feed that moved for good is fetched at its new address: that is where to subscribe.
    return public_url(feed.request_url)


def _name(feed: Feed) -> str:
    return " ".join(clean_text(feed.display_title).split()) or clean_text(_xml_url(feed))


def _order(feed: Feed) -> tuple[str, str]:
    return (_name(feed).casefold(), _xml_url(feed))
