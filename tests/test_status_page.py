"""output/status.html: states at a glance, and nothing secret in a public page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest

from aggregator.health import FeedHealth
from aggregator.models import Feed
from aggregator.status_page import public_url, render_status_page

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@feeds.test/rss", "https://feeds.test/rss"),
        (
            "https://feeds.test/rss?apikey=abc&lang=en&access_token=t&x-api-key=k",
            "https://feeds.test/rss?apikey=***&lang=en&access_token=***&x-api-key=***",
        ),
        ("https://feeds.test/rss?key=1&monkey=2", "https://feeds.test/rss?key=***&monkey=2"),
        ("https://feeds.test/rss", "https://feeds.test/rss"),
        ("file:///srv/feeds/a.xml", "file:///srv/feeds/a.xml"),
    ],
)
def test_public_url_drops_credentials(url: str, expected: str) -> None:
    assert public_url(url) == expected


def health(url: str, state: str, **values: object) -> FeedHealth:
    feed = Feed(url=url, title=None, link=None, feed_id=None, updated=None, active=True)
    advice = values.pop("advice", None)
    return FeedHealth(replace(feed, **values), state, advice)  # type: ignore[arg-type]


def test_page_lists_problems_first_and_hides_secrets() -> None:
    secret_url = "https://reader:s3cret@feeds.test/rss?token=T0KEN"
    feeds = [
        health("https://ok.test/rss", "ok", title="Fine", last_fetched_at=NOW),
        health(
            secret_url,
            "failing",
            error_count=30,
            last_error=f"{secret_url}: HTTP 500 Internal Server Error",
            last_fetched_at=NOW - timedelta(hours=1),
        ),
    ]

    page = render_status_page(feeds, title="War Desk").decode()

    assert "s3cret" not in page
    assert "T0KEN" not in page
    assert "reader" not in page
    doc = lxml.html.fromstring(page)
    rows = [[c.text_content() for c in row] for row in doc.iterfind(".//tbody/tr")]
    assert [r[1] for r in rows] == ["failing", "ok"]
    assert rows[0][5] == "https://feeds.test/rss?token=***: HTTP 500 Internal Server Error"
    summary = doc.find(".//p")
    assert summary is not None
    assert summary.text_content() == "As of the last poll, 2026-12-05 09:00 UTC: 1 failing, 1 ok."
    assert render_status_page(feeds, title="War Desk").decode() == page  # deterministic
