"""Golden files: what we publish and mail, byte for byte.

A change to these bytes is a change every subscriber and reader sees; review the diff, then
regenerate with ``AGGREGATOR_UPDATE_GOLDEN=1 pytest tests/test_golden.py``. Because the files
were written by an earlier process, these tests also catch output that varies between runs
(hash seeds, the clock, dict order), which rendering twice in one process cannot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.publish import plan_outputs, render_atom
from aggregator.render import make_environment, render_issue

from . import test_publish as publish_case
from . import test_render as render_case

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("AGGREGATOR_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with AGGREGATOR_UPDATE_GOLDEN=1 to create it"
    assert data == path.read_bytes(), f"{name} differs from {path}"


@pytest.mark.parametrize("index", [0, 1, 2], ids=["merged", "topic-ukraine-war", "topic-tech"])
def test_published_feeds_match_golden_files(index: int) -> None:
    entries = publish_case.sample_entries()
    outputs = plan_outputs(publish_case.SITE, publish_case.TOPICS, entries, 10)
    output = outputs[index]
    data = render_atom(
        output, site=publish_case.SITE, sources=publish_case.SOURCES, topics=publish_case.TOPICS
    )
    assert_golden(output.path.replace("/", "-"), data)


def test_digest_issue_matches_golden_files() -> None:
    rendered = render_issue(
        render_case.make_issue(),
        digest=render_case.DIGEST,
        site=render_case.SITE,
        sender=render_case.SENDER,
        env=make_environment(render_case.TEMPLATES),
    )
    assert_golden("digest.txt", rendered.text.encode())
    assert_golden("digest.html", rendered.html.encode())
    assert_golden("digest.eml", rendered.eml)
