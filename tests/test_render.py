"""render.py: templates → HTML/text/eml, escaping, header safety, determinism, errors."""

from __future__ import annotations

import email
import email.policy
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import jinja2
import pytest
from lxml import html as lxml_html

from aggregator.config import DigestConfig, SiteConfig
from aggregator.errors import RenderError
from aggregator.models import DigestIssue, DigestItem, DigestSection, EntryKey, RenderedIssue
from aggregator.render import (
    format_localtime,
    make_environment,
    render_issue,
    safe_url,
    write_issue,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

SCRIPT_TITLE = "<script>alert(1)</script>"
IMG_TITLE = '"><img src=x onerror=alert(1)>'
SENDER = "War Desk <digest@example.org>"

SITE = SiteConfig(title="War Desk", url="https://news.example.org/", author="Editors")
DIGEST = DigestConfig(
    id="ukraine-daily",
    title="Ukraine war — daily digest",
    schedule="0 7 * * *",
    timezone="Europe/Kyiv",
    to=("editor@example.org", "desk@example.org"),
)


def _item(n: int, title: str, link: str | None, summary: str = "Short summary.") -> DigestItem:
    return DigestItem(
        key=EntryKey("https://feeds.example.net/rss", f"entry-{n}"),
        title=title,
        link=link,
        source="Example Wire",
        published=datetime(2026, 11, 26, 3, n, tzinfo=UTC),
        summary_text=summary,
    )


def make_issue(*sections: DigestSection) -> DigestIssue:
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
                items=(_item(4, "Plain headline", 'https://feeds.example.net/b?q="x"&y=1'),),
            ),
        )
    return DigestIssue(
        digest_id="ukraine-daily",
        title="Ukraine war — daily digest",
        stamp="2026-11-26T0700",
        window_start=datetime(2026, 11, 25, 5, 0, tzinfo=UTC),
        window_end=datetime(2026, 11, 26, 5, 0, tzinfo=UTC),
        sections=sections,
    )


@pytest.fixture
def env() -> jinja2.Environment:
    return make_environment(TEMPLATES)


@pytest.fixture
def rendered(env: jinja2.Environment) -> RenderedIssue:
    return render_issue(make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=env)


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


# ---------------------------------------------------------------- HTML


def test_html_has_sections_items_and_footer(rendered: RenderedIssue) -> None:
    doc = lxml_html.fromstring(rendered.html)
    text = doc.text_content()
    assert "Ukraine war — daily digest" in text
    assert "Ukraine war" in text
    assert "Other" in text
    assert "3 items" in text
    assert "1 item" in text
    assert "Plain headline" in text
    assert "Example Wire" in text
    # 03:01 UTC is 05:01 in Kyiv (EET, UTC+2, in November)
    assert "26 Nov 2026, 05:01" in text
    assert "25 Nov 2026, 07:00 \u2013 26 Nov 2026, 07:00" in " ".join(text.split())
    assert "You receive this because you are on the Ukraine war — daily digest list" in " ".join(
        text.split()
    )
    hrefs = doc.xpath("//a/@href")
    assert "https://news.example.org/" in hrefs
    assert "https://news.example.org/feed.atom" in hrefs
    assert "https://feeds.example.net/a/1" in hrefs
    # attribute quoting survives the trip through Jinja2 and mjml intact
    assert 'https://feeds.example.net/b?q="x"&y=1' in hrefs


def test_feed_text_is_escaped_in_html(rendered: RenderedIssue) -> None:
    html = rendered.html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    doc = lxml_html.fromstring(html)
    assert doc.xpath("//script") == []
    assert doc.xpath("//img") == []
    assert doc.xpath("//*[@onerror]") == []
    assert doc.xpath("//b") == []  # summary markup is text, not markup
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


# ---------------------------------------------------------------- text


def test_text_twin_mirrors_items(rendered: RenderedIssue) -> None:
    text = rendered.text
    assert text.startswith("Ukraine war — daily digest\n")
    assert "Ukraine war (3 items)" in text
    assert "Other (1 item)" in text
    assert f"* {SCRIPT_TITLE}" in text  # plain text: no escaping
    assert "Example Wire · 26 Nov 2026, 05:01" in text
    lines = text.splitlines()
    assert "  https://feeds.example.net/a/1" in lines  # URL on its own line
    assert "Merged feed: https://news.example.org/feed.atom" in text


def test_text_wraps_long_summaries(env: jinja2.Environment) -> None:
    long_summary = " ".join(["word"] * 60)
    issue = make_issue(
        DigestSection("t", "T", (_item(1, "Title", "https://x.example/1", long_summary),))
    )
    text = render_issue(issue, digest=DIGEST, site=SITE, sender=SENDER, env=env).text
    summary_lines = [line for line in text.splitlines() if line.strip().startswith("word")]
    assert len(summary_lines) > 1
    assert all(len(line) <= 74 for line in summary_lines)


# ---------------------------------------------------------------- message


def test_message_is_multipart_alternative(rendered: RenderedIssue) -> None:
    message = parse_eml(rendered.eml)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # the wire form has CRLF line ends; the content is otherwise identical
    assert part_text(message, "plain").replace("\r\n", "\n") == rendered.text
    assert part_text(message, "html").replace("\r\n", "\n") == rendered.html


def test_message_headers(rendered: RenderedIssue) -> None:
    message = parse_eml(rendered.eml)
    assert message["Subject"] == "Ukraine war — daily digest — 26 Nov 2026"
    assert rendered.subject == message["Subject"]
    assert message["From"] == SENDER
    assert message["To"] == "editor@example.org, desk@example.org"
    assert message["Date"] == "Thu, 26 Nov 2026 05:00:00 +0000"
    assert message["List-Id"] == "<ukraine-daily.news.example.org>"
    assert message["X-Aggregator-Digest"] == "ukraine-daily"
    assert message["Message-ID"] == rendered.message_id
    assert rendered.message_id.startswith("<ukraine-daily.2026-11-26T0700.")
    assert rendered.message_id.endswith("@news.example.org>")
    assert b"\r\n" in rendered.eml
    assert b"\n" not in rendered.eml.replace(b"\r\n", b"")


def test_subject_is_header_safe(env: jinja2.Environment) -> None:
    evil = "Evil title\r\nBcc: evil@example.org"
    digest = replace(DIGEST, title=evil)
    issue = make_issue(DigestSection("t", "Evil\r\nBcc: evil@example.org", (_item(1, evil, None),)))
    rendered = render_issue(issue, digest=digest, site=SITE, sender=SENDER, env=env)
    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject
    message = parse_eml(rendered.eml)
    assert message["Bcc"] is None
    assert "evil@example.org" not in str(message["To"])
    assert message["Subject"] == "Evil title Bcc: evil@example.org — 26 Nov 2026"
    header_block = rendered.eml.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header_block


def test_message_id_changes_with_content(env: jinja2.Environment) -> None:
    one = render_issue(make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=env)
    other_issue = make_issue(DigestSection("t", "T", (_item(1, "Other", None),)))
    two = render_issue(other_issue, digest=DIGEST, site=SITE, sender=SENDER, env=env)
    assert one.message_id != two.message_id


def test_rendering_is_deterministic(env: jinja2.Environment) -> None:
    first = render_issue(make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=env)
    second = render_issue(
        make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=make_environment(TEMPLATES)
    )
    assert first.html == second.html
    assert first.text == second.text
    assert first.eml == second.eml
    assert first.message_id == second.message_id


def test_empty_issue_still_renders(env: jinja2.Environment) -> None:
    issue = replace(make_issue(), sections=())
    rendered = render_issue(issue, digest=DIGEST, site=SITE, sender=SENDER, env=env)
    assert "No new items in this period" in lxml_html.fromstring(rendered.html).text_content()
    assert "No new items in this period" in rendered.text
    assert parse_eml(rendered.eml).get_content_type() == "multipart/alternative"


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
        "<mjml><mj-body><mj-section><mj-column><mj-text>BRIEF {{ item_count }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>\n",
        encoding="utf-8",
    )
    (templates / "brief.txt.j2").write_text("BRIEF {{ subject }}\n", encoding="utf-8")
    digest = replace(DIGEST, template="brief")
    rendered = render_issue(
        make_issue(), digest=digest, site=SITE, sender=SENDER, env=make_environment(templates)
    )
    assert "BRIEF 4" in rendered.html
    assert rendered.text == "BRIEF Ukraine war — daily digest — 26 Nov 2026\n"


def test_missing_template_is_render_error(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    digest = replace(DIGEST, template="nowhere")
    with pytest.raises(RenderError, match=r"nowhere\.mjml\.j2: template not found"):
        render_issue(make_issue(), digest=digest, site=SITE, sender=SENDER, env=env)


def test_templates_not_overridden_come_from_the_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("MINE {{ item_count }}\n", encoding="utf-8")
    env = make_environment(tmp_path)
    rendered = render_issue(make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=env)
    assert rendered.text == "MINE 4\n"
    assert "<mjml" not in rendered.html
    assert "</html>" in rendered.html


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.txt.j2").write_text("line one\nline two\n{% for x in %}\n")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:3: "):
        render_issue(
            make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=make_environment(templates)
        )


def test_undefined_variable_names_file_and_line(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "digest.txt.j2").write_text("{{ subject }}\n\n{{ no_such_thing }}\n")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:3: .*no_such_thing"):
        render_issue(
            make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=make_environment(templates)
        )


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
        render_issue(
            make_issue(), digest=DIGEST, site=SITE, sender=SENDER, env=make_environment(templates)
        )


def test_header_injection_in_recipients_is_render_error(env: jinja2.Environment) -> None:
    digest = replace(DIGEST, to=("a@example.org\r\nBcc: evil@example.org",))
    with pytest.raises(RenderError):
        render_issue(make_issue(), digest=digest, site=SITE, sender=SENDER, env=env)


def test_idn_site_host_is_ascii_in_message_headers(env: jinja2.Environment) -> None:
    site = replace(SITE, url="https://новини.укр/")
    rendered = render_issue(make_issue(), digest=DIGEST, site=site, sender=SENDER, env=env)
    message = parse_eml(rendered.eml)
    assert rendered.message_id.endswith("@xn--b1amarcd.xn--j1amh>")
    # (the longer id may be folded onto its own line, which RFC 5322 allows)
    assert message["Message-ID"].strip() == rendered.message_id
    assert message["List-Id"] == "<ukraine-daily.xn--b1amarcd.xn--j1amh>"
    assert rendered.eml.isascii()


@pytest.mark.parametrize("sender", ["Desk: weekly; <digest@example.org>", ":;<"])
def test_unparseable_sender_is_render_error(env: jinja2.Environment, sender: str) -> None:
    with pytest.raises(RenderError, match="cannot build message"):
        render_issue(make_issue(), digest=DIGEST, site=SITE, sender=sender, env=env)


# ---------------------------------------------------------------- helpers and files


def test_localtime_filter_uses_zone() -> None:
    moment = datetime(2026, 7, 1, 21, 30, tzinfo=UTC)
    assert format_localtime(moment, "Europe/Kyiv") == "2 Jul 2026, 00:30"
    assert format_localtime(moment, "UTC") == "1 Jul 2026, 21:30"
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


def test_write_issue_writes_three_files(rendered: RenderedIssue, tmp_path: Path) -> None:
    paths = write_issue(rendered, tmp_path)
    base = tmp_path / "digests" / "ukraine-daily"
    assert paths == (
        base / "2026-11-26T0700.html",
        base / "2026-11-26T0700.txt",
        base / "2026-11-26T0700.eml",
    )
    assert paths[0].read_text(encoding="utf-8") == rendered.html
    assert paths[1].read_text(encoding="utf-8") == rendered.text
    assert paths[2].read_bytes() == rendered.eml
    assert sorted(p.name for p in base.iterdir()) == sorted(p.name for p in paths)
