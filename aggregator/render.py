"""Digest issue → HTML (Jinja2 → MJML → mjml-python), plain-text twin and MIME message.

Everything here is deterministic: the same issue renders to byte-identical files and
message (no "now", no random MIME boundary), so re-rendering never churns outputs.

Escaping: feed text reaches the HTML only through Jinja2 autoescaping, and only as
element text or attributes of plain HTML inside ``<mj-text>`` (mjml re-serialises those
safely). Never pass feed data into ``mj-*`` component attributes: mjml-python writes
those back unescaped, so a ``"`` would break out of the attribute.
"""

from __future__ import annotations

import email.errors
import email.policy
import hashlib
from collections.abc import Mapping
from datetime import datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from mjml import mjml_to_html

from .config import DigestConfig, SiteConfig
from .errors import RenderError
from .files import write_atomic
from .models import DigestIssue, RenderedIssue
from .text import one_line

DEFAULT_TEMPLATE = "digest"

# Fixed English names: strftime("%b") follows the process locale, which would make
# output depend on the machine that rendered it.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_AUTOESCAPE_SUFFIXES = (".html", ".htm", ".xml", ".mjml")

# ---------------------------------------------------------------- environment


BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
"""The templates shipped in the source tree (top-level ``templates/``)."""


def make_environment(templates_dir: Path) -> jinja2.Environment:
    """Jinja2 environment for digest templates in ``templates_dir``.

    HTML/MJML templates are autoescaped, text templates are not; undefined names fail.
    Templates not found there come from ``BUILTIN_TEMPLATES_DIR``.
    Filters: ``localtime(dt, tz)``, ``localdate(dt, tz)``, ``host(url)``, ``safe_url(url)``,
    ``one_line(text)``.
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
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise RenderError(f"unknown time zone {tz!r}") from exc


def format_localtime(dt: datetime, tz: str | tzinfo) -> str:
    """``dt`` in ``tz`` as e.g. "26 Nov 2026, 09:00"."""
    local = dt.astimezone(_zone(tz))
    return f"{format_localdate(local, local.tzinfo or tz)}, {local:%H:%M}"


def format_localdate(dt: datetime, tz: str | tzinfo) -> str:
    """``dt``'s calendar date in ``tz`` as e.g. "26 Nov 2026"."""
    local = dt.astimezone(_zone(tz))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def display_host(url: str | None) -> str:
    """Host name of ``url`` for display, without a leading "www."; "" when there is none."""
    host = _hostname(url)
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


def _hostname(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


# ---------------------------------------------------------------- rendering


def render_issue(
    issue: DigestIssue,
    *,
    digest: DigestConfig,
    site: SiteConfig,
    sender: str,
    env: jinja2.Environment,
) -> RenderedIssue:
    """Render ``issue`` to HTML, plain text and a multipart/alternative message.

    Raises RenderError naming the template file (and line when known) for any
    template problem, and with mjml's messages when MJML conversion fails.
    An issue without items still renders; deciding not to send is the caller's job.
    """
    base = digest.template or DEFAULT_TEMPLATE
    subject = make_subject(issue, digest)
    context: dict[str, Any] = {
        "issue": issue,
        "digest": digest,
        "site": site,
        "sections": issue.sections,
        "item_count": len(issue.items),
        "subject": subject,
        "feed_url": site.url + "feed.atom",
    }
    mjml_source = _render_template(env, f"{base}.mjml.j2", context)
    text = _with_final_newline(_render_template(env, f"{base}.txt.j2", context))
    html = _mjml_to_html(mjml_source, f"{base}.mjml.j2")
    message_id = make_message_id(issue, site, text)
    message = build_message(
        subject=subject,
        sender=sender,
        to=digest.to,
        date=issue.window_end,
        message_id=message_id,
        list_id=f"<{issue.digest_id}.{_message_host(site)}>",
        digest_id=issue.digest_id,
        text=text,
        html=html,
    )
    try:
        eml = message.as_bytes()
    except (UnicodeError, ValueError) as exc:
        raise RenderError(f"cannot build message for digest {issue.digest_id!r}: {exc}") from exc
    return RenderedIssue(
        issue=issue,
        subject=subject,
        html=html,
        text=text,
        eml=eml,
        message_id=message_id,
    )


def make_subject(issue: DigestIssue, digest: DigestConfig) -> str:
    """Header-safe subject: "<digest title> — <date of window end in the digest's zone>"."""
    return one_line(f"{digest.title} — {format_localdate(issue.window_end, digest.timezone)}")


def make_message_id(issue: DigestIssue, site: SiteConfig, text: str) -> str:
    """Deterministic Message-ID: the same issue content always gets the same id."""
    digest_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"<{issue.digest_id}.{issue.stamp}.{digest_hash}@{_message_host(site)}>"


def _message_host(site: SiteConfig) -> str:
    """The site's host as ASCII (IDNA) for Message-ID and List-Id, which must be 7-bit:
    a raw "новини.укр" would make the message unencodable."""
    try:
        host = _hostname(site.url).encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDNA name (e.g. an empty label)
        host = ""
    # ".invalid" (RFC 2606) rather than a made-up real-looking domain.
    return host or "aggregator.invalid"


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
    return _with_final_newline(html)


def _with_final_newline(text: str) -> str:
    # The MIME part gets one anyway; adding it here keeps the files and the message identical.
    return text if text.endswith("\n") else text + "\n"


# ---------------------------------------------------------------- message


def build_message(
    *,
    subject: str,
    sender: str,
    to: tuple[str, ...],
    date: datetime,
    message_id: str,
    list_id: str,
    digest_id: str,
    text: str,
    html: str,
) -> EmailMessage:
    """multipart/alternative (text/plain, then text/html), both UTF-8 quoted-printable.

    Quoted-printable keeps the message 7-bit clean (no 8BITMIME needed) and, because
    QP never emits "==", lets us use a fixed boundary that cannot occur in a body.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    try:
        message["Subject"] = subject
        message["From"] = sender
        message["To"] = ", ".join(to)
        message["Date"] = format_datetime(date)
        message["Message-ID"] = message_id
        message["List-Id"] = list_id
        message["X-Aggregator-Digest"] = digest_id
        message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    except (ValueError, TypeError, IndexError, AttributeError, email.errors.MessageError) as exc:
        # e.g. a header value with a line break, or an address that does not parse (the
        # stdlib address parser fails on group syntax like "Desk: news; <a@b>" with an
        # AttributeError)
        raise RenderError(f"cannot build message for digest {digest_id!r}: {exc}") from exc
    # The default boundary is random; derive it from the content so bytes are reproducible.
    seed = hashlib.sha256(f"{message_id}\0{text}\0{html}".encode()).hexdigest()[:32]
    message.set_boundary(f"=={seed}==")
    return message


def write_issue(rendered: RenderedIssue, output_dir: Path) -> tuple[Path, Path, Path]:
    """Write output_dir/digests/<digest_id>/<stamp>.{html,txt,eml} atomically."""
    directory = output_dir / "digests" / rendered.issue.digest_id
    stamp = rendered.issue.stamp
    html_path = directory / f"{stamp}.html"
    text_path = directory / f"{stamp}.txt"
    eml_path = directory / f"{stamp}.eml"
    try:
        write_atomic(html_path, rendered.html.encode("utf-8"))
        write_atomic(text_path, rendered.text.encode("utf-8"))
        write_atomic(eml_path, rendered.eml)
    except OSError as exc:
        raise RenderError(f"{directory}: cannot write issue {stamp}: {exc}") from exc
    return html_path, text_path, eml_path
