"""Golden files: what we publish and mail, byte for byte.

A change to these bytes is a change every subscriber and reader sees; review the diff, then
regenerate with ``AGGREGATOR_UPDATE_GOLDEN=1 pytest tests/test_golden.py``. Because the files
were written by an earlier process, these tests also catch output that varies between runs
(hash seeds, the clock, dict order), which rendering twice in one process cannot.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.models import RenderedIssue
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


def render_sample_issue() -> RenderedIssue:
    return render_issue(
        render_case.make_issue(),
        digest=render_case.DIGEST,
        site=render_case.SITE,
        env=make_environment(render_case.TEMPLATES),
    )


def sample_fingerprint() -> str:
    """One hash over everything an issue turns into: mail and web HTML and a reader's message."""
    rendered = render_sample_issue()
    message = render_case.message_for(rendered)
    data = rendered.html.encode() + rendered.web_html.encode() + message
    return hashlib.sha256(data).hexdigest()


def test_digest_text_matches_golden_file() -> None:
    assert_golden("digest.txt", render_sample_issue().text.encode())


def test_digest_html_and_message_are_identical_in_another_process() -> None:
    # No golden file here: the HTML is mjml-python's, and its markup may change between its
    # releases. What must never vary is our output for the same input across runs.
    script = (
        "import sys; from tests.test_golden import sample_fingerprint as f; sys.stdout.write(f())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    root = Path(__file__).resolve().parents[1]
    other = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other == sample_fingerprint()
