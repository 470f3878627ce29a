"""The public web archive of a digest: ``output/digests/<id>/index.html`` (the past issues,
newest first) and ``issues.atom`` (an Atom feed of them), beside the issues' web copies
that ``render.write_web_copy`` writes.

Like every file in ``output/``, these name no reader and carry no token; they are
deterministic (no "generated at now"), written atomically, and left alone when unchanged.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from lxml import etree

from .config import DigestConfig, SiteConfig
from .errors import RenderError
from .files import write_atomic
from .render import archive_index_url, format_localtime, issue_url, safe_file_stem

INDEX_NAME = "index.html"
FEED_NAME = "issues.atom"
ATOM_TYPE = "application/atom+xml"
_A = "{http://www.w3.org/2005/Atom}"

# Ids embed this year for good: a tag: IRI must never change once published.
TAG_YEAR = 2026
# An archive without issues has nothing to date it by; a fixed instant keeps its bytes stable.
EMPTY_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

# Characters XML 1.0 forbids; a digest title from YAML could carry one.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_STYLE = """\
:root { color-scheme: light dark; }
body { margin: 0; padding: 24px 16px 48px; background: #eef1f5; color: #1f2933;
  font: 16px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 600px; margin: 0 auto; }
a { color: #1d4ed8; }
h1 { margin: 4px 0 8px; font-size: 26px; line-height: 1.25; }
.site { margin: 0; font-size: 13px; letter-spacing: 1px; text-transform: uppercase; }
ol { margin: 24px 0 0; padding: 0; list-style: none; }
li { padding: 12px 0; border-top: 1px solid #d9dee5; overflow-wrap: anywhere; }
.meta { color: #616e7c; font-size: 14px; }
@media (prefers-color-scheme: dark) {
  body { background: #0b1220; color: #e2e8f0; }
  a { color: #93c5fd; }
  li { border-color: #273246; }
  .meta { color: #a3afbf; }
}
"""


@dataclass(frozen=True)
class ArchivedIssue:
    """An issue as listed in the archive; its web copy is ``<stamp>.html`` beside the index."""

    digest_id: str
    stamp: str
    subject: str
    window_end: datetime
    item_count: int


def write_archive(
    output_dir: Path,
    site: SiteConfig,
    digest: DigestConfig,
    issues: Sequence[ArchivedIssue],
) -> list[Path]:
    """Write ``digests/<digest.id>/index.html`` and ``issues.atom`` for ``issues`` (in any
    order); returns the paths that changed."""
    ordered = newest_first(digest.id, issues)
    directory = output_dir / "digests" / safe_file_stem(digest.id)
    files = {
        directory / INDEX_NAME: render_index(site, digest, ordered),
        directory / FEED_NAME: render_issues_feed(site, digest, ordered),
    }
    changed: list[Path] = []
    for path, data in files.items():
        try:
            if write_atomic(path, data):
                changed.append(path)
        except OSError as exc:
            raise RenderError(f"cannot write {path}: {exc}") from exc
    return changed


def remove_issue_files(output_dir: Path, digest_id: str, stamps: Iterable[str]) -> list[Path]:
    """Delete ``<output_dir>/digests/<digest_id>/<stamp>.{html,txt,eml}`` of pruned issues (the
    web copies; given the state folder, the private copies); returns the paths removed."""
    directory = output_dir / "digests" / safe_file_stem(digest_id)
    removed: list[Path] = []
    for stamp in stamps:
        for suffix in (".html", ".txt", ".eml"):
            path = directory / f"{safe_file_stem(stamp)}{suffix}"
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RenderError(f"cannot remove {path}: {exc}") from exc
            removed.append(path)
    return removed


def newest_first(digest_id: str, issues: Sequence[ArchivedIssue]) -> list[ArchivedIssue]:
    """``issues`` newest first (window end, then stamp), each stamp once; RenderError for an
    issue of another digest or a stamp that cannot name a file."""
    by_stamp: dict[str, ArchivedIssue] = {}
    for issue in issues:
        if issue.digest_id != digest_id:
            raise RenderError(f"issue {issue.stamp!r} of {issue.digest_id!r} in {digest_id!r}")
        by_stamp[safe_file_stem(issue.stamp)] = issue
    return sorted(by_stamp.values(), key=lambda i: (_utc(i.window_end), i.stamp), reverse=True)


# ---------------------------------------------------------------- index.html


def render_index(site: SiteConfig, digest: DigestConfig, issues: Sequence[ArchivedIssue]) -> bytes:
    """The archive's front page: a small, self-contained HTML list of ``issues`` as given."""
    e = html.escape
    title = f"{digest.title} — past issues"
    rows = [_index_row(issue, digest) for issue in issues]
    listing = f"<ol>\n{''.join(rows)}</ol>" if rows else "<p>No issues yet.</p>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{e(title)}</title>
<link rel="alternate" type="{ATOM_TYPE}" title="{e(digest.title)}" href="{FEED_NAME}">
<style>
{_STYLE}</style>
</head>
<body>
<main>
<p class="site"><a href="{e(site.url)}">{e(site.title)}</a></p>
<h1>{e(digest.title)}</h1>
<p class="meta">Past issues, newest first. New ones as they appear:
<a href="{FEED_NAME}">issue feed</a>. Every item as it arrives:
<a href="{e(site.url)}feed.atom">merged feed</a>.</p>
{listing}
</main>
</body>
</html>
""".encode()


def _index_row(issue: ArchivedIssue, digest: DigestConfig) -> str:
    stamp = html.escape(issue.stamp)
    when = html.escape(format_localtime(issue.window_end, digest.timezone))
    count = f"{issue.item_count} item{'' if issue.item_count == 1 else 's'}"
    return (
        f'<li><a href="{stamp}.html">{when}</a><br>\n'
        f'<span class="meta">{html.escape(issue.subject)} · {count} · '
        f'<a href="{stamp}.txt">plain text</a></span></li>\n'
    )


# ---------------------------------------------------------------- issues.atom


def render_issues_feed(
    site: SiteConfig, digest: DigestConfig, issues: Sequence[ArchivedIssue]
) -> bytes:
    """Atom 1.0 (RFC 4287) feed of ``issues`` as given, each entry linking to its web copy."""
    try:
        generator = _feed_generator(site, digest, issues)
        raw: bytes = generator.atom_str(pretty=False)
    except (ValueError, TypeError) as exc:
        raise RenderError(f"cannot render the issue feed of {digest.id!r}: {exc}") from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    root = etree.fromstring(raw, parser)
    # feedgen 1.0 drops the attributes of entry links but href; each entry has the one, to HTML.
    for link in root.iterfind(f"{_A}entry/{_A}link"):
        link.set("rel", "alternate")
        link.set("type", "text/html")
    return etree.tostring(
        root.getroottree(), pretty_print=True, xml_declaration=True, encoding="UTF-8"
    )


def issue_tag(site: SiteConfig, digest_id: str, stamp: str | None = None) -> str:
    """Stable ``tag:`` IRI (RFC 4151) of a digest's archive, or of one issue in it: it stays
    the same when the site moves to another path or scheme."""
    tail = f"/{stamp}" if stamp else ""
    return f"tag:{_tag_authority(site)},{TAG_YEAR}:digests/{digest_id}{tail}"


def _feed_generator(site: SiteConfig, digest: DigestConfig, issues: Sequence[ArchivedIssue]) -> Any:
    fg = FeedGenerator()
    index = archive_index_url(site, digest.id)
    fg.id(issue_tag(site, digest.id))
    fg.title(_clean(digest.title) or digest.id)
    fg.subtitle(_clean(f"Issues of {digest.title} from {site.title}"))
    fg.link(href=index + FEED_NAME, rel="self", type=ATOM_TYPE)
    fg.link(href=index + INDEX_NAME, rel="alternate", type="text/html")
    fg.author({"name": _clean(site.author) or _clean(site.title) or "aggregator"})
    fg.language("en")
    fg.updated(max((_utc(i.window_end) for i in issues), default=EMPTY_UPDATED))
    fg.generator("aggregator")
    for issue in issues:
        fe = fg.add_entry(order="append")
        fe.id(issue_tag(site, digest.id, issue.stamp))
        fe.title(_clean(issue.subject) or issue.stamp)
        fe.link(href=issue_url(site, digest.id, issue.stamp), rel="alternate", type="text/html")
        fe.updated(_utc(issue.window_end))
        fe.published(_utc(issue.window_end))
        count = f"{issue.item_count} item{'' if issue.item_count == 1 else 's'}"
        fe.summary(_clean(f"{count}, up to {format_localtime(issue.window_end, digest.timezone)}"))
    return fg


def _tag_authority(site: SiteConfig) -> str:
    # tag: needs an ASCII DNS name; ".invalid" is reserved, so it never collides with a real one.
    try:
        host = (urlsplit(site.url).hostname or "").encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        host = ""
    return host or "aggregator.invalid"


def _clean(value: str) -> str:
    return _XML_ILLEGAL.sub("", value)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # the contract says aware; naive values are taken as UTC
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
