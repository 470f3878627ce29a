"""Everything we publish from real corpus feeds passes the W3C Feed Validator."""

from __future__ import annotations

from pathlib import Path

from aggregator.app import make_aggregator

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
