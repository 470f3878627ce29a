"""The allowlist sanitizer, alone and on everything the parser hands on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import parse_bytes
from aggregator.sanitize import sanitize_html

# Markup that could run: a script-ish element, an event handler or a script-ish URL in a
# tag. Escaped text that merely mentions them ("&lt;script&gt;") is harmless prose.
RUNNABLE = re.compile(
    r"<\s*(script|iframe|object|embed|form|input|svg|math|style)\b|<[^>]*\son\w+\s*=|"
    r"<[^>]*=\s*[\"']?\s*(javascript|vbscript|data)\s*:",
    re.I,
)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x.png" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVa&#x09;ScRiPt:alert(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<svg><a><animate attributeName="href" values="x;javascript:alert(1)"/>'
        "<text>t</text></a></svg>",
        '<form action="https://evil.test/"><input type="password" name="p"></form>',
        '<p style="background:url(javascript:alert(1))">t</p>',
        "<!--[if IE]><script>alert(1)</script><![endif]-->",
        '<iframe src="https://evil.test/"></iframe>',
        '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
        '<object data="https://evil.test/x.swf"></object><embed src="x.swf">',
    ],
)
def test_nothing_runnable_survives(hostile: str) -> None:
    assert not RUNNABLE.search(sanitize_html(f"<p>before</p>{hostile}<p>after</p>"))


def test_ordinary_formatting_survives() -> None:
    html = (
        '<p>A <b>bold</b> <a href="https://example.org/x" title="t">link</a>, '
        '<img src="https://example.org/i.png" alt="a map">,</p>'
        "<blockquote><p>quoted</p></blockquote><ul><li>one</li></ul>"
        '<table><tr><th scope="col">h</th></tr><tr><td colspan="2">c</td></tr></table>'
    )
    cleaned = sanitize_html(html)
    for kept in ("<b>bold</b>", 'href="https://example.org/x"', 'alt="a map"', "<blockquote>"):
        assert kept in cleaned
    assert 'colspan="2"' in cleaned


def rss_with(description: str, *, media: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<guid>g1</guid><title>x</title><description{media}>{description}</description>"
        "</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("media_type", ["text/xml", "image/svg+xml", "application/xhtml+xml"])
def test_non_html_declared_types_are_sanitized_too(media_type: str) -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>urn:x:1</id>'
        f'<title>x</title><summary type="{media_type}">&lt;a href="javascript:alert(1)"&gt;x'
        "&lt;/a&gt;&lt;script&gt;alert(2)&lt;/script&gt;</summary></entry></feed>"
    ).encode()
    [entry] = parse_bytes(atom, url="https://feeds.test/a").entries
    assert not RUNNABLE.search(entry.summary + entry.content)


def test_every_corpus_feed_parses_to_nothing_runnable(shared_dir: Path) -> None:
    feeds = sorted((shared_dir / "corpus" / "feeds").iterdir())
    checked = 0
    for path in feeds:
        try:
            parsed = parse_bytes(path.read_bytes(), url=f"https://feeds.test/{path.name}")
        except ParseError:
            continue
        for entry in parsed.entries:
            found = RUNNABLE.search(entry.summary + entry.content)
            assert found is None, (path.name, entry.entry_id, found.group(0) if found else "")
            checked += 1
    assert checked > 500
