"""Everything we publish from real corpus feeds passes the W3C Feed Validator."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
from lxml import etree

from aggregator.app import make_aggregator
from aggregator.parse import parse_bytes

from .conftest import FakeClock, write_config
from .feedvalidator import feed_problems

CORPUS_FEEDS = (
    "abcnews-international-2024-05.xml",
    "aif-ru-2019-05.xml",
    "aktuality-sk-2021-01.xml",
    "aljazeera-all-2026-08.xml",
    "bbc-chinese-atom-2013-01.xml",
    "bbc-news-frontpage-2024-05.xml",
    "dw-ukrainian-rdf-2016-05.xml",
    "heise-online-rdf.xml",
    "orf-news-rdf-2025-01.xml",
)


def test_every_published_feed_validates(tmp_path: Path, shared_dir: Path, clock: FakeClock) -> None:
    feeds = "".join(f"  - {shared_dir / 'corpus' / 'feeds' / name}\n" for name in CORPUS_FEEDS)
    config = write_config(
        tmp_path,
        "database: sqlite:///state/v.db\ntopics:\n  ukraine-war:\n    keywords: [Ukrain*, Kyiv]\n"
        f"feeds:\n{feeds}",
    )
    with make_aggregator(config, clock=clock) as app:
        app.fetch(all_feeds=True)
        app.publish()
        site = app.config.site.url
    output = tmp_path / "output"
    published = sorted(output.rglob("*.atom")) + sorted(output.glob("*.opml"))
    assert len(published) >= 2
    for path in published:
        url = site + path.relative_to(output).as_posix()
        assert feed_problems(path.read_bytes(), url) == [], path.name


def test_our_output_reads_back_the_same_in_every_parser(
    tmp_path: Path, shared_dir: Path, clock: FakeClock
) -> None:
    feeds = "".join(f"  - {shared_dir / 'corpus' / 'feeds' / name}\n" for name in CORPUS_FEEDS)
    config = write_config(tmp_path, f"database: sqlite:///state/r.db\nfeeds:\n{feeds}")
    with make_aggregator(config, clock=clock) as app:
        app.fetch(all_feeds=True)
        app.publish()
    output = tmp_path / "output"
    data = (output / "feed.atom").read_bytes()

    atom = "{http://www.w3.org/2005/Atom}"
    by_lxml = [
        (e.findtext(f"{atom}id"), e.find(f"{atom}link[@rel='alternate']").get("href"))  # type: ignore[union-attr]
        for e in etree.fromstring(data).iterfind(f"{atom}entry")
    ]
    by_feedparser = [(e.id, e.link) for e in feedparser.parse(data).entries]
    ours = parse_bytes(data, url="https://news.test/feed.atom").entries
    by_us = [(e.entry_id, e.link) for e in ours]
    items = json.loads((output / "feed.json").read_text())["items"]
    by_json = [(i["id"], i["url"]) for i in items]
    assert len(by_lxml) > 50
    assert by_lxml == by_feedparser == by_us == by_json
