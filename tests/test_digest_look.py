"""How the digest mail looks in a real browser engine: headless Chromium at phone (375 px) and
mail-pane (600 px) widths. No horizontal scrolling, and every item's link is really a link.

The mail is loaded into an <iframe srcdoc> of the wanted width inside a host page: headless
Chromium will not make its window narrower than 500 px, but an iframe is any width. A script
in the host page writes the measurements into the DOM, which --dump-dom prints.

Skipped, with the reason, where Chromium is not installed (CI installs it).

The issue builders here are shared with docs/screenshots.py and benchmarks/digest_size.py.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import html as lxml_html

from aggregator.config import DigestConfig, SiteConfig
from aggregator.models import DigestIssue, DigestItem, DigestSection, EntryKey
from aggregator.render import make_environment, render_issue
from aggregator.text import html_to_text, shorten

from .browser import CHROMIUM_TIMEOUT, chromium_command

ROOT = Path(__file__).resolve().parents[1]
NEWS_WEEK = ROOT.parent / "shared" / "corpus" / "news-week" / "items.jsonl"

SITE = SiteConfig(title="War Desk", url="https://news.example.org/", author="War Desk editors")
DIGEST = DigestConfig(
    id="ukraine-daily",
    title="Ukraine war — daily digest",
    schedule="0 7 * * *",
    timezone=ZoneInfo("Europe/Kyiv"),
    to=("editor@example.org",),
)
WINDOW_END = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)

# ---------------------------------------------------------------- issues


_OUTLETS = (
    "Example Wire",
    "Kyiv Ledger",
    "Українська служба новин",
    "Northern Herald Europe",
    "Тиждень Онлайн",
)
_TITLES = (
    "Air defence intercepts drones over Kyiv region overnight, officials say; no casualties",
    "Уряд ухвалив рішення про відновлення енергетичної інфраструктури в прифронтових громадах",
    "Parliament debates a long-delayed reform of military mobilisation rules and exemptions",
    "Зеленський провів зустріч із представниками міжнародних фінансових організацій у Києві",  # noqa: RUF001 - Ukrainian
    "Grain corridor: ships leave Odesa ports as insurers lower the war-risk premiums again",
    "Європейська комісія запропонувала новий пакет підтримки для відбудови мостів і доріг",  # noqa: RUF001 - Ukrainian
    "Kharkiv metro reopens after repairs; city officials describe the night's damage",
    "Нічна атака на Дніпро: рятувальники завершили розбір завалів пошкодженого будинку",
    # feeds do use a bare URL as a title: one long word that must wrap, not widen the mail
    "https://www.example-news.com/uk/live/2026/11/26/онлайн-трансляція-подій-дня-оновлюється",
)
_SUMMARY = (
    "Officials said the work would continue through the winter and that more details would be "
    "published once the assessment is complete. Residents were asked to follow updates from "
    "the regional administration. Усі служби працюють у посиленому режимі, повідомили в "  # noqa: RUF001 - Ukrainian
    "адміністрації; деталі з'являться пізніше сьогодні ввечері."
)
_SECTIONS = (("ukraine-war", "Ukraine war"), ("europe", "Europe"), (None, "Other"))


def synthetic_issue(count: int, *, summary_chars: int = 280, more: int = 0) -> DigestIssue:
    """A realistic-looking issue that is ours to publish: invented headlines (long, English
    and Ukrainian), invented outlets, long and unbreakable URLs, some cross-outlet ``also``."""
    items = [_synthetic_item(n, summary_chars) for n in range(count)]
    per = max(1, -(-count // len(_SECTIONS)))
    sections = tuple(
        DigestSection(topic_id, title, tuple(items[i * per : (i + 1) * per]))
        for i, (topic_id, title) in enumerate(_SECTIONS)
    )
    return _issue(tuple(s for s in sections if s.items), more)


def _synthetic_item(n: int, summary_chars: int) -> DigestItem:
    title = _TITLES[n % len(_TITLES)]
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"statya-{n}"
    link = f"https://www.example-news.com/uk/news/2026/11/26/{slug}-{n}?utm_source=rss&id={n}"
    if n % 5 == 3:  # the kind of link a feed proxy hands out: one unbreakable token
        link = f"https://feeds.example-proxy.net/~r/world/~3/{'Zx9' * 40}/{n}"
    return DigestItem(
        key=EntryKey("https://feeds.example-news.com/rss", f"item-{n}"),
        title=title,
        link=link,
        source=_OUTLETS[n % len(_OUTLETS)],
        published=WINDOW_END - timedelta(minutes=37 * n + 11),
        summary_text=shorten(_SUMMARY, summary_chars),
        also=(_OUTLETS[(n + 1) % len(_OUTLETS)], _OUTLETS[(n + 2) % len(_OUTLETS)])
        if n % 4 == 1
        else (),
    )


def corpus_issue(count: int, path: Path = NEWS_WEEK) -> DigestIssue:
    """``count`` real items from the news-week corpus (read at run time, never copied into the
    repository: the corpus is not ours to republish), sorted into topics by a few keywords."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    ukraine = re.compile(r"ukrain|russia|kyiv|kremlin|putin|zelensk|navalny", re.IGNORECASE)
    mideast = re.compile(r"gaza|israel|hamas|palestin|houthi|iran", re.IGNORECASE)
    chosen: dict[str, list[DigestItem]] = {"ukraine-war": [], "middle-east": [], "other": []}
    for row in rows[:count]:
        text = f"{row['title']} {row['summary']}"
        key = "ukraine-war" if ukraine.search(text) else "middle-east"
        key = key if key == "ukraine-war" or mideast.search(text) else "other"
        chosen[key].append(
            DigestItem(
                key=EntryKey(row["source_feed_url"], row["uid"]),
                title=row["title"],
                link=row["link"],
                source=row["source"],
                published=datetime.fromisoformat(row["published"].replace("Z", "+00:00")),
                summary_text=shorten(html_to_text(row["summary"]), 280),
            )
        )
    titles = {"ukraine-war": "Ukraine war", "middle-east": "Middle East", "other": "Other"}
    sections = tuple(
        DigestSection(None if key == "other" else key, titles[key], tuple(items))
        for key, items in chosen.items()
        if items
    )
    return _issue(sections, 0, end=max(i.published for s in sections for i in s.items))


def _issue(
    sections: tuple[DigestSection, ...], more: int, end: datetime = WINDOW_END
) -> DigestIssue:
    stamp = end.astimezone(DIGEST.timezone).strftime("%Y-%m-%dT%H%M")
    return DigestIssue(
        digest_id=DIGEST.id,
        title=DIGEST.title,
        stamp=stamp,
        window_start=end - timedelta(days=1),
        window_end=end,
        sections=sections,
        more=more,
    )


# ---------------------------------------------------------------- Chromium


@dataclass(frozen=True)
class Layout:
    scroll_width: int  # of the mail's document
    client_width: int  # the width it was given
    scroll_height: int  # the height it needs
    hrefs: tuple[str, ...]  # every <a href> as written


_MEASURE = """
document.getElementById("mail").addEventListener("load", function () {
  var doc = this.contentDocument, root = doc.documentElement;
  var hrefs = Array.prototype.map.call(doc.querySelectorAll("a[href]"), function (a) {
    return a.getAttribute("href");
  });
  document.getElementById("result").textContent = JSON.stringify({
    scroll: Math.max(root.scrollWidth, doc.body.scrollWidth),
    client: root.clientWidth,
    height: Math.max(root.scrollHeight, doc.body.scrollHeight),
    hrefs: hrefs
  });
});
"""


def measure(binary: str, page: str, width: int) -> Layout:
    """Load ``page`` at ``width`` CSS pixels and report its layout width and links."""
    host = (
        "<!doctype html><html><head><meta charset='utf-8'><style>body{margin:0}"
        "iframe{border:0;display:block}</style></head><body>"
        f'<iframe id="mail" width="{width}" height="2000" srcdoc="{html.escape(page)}"></iframe>'
        f'<pre id="result"></pre><script>{_MEASURE}</script></body></html>'
    )
    with tempfile.TemporaryDirectory(prefix="digest-look-") as tmp:
        page_path = Path(tmp) / "host.html"
        page_path.write_text(host, encoding="utf-8")
        command = chromium_command(
            binary,
            Path(tmp) / "profile",
            "--window-size=800,2200",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page_path.as_uri(),
        )
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False
        )
    result = lxml_html.fromstring(done.stdout or "<p></p>").xpath("//pre[@id='result']")
    text = result[0].text_content() if result else ""
    assert text, f"Chromium reported nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    data = json.loads(text)
    return Layout(data["scroll"], data["client"], data["height"], tuple(data["hrefs"]))


def realistic_issue(name: str) -> DigestIssue:
    if name == "synthetic":
        return synthetic_issue(30, more=4)
    if not NEWS_WEEK.exists():
        pytest.skip(f"needs the news-week corpus at {NEWS_WEEK} (present in CI)")
    return corpus_issue(40)


@pytest.mark.slow
@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("name", ["synthetic", "news-week"])
def test_mail_fits_the_width_and_links_every_item(chromium: str, name: str, width: int) -> None:
    issue = realistic_issue(name)
    env = make_environment(ROOT / "templates")
    rendered = render_issue(issue, digest=DIGEST, site=SITE, env=env)
    assert rendered.issue.items == issue.items  # (nothing was cut from these)
    layout = measure(chromium, rendered.html, width)
    assert layout.client_width == width
    assert layout.scroll_width <= width, f"{name} scrolls sideways at {width}px"
    missing = [i.link for i in issue.items if i.link and i.link not in layout.hrefs]
    assert missing == []


@pytest.mark.slow
def test_the_measurement_sees_sideways_scrolling(chromium: str) -> None:
    # The check above can fail: a page wider than the frame is reported as such.
    wide = "<!doctype html><html><body><div style='width:900px'>wide</div></body></html>"
    layout = measure(chromium, wide, 375)
    assert layout.scroll_width > 375
