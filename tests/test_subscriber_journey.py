"""A subscriber's view, end to end: find the feeds on the front page served by the web app,
subscribe, follow ten publish cycles of changing sources, then backfill from the archives.

Nothing here is faked but the clock: sources are a local HTTP server whose items change
every cycle, the site is served by ``aggregator``'s own WSGI app over HTTP, and the reader
is feedparser (what most Python readers use) plus lxml for the JSON/HTML bits.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import httpx
import lxml.html
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.app import make_aggregator
from aggregator.web import make_app
from aggregator.web.server import make_server

from .browser import chromium_command
from .conftest import FakeClock
from .feeds import Item, rss

START = datetime(2026, 1, 25, 8, 0, tzinfo=UTC)  # ten daily cycles cross into February
CYCLES = 10


class ChangingSources:
    """Two outlets; each cycle adds items, edits one, and the second outlet republishes one
    of the first's articles (same link) — the cases that cause duplicates and flapping."""

    def __init__(self) -> None:
        self.cycle = 0

    def items(self, outlet: str) -> list[Item]:
        made: list[Item] = []
        for n in range(self.cycle + 1):
            day = START + timedelta(days=n)
            stamp = day.strftime("%a, %d %b %Y %H:%M:%S GMT")
            title = f"{outlet} Kyiv report {n}"
            if n == 0 and self.cycle >= 3:
                title += " (updated)"  # an edit: the entry may change once, then settle
            made.append(
                Item(f"{outlet}-{n}", title, f"Body {n}", stamp, f"https://{outlet}.test/{n}")
            )
        if outlet == "beta" and self.cycle >= 1:  # the same article as alpha's item 1
            made.append(
                Item(
                    "beta-copy",
                    "alpha Kyiv report 1",
                    "Body 1",
                    made[0].pub_date,
                    "https://alpha.test/1?utm_source=beta",
                )
            )
        return list(reversed(made))

    def __call__(self, request: Request) -> Response:
        outlet = request.path.strip("/").removesuffix(".xml")
        return Response(rss(self.items(outlet)), content_type="application/rss+xml")


@pytest.fixture
def site_server(tmp_path: Path) -> Iterator[str]:
    server = make_server(
        make_app(tmp_path / "output", secret=None, unsubscriber=None), "127.0.0.1", 0
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def discover(client: httpx.Client, site: str) -> dict[str, str]:
    page = lxml.html.fromstring(client.get(site).text)
    return {
        link.get("type") or "": urljoin(site, link.get("href") or "")
        for link in page.iterfind(".//head/link[@rel='alternate']")
        if "All" in (link.get("title") or "") or link.get("href", "").startswith("feed.")
    }


def test_a_subscriber_never_sees_duplicates_or_flapping_and_can_backfill(
    tmp_path: Path, httpserver: HTTPServer, site_server: str
) -> None:
    sources = ChangingSources()
    httpserver.expect_request("/alpha.xml").respond_with_handler(sources)
    httpserver.expect_request("/beta.xml").respond_with_handler(sources)
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"site:\n  title: Desk\n  url: {site_server}\n"
        "database: sqlite:///state/j.db\ndefaults:\n  feed_items: 5\n"
        "topics:\n  war:\n    title: War\n    keywords: [Kyiv]\n"
        f"feeds:\n  - {httpserver.url_for('/alpha.xml')}\n  - {httpserver.url_for('/beta.xml')}\n"
    )
    clock = FakeClock(START)
    seen: dict[str, list[tuple[str, str]]] = {}  # atom id → (updated, title) as each cycle saw it
    with make_aggregator(config, clock=clock) as app, httpx.Client(timeout=5) as client:
        for cycle in range(CYCLES):
            sources.cycle = cycle
            app.fetch(all_feeds=True)
            app.publish()
            feeds = discover(client, site_server)
            atom = feedparser.parse(client.get(feeds["application/atom+xml"]).content)
            document = json.loads(client.get(feeds["application/feed+json"]).content)
            ids = [e.id for e in atom.entries]
            assert len(ids) == len(set(ids)), f"cycle {cycle}: a duplicate entry"
            assert [i["id"] for i in document["items"]] == ids  # the JSON twin agrees
            for entry in atom.entries:
                seen.setdefault(entry.id, []).append((entry.updated, entry.title))
            clock.advance(timedelta(days=1))

        # Backfill: walk prev-archive from the live feed; every article once, none missing.
        everything: list[str] = []
        url: str | None = feeds["application/atom+xml"]
        while url:
            page = feedparser.parse(client.get(url).content)
            page_ids = [e.id for e in page.entries]
            assert len(page_ids) == len(set(page_ids)), f"{url}: a duplicate entry"
            everything += page_ids
            url = next(
                (link.href for link in page.feed.get("links", []) if link.rel == "prev-archive"),
                None,
            )
        # every relative link on the front page resolves through the server
        front = lxml.html.fromstring(client.get(site_server).text)
        own = {
            urljoin(site_server, h)
            for h in front.xpath("//@href")
            if not h.startswith(("http", "mailto"))
        }
        assert own
        for link in own:
            assert client.get(link).status_code == 200, link

    # Pages overlap (RFC 5005 readers merge by id): every article is reachable, and the
    # republished copy is the same article, not a twenty-first.
    articles = {f"{outlet} Kyiv report {n}" for outlet in ("alpha", "beta") for n in range(CYCLES)}
    assert len(set(everything)) == len(articles)
    for entry_id, views in seen.items():
        # An entry changes only when its text does: at most once here (the edit), never back.
        changes = [b for a, b in itertools.pairwise(views) if a != b]
        assert len(changes) <= 1, (entry_id, views)


@pytest.mark.slow
def test_in_a_browser_every_link_on_the_front_page_resolves_through_the_server(
    tmp_path: Path, httpserver: HTTPServer, site_server: str, chromium: str
) -> None:
    sources = ChangingSources()
    sources.cycle = 2
    httpserver.expect_request("/alpha.xml").respond_with_handler(sources)
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"site:\n  title: Desk\n  url: {site_server}\ndatabase: sqlite:///state/b.db\n"
        f"topics:\n  war:\n    keywords: [Kyiv]\nfeeds:\n  - {httpserver.url_for('/alpha.xml')}\n"
    )
    with make_aggregator(config, clock=FakeClock(START)) as app:
        app.fetch(all_feeds=True)
        app.publish()

    command = chromium_command(chromium, tmp_path / "profile", "--dump-dom", site_server)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    dom = lxml.html.fromstring(done.stdout)
    hrefs = set(dom.xpath("//head/link/@href")) | set(dom.xpath("//a/@href"))
    own = {urljoin(site_server, h) for h in hrefs if not h.startswith(("http", "mailto", "#"))}
    assert {urljoin(site_server, p) for p in ("feed.atom", "feed.json", "sources.opml")} <= own
    with httpx.Client(timeout=5) as client:
        for link in sorted(own):
            assert client.get(link).status_code == 200, link
