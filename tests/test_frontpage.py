"""The front page (index.html) and the source list (sources.opml): what they link, what they
refuse to link, and that a browser engine and the W3C Feed Validator accept them."""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import pytest
from lxml import etree
from lxml import html as lxml_html

from aggregator.config import SiteConfig, TopicRule
from aggregator.models import Entry, Feed, TopicMatch
from aggregator.publish.frontpage import render_index, safe_link
from aggregator.publish.opml import render_opml
from aggregator.publish.plan import OutputFeed, plan_outputs

from .browser import CHROMIUM_TIMEOUT, chromium_command
from .feedvalidator import feed_problems
from .test_digest_look import measure as measure_layout

SITE = SiteConfig(
    title="War Desk", url="https://news.example.org/desk/", author="War Desk editors", language="en"
)
TOPICS = (TopicRule(id="ukraine-war", title="Ukraine war"), TopicRule(id="europe", title="Europe"))
NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
SECRET_URL = "https://user:pw@feeds.example.com/feed?token=x"

WIRE = Feed("https://wire.example/rss", "Example Wire", "https://wire.example/", None, None, True)
LEDGER = Feed("https://ledger.example/atom", "Kyiv Ledger", None, None, None, True)
HERALD = Feed(SECRET_URL, "Northern Herald", "https://herald.example/", None, None, True)
GONE = Feed("https://gone.example/rss", "Gone Gazette", None, None, None, False)
SOURCES = (WIRE, LEDGER, HERALD, GONE)


def entry(
    feed: Feed,
    n: int,
    title: str,
    *,
    topics: Sequence[str] = (),
    story: str | None = None,
    link: str | None = None,
    minutes: int | None = None,
) -> Entry:
    when = NOW - timedelta(minutes=10 * n if minutes is None else minutes)
    return Entry(
        feed_url=feed.url,
        entry_id=f"{feed.url}#{n}",
        title=title,
        link=link if link is not None else f"https://articles.example/{n}",
        summary="",
        content="",
        published=when,
        updated=None,
        first_seen_at=when,
        topics=tuple(TopicMatch(t, ("test",)) for t in topics),
        feed_title=feed.title,
        story_id=story,
    )


def sample_entries() -> list[Entry]:
    return [
        entry(WIRE, 1, "Drones intercepted over Kyiv", topics=["ukraine-war"], story="s1"),
        entry(LEDGER, 2, "Kyiv air defence busy overnight", topics=["ukraine-war"], story="s1"),
        entry(HERALD, 3, "Night of drones over the capital", topics=["ukraine-war"], story="s1"),
        entry(WIRE, 4, "EU ministers meet in Brussels", topics=["europe"]),
        entry(LEDGER, 5, "Sneaky", topics=["europe"], link="javascript:alert(1)"),
        entry(HERALD, 6, "Weather: a mild winter ahead"),
        entry(WIRE, 7, "Grain ships leave Odesa", topics=["ukraine-war", "europe"]),
    ]


def outputs_for(entries: Sequence[Entry], topics: Sequence[TopicRule] = TOPICS) -> list[OutputFeed]:
    return plan_outputs(SITE, topics, entries, 100)


def render(entries: Sequence[Entry] | None = None, topics: Sequence[TopicRule] = TOPICS) -> bytes:
    chosen = sample_entries() if entries is None else entries
    return render_index(outputs_for(chosen, topics), site=SITE, topics=topics, sources=SOURCES)


def parse(page: bytes) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(page)


def story_items(doc: lxml_html.HtmlElement, section_id: str) -> list[lxml_html.HtmlElement]:
    return list(doc.xpath(f"//section[@id='{section_id}']//ol/li"))


# ---------------------------------------------------------------- index.html


def test_every_feed_is_discoverable_as_atom_and_as_json_feed() -> None:
    doc = parse(render())
    atom = {
        link.get("href"): link.get("title")
        for link in doc.xpath("//head/link[@rel='alternate'][@type='application/atom+xml']")
    }
    json = doc.xpath("//head/link[@rel='alternate'][@type='application/feed+json']/@href")
    assert atom == {
        "feed.atom": "War Desk",
        "topics/ukraine-war.atom": "War Desk: Ukraine war",
        "topics/europe.atom": "War Desk: Europe",
    }
    assert json == ["feed.json", "topics/ukraine-war.json", "topics/europe.json"]
    # The merged feed comes first: readers that take one feed take that one.
    assert doc.xpath("//head/link[@rel='alternate']/@href")[0] == "feed.atom"


def test_subscribe_links_for_every_feed_and_links_to_status_and_opml() -> None:
    doc = parse(render())
    hrefs = set(doc.xpath("//a/@href"))
    for path in ("feed", "topics/ukraine-war", "topics/europe"):
        assert {f"{path}.atom", f"{path}.json"} <= hrefs
    assert {"status.html", "sources.opml"} <= hrefs


def test_links_to_our_own_files_are_relative_and_articles_absolute() -> None:
    doc = parse(render())
    for href in doc.xpath("//@href"):
        if href.startswith(("https://articles.example/", "https://wire.example/")):
            continue
        assert "://" not in href, href
        assert not href.startswith("/"), href


def test_no_script_and_no_javascript_link_even_from_a_hostile_entry() -> None:
    untitled = entry(WIRE, 8, "", topics=["europe"], link="JavaScript:alert(2)")
    page = render([*sample_entries(), untitled])
    doc = parse(page)
    assert doc.xpath("//script") == []
    assert not [h for h in doc.xpath("//@href") if "javascript" in h.lower()]
    assert b"javascript:" not in page.lower()
    # The entry is still shown, as text: it is news, only its link is refused.
    sneaky = [li for li in story_items(doc, "topic-europe") if "Sneaky" in li.text_content()]
    assert len(sneaky) == 1
    assert sneaky[0].xpath(".//h3/a") == []


@pytest.mark.parametrize(
    ("link", "kept"),
    [
        ("https://a.example/x", True),
        ("HTTP://a.example/x", True),
        ("mailto:desk@example.org", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("/relative/path", False),
        ("//a.example/x", False),
        ("https://a.example/x y", False),
        (None, False),
    ],
)
def test_only_http_https_and_mailto_links_are_kept(link: str | None, kept: bool) -> None:
    assert (safe_link(link) is not None) is kept


def test_one_story_from_several_outlets_is_shown_once_with_also() -> None:
    doc = parse(render())
    items = story_items(doc, "topic-ukraine-war")
    drones = [li for li in items if "drones" in li.text_content().lower()]
    assert len(drones) == 1
    (story,) = drones
    assert story.xpath(".//h3")[0].text_content() == "Drones intercepted over Kyiv"
    meta = story.xpath(".//p[@class='meta']")[0].text_content()
    assert meta.startswith("Example Wire · 2026-11-26 04:50 UTC")
    assert "also: Kyiv Ledger, Northern Herald" in meta
    # Each other outlet's own copy is linked.
    also = story.xpath(".//span[@class='also']/a/@href")
    assert also == ["https://articles.example/2", "https://articles.example/3"]


def test_topic_sections_in_order_and_each_story_once_on_the_page() -> None:
    doc = parse(render())
    headings = [h.text_content() for h in doc.xpath("//main//h2")]
    assert headings == ["Ukraine war", "Europe", "Other news"]
    titles = [h.text_content() for h in doc.xpath("//main//h3")]
    assert len(titles) == len(set(titles))
    # In two topics, shown under the first of them.
    ukraine = [li.text_content() for li in story_items(doc, "topic-ukraine-war")]
    assert any("Grain ships" in text for text in ukraine)
    assert [li.xpath("string(.//h3)") for li in story_items(doc, "other")] == [
        "Weather: a mild winter ahead"
    ]


def test_stories_newest_first_and_capped_per_topic() -> None:
    entries = [entry(WIRE, n, f"Story {n}", topics=["europe"]) for n in range(1, 15)]
    page = render_index(outputs_for(entries), site=SITE, topics=TOPICS, sources=SOURCES)
    titles = [li.xpath("string(.//h3)") for li in story_items(parse(page), "topic-europe")]
    assert titles == [f"Story {n}" for n in range(1, 11)]


def test_an_empty_topic_keeps_its_section_and_feed_links() -> None:
    doc = parse(render([entry(WIRE, 1, "Only Europe", topics=["europe"])]))
    section = doc.xpath("//section[@id='topic-ukraine-war']")[0]
    assert "No stories yet." in section.text_content()
    assert section.xpath(".//a/@href") == ["topics/ukraine-war.atom", "topics/ukraine-war.json"]


def test_without_topics_the_merged_feed_is_the_page() -> None:
    doc = parse(render(topics=()))
    assert [h.text_content() for h in doc.xpath("//main//h2")] == ["Latest"]
    assert len(story_items(doc, "latest")) == 5  # seven entries, three of them one story


def test_headings_landmarks_and_language() -> None:
    doc = parse(render())
    assert doc.get("lang") == "en"
    for landmark in ("header", "nav", "main", "aside", "footer"):
        assert len(doc.xpath(f"//{landmark}")) == 1, landmark
    levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels[0] == 1
    assert levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    assert doc.xpath("//a[@href='#main']")  # skip link
    assert ":focus-visible" in doc.xpath("string(//style)")


def test_no_external_resources() -> None:
    doc = parse(render())
    assert doc.xpath("//img|//iframe|//object|//embed|//link[@rel='stylesheet']") == []
    style = doc.xpath("string(//style)")
    assert "url(" not in style
    assert "@import" not in style


def test_the_page_parses_without_html_errors() -> None:
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(render())  # raises on any parse error


def test_deterministic_and_dated_by_the_newest_story() -> None:
    page = render()
    assert page == render()
    dated = parse(page).xpath("string(//p[@class='dated'])")
    assert dated == "Newest story: 2026-11-26 04:50 UTC"


def test_markup_in_titles_is_text_and_credentials_never_shown() -> None:
    nameless = replace(HERALD, title=None)
    hostile = entry(HERALD, 1, '<img src=x onerror=alert(1)> "quoted" & more')
    page = render_index(
        outputs_for([hostile]), site=SITE, topics=(), sources=(WIRE, LEDGER, nameless)
    )
    doc = parse(page)
    assert doc.xpath("//img") == []
    assert doc.xpath("string(//main//h3)") == '<img src=x onerror=alert(1)> "quoted" & more'
    assert b"user:pw" not in page
    assert b"token=x" not in page


def test_archive_documents_are_not_offered() -> None:
    outputs = outputs_for(sample_entries())
    archive = OutputFeed("archive/2026-10.atom", "Archive", "", (), archive=True)
    page = render_index([*outputs, archive], site=SITE, topics=TOPICS, sources=SOURCES)
    assert b"archive/" not in page


# ---------------------------------------------------------------- sources.opml


def opml_outlines(data: bytes) -> list[etree._Element]:
    root = etree.fromstring(data)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    return list(root.iterfind("body/outline"))


def test_opml_lists_every_active_source_sorted_without_credentials() -> None:
    data = render_opml(SOURCES, site=SITE)
    outlines = opml_outlines(data)
    assert [o.get("text") for o in outlines] == ["Example Wire", "Kyiv Ledger", "Northern Herald"]
    assert all(o.get("type") == "rss" and o.get("title") == o.get("text") for o in outlines)
    assert [o.get("xmlUrl") for o in outlines] == [
        "https://wire.example/rss",
        "https://ledger.example/atom",
        "https://feeds.example.com/feed?token=***",
    ]
    assert [o.get("htmlUrl") for o in outlines] == [
        "https://wire.example/",
        None,
        "https://herald.example/",
    ]
    assert b"user:pw" not in data
    assert b"token=x" not in data
    assert b"Gone Gazette" not in data


def test_opml_head_and_determinism() -> None:
    data = render_opml(SOURCES, site=SITE)
    assert data == render_opml(tuple(reversed(SOURCES)), site=SITE)
    head = etree.fromstring(data).find("head")
    assert head is not None
    assert head.findtext("title") == "War Desk: sources"
    assert head.findtext("ownerName") == "War Desk editors"
    assert head.find("dateCreated") is None  # no "now": unchanged sources, unchanged bytes


def test_opml_names_a_source_by_its_public_url_and_offers_only_web_pages() -> None:
    nameless = Feed(SECRET_URL, None, "javascript:alert(1)", None, None, True)
    (outline,) = opml_outlines(render_opml([nameless], site=SITE))
    assert outline.get("text") == "https://feeds.example.com/feed?token=***"
    assert outline.get("htmlUrl") is None


def test_opml_subscribes_where_a_moved_feed_now_lives() -> None:
    moved = replace(WIRE, fetch_url="https://new.wire.example/rss")
    (outline, *_) = opml_outlines(render_opml([moved], site=SITE))
    assert outline.get("xmlUrl") == "https://new.wire.example/rss"


def test_opml_passes_the_w3c_feed_validator(shared_dir: Path) -> None:
    data = render_opml(SOURCES, site=SITE)
    assert feed_problems(data, SITE.url + "sources.opml") == []


# ---------------------------------------------------------------- in a browser


def dump_dom(binary: str, page: bytes, *, width: int = 375) -> lxml_html.HtmlElement:
    """``page`` as output/index.html, loaded from disk, and the DOM Chromium built from it."""
    with tempfile.TemporaryDirectory(prefix="frontpage-") as tmp:
        path = Path(tmp) / "output" / "index.html"
        path.parent.mkdir()
        path.write_bytes(page)
        command = chromium_command(
            binary, Path(tmp) / "profile", f"--window-size={width},800", "--dump-dom", path.as_uri()
        )
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False
        )
    failed = f"Chromium loaded nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    assert "<main" in done.stdout, failed
    return lxml_html.fromstring(done.stdout)


@pytest.mark.slow
def test_chromium_loads_the_page_with_every_feed_link(chromium: str) -> None:
    dom = dump_dom(chromium, render())
    assert dom.xpath("string(//h1)") == "War Desk"
    discovered = dom.xpath("//head/link[@rel='alternate']/@href")
    assert len(discovered) == 6
    links = set(dom.xpath("//a/@href"))
    assert set(discovered) | {"status.html", "sources.opml"} <= links
    assert dom.xpath("//script") == []


@pytest.mark.slow
@pytest.mark.parametrize("width", [320, 375, 1280])
def test_the_page_never_scrolls_sideways(chromium: str, width: int) -> None:
    long_word = "https://www.example-news.com/uk/live/2026/11/26/" + "онлайн-трансляція-" * 6
    entries = [*sample_entries(), entry(WIRE, 9, long_word, topics=["europe"])]
    layout = measure_layout(chromium, render(entries).decode(), width)
    assert layout.client_width == width
    assert layout.scroll_width <= width, f"scrolls sideways at {width}px"
    assert "feed.atom" in layout.hrefs
