"""render.py: templates → mail and web HTML/text, the byte budget, one reader's message,
escaping, header safety, determinism, errors, files."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest
from lxml import html as lxml_html

import aggregator.render as render_module
from aggregator.config import DigestConfig, SiteConfig
from aggregator.errors import RenderError
from aggregator.message import INSPECTION_LINK, build_message, make_list_id, make_message_id
from aggregator.models import (
    PERSONAL_LINK,
    DigestIssue,
    DigestItem,
    DigestSection,
    EntryKey,
    RenderedIssue,
    Unsubscribe,
)
from aggregator.render import (
    format_localtime,
    make_environment,
    render_issue,
    safe_url,
    timezone_label,
    trim_issue,
    write_private_copy,
    write_web_copy,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

SCRIPT_TITLE = "<script>alert(1)</script>"
IMG_TITLE = '"><img src=x onerror=alert(1)>'
SENDER = "War Desk <digest@example.org>"
READER = "editor@example.org"
TOKEN = "tok3n-S3CRET-abcdef0123456789"
UNSUBSCRIBE = Unsubscribe(
    url=f"https://news.example.org/unsubscribe?d=ukraine-daily&t={TOKEN}",
    mailto="mailto:digest@example.org?subject=unsubscribe",
)

SITE = SiteConfig(title="War Desk", url="https://news.example.org/", author="Editors")
DIGEST = DigestConfig(
    id="ukraine-daily",
    title="Ukraine war — daily digest",
    schedule="0 7 * * *",
    timezone=ZoneInfo("Europe/Kyiv"),
    to=("editor@example.org", "desk@example.org"),
)


def _item(
    n: int,
    title: str,
    link: str | None,
    summary: str = "Short summary.",
    also: tuple[str, ...] = (),
) -> DigestItem:
    return DigestItem(
        key=EntryKey("https://feeds.example.net/rss", f"entry-{n}"),
        title=title,
        link=link,
        source="Example Wire",
        published=datetime(2026, 11, 26, 3, n % 60, tzinfo=UTC),
        summary_text=summary,
        also=also,
    )


def make_issue(*sections: DigestSection, more: int = 0) -> DigestIssue:
    if not sections:
        sections = (
            DigestSection(
                topic_id="ukraine-war",
                title="Ukraine war",
                items=(
                    _item(1, SCRIPT_TITLE, "https://feeds.example.net/a/1"),
                    _item(2, IMG_TITLE, None, summary="Kyiv & Kharkiv <b>update</b>"),
                    _item(3, "Javascript link", "javascript:alert(1)"),
                ),
            ),
            DigestSection(
                topic_id=None,
                title="Other",
                items=(
                    _item(
                        4,
                        "Plain headline",
                        'https://feeds.example.net/b?q="x"&y=1',
                        also=("Beta <News>", "Gamma Daily"),
                    ),
                ),
            ),
        )
    return DigestIssue(
        digest_id="ukraine-daily",
        title="Ukraine war — daily digest",
        stamp="2026-11-26T0700",
        window_start=datetime(2026, 11, 25, 5, 0, tzinfo=UTC),
        window_end=datetime(2026, 11, 26, 5, 0, tzinfo=UTC),
        sections=sections,
        more=more,
    )


def big_issue(count: int, *, sections: int = 4) -> DigestIssue:
    """``count`` items with 280-character summaries, spread over ``sections`` topics."""
    summary = ("Officials said the talks would resume next week after a pause. " * 5)[:280]
    items = [
        _item(
            n,
            f"Headline {n}: a realistic-length title about events in Kyiv and Kharkiv today",
            f"https://www.example-news.com/world/europe/2026/11/26/story-{n}-slug-words-here",
            summary=summary,
        )
        for n in range(count)
    ]
    per = -(-count // sections)
    return make_issue(
        *(
            DigestSection(f"topic-{s}", f"Topic {s}", tuple(items[s * per : (s + 1) * per]))
            for s in range(sections)
        )
    )


@pytest.fixture
def env() -> jinja2.Environment:
    return make_environment(TEMPLATES)


@pytest.fixture
def rendered(env: jinja2.Environment) -> RenderedIssue:
    return render_issue(make_issue(), digest=DIGEST, site=SITE, env=env)


def message_for(
    rendered: RenderedIssue,
    recipient: str = READER,
    unsubscribe: Unsubscribe | None = UNSUBSCRIBE,
    sender: str = SENDER,
) -> bytes:
    return build_message(
        rendered,
        sender=sender,
        recipient=recipient,
        message_id=make_message_id(rendered.issue, SITE, recipient),
        list_id=make_list_id(rendered.issue.digest_id, SITE),
        date=rendered.issue.window_end,
        unsubscribe=unsubscribe,
    )


def parse_eml(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part_text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    assert part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def words(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- HTML


def test_html_has_sections_items_and_footer(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    text = words(doc.text_content())
    assert "Ukraine war — daily digest" in text
    assert "Ukraine war · 3 items" in text
    assert "Other · 1 item" in text
    assert "Plain headline" in text
    assert "Example Wire" in text
    # 03:01 UTC is 05:01 in Kyiv (EET, UTC+2, in November)
    assert "Example Wire · 26 Nov, 05:01" in text
    assert "25 Nov 2026, 07:00 \u2013 26 Nov 2026, 07:00 · 4 items" in text
    assert "All times are Kyiv time (EET, UTC+2)." in text
    assert "Also: Beta <News>, Gamma Daily" in text
    assert "You receive this because you subscribed to Ukraine war — daily digest" in text
    hrefs = doc.xpath("//a/@href")
    assert "https://news.example.org/" in hrefs
    assert "https://news.example.org/feed.atom" in hrefs
    assert "https://news.example.org/digests/ukraine-daily/index.html" in hrefs
    assert "https://news.example.org/digests/ukraine-daily/2026-11-26T0700.html" in hrefs
    assert "https://feeds.example.net/a/1" in hrefs
    # attribute quoting survives the trip through Jinja2 and mjml intact
    assert 'https://feeds.example.net/b?q="x"&y=1' in hrefs


def test_mail_html_has_a_visible_unsubscribe_link(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    links = {a.text_content().strip(): a.get("href") for a in doc.xpath("//a")}
    assert links["Unsubscribe"] == PERSONAL_LINK


def test_headlines_are_visibly_links(rendered: RenderedIssue) -> None:
    # No "text-decoration:none" on a headline: on a phone there is no hover to reveal a link.
    doc = lxml_html.fromstring(rendered.html)
    headline = doc.xpath("//a[@href='https://feeds.example.net/a/1']")[0]
    assert "text-decoration" not in (headline.get("style") or "")


def test_feed_text_is_escaped_in_html(rendered: RenderedIssue) -> None:
    for html in (rendered.html, rendered.web_html):
        assert "<script" not in html.lower()
        assert "<img" not in html.lower()
        doc = lxml_html.fromstring(html)
        assert doc.xpath("//script") == []
        assert doc.xpath("//img") == []
        assert doc.xpath("//*[@onerror]") == []
        assert doc.xpath("//b") == []  # summary markup is text, not markup
        assert doc.xpath("//news") == []  # nor is an outlet name in "also"
        text = doc.text_content()
        # ...but readers still see the titles exactly as the feed wrote them
        assert SCRIPT_TITLE in text
        assert IMG_TITLE in text
        assert "Kyiv & Kharkiv <b>update</b>" in text


def test_unsafe_links_are_not_linked(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    assert not any(h.lower().startswith("javascript:") for h in doc.xpath("//a/@href"))
    assert "Javascript link" in doc.text_content()
    assert "javascript:" not in rendered.text


def test_item_without_link_is_plain_title(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    linked = [a.text_content().strip() for a in doc.xpath("//a")]
    assert SCRIPT_TITLE in linked
    assert IMG_TITLE not in linked
    assert IMG_TITLE in doc.text_content()


def test_html_has_lang_preheader_and_dark_mode(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    assert doc.get("lang") == "en"
    metas = {m.get("name"): m.get("content") for m in doc.xpath("//meta[@name]")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert "width=device-width" in metas["viewport"]
    styles = " ".join(doc.xpath("//style/text()"))
    assert "@media (prefers-color-scheme: dark)" in styles
    hidden = doc.xpath("//body/div[contains(@style, 'display:none')]")
    assert len(hidden) == 1
    preheader = hidden[0].text_content().strip()
    assert preheader.startswith(f"4 items: {SCRIPT_TITLE} · {IMG_TITLE}")


def test_preheader_of_empty_issue(env: jinja2.Environment) -> None:
    html = render_issue(replace(make_issue(), sections=()), digest=DIGEST, site=SITE, env=env).html
    doc = lxml_html.fromstring(html)
    hidden = doc.xpath("//body/div[contains(@style, 'display:none')]")[0]
    assert hidden.text_content().strip().startswith("No new items in this period.")


def test_one_mjml_section_per_topic(rendered: RenderedIssue) -> None:
    # header + 2 topics + footer; each item used to cost a section of its own
    doc = lxml_html.fromstring(rendered.html)
    sections = doc.xpath("//div[@role='article']/div")
    assert len(sections) == 4


def test_more_line_when_items_were_left_out(env: jinja2.Environment) -> None:
    rendered = render_issue(make_issue(more=7), digest=DIGEST, site=SITE, env=env)
    doc = lxml_html.fromstring(rendered.html)
    assert "+ 7 more items did not fit in this issue; they lead the next one." in words(
        doc.text_content()
    )
    assert "+ 7 more items did not fit in this issue; they lead the next one." in rendered.text
    assert "Read them now in the feed: https://news.example.org/feed.atom" in rendered.text
    plain = render_issue(make_issue(), digest=DIGEST, site=SITE, env=env)
    assert "more item" not in plain.html
    assert "more item" not in plain.text


# ---------------------------------------------------------------- web copy


def test_web_copy_names_nobody(rendered: RenderedIssue) -> None:
    message = message_for(rendered)
    for copy in (rendered.web_html, rendered.web_text):
        assert PERSONAL_LINK not in copy
        assert "personal-link" not in copy
        assert "nsubscribe" not in copy
        assert TOKEN not in copy
        assert not re.search(r"[\w.+-]+@[\w-]+\.", copy)  # no address, of reader or sender
    assert TOKEN in message.decode("ascii")  # (the token does reach the reader's own copy)


def test_web_copy_has_the_same_items_and_archive_links(rendered: RenderedIssue) -> None:
    mail = lxml_html.fromstring(rendered.html)
    web = lxml_html.fromstring(rendered.web_html)
    item_links = {h for h in mail.xpath("//a/@href") if "feeds.example.net" in h}
    assert item_links <= set(web.xpath("//a/@href"))
    assert "https://news.example.org/digests/ukraine-daily/index.html" in web.xpath("//a/@href")
    # the web copy does not point at itself as "read in your browser"
    assert "Read this issue in your browser" not in web.text_content()
    assert "Past issues: https://news.example.org/digests/ukraine-daily/index.html" in (
        rendered.web_text
    )


# ---------------------------------------------------------------- text


def test_text_twin_mirrors_items(rendered: RenderedIssue) -> None:
    text = rendered.text
    assert text.startswith("Ukraine war — daily digest\n")
    assert "All times are Kyiv time (EET, UTC+2).\n" in text
    assert "Ukraine war (3 items)" in text
    assert "Other (1 item)" in text
    assert f"* {SCRIPT_TITLE}" in text  # plain text: no escaping
    assert "Example Wire · 26 Nov, 05:01" in text
    assert "  Also: Beta <News>, Gamma Daily\n" in text
    lines = text.splitlines()
    assert "  https://feeds.example.net/a/1" in lines  # URL on its own line
    assert f"Unsubscribe: {PERSONAL_LINK}" in lines
    assert (
        "In your browser: https://news.example.org/digests/ukraine-daily/2026-11-26T0700.html"
        in lines
    )
    assert "Feed of every item: https://news.example.org/feed.atom" in lines


def test_text_wraps_long_summaries(env: jinja2.Environment) -> None:
    long_summary = " ".join(["word"] * 60)
    issue = make_issue(
        DigestSection("t", "T", (_item(1, "Title", "https://x.example/1", long_summary),))
    )
    text = render_issue(issue, digest=DIGEST, site=SITE, env=env).text
    summary_lines = [line for line in text.splitlines() if line.strip().startswith("word")]
    assert len(summary_lines) > 1
    assert all(len(line) <= 74 for line in summary_lines)


# ---------------------------------------------------------------- time zone


WINTER = datetime(2026, 1, 5, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "moment", "label"),
    [
        (ZoneInfo("Europe/Kyiv"), WINTER, "Kyiv time (EET, UTC+2)"),
        (ZoneInfo("Europe/Kyiv"), SUMMER, "Kyiv time (EEST, UTC+3)"),
        (ZoneInfo("America/New_York"), WINTER, "New York time (EST, UTC-5)"),
        (ZoneInfo("America/Argentina/Buenos_Aires"), WINTER, "Buenos Aires time (UTC-3)"),
        (ZoneInfo("Europe/London"), WINTER, "London time (GMT)"),
        (ZoneInfo("Asia/Kolkata"), WINTER, "Kolkata time (IST, UTC+5:30)"),
        (ZoneInfo("Asia/Dubai"), WINTER, "Dubai time (UTC+4)"),
        (ZoneInfo("UTC"), WINTER, "UTC"),
        (ZoneInfo("Etc/GMT-3"), WINTER, "UTC+3"),
        (ZoneInfo("EST5EDT"), WINTER, "EST (UTC-5)"),
        (UTC, WINTER, "UTC"),
        (timezone(timedelta(hours=-3)), WINTER, "UTC-3"),
    ],
)
def test_timezone_label(zone: tzinfo, moment: datetime, label: str) -> None:
    assert timezone_label(zone, moment) == label


def test_times_follow_the_digest_zone(env: jinja2.Environment) -> None:
    digest = replace(DIGEST, timezone=ZoneInfo("America/New_York"))
    rendered = render_issue(make_issue(), digest=digest, site=SITE, env=env)
    assert "Example Wire · 25 Nov, 22:01" in rendered.text  # 03:01 UTC is 22:01 EST
    assert "All times are New York time (EST, UTC-5)." in rendered.text
    assert rendered.subject == "Ukraine war — daily digest — 26 Nov 2026"  # 00:00 EST


# ---------------------------------------------------------------- byte budget


def test_fifty_items_stay_far_below_gmails_clip(env: jinja2.Environment) -> None:
    rendered = render_issue(big_issue(50), digest=DIGEST, site=SITE, env=env)
    assert len(rendered.issue.items) == 50
    assert rendered.issue.more == 0
    assert len(rendered.html.encode("utf-8")) < 60_000


def test_a_large_issue_is_cut_to_the_budget(env: jinja2.Environment) -> None:
    issue = big_issue(200)
    rendered = render_issue(replace(issue, more=3), digest=DIGEST, site=SITE, env=env)
    size = len(rendered.html.encode("utf-8"))
    kept = rendered.issue.items
    assert size <= DIGEST.max_html_bytes
    assert 60 < len(kept) < 200
    assert kept == issue.items[: len(kept)]  # the lowest in order go first
    assert rendered.issue.more == 3 + 200 - len(kept)
    hrefs = set(lxml_html.fromstring(rendered.html).xpath("//a/@href"))
    assert all(item.link in hrefs for item in kept)
    assert issue.items[len(kept)].link not in hrefs
    # the cut is tight: one more item would not have fitted
    bigger = trim_issue(replace(issue, more=3), len(kept) + 1)
    templates = render_module._Templates(env, "digest", DIGEST, SITE)
    assert len(templates.mail_html(bigger).encode("utf-8")) > DIGEST.max_html_bytes
    note = f"+ {rendered.issue.more} more items did not fit in this issue"
    assert note in rendered.text
    assert note in words(lxml_html.fromstring(rendered.html).text_content())
    assert rendered.web_text.count("\n* ") == len(kept)


def test_cutting_drops_sections_left_empty(env: jinja2.Environment) -> None:
    issue = big_issue(40, sections=4)
    digest = replace(DIGEST, max_html_bytes=25_000)
    rendered = render_issue(issue, digest=digest, site=SITE, env=env)
    assert len(rendered.html.encode("utf-8")) <= 25_000
    assert all(section.items for section in rendered.issue.sections)
    assert len(rendered.issue.sections) < 4
    assert "Topic 3" not in rendered.html


def test_the_budget_search_is_bounded(
    env: jinja2.Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    convert = render_module.mjml_to_html

    def counting(source: str) -> object:
        calls.append(len(source))
        return convert(source)

    monkeypatch.setattr(render_module, "mjml_to_html", counting)
    render_issue(big_issue(400), digest=DIGEST, site=SITE, env=env)
    # full + empty + at most _MAX_BUDGET_RENDERS probes, then the web copy
    assert len(calls) <= 2 + render_module._MAX_BUDGET_RENDERS + 1


def test_a_budget_too_small_for_any_issue_is_render_error(env: jinja2.Environment) -> None:
    digest = replace(DIGEST, max_html_bytes=2_000)
    with pytest.raises(RenderError, match=r"even without items.*max_html_bytes=2000"):
        render_issue(make_issue(), digest=digest, site=SITE, env=env)


def test_trim_issue_keeps_a_prefix() -> None:
    issue = make_issue(more=1)
    assert trim_issue(issue, 4) is issue
    trimmed = trim_issue(issue, 2)
    assert [s.title for s in trimmed.sections] == ["Ukraine war"]
    assert trimmed.items == issue.items[:2]
    assert trimmed.more == 3
    assert trim_issue(issue, 0).sections == ()


# ---------------------------------------------------------------- message


def test_message_is_multipart_alternative(rendered: RenderedIssue) -> None:
    message = parse_eml(message_for(rendered))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    # the wire form has CRLF line ends; the content is otherwise the rendering, with the link
    link = UNSUBSCRIBE.url
    plain = part_text(message, "plain").replace("\r\n", "\n")
    assert plain == rendered.text.replace(PERSONAL_LINK, link)
    html = part_text(message, "html").replace("\r\n", "\n")
    assert html == rendered.html.replace(PERSONAL_LINK, link.replace("&", "&amp;"))


def test_message_headers(rendered: RenderedIssue) -> None:
    data = message_for(rendered)
    message = parse_eml(data)
    assert message["Subject"] == "Ukraine war — daily digest — 26 Nov 2026"
    assert rendered.subject == message["Subject"]
    assert message["From"] == SENDER
    assert message["To"] == READER  # this reader only, never the whole list
    assert message["Cc"] is None
    assert message["Bcc"] is None
    assert message["Date"] == "Thu, 26 Nov 2026 05:00:00 +0000"
    assert message["List-Id"] == "<ukraine-daily.news.example.org>"
    assert message["X-Aggregator-Digest"] == "ukraine-daily"
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE.url}>, <mailto:digest@example.org?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    message_id = message["Message-ID"].strip()
    assert re.fullmatch(
        r"<ukraine-daily\.2026-11-26T0700\.[0-9a-f]{16}@news\.example\.org>", message_id
    )
    assert READER not in message_id
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.isascii()


def test_list_unsubscribe_url_reaches_clients_verbatim(rendered: RenderedIssue) -> None:
    # A long token URL must not be folded into RFC 2047 encoded-words: clients read it raw.
    long = Unsubscribe(url="https://news.example.org/u?t=" + "A" * 200)
    data = message_for(rendered, unsubscribe=long)
    assert b"<https://news.example.org/u?t=" + b"A" * 200 + b">\r\n" in data
    header = data.split(b"\r\n\r\n", 1)[0].split(b"List-Unsubscribe:", 1)[1].split(b"\r\nList")[0]
    assert b"=?" not in header
    assert parse_eml(data)["List-Unsubscribe"] == f"<{long.url}>"


def test_mailto_is_optional_and_may_be_a_bare_address(rendered: RenderedIssue) -> None:
    only_url = parse_eml(message_for(rendered, unsubscribe=Unsubscribe(url=UNSUBSCRIBE.url)))
    assert only_url["List-Unsubscribe"] == f"<{UNSUBSCRIBE.url}>"
    bare = Unsubscribe(url=UNSUBSCRIBE.url, mailto="leave@example.org")
    message = parse_eml(message_for(rendered, unsubscribe=bare))
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE.url}>, <mailto:leave@example.org>"


def test_idn_unsubscribe_host_is_ascii_in_the_header(rendered: RenderedIssue) -> None:
    data = message_for(rendered, unsubscribe=Unsubscribe(url="https://новини.укр/вихід?t=1"))
    header = parse_eml(data)["List-Unsubscribe"]
    assert header == "<https://xn--b1amarcd.xn--j1amh/%D0%B2%D0%B8%D1%85%D1%96%D0%B4?t=1>"


@pytest.mark.parametrize(
    "unsubscribe",
    [
        Unsubscribe(url="javascript:alert(1)"),
        Unsubscribe(url="https://news.example.org/u?t=1>, <https://evil.example/"),
        Unsubscribe(url="https://news.example.org/u?t=1\r\nBcc: evil@example.org"),
        Unsubscribe(url="https://news.example.org/u", mailto="a@b.example>, <https://evil"),
    ],
)
def test_unsafe_unsubscribe_links_are_render_errors(
    rendered: RenderedIssue, unsubscribe: Unsubscribe
) -> None:
    with pytest.raises(RenderError, match="cannot build message"):
        message_for(rendered, unsubscribe=unsubscribe)


def test_personal_link_is_swapped_in_every_message(rendered: RenderedIssue) -> None:
    assert PERSONAL_LINK in rendered.html
    assert PERSONAL_LINK in rendered.text
    quirky = Unsubscribe(url="https://news.example.org/u?a=1&b='2'")
    for unsubscribe in (UNSUBSCRIBE, None):
        data = message_for(rendered, unsubscribe=unsubscribe)
        message = parse_eml(data)
        for subtype in ("plain", "html"):
            assert "personal-link" not in part_text(message, subtype)
    message = parse_eml(message_for(rendered, unsubscribe=quirky))
    doc = lxml_html.fromstring(part_text(message, "html"))
    links = {a.text_content().strip(): a.get("href") for a in doc.xpath("//a")}
    assert links["Unsubscribe"] == quirky.url


def test_inspection_copy_has_no_unsubscribe_headers(rendered: RenderedIssue) -> None:
    message = parse_eml(message_for(rendered, unsubscribe=None))
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert f"Unsubscribe: {INSPECTION_LINK}" in part_text(message, "plain")


def test_message_id_is_stable_per_issue_and_reader(env: jinja2.Environment) -> None:
    one = render_issue(make_issue(), digest=DIGEST, site=SITE, env=env)
    # a re-render after the content changed (e.g. a resumed issue) keeps the ids
    other = render_issue(
        make_issue(DigestSection("t", "T", (_item(1, "Other", None),))),
        digest=DIGEST,
        site=SITE,
        env=env,
    )
    first = make_message_id(one.issue, SITE, READER)
    assert first == make_message_id(other.issue, SITE, READER)
    assert first == make_message_id(one.issue, SITE, "Editor <EDITOR@example.org>")
    assert first != make_message_id(one.issue, SITE, "desk@example.org")
    later = replace(one.issue, stamp="2026-11-27T0700")
    assert first != make_message_id(later, SITE, READER)
    assert parse_eml(message_for(one))["Message-ID"].strip() == first


def test_messages_are_deterministic(env: jinja2.Environment) -> None:
    first = render_issue(make_issue(), digest=DIGEST, site=SITE, env=env)
    second = render_issue(make_issue(), digest=DIGEST, site=SITE, env=make_environment(TEMPLATES))
    assert first == second
    assert message_for(first) == message_for(second)
    assert message_for(first) != message_for(first, recipient="desk@example.org")


def test_empty_issue_still_renders(env: jinja2.Environment) -> None:
    issue = replace(make_issue(), sections=())
    rendered = render_issue(issue, digest=DIGEST, site=SITE, env=env)
    assert "No new items in this period" in lxml_html.fromstring(rendered.html).text_content()
    assert "No new items in this period" in rendered.text
    assert "No new items in this period" in rendered.web_text
    assert parse_eml(message_for(rendered)).get_content_type() == "multipart/alternative"


def test_subject_is_header_safe(env: jinja2.Environment) -> None:
    evil = "Evil title\r\nBcc: evil@example.org"
    digest = replace(DIGEST, title=evil)
    issue = make_issue(DigestSection("t", "Evil\r\nBcc: evil@example.org", (_item(1, evil, None),)))
    rendered = render_issue(issue, digest=digest, site=SITE, env=env)
    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject
    data = message_for(rendered)
    message = parse_eml(data)
    assert message["Bcc"] is None
    assert "evil@example.org" not in str(message["To"])
    assert message["Subject"] == "Evil title Bcc: evil@example.org — 26 Nov 2026"
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header_block


def test_header_injection_in_recipient_is_render_error(rendered: RenderedIssue) -> None:
    with pytest.raises(RenderError, match="cannot build message"):
        message_for(rendered, recipient="a@example.org\r\nBcc: evil@example.org")


@pytest.mark.parametrize("sender", ["Desk: weekly; <digest@example.org>", ":;<"])
def test_unparseable_sender_is_render_error(rendered: RenderedIssue, sender: str) -> None:
    with pytest.raises(RenderError, match="cannot build message"):
        message_for(rendered, sender=sender)


def test_idn_site_host_is_ascii_in_message_headers(rendered: RenderedIssue) -> None:
    site = replace(SITE, url="https://новини.укр/")
    message_id = make_message_id(rendered.issue, site, READER)
    list_id = make_list_id("ukraine-daily", site)
    assert message_id.endswith("@xn--b1amarcd.xn--j1amh>")
    assert list_id == "<ukraine-daily.xn--b1amarcd.xn--j1amh>"
    data = build_message(
        rendered,
        sender=SENDER,
        recipient=READER,
        message_id=message_id,
        list_id=list_id,
        date=rendered.issue.window_end,
        unsubscribe=UNSUBSCRIBE,
    )
    message = parse_eml(data)
    # (the longer id may be folded onto its own line, which RFC 5322 allows)
    assert message["Message-ID"].strip() == message_id
    assert message["List-Id"] == list_id
    assert data.isascii()


# ---------------------------------------------------------------- templates and errors


def test_autoescape_only_for_markup_templates(env: jinja2.Environment) -> None:
    assert env.autoescape("digest.mjml.j2") is True  # type: ignore[operator]
    assert env.autoescape("page.html.j2") is True  # type: ignore[operator]
    assert env.autoescape("digest.txt.j2") is False  # type: ignore[operator]


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return target


def test_custom_template_base_name(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "brief.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>BRIEF {{ item_count }}"
        "{% if unsubscribe_url %} <a href='{{ unsubscribe_url }}'>out</a>{% endif %}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>\n",
        encoding="utf-8",
    )
    (templates / "brief.txt.j2").write_text("BRIEF {{ subject }}\n", encoding="utf-8")
    digest = replace(DIGEST, template="brief")
    rendered = render_issue(make_issue(), digest=digest, site=SITE, env=make_environment(templates))
    assert "BRIEF 4" in rendered.html
    assert PERSONAL_LINK in rendered.html
    assert PERSONAL_LINK not in rendered.web_html
    assert rendered.text == "BRIEF Ukraine war — daily digest — 26 Nov 2026\n"


def test_missing_template_is_render_error(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    digest = replace(DIGEST, template="nowhere")
    with pytest.raises(RenderError, match=r"nowhere\.mjml\.j2: template not found"):
        render_issue(make_issue(), digest=digest, site=SITE, env=env)


def test_templates_not_overridden_come_from_the_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("MINE {{ item_count }}\n", encoding="utf-8")
    env = make_environment(tmp_path)
    rendered = render_issue(make_issue(), digest=DIGEST, site=SITE, env=env)
    assert rendered.text == "MINE 4\n"
    assert "<mjml" not in rendered.html
    assert "</html>" in rendered.html


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.txt.j2").write_text("line one\nline two\n{% for x in %}\n")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:3: "):
        render_issue(make_issue(), digest=DIGEST, site=SITE, env=make_environment(templates))


def test_undefined_variable_names_file_and_line(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.txt.j2").write_text("{{ subject }}\n\n{{ no_such_thing }}\n")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:3: .*no_such_thing"):
        render_issue(make_issue(), digest=DIGEST, site=SITE, env=make_environment(templates))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<html><body>not mjml</body></html>\n", "not an MJML document"),
        ("<mjml><mj-head></mj-head></mjml>\n", "MJML conversion failed: .*mj-body"),
    ],
)
def test_invalid_mjml_is_render_error(tmp_path: Path, source: str, message: str) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.mjml.j2").write_text(source)
    with pytest.raises(RenderError, match=rf"digest\.mjml\.j2: {message}"):
        render_issue(make_issue(), digest=DIGEST, site=SITE, env=make_environment(templates))


def test_pre_blocks_keep_their_whitespace(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text><pre>a\n    b</pre></mj-text>"
        "</mj-column></mj-section></mj-body></mjml>\n"
    )
    html = render_issue(make_issue(), digest=DIGEST, site=SITE, env=make_environment(templates))
    assert "a\n    b" in html.html


# ---------------------------------------------------------------- helpers and files


def test_localtime_filter_uses_zone() -> None:
    moment = datetime(2026, 7, 1, 21, 30, tzinfo=UTC)
    assert format_localtime(moment, ZoneInfo("Europe/Kyiv")) == "2 Jul 2026, 00:30"
    assert format_localtime(moment, "UTC") == "1 Jul 2026, 21:30"  # a name, from a template
    for zone in ("Nowhere/Special", "Europe"):  # "Europe" names a directory of zones
        with pytest.raises(RenderError, match="unknown time zone"):
            format_localtime(moment, zone)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/x", "https://a.example/x"),
        ("http://a.example/", "http://a.example/"),
        ("javascript:alert(1)", ""),
        (" JavaScript:alert(1)", ""),
        ("data:text/html,hi", ""),
        (None, ""),
        ("", ""),
    ],
)
def test_safe_url(url: str | None, expected: str) -> None:
    assert safe_url(url) == expected


def test_host_filter(env: jinja2.Environment) -> None:
    template = env.from_string("{{ 'https://www.Example.org:8080/x'|host }}|{{ none|host }}")
    assert template.render() == "example.org|"


def test_write_web_copy(rendered: RenderedIssue, tmp_path: Path) -> None:
    paths = write_web_copy(rendered, tmp_path)
    base = tmp_path / "digests" / "ukraine-daily"
    assert paths == (base / "2026-11-26T0700.html", base / "2026-11-26T0700.txt")
    assert paths[0].read_text(encoding="utf-8") == rendered.web_html
    assert paths[1].read_text(encoding="utf-8") == rendered.web_text
    assert sorted(p.name for p in base.iterdir()) == sorted(p.name for p in paths)


def test_write_private_copy(rendered: RenderedIssue, tmp_path: Path) -> None:
    directory = tmp_path / "state" / "previews" / "ukraine-daily"
    eml = message_for(rendered, unsubscribe=None)
    paths = write_private_copy(directory, "2026-11-26T0700", rendered.html, rendered.text, eml)
    assert [p.name for p in paths] == [
        "2026-11-26T0700.html",
        "2026-11-26T0700.txt",
        "2026-11-26T0700.eml",
    ]
    assert paths[0].read_text(encoding="utf-8") == rendered.html
    assert paths[1].read_text(encoding="utf-8") == rendered.text
    assert paths[2].read_bytes() == eml
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.parametrize("stamp", ["../escape", "a/b", ".hidden", ""])
def test_unsafe_file_names_are_render_errors(
    rendered: RenderedIssue, tmp_path: Path, stamp: str
) -> None:
    with pytest.raises(RenderError, match="not a safe file name"):
        write_private_copy(tmp_path, stamp, "", "", b"")
    with pytest.raises(RenderError, match="not a safe file name"):
        write_web_copy(replace(rendered, issue=replace(rendered.issue, stamp=stamp)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_other_outlets_of_a_story_link_to_their_own_reports(env: jinja2.Environment) -> None:
    item = replace(
        _item(7, "Avdiivka falls", "https://a.example/1"),
        also=("Beta <News>", "Gamma Daily", "Delta"),
        also_links=("https://b.example/2", None, "javascript:alert(1)"),
    )
    issue = make_issue(DigestSection("ukraine-war", "Ukraine war", (item,)))
    html = render_issue(issue, digest=DIGEST, site=SITE, env=env).html
    assert '<a href="https://b.example/2"' in html
    assert "Beta &lt;News&gt;</a>" in html
    assert "Gamma Daily" in html  # same page as ours: named, not linked
    assert "javascript:" not in html


def test_builtin_templates_ship_inside_the_package() -> None:
    import tomllib

    from aggregator.render import BUILTIN_TEMPLATES_DIR

    package = Path(__file__).resolve().parents[1] / "aggregator"
    assert BUILTIN_TEMPLATES_DIR.parent == package  # importlib finds it in a wheel install
    assert {p.name for p in BUILTIN_TEMPLATES_DIR.glob("*.j2")} == {
        "digest.mjml.j2",
        "digest.txt.j2",
    }
    pyproject = tomllib.loads((package.parent / "pyproject.toml").read_text())
    assert "builtin_templates/*.j2" in pyproject["tool"]["setuptools"]["package-data"]["aggregator"]
