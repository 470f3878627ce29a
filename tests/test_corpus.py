"""Every real-world feed in ../shared/corpus/feeds, served over local HTTP, goes through the
whole pipeline: nothing crashes, no entry is lost, and what we publish is valid Atom."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.app import make_aggregator
from aggregator.parse import parse_bytes

from .conftest import FakeClock, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def corpus(shared_dir: Path) -> list[Path]:
    files = sorted((shared_dir / "corpus" / "feeds").glob("*.xml"))
    assert len(files) > 50
    return files


def test_whole_corpus_ingests_and_publishes_valid_atom(
    tmp_path: Path, httpserver: HTTPServer, corpus: list[Path], shared_dir: Path, clock: FakeClock
) -> None:
    for path in corpus:
        httpserver.expect_request(f"/{path.name}").respond_with_data(
            path.read_bytes(), content_type="application/xml"
        )
    feeds = "".join(f"  - {httpserver.url_for('/' + p.name)}\n" for p in corpus)
    config = write_config(
        tmp_path,
        """\
database: sqlite:///state/corpus.db
fetch:
  concurrency: 8
  per_host: 8
topics:
  ukraine-war:
    title: Ukraine war
    keywords: [Ukrain*, Kyiv, Kiev, Україн*, Украин*, Киев*, Київ*]
  russia:
    title: Russia
    keywords: [Russia*, Kremlin, Putin, Росси*, Кремл*]
feeds:
"""
        + feeds,
    )
    with make_aggregator(config, clock=clock) as app:
        report = app.fetch(all_feeds=True)
        app.publish()
        stored = {f.url: f.entry_count for f in app.status()}

    assert [o.error for o in report.failed] == []
    for path in corpus:
        data = path.read_bytes()
        url = httpserver.url_for("/" + path.name)
        parsed = parse_bytes(data, url=url, headers={"content-type": "application/xml"})
        assert len(parsed.entries) <= len(feedparser.parse(data).entries), path.name
        assert stored[url] == len(parsed.entries), path.name  # ids are unique within a feed

    schema = etree.RelaxNG(etree.parse(str(shared_dir / "validators" / "atom.rng")))
    outputs = sorted((tmp_path / "output").rglob("*.atom"))
    names = [p.relative_to(tmp_path / "output").as_posix() for p in outputs]
    assert [n for n in names if not n.startswith("archive/")] == [
        "feed.atom",
        "topics/russia.atom",
        "topics/ukraine-war.atom",
    ]
    assert any(n.startswith("archive/") for n in names)  # and the history, valid too
    for output in outputs:
        document = etree.parse(str(output))
        assert schema.validate(document), (output, schema.error_log)
        assert len(document.getroot().findall("{http://www.w3.org/2005/Atom}entry")) > 0
