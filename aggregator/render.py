"""Digest issue → mail and web HTML (Jinja2 → MJML → mjml-python) and plain-text twins.

Everything here is deterministic: the same issue renders to byte-identical files (no
"now"), so re-rendering never churns outputs.

One rendering serves every reader: the mail version carries ``PERSONAL_LINK`` where each
reader's unsubscribe link goes, and ``message.build_message`` swaps it per recipient. The
web version (the public archive copy) is rendered without any personal link.

Escaping: feed text reaches the HTML only through Jinja2 autoescaping, and only as
element text or attributes of plain HTML inside ``<mj-text>`` (mjml re-serialises those
safely). Never pass feed data into ``mj-*`` component attributes: mjml-python writes
those back unescaped, so a ``"`` would break out of the attribute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from .config import DigestConfig, SiteConfig
from .errors import RenderError
from .files import write_atomic
from .models import PERSONAL_LINK, DigestIssue, DigestSection, RenderedIssue
from .text import one_line

DEFAULT_TEMPLATE = "digest"

# Fixed English names: strftime("%b") follows the process locale, which would make
# output depend on the machine that rendered it.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_AUTOESCAPE_SUFFIXES = (".html", ".htm", ".xml", ".mjml")

# Each probe is a full Jinja2 + mjml render; the search keeps the best fit found within these.
_MAX_BUDGET_RENDERS = 8

_PREHEADER_CHARS = 140

_INDENT = re.compile(r"\n\s+")

# A file name we write: no separators, no "..", nothing hidden.
_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# ---------------------------------------------------------------- environment


BUILTIN_TEMPLATES_DIR = Path(__file__).parent / "builtin_templates"
"""The shipped templates: a link to the top-level ``templates/`` in the source tree, whose
files the wheel carries as package data, so an installed copy renders without ``templates:``."""


def make_environment(templates_dir: Path) -> jinja2.Environment:
    """Jinja2 environment for digest templates in ``templates_dir``.

    HTML/MJML templates are autoescaped, text templates are not; undefined names fail.
    Templates not found there come from ``BUILTIN_TEMPLATES_DIR``.
    Filters: ``localtime(dt, tz)``, ``localdate(dt, tz)``, ``shorttime(dt, tz)``,
    ``host(url)``, ``safe_url(url)``, ``one_line(text)``.
    """
    search = [templates_dir]
    if BUILTIN_TEMPLATES_DIR.is_dir() and templates_dir != BUILTIN_TEMPLATES_DIR:
        search.append(BUILTIN_TEMPLATES_DIR)  # a user's directory need only hold what it overrides
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = format_localtime
    env.filters["localdate"] = format_localdate
    env.filters["shorttime"] = format_shorttime
    env.filters["host"] = display_host
    env.filters["safe_url"] = safe_url
    env.filters["one_line"] = one_line
    return env


def _autoescape(name: str | None) -> bool:
    if name is None:  # Environment.from_string: be safe
        return True
    base = name.lower().removesuffix(".j2")
    return base.endswith(_AUTOESCAPE_SUFFIXES)


def _zone(tz: str | tzinfo) -> tzinfo:
    # The digest's zone arrives as a ZoneInfo from the config; names are only for templates
    # that spell one out, e.g. {{ dt|localtime("UTC") }}.
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise RenderError(f"unknown time zone {tz!r}") from exc


def format_localtime(dt: datetime, tz: str | tzinfo) -> str:
    """``dt`` in ``tz`` as e.g. "26 Nov 2026, 09:00"."""
    local = dt.astimezone(_zone(tz))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def format_localdate(dt: datetime, tz: str | tzinfo) -> str:
    """``dt``'s calendar date in ``tz`` as e.g. "26 Nov 2026"."""
    local = dt.astimezone(_zone(tz))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def format_shorttime(dt: datetime, tz: str | tzinfo) -> str:
    """``dt`` in ``tz`` as e.g. "26 Nov, 09:00": item times, under a heading that has the year."""
    local = dt.astimezone(_zone(tz))
    return f"{local.day} {_MONTHS[local.month - 1]}, {local:%H:%M}"


def timezone_label(tz: tzinfo, at: datetime) -> str:
    """Which clock the digest's times follow, as a reader says it: "Kyiv time (EET, UTC+2)",
    "New York time (EDT, UTC-4)", "UTC". The abbreviation and offset are those at ``at``."""
    local = at.astimezone(tz)
    abbreviation = local.tzname() or ""
    parts = [abbreviation] if abbreviation.isalpha() and abbreviation != "UTC" else []
    offset = local.utcoffset() or timedelta(0)
    if offset:
        parts.append(_utc_offset(offset))
    key = getattr(tz, "key", None)
    if isinstance(key, str) and "/" in key and not key.startswith("Etc/"):
        city = key.rsplit("/", 1)[1].replace("_", " ")
        return f"{city} time ({', '.join(parts)})" if parts else f"{city} time (UTC)"
    if not parts:
        return "UTC"
    return f"{parts[0]} ({parts[1]})" if len(parts) == 2 else parts[0]


def _utc_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def display_host(url: str | None) -> str:
    """Host name of ``url`` for display, without a leading "www."; "" when there is none."""
    host = hostname(url)
    return host.removeprefix("www.")


def safe_url(url: str | None) -> str:
    """``url`` when it is an http(s) link, else "": feeds may carry javascript: or data: links,
    which escaping alone does not neutralise."""
    if not url:
        return ""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""
    return url.strip() if scheme in ("http", "https") else ""


def hostname(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


# ---------------------------------------------------------------- public URLs


def issue_url(site: SiteConfig, digest_id: str, stamp: str) -> str:
    """Where the web copy of an issue is served."""
    return f"{archive_index_url(site, digest_id)}{stamp}.html"


def archive_index_url(site: SiteConfig, digest_id: str) -> str:
    """The directory of a digest's web archive; its ``index.html`` lists the issues."""
    return f"{_site_base(site)}digests/{digest_id}/"


def _site_base(site: SiteConfig) -> str:
    return site.url if site.url.endswith("/") else site.url + "/"


# ---------------------------------------------------------------- rendering


def render_issue(
    issue: DigestIssue,
    *,
    digest: DigestConfig,
    site: SiteConfig,
    env: jinja2.Environment,
) -> RenderedIssue:
    """Render ``issue`` for mail (with ``PERSONAL_LINK``) and for the public web archive.

    The mail HTML is kept within ``digest.max_html_bytes`` (UTF-8), past which Gmail clips
    a message and hides its footer, unsubscribe link included: items are dropped from the end
    until it fits, and the returned ``issue`` is the one rendered, its ``more`` counting them.
    (A reader's own unsubscribe URL, swapped in later, is longer than ``PERSONAL_LINK`` by a
    hundred bytes or so; the default budget leaves ~12 KB below Gmail's limit for that.)
    Raises RenderError naming the template file (and line when known) for any template
    problem, with mjml's messages when MJML conversion fails, and when not even an issue
    without items fits the budget. An issue without items still renders.
    """
    templates = _Templates(env, digest.template or DEFAULT_TEMPLATE, digest, site)
    fitted, html = fit_to_budget(issue, digest.max_html_bytes, templates.mail_html)
    return RenderedIssue(
        issue=fitted,
        subject=make_subject(fitted, digest),
        html=html,
        text=templates.text(fitted, web=False),
        web_html=templates.html(fitted, web=True),
        web_text=templates.text(fitted, web=True),
    )


@dataclass(frozen=True)
class _Templates:
    """One digest's pair of templates, rendered for mail or for the web."""

    env: jinja2.Environment
    base: str
    digest: DigestConfig
    site: SiteConfig

    def mail_html(self, issue: DigestIssue) -> str:
        return self.html(issue, web=False)

    def html(self, issue: DigestIssue, *, web: bool) -> str:
        name = f"{self.base}.mjml.j2"
        return _mjml_to_html(_render_template(self.env, name, self.context(issue, web)), name)

    def text(self, issue: DigestIssue, *, web: bool) -> str:
        name = f"{self.base}.txt.j2"
        return _with_final_newline(_render_template(self.env, name, self.context(issue, web)))

    def context(self, issue: DigestIssue, web: bool) -> dict[str, Any]:
        site, digest = self.site, self.digest
        feed_url = _site_base(site) + "feed.atom"
        items = issue.items
        return {
            "issue": issue,
            "digest": digest,
            "site": site,
            "sections": tuple(s for s in issue.sections if s.items),
            "item_count": len(items),
            "subject": make_subject(issue, digest),
            "preheader": make_preheader(issue),
            "feed_url": feed_url,
            "archive_url": issue_url(site, issue.digest_id, issue.stamp),
            "archive_index_url": archive_index_url(site, issue.digest_id) + "index.html",
            "timezone_label": timezone_label(digest.timezone, issue.window_end),
            "more": issue.more,
            # Every left-out item is in the merged feed already; the next issue leads with them.
            "more_url": feed_url,
            "web": web,
            "unsubscribe_url": None if web else PERSONAL_LINK,
        }


def fit_to_budget(
    issue: DigestIssue, budget: int, render: Callable[[DigestIssue], str]
) -> tuple[DigestIssue, str]:
    """The longest prefix of ``issue``'s items whose rendering is at most ``budget`` UTF-8
    bytes, and that rendering.

    Sizes grow about linearly with the items kept, so each probe interpolates between the
    closest sizes known on either side of the budget; a handful of renders (at most
    ``_MAX_BUDGET_RENDERS`` after the first two) finds the cut, and the loop is bounded
    whatever the items look like.
    """
    html = render(issue)
    total = len(issue.items)
    size = _utf8_size(html)
    if size <= budget:
        return issue, html
    low_issue = trim_issue(issue, 0)
    low_html = render(low_issue)
    low_size = _utf8_size(low_html)
    if low_size > budget:
        raise RenderError(
            f"digest {issue.digest_id!r}: even without items the mail HTML is {low_size} bytes, "
            f"over max_html_bytes={budget}; raise it or slim the template"
        )
    low, high, high_size = 0, total, size
    for _ in range(_MAX_BUDGET_RENDERS):
        if high - low <= 1:
            break
        step = (budget - low_size) * (high - low) // max(high_size - low_size, 1)
        keep = min(max(low + step, low + 1), high - 1)
        candidate = trim_issue(issue, keep)
        candidate_html = render(candidate)
        candidate_size = _utf8_size(candidate_html)
        if candidate_size <= budget:
            low, low_size, low_issue, low_html = keep, candidate_size, candidate, candidate_html
        else:
            high, high_size = keep, candidate_size
    return low_issue, low_html


def trim_issue(issue: DigestIssue, keep: int) -> DigestIssue:
    """``issue`` with only its first ``keep`` items in reading order; the dropped ones are
    added to ``more`` and sections left without items vanish."""
    total = len(issue.items)
    if keep >= total:
        return issue
    sections: list[DigestSection] = []
    left = max(keep, 0)
    for section in issue.sections:
        items = section.items[:left]
        left -= len(items)
        if items:
            sections.append(replace(section, items=items))
    return replace(issue, sections=tuple(sections), more=issue.more + total - max(keep, 0))


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def make_subject(issue: DigestIssue, digest: DigestConfig) -> str:
    """Header-safe subject: "<digest title> — <date of window end in the digest's zone>"."""
    return one_line(f"{digest.title} — {format_localdate(issue.window_end, digest.timezone)}")


def make_preheader(issue: DigestIssue) -> str:
    """The inbox preview line: the item count and the first headlines, as plain text."""
    items = issue.items
    if not items:
        return "No new items in this period."
    head = f"{len(items)} item{'' if len(items) == 1 else 's'}: "
    titles = [one_line(item.title) for item in items[:5] if one_line(item.title)]
    text = head + " · ".join(titles)
    if len(text) <= _PREHEADER_CHARS:
        return text
    cut = text[: _PREHEADER_CHARS - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ·") + "…"


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"{_template_path(env, name)}: template not found") from exc
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or _template_path(env, name)
        raise RenderError(f"{where}:{exc.lineno}: {exc.message}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{_template_path(env, name)}: cannot read template: {exc}") from exc
    try:
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:  # from an {% include %}d template
        raise RenderError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"{template.filename}: included template not found: {exc}") from exc
    # A user template can make any filter or attribute access fail; report where, never a traceback.
    except Exception as exc:
        where = _template_location(exc.__traceback__) or template.filename or name
        kind = "" if isinstance(exc, RenderError) else f"{type(exc).__name__}: "
        raise RenderError(f"{where}: {kind}{exc}") from exc


def _template_path(env: jinja2.Environment, name: str) -> str:
    loader = env.loader
    if isinstance(loader, jinja2.FileSystemLoader) and loader.searchpath:
        return " or ".join(str(Path(directory) / name) for directory in loader.searchpath)
    return name


def _template_location(tb: TracebackType | None) -> str | None:
    """Location ("file:line") of the innermost template frame: Jinja2 rewrites tracebacks
    so that template frames carry the template's file name and line number."""
    found: str | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def mjml_to_html(source: str) -> Any:
    """mjml-python's converter, imported on first use: ~24 MB that a process which only
    fetches and publishes never needs."""
    from mjml import mjml_to_html as convert

    return convert(source)


def _mjml_to_html(source: str, name: str) -> str:
    # mjml-python fails on a missing root with an unhelpful AttributeError; say it plainly.
    if "<mjml" not in source:
        raise RenderError(f"{name}: not an MJML document (no <mjml> root element)")
    try:
        result = mjml_to_html(source)
    except Exception as exc:  # mjml-python raises bare ValueError/AssertionError etc.
        raise RenderError(f"{name}: MJML conversion failed: {exc}") from exc
    if result.errors:
        raise RenderError(f"{name}: MJML errors: " + "; ".join(str(e) for e in result.errors))
    html: str = result.html
    return _with_final_newline(_compact(html))


def _compact(html: str) -> str:
    """``html`` without the indentation mjml writes: about a kilobyte per section, and
    insignificant wherever whitespace collapses, which is everywhere but <pre>/<textarea>."""
    lowered = html.lower()
    if "<pre" in lowered or "<textarea" in lowered:
        return html
    return _INDENT.sub("\n", html)


def _with_final_newline(text: str) -> str:
    # The MIME part gets one anyway; adding it here keeps the files and the message identical.
    return text if text.endswith("\n") else text + "\n"


# ---------------------------------------------------------------- files


def write_web_copy(rendered: RenderedIssue, output_dir: Path) -> tuple[Path, Path]:
    """Write the public copy, output_dir/digests/<digest_id>/<stamp>.{html,txt}, atomically."""
    issue = rendered.issue
    directory = output_dir / "digests" / safe_file_stem(issue.digest_id)
    stamp = safe_file_stem(issue.stamp)
    paths = (directory / f"{stamp}.html", directory / f"{stamp}.txt")
    try:
        write_atomic(paths[0], rendered.web_html.encode("utf-8"))
        write_atomic(paths[1], rendered.web_text.encode("utf-8"))
    except OSError as exc:
        raise RenderError(f"{directory}: cannot write issue {stamp}: {exc}") from exc
    return paths


def write_private_copy(
    directory: Path, stamp: str, html: str, text: str, eml: bytes
) -> tuple[Path, ...]:
    """Write <directory>/<stamp>.{html,txt,eml} atomically: previews and inspection copies,
    which may name a reader, so they belong in the private state folder, never in output/."""
    stem = safe_file_stem(stamp)
    paths = (directory / f"{stem}.html", directory / f"{stem}.txt", directory / f"{stem}.eml")
    try:
        # Only the owner may list a folder of messages with addresses in them.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(paths[0], html.encode("utf-8"))
        write_atomic(paths[1], text.encode("utf-8"))
        write_atomic(paths[2], eml)
    except OSError as exc:
        raise RenderError(f"{directory}: cannot write copy {stem}: {exc}") from exc
    return paths


def safe_file_stem(name: str) -> str:
    """``name`` when it can name a file in a folder we write (an id or a stamp), else
    RenderError: one shaped like "../x" must not write elsewhere."""
    if not _FILE_STEM.fullmatch(name) or ".." in name:
        raise RenderError(f"not a safe file name: {name!r}")
    return name
