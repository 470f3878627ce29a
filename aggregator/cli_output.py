"""What the command line prints: tables, summaries and explanations, from the façade's
reports. Formatting only; the commands themselves are in ``cli.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from .app import CycleReport
from .explain import Explanation
from .health import FeedHealth
from .ingest import FeedOutcome, FetchReport
from .models import Delivery
from .newsletter import DigestReport, DigestStatus
from .subscriptions import AddReport

RESULT_TEXT = {
    "changed": "new entries",
    "unchanged": "no changes",
    "not-modified": "not modified",
    "failed": "FAILED",
}


def print_fetch_summary(report: FetchReport) -> None:
    """One row per feed, then the totals."""
    if report.outcomes:
        header = ("feed", "result", "new", "updated", "note")
        print_table(header, [outcome_row(o) for o in report.outcomes])
    for held in report.held:
        click.echo(f"not polled: {held.feed.display_title}: {held.reason}")
    ok = len(report.outcomes) - len(report.failed)
    click.echo(
        f"{len(report.outcomes)} feed(s) polled: {ok} ok, {len(report.failed)} failed; "
        f"{report.new_entries} new, {report.updated_entries} updated entries"
    )


def outcome_row(outcome: FeedOutcome) -> tuple[str, ...]:
    failed = outcome.state == "failed"
    note = outcome.error if failed else (f"warning: {outcome.warning}" if outcome.warning else "")
    return (
        outcome.title[:40],
        RESULT_TEXT[outcome.state],
        "-" if failed else str(outcome.stats.new),
        "-" if failed else str(outcome.stats.updated),
        note or "",  # whole: a cut error ("…: DNS look") tells the operator nothing
    )


def print_digest_report(report: DigestReport) -> None:
    what = "resumed issue" if report.resumed else "issue"
    more = f" (+{report.more} for the next issue)" if report.more else ""
    if report.stamp is None:
        click.echo(f"digest {report.digest_id}:")
    else:
        click.echo(
            f"digest {report.digest_id} {what} {report.stamp}: {report.item_count} item(s){more}"
        )
    for path in report.paths:
        click.echo(f"  {path}")
    if report.skipped_reason:
        click.echo(f"  {report.skipped_reason}")
    if report.sent_to:
        click.echo(f"  sent to {len(report.sent_to)} reader(s)")
    for error in report.errors:
        click.echo(f"  delivery failed: {error}", err=True)
    if report.pending:
        click.echo(
            f"  {report.pending} delivery(ies) still pending: the next --send or the daemon "
            "resumes this issue",
            err=True,
        )


def print_cycle(report: CycleReport) -> None:
    print_fetch_summary(report.fetch)
    click.echo(f"published: {len(report.published)} file(s) changed")
    for digest_report in report.digests:
        print_digest_report(digest_report)
    for problem in report.digest_errors:
        click.echo(f"error: {problem}", err=True)


def when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def feed_row(item: FeedHealth) -> dict[str, Any]:
    feed = item.feed
    return {
        "url": feed.url,
        "title": feed.title,
        "state": item.state,
        "advice": item.advice,
        "items_per_day": None if item.items_per_day is None else round(item.items_per_day, 2),
        "last_fetched_at": when(feed.last_fetched_at),
        "last_success_at": when(feed.last_success_at),
        "http_status": feed.last_status,
        "error": feed.last_error,
        "warning": feed.last_warning,
        "consecutive_errors": feed.error_count,
        "failing_since": when(feed.failing_since),
        "retry_until": when(feed.retry_until),
        "entries": feed.entry_count,
        "next_due_at": when(feed.next_due_at),
        "final_url": feed.final_url,
        "moved_to": feed.moved_to,
        "fetch_url": feed.fetch_url,
    }


def print_status_table(feeds: Sequence[FeedHealth]) -> None:
    """A line per feed, then each problem in full words: errors are never cut short."""
    header = (
        "feed",
        "state",
        "last success (UTC)",
        "http",
        "errors",
        "items/day",
        "next poll (UTC)",
    )
    rows = [
        (
            f.feed.display_title[:40],
            f.state,
            short_time(f.feed.last_success_at),
            str(f.feed.last_status or "-"),
            str(f.feed.error_count),
            "-" if f.items_per_day is None else f"{f.items_per_day:.1f}",
            short_time(f.feed.next_due_at),
        )
        for f in feeds
    ]
    print_table(header, rows)
    print_feed_problems(feeds)


def print_feed_problems(feeds: Sequence[FeedHealth]) -> None:
    """Each feed's problem in full words, with the feeds.yaml line to edit where one helps."""
    for f in feeds:
        problem = f.advice or f.feed.last_error
        if problem:
            click.echo(f"{f.feed.display_title} ({f.state}): {problem}")


def print_explanation(explanation: Explanation, topic_ids: Sequence[str]) -> None:
    entry = explanation.entry
    click.echo(f"{entry.title or '(untitled)'}")
    click.echo(f"  id {entry.entry_id} in {entry.feed_url}")
    if entry.link:
        click.echo(f"  {entry.link}")
    if len(explanation.sources) > 1:
        click.echo(f"  the same article is also in: {', '.join(explanation.sources[1:])}")
    click.echo("topics:")
    for match in entry.topics:
        click.echo(f"  {match.topic_id}: yes — {'; '.join(match.reasons)}")
    for miss in explanation.misses:
        why = "; ".join(miss.reasons) or "no term matched"
        click.echo(f"  {miss.topic_id}: no — {why}")
    if not topic_ids:
        click.echo("  (feeds.yaml defines no topics)")
    click.echo("story:")
    if explanation.story_id is None:
        click.echo("  none yet (stories are decided after each fetch)")
        return
    others = [e for e in explanation.story if e.article_id != entry.article_id]
    click.echo(f"  {explanation.story_id}: {len(explanation.story)} article(s)")
    if explanation.joined is not None:
        click.echo(f"  joined because of: {explanation.joined.title}")
        for reason in explanation.story_reasons:
            click.echo(f"    {reason}")
    elif others:
        click.echo("  this article founded the story")
    for other in others:
        click.echo(f"  - {other.title} ({other.feed_title or other.feed_url})")


def digest_row(status: DigestStatus) -> dict[str, Any]:
    return {
        "digest": status.digest_id,
        "readers": status.readers,
        "last_issue": status.last_stamp,
        "last_issue_complete": status.last_complete,
        "pending": [delivery_row(d) for d in status.pending],
        "failed": [delivery_row(d) for d in status.failed],
    }


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "issue": delivery.stamp,
        "recipient": delivery.recipient,
        "attempts": delivery.attempts,
        "error": delivery.last_error,
        "next_attempt_at": when(delivery.next_attempt_at),
    }


def print_digest_status(digests: Sequence[DigestStatus]) -> None:
    header = ("digest", "readers", "last issue", "state")
    rows = []
    for d in digests:
        state = "complete" if d.last_complete else f"{len(d.pending)} pending"
        if d.last_stamp is None:
            state = "no issue yet"
        rows.append((d.digest_id, str(d.readers), d.last_stamp or "-", state))
    print_table(header, rows)
    for d in digests:
        for delivery in (*d.pending, *d.failed):
            kind = "refused" if delivery.status == "failed" else "pending"
            click.echo(
                f"  {d.digest_id} {delivery.stamp} {delivery.recipient}: {kind}: "
                f"{delivery.last_error or 'not tried yet'}"
            )


def print_add_report(report: AddReport) -> None:
    for label, addresses in (
        ("added", report.added),
        ("subscribed again", report.reactivated),
        ("already subscribed", report.unchanged),
    ):
        if addresses:
            shown = ", ".join(addresses[:5]) + (" …" if len(addresses) > 5 else "")
            click.echo(f"{label}: {len(addresses)} ({shown})")


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def short_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """A CSV cell no spreadsheet runs as a formula (OWASP's CSV-injection rule): a leading
    ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'`` in front; the text is otherwise kept."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
