"""``output/status.html``: every source's health at a glance, for the public.

Pure: feed states in, HTML bytes out. ``output/`` is public, so the page names no reader
and shows no secret: feed URLs lose their user:password and any query parameter that looks
like a credential (:func:`aggregator.urls.public_url`), also where an error message quotes the URL.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from .health import FeedHealth
from .urls import public_url

__all__ = ["public_url", "render_status_page"]


def render_status_page(feeds: Sequence[FeedHealth], *, title: str) -> bytes:
    """The page; problems first, then the rest, each group in stored order.

    Dated by the latest poll it reports, not by "now": the same state gives the same bytes.
    """
    polled = [f.feed.last_fetched_at for f in feeds if f.feed.last_fetched_at is not None]
    ordered = sorted(feeds, key=lambda f: not f.is_problem)
    counts = Counter(f.state for f in feeds)
    summary = ", ".join(f"{counts[s]} {s}" for s in sorted(counts))
    rows = "\n".join(_row(f) for f in ordered)
    page = _PAGE.format(
        title=html.escape(f"{title}: source status"),
        generated=_time(max(polled, default=None)),
        summary=html.escape(summary or "no sources"),
        rows=rows,
    )
    return page.encode("utf-8")


def _row(item: FeedHealth) -> str:
    feed = item.feed
    url = public_url(feed.url)
    problem = item.advice or feed.last_error or ""
    # An error quotes the URL it was fetching, credentials and all.
    for raw in {feed.url, feed.request_url}:
        problem = problem.replace(raw, public_url(raw))
    cells = (
        f'<th scope="row"><a href="{html.escape(url)}">{html.escape(feed.title or url)}</a></th>',
        f'<td class="{item.state}">{item.state}</td>',
        f"<td>{_time(feed.last_success_at)}</td>",
        f"<td>{feed.error_count}</td>",
        f"<td>{_time(feed.next_due_at)}</td>",
        f"<td>{html.escape(problem)}</td>",
    )
    return "<tr>" + "".join(cells) + "</tr>"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return f'<time datetime="{moment.isoformat()}">{moment.strftime("%Y-%m-%d %H:%M")}</time>'


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 1rem auto; max-width: 72rem;
  padding: 0 1rem; color: #1a1a1a; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd;
  vertical-align: top; }}
thead th {{ background: #f3f3f3; }}
.failing, .gone {{ color: #a40000; font-weight: 600; }}
.backing-off, .rate-limited, .moved {{ color: #8a5a00; font-weight: 600; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>As of the last poll, {generated} UTC: {summary}.</p>
<table>
<caption>Each source, problems first. Times are UTC.</caption>
<thead><tr><th scope="col">Source</th><th scope="col">State</th>
<th scope="col">Last success</th><th scope="col">Failures in a row</th>
<th scope="col">Next poll</th><th scope="col">Problem</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
