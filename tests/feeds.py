"""Small feed documents built in tests (the real-world ones come from ../shared/corpus)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    description: str = ""
    pub_date: str = "Thu, 26 Nov 2026 05:00:00 GMT"
    link: str | None = None


def rss(
    items: Sequence[Item], *, title: str = "Test Source", link: str = "https://source.test/"
) -> bytes:
    body = "".join(
        f'<item><guid isPermaLink="false">{escape(i.guid)}</guid><title>{escape(i.title)}</title>'
        f"<link>{escape(i.link or 'https://source.test/' + i.guid)}</link>"
        f"<description>{escape(i.description)}</description><pubDate>{i.pub_date}</pubDate></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link><description>d</description>"
        f"{body}</channel></rss>"
    ).encode()
