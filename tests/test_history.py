"""RFC 5005 archives through the façade: months close, archives never change, the chain holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.app import make_aggregator

from .conftest import FakeClock, write_config
from .feeds import Item, rss
from .test_publish import assert_valid_atom

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
JAN = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)


class GrowingFeed:
    """A feed that gains one item per call of ``add`` and can re-title an old one."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def add(self, n: int, when: datetime) -> None:
        stamp = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
        self.items.append(Item(f"i{n}", f"Kyiv item {n}", pub_date=stamp))

    def __call__(self, request: Request) -> Response:
        return Response(rss(self.items), content_type="application/rss+xml")


def links(path: Path) -> dict[str, str]:
    root = etree.parse(str(path)).getroot()
    return {
        link.get("rel") or "": link.get("href") or ""
        for link in root.iter(f"{ATOM}link")
        if link.getparent() is root
    }


def titles(path: Path) -> list[str]:
    root = etree.parse(str(path)).getroot()
    return [e.findtext(f"{ATOM}title") or "" for e in root.iter(f"{ATOM}entry")]


def test_months_are_archived_once_and_chained(tmp_path: Path, httpserver: HTTPServer) -> None:
    feed = GrowingFeed()
    httpserver.expect_request("/f.xml").respond_with_handler(feed)
    config = write_config(
        tmp_path,
        "database: sqlite:///state/h.db\ndefaults:\n  feed_items: 2\n"
        f"feeds:\n  - {httpserver.url_for('/f.xml')}\n",
    )
    clock = FakeClock(JAN)
    out = tmp_path / "output"
    with make_aggregator(config, clock=clock) as app:
        for n in range(3):  # three items in January
            feed.add(n, clock.now)
            app.fetch(all_feeds=True)
            clock.advance(timedelta(days=1))
        app.publish()
        january = out / "archive" / "2026-01.atom"
        # January is not over: its page fills up, unsealed, and the live feed points at it.
        assert etree.parse(str(january)).getroot().find(f"{FH}archive") is None
        assert links(out / "feed.atom")["prev-archive"] == "https://news.test/archive/2026-01.atom"

        clock.now = datetime(2026, 2, 3, tzinfo=UTC)
        feed.add(3, clock.now)
        app.fetch(all_feeds=True)
        app.publish()
        first_bytes = january.read_bytes()
        assert sorted(titles(january)) == ["Kyiv item 0", "Kyiv item 1", "Kyiv item 2"]
        root = etree.fromstring(first_bytes)
        assert root.find(f"{FH}archive") is not None
        assert root.findtext(f"{ATOM}id") == "https://news.test/feed.atom"
        assert links(january)["current"] == "https://news.test/feed.atom"
        assert "prev-archive" not in links(january)
        february_page = "https://news.test/archive/2026-02.atom"
        assert links(out / "feed.atom")["prev-archive"] == february_page
        assert "fh:archive" not in (out / "feed.atom").read_text()
        assert_valid_atom(first_bytes)

        clock.now = datetime(2026, 3, 2, tzinfo=UTC)
        feed.items[0] = Item("i0", "Kyiv item 0, corrected", pub_date=feed.items[0].pub_date)
        app.fetch(all_feeds=True)
        app.publish()

    assert january.read_bytes() == first_bytes  # an archive never changes
    february = out / "archive" / "2026-02.atom"
    assert titles(february) == ["Kyiv item 3"]
    assert links(february)["prev-archive"] == "https://news.test/archive/2026-01.atom"
    assert etree.parse(str(february)).getroot().find(f"{FH}archive") is not None  # now sealed
    # Nothing new in March (only January's edit): no page for it; the chain starts at February.
    assert not (out / "archive" / "2026-03.atom").exists()
    assert links(out / "feed.atom")["prev-archive"] == february_page


def test_the_current_months_page_is_refreshed_at_most_hourly(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    feed = GrowingFeed()
    httpserver.expect_request("/f.xml").respond_with_handler(feed)
    config = write_config(
        tmp_path, f"database: sqlite:///state/h.db\nfeeds:\n  - {httpserver.url_for('/f.xml')}\n"
    )
    clock = FakeClock(JAN)
    page = tmp_path / "output" / "archive" / "2026-01.atom"
    with make_aggregator(config, clock=clock) as app:
        feed.add(0, clock.now)
        app.fetch(all_feeds=True)
        app.publish()
        assert titles(page) == ["Kyiv item 0"]  # a new page is written at once

        clock.advance(timedelta(minutes=20))
        feed.add(1, clock.now)
        app.fetch(all_feeds=True)
        app.publish()
        assert titles(page) == ["Kyiv item 0"]  # the live feed has item 1; the page waits

        clock.advance(timedelta(hours=1))
        app.publish()
        assert sorted(titles(page)) == ["Kyiv item 0", "Kyiv item 1"]


def test_a_page_planned_without_bodies_carries_every_entry_whole(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    # The month is planned from entries without summary or content, and each piece of the
    # page loads its own: the page's entries must be the live feed's, bodies and all.
    stamp = JAN.strftime("%a, %d %b %Y %H:%M:%S GMT")
    items = [Item(f"i{n}", f"Kyiv item {n}", f"<p>Body of item {n}</p>", stamp) for n in range(7)]
    httpserver.expect_request("/f.xml").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    config = write_config(
        tmp_path, f"database: sqlite:///state/h.db\nfeeds:\n  - {httpserver.url_for('/f.xml')}\n"
    )
    with make_aggregator(config, clock=FakeClock(JAN)) as app:
        app.fetch(all_feeds=True)
        app.publish()
    out = tmp_path / "output"

    def entries(path: Path) -> dict[str, bytes]:
        root = etree.parse(str(path)).getroot()
        return {e.findtext(f"{ATOM}id") or "": etree.tostring(e) for e in root.iter(f"{ATOM}entry")}

    page, live = entries(out / "archive" / "2026-01.atom"), entries(out / "feed.atom")
    assert len(page) == 7
    assert page == live
    assert all(b"Body of item" in entry for entry in page.values())
