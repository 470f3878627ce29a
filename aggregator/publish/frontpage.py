"""``output/index.html``: the site's front page, the newest stories by topic and a way to
subscribe to every published feed.

Pure: planned outputs in, HTML bytes out. No script and nothing external (one request, inline
CSS), so it is fast and safe to serve anywhere. Links to our own files are relative, so the
page works under any base path. Dated by its newest story, never by "now": the same outputs
give the same bytes, and an unchanged site is not rewritten.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from aggregator.config import SiteConfig, TopicRule
from aggregator.errors import RenderError
from aggregator.models import Entry, Feed
from aggregator.publish.common import clean_text, is_absolute_iri, utc
from aggregator.publish.opml import OPML_PATH
from aggregator.publish.plan import MERGED_PATH, OutputFeed, topic_path
from aggregator.text import one_line
from aggregator.urls import public_url

INDEX_PATH = "index.html"
STATUS_PATH = "status.html"
STORIES_PER_TOPIC = 10
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"

# A feed's entry link is untrusted: only schemes that navigate somewhere harmless may be a
# link target (a "javascript:" or "data:" link would run in our site's origin).
_SAFE_SCHEME = re.compile(r"(?i)(?:https?|mailto):")


@dataclass(frozen=True)
class _Story:
    title: str
    href: str | None  # None when the entry has no safe link
    outlet: str
    published: datetime
    also: tuple[tuple[str, str | None], ...]  # (outlet, its own copy's link or None)


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    feed: OutputFeed  # offered to follow
    follow: str  # what following it gets you
    stories: tuple[_Story, ...]


def render_index(
    outputs: Sequence[OutputFeed],
    *,
    site: SiteConfig,
    topics: Sequence[TopicRule],
    sources: Sequence[Feed],
    per_topic: int = STORIES_PER_TOPIC,
) -> bytes:
    """The front page for the live ``outputs`` (archive documents are left out)."""
    live = [o for o in outputs if not o.archive]
    outlets = {feed.url: feed for feed in sources}
    sections = _sections(live, topics, outlets, max(per_topic, 0))
    title = _text(site.title) or "News"
    page = _PAGE.format(
        lang=_attr(site.language or "en"),
        title=html.escape(title),
        discovery="\n".join(_discovery(o) for o in live),
        dated=_dated(live),
        nav=_nav(sections),
        sections="\n".join(_section_html(s) for s in sections),
        feeds="\n".join(_subscribe_item(o) for o in live),
        status=_attr(STATUS_PATH),
        opml=_attr(OPML_PATH),
    )
    try:
        return page.encode("utf-8")
    except UnicodeEncodeError as exc:  # clean_text drops surrogates; this is a backstop
        raise RenderError(f"cannot render {INDEX_PATH}: {exc}") from exc


def json_twin(path: str) -> str:
    """Where the JSON Feed with the same entries as the Atom feed at ``path`` is published."""
    return path.removesuffix(".atom") + ".json"


def safe_link(link: str | None) -> str | None:
    """``link`` when it is an absolute http, https or mailto URL, else None."""
    value = (link or "").strip()
    if not _SAFE_SCHEME.match(value) or not is_absolute_iri(value):
        return None
    return value


# ---------------------------------------------------------------- choosing stories


def _sections(
    live: Sequence[OutputFeed],
    topics: Sequence[TopicRule],
    outlets: Mapping[str, Feed],
    limit: int,
) -> list[_Section]:
    """One section per published topic, then the merged feed's stories in no topic ("Other
    news"; "Latest" when there are no topics). Each story appears once, under its first topic."""
    by_path = {o.path: o for o in live}
    shown: set[str] = set()
    sections: list[_Section] = []
    for topic in topics:
        output = by_path.get(topic_path(topic.id))
        if output is None:
            continue
        stories = _stories(output, outlets, shown, limit)
        title = _text(topic.title) or topic.id
        sections.append(_Section(f"topic-{topic.id}", title, output, "Follow", stories))
    merged = by_path.get(MERGED_PATH)
    if merged is None:
        return sections
    in_topics = {_identity(e) for s in sections for e in s.feed.entries}
    rest = _stories(merged, outlets, shown | in_topics, limit)
    if not sections:
        return [_Section("latest", "Latest", merged, "Follow", rest)]
    if rest:
        # The merged feed is the only one these stories are in.
        sections.append(_Section("other", "Other news", merged, "Follow all news", rest))
    return sections


def _stories(
    output: OutputFeed, outlets: Mapping[str, Feed], shown: set[str], limit: int
) -> tuple[_Story, ...]:
    """The newest ``limit`` stories of ``output`` not yet on the page; adds them to ``shown``."""
    groups: dict[str, list[Entry]] = {}
    for entry in output.entries:  # newest first, as planned
        groups.setdefault(_identity(entry), []).append(entry)
    stories: list[_Story] = []
    for identity, members in groups.items():
        if len(stories) >= limit:
            break
        if identity not in shown:
            shown.add(identity)
            stories.append(_story(members, output, outlets))
    return tuple(stories)


def _identity(entry: Entry) -> str:
    if entry.story_id:
        return f"story:{entry.story_id}"
    if entry.article_id:
        return f"article:{entry.article_id}"
    return f"entry:{entry.feed_url}\n{entry.entry_id}"


def _story(members: Sequence[Entry], output: OutputFeed, outlets: Mapping[str, Feed]) -> _Story:
    """The newest report stands for the story; the outlets of every other report (other
    entries, other feeds' copies, a collapsed story's related reports) are named as "also"."""
    lead = members[0]
    href = safe_link(lead.link)
    outlet = _outlet(lead, outlets)
    others: list[Entry] = list(members[1:])
    for member in members:
        others += [*output.also.get(member.key, ()), *output.related.get(member.key, ())]
    also: dict[str, str | None] = {}
    for other in others:
        name = _outlet(other, outlets)
        if name != outlet and name not in also:
            link = safe_link(other.link)
            also[name] = link if link != href else None
    # A title-less item is named by where it leads, but only by a link we would follow.
    title = _text(lead.title) or _text(href or "") or "Untitled"
    return _Story(title, href, outlet, utc(lead.published), tuple(also.items()))


def _outlet(entry: Entry, outlets: Mapping[str, Feed]) -> str:
    """The name of the feed an entry came from, never its (maybe credentialed) URL."""
    feed = outlets.get(entry.feed_url)
    name = feed.display_title if feed is not None else entry.feed_title
    return _text(name or public_url(entry.feed_url))


def _text(value: str) -> str:
    return one_line(clean_text(value))


# ---------------------------------------------------------------- HTML


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _href(path: str) -> str:
    """A relative link to one of our files, escaped so no path can read as a scheme."""
    return _attr(quote(path, safe="/"))


def _discovery(output: OutputFeed) -> str:
    title = _feed_title(output)
    return (
        f'<link rel="alternate" type="{ATOM_TYPE}" title="{_attr(title)}"'
        f' href="{_href(output.path)}">\n'
        f'<link rel="alternate" type="{JSON_FEED_TYPE}" title="{_attr(title)} (JSON Feed)"'
        f' href="{_href(json_twin(output.path))}">'
    )


def _dated(live: Iterable[OutputFeed]) -> str:
    newest = max((utc(e.published) for o in live for e in o.entries), default=None)
    if newest is None:
        return "<p class=dated>No stories yet.</p>"
    return f"<p class=dated>Newest story: {_time(newest)}</p>"


def _nav(sections: Sequence[_Section]) -> str:
    if len(sections) < 2:
        return ""
    items = "".join(
        f'<li><a href="#{_attr(s.anchor)}">{html.escape(s.title)}</a></li>' for s in sections
    )
    return f'<nav aria-label="Topics"><ul>{items}</ul></nav>'


def _section_html(section: _Section) -> str:
    heading = f"h-{section.anchor}"
    follow = f"<p class=follow>{section.follow}: {_feed_links(section.feed)}</p>"
    if section.stories:
        body = "<ol class=stories>\n" + "\n".join(_story_html(s) for s in section.stories)
        body += "\n</ol>"
    else:
        body = "<p class=empty>No stories yet.</p>"
    return (
        f'<section id="{_attr(section.anchor)}" aria-labelledby="{_attr(heading)}">\n'
        f'<h2 id="{_attr(heading)}">{html.escape(section.title)}</h2>\n'
        f"{follow}\n{body}\n</section>"
    )


def _story_html(story: _Story) -> str:
    title = html.escape(story.title)
    headline = f'<a href="{_attr(story.href)}">{title}</a>' if story.href else title
    meta = f"{html.escape(story.outlet)} · {_time(story.published)}"
    if story.also:
        names = ", ".join(_also_html(name, link) for name, link in story.also)
        meta += f' <span class="also">· also: {names}</span>'
    return f"<li><h3>{headline}</h3>\n<p class=meta>{meta}</p></li>"


def _also_html(name: str, link: str | None) -> str:
    if link is None:
        return html.escape(name)
    return f'<a href="{_attr(link)}">{html.escape(name)}</a>'


def _feed_links(output: OutputFeed) -> str:
    # Read out of context (a screen reader's list of links), "Atom" alone names no feed.
    of = f"<span class=vh> feed: {html.escape(_feed_title(output))}</span>"
    return (
        f'<a href="{_href(output.path)}" type="{ATOM_TYPE}">Atom{of}</a> · '
        f'<a href="{_href(json_twin(output.path))}" type="{JSON_FEED_TYPE}">JSON Feed{of}</a>'
    )


def _feed_title(output: OutputFeed) -> str:
    return _text(output.title) or output.path


def _subscribe_item(output: OutputFeed) -> str:
    title = html.escape(_feed_title(output))
    return f"<li><span class=feed>{title}</span> — {_feed_links(output)}</li>"


def _time(moment: datetime) -> str:
    stamp = moment.strftime("%Y-%m-%d %H:%M")
    return f'<time datetime="{moment.strftime("%Y-%m-%dT%H:%MZ")}">{stamp} UTC</time>'


# Colours meet WCAG AA (text 4.5:1, focus ring 3:1) on their background in both schemes.
_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
{discovery}
<style>
:root {{ --bg: #fff; --fg: #1a1a1a; --muted: #545454; --link: #0a58ca; --visited: #6f42c1;
  --rule: #d6d6d6; --focus: #0a58ca; }}
@media (prefers-color-scheme: dark) {{
  :root {{ --bg: #121212; --fg: #ececec; --muted: #b5b5b5; --link: #8ab4f8; --visited: #c9a3f9;
    --rule: #3b3b3b; --focus: #8ab4f8; }}
}}
* {{ box-sizing: border-box; }}
html {{ -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }}
body {{ margin: 0; background: var(--bg); color: var(--fg);
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
.wrap {{ max-width: 75rem; margin: 0 auto; padding: 0 1rem; }}
a {{ color: var(--link); text-underline-offset: .15em; }}
a:visited {{ color: var(--visited); }}
a:focus-visible {{ outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 2px; }}
.skip {{ position: absolute; left: -100vw; }}
.skip:focus {{ left: 1rem; top: .5rem; padding: .5rem .75rem; background: var(--bg); }}
header {{ padding: 1.25rem 0 .5rem; border-bottom: 1px solid var(--rule); }}
h1 {{ font-size: 1.75rem; line-height: 1.2; margin: 0; overflow-wrap: anywhere; }}
.dated {{ color: var(--muted); margin: .25rem 0 .5rem; font-size: .9rem; }}
nav ul {{ list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: 0 1.25rem; }}
nav a {{ display: inline-block; padding: .3rem 0; }}
main {{ display: grid; gap: 0 2.5rem;
  grid-template-columns: repeat(auto-fit, minmax(min(100%, 21rem), 1fr)); }}
section {{ padding: 1.25rem 0 .5rem; min-width: 0; max-width: 42rem; }}
h2 {{ font-size: 1.35rem; line-height: 1.25; margin: 0; overflow-wrap: anywhere; }}
.follow {{ font-size: .875rem; color: var(--muted); margin: .15rem 0 .5rem; }}
.stories {{ list-style: none; margin: 0; padding: 0; }}
.stories li {{ padding: .6rem 0; border-top: 1px solid var(--rule); }}
h3 {{ font-size: 1.05rem; line-height: 1.35; font-weight: 600; margin: 0;
  overflow-wrap: anywhere; }}
h3 a {{ text-decoration: none; }}
h3 a:hover {{ text-decoration: underline; }}
.meta {{ font-size: .875rem; color: var(--muted); margin: .2rem 0 0; overflow-wrap: anywhere; }}
time, .follow a, aside a {{ white-space: nowrap; }}
.empty {{ color: var(--muted); }}
.vh {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
  white-space: nowrap; }}
aside, footer {{ border-top: 1px solid var(--rule); padding: 1rem 0; }}
aside h2 {{ margin-bottom: .5rem; }}
aside ul {{ margin: 0; padding-left: 1.25rem; }}
aside li {{ padding: .2rem 0; }}
.feed {{ overflow-wrap: anywhere; }}
footer ul {{ list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: .25rem 1.5rem; }}
</style>
</head>
<body>
<a class="skip" href="#main">Skip to stories</a>
<div class="wrap">
<header>
<h1>{title}</h1>
{dated}
{nav}
</header>
<main id="main">
{sections}
</main>
<aside aria-labelledby="subscribe">
<h2 id="subscribe">Subscribe</h2>
<ul>
{feeds}
</ul>
</aside>
<footer>
<ul>
<li><a href="{status}">Source status</a></li>
<li><a href="{opml}" type="text/x-opml">All sources (OPML)</a></li>
</ul>
</footer>
</div>
</body>
</html>
"""
