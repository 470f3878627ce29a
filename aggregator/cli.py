"""``aggregator`` command line: thin click commands over the ``Aggregator`` façade.

Exit codes: 0 ok (a failing feed is reported, not fatal), 1 user error (bad config,
unknown id), 2 internal error.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .app import Aggregator, CycleReport, make_aggregator
from .config import ENV_SECRET_KEY, check_config, load_config
from .errors import AggregatorError, ConfigError, UnknownIdError
from .explain import Explanation
from .ingest import FeedOutcome, FetchReport
from .models import Delivery, Feed
from .newsletter import DigestReport, DigestStatus
from .subscriptions import AddReport

log = logging.getLogger("aggregator")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2


def reports_errors(command: F) -> F:
    """Turn aggregator errors into a clear message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(EXIT_USER_ERROR)
        except UnknownIdError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except AggregatorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INTERNAL_ERROR)
        except Exception:
            log.exception("internal error; please report it with the traceback above")
            sys.exit(EXIT_INTERNAL_ERROR)

    return wrapper  # type: ignore[return-value]


@contextmanager
def opened(ctx: click.Context) -> Iterator[Aggregator]:
    aggregator = make_aggregator(ctx.obj["config"])
    try:
        yield aggregator
    finally:
        aggregator.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AGGREGATOR_CONFIG",
    default="feeds.yaml",
    show_default=True,
    help="The configuration file (env AGGREGATOR_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: int) -> None:
    """Poll news feeds, republish them as Atom, and send digest emails."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their INFO lines (every request, every job run) drown ours; -vv shows them.
    for chatty in ("httpx", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    ctx.obj = {"config": config_path}


@cli.command()
@click.pass_context
@reports_errors
def check(ctx: click.Context) -> None:
    """Validate the configuration; print FILE:LINE: FIELD: PROBLEM for each mistake."""
    problems = check_config(ctx.obj["config"])
    if problems:
        raise ConfigError(problems)
    click.echo(f"{ctx.obj['config']}: OK")
    config = load_config(ctx.obj["config"])
    if config.smtp is not None and config.digests and config.secret_key is None:
        click.echo(
            f"note: {ENV_SECRET_KEY} is not set: sending digests will be refused until it is",
            err=True,
        )


@cli.command()
@click.option("--all", "all_feeds", is_flag=True, help="Poll every feed, not only the due ones.")
@click.pass_context
@reports_errors
def fetch(ctx: click.Context, all_feeds: bool) -> None:
    """Poll the feeds that are due (or all) once and store their entries."""
    with opened(ctx) as aggregator:
        report = _fetch_with_progress(
            aggregator, functools.partial(aggregator.fetch, all_feeds=all_feeds)
        )
    _print_fetch_summary(report)


@cli.command()
@click.pass_context
@reports_errors
def publish(ctx: click.Context) -> None:
    """Write the merged Atom feed and one feed per topic."""
    with opened(ctx) as aggregator:
        changed = aggregator.publish()
        output_dir = aggregator.config.output_dir
    click.echo(f"published to {output_dir}: {len(changed)} file(s) changed")
    for path in changed:
        click.echo(f"  {path}")


@cli.command()
@click.argument("digest_id")
@click.option("--send", is_flag=True, help="Deliver the issue by SMTP (needs the smtp section).")
@click.option("--dry-run", is_flag=True, help="Print the plain-text issue; write and send nothing.")
@click.pass_context
@reports_errors
def digest(ctx: click.Context, digest_id: str, send: bool, dry_run: bool) -> None:
    """Preview the next issue of DIGEST_ID, or send it (finishing any unfinished issue first).

    Without --send the issue is rendered into the state folder (not the public archive).
    """
    with opened(ctx) as aggregator:
        reports = aggregator.digest(digest_id, send=send and not dry_run, write=not dry_run)
    if dry_run:
        click.echo(reports[0].text, nl=False)
        return
    for report in reports:
        _print_digest_report(report)
    if any(report.failed for report in reports):
        sys.exit(EXIT_INTERNAL_ERROR)


@cli.command()
@click.option("--once", is_flag=True, help="One full cycle: fetch all, publish, render digests.")
@click.option("--send", is_flag=True, help="With --once: also send the digests.")
@click.option(
    "--tick",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds between checks for due feeds (daemon).",
)
@click.pass_context
@reports_errors
def run(ctx: click.Context, once: bool, send: bool, tick: float) -> None:
    """Run the daemon (poll, publish, send digests on schedule; reload feeds.yaml on change)."""
    if not once:
        from .scheduler import run_daemon

        run_daemon(ctx.obj["config"], tick=tick)
        return
    with opened(ctx) as aggregator:
        report = _fetch_with_progress(aggregator, functools.partial(aggregator.run_once, send=send))
    _print_cycle(report)
    if report.digests_failed:
        sys.exit(EXIT_INTERNAL_ERROR)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@reports_errors
def status(ctx: click.Context, fmt: str) -> None:
    """Per-feed health (last fetch, HTTP status, error, entries, next due) and per-digest
    delivery (readers, latest issue, pending and refused deliveries)."""
    with opened(ctx) as aggregator:
        feeds = aggregator.status()
        digests = aggregator.digest_status()
    if fmt == "json":
        rows = {
            "feeds": [_feed_row(f) for f in feeds],
            "digests": [_digest_row(d) for d in digests],
        }
        click.echo(json.dumps(rows, indent=2))
        return
    _print_status_table(feeds)
    if digests:
        click.echo()
        _print_digest_status(digests)


@cli.command("explain")
@click.argument("query")
@click.pass_context
@reports_errors
def explain_command(ctx: click.Context, query: str) -> None:
    """Why the entry QUERY (its id or link) has, or lacks, each topic, and its story."""
    with opened(ctx) as aggregator:
        explanations = aggregator.explain(query)
        topic_ids = [t.id for t in aggregator.config.topics]
    for n, explanation in enumerate(explanations):
        if n:
            click.echo()
        _print_explanation(explanation, topic_ids)


@cli.group()
def subscribers() -> None:
    """Manage the readers of a digest (besides the `to:` addresses in feeds.yaml)."""


@subscribers.command("add")
@click.argument("digest_id")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
@reports_errors
def subscribers_add(ctx: click.Context, digest_id: str, addresses: tuple[str, ...]) -> None:
    """Subscribe ADDRESSES to DIGEST_ID (an unsubscribed reader is subscribed again)."""
    with opened(ctx) as aggregator, _bad_addresses():
        report = aggregator.subscribers().add(digest_id, addresses)
    _print_add_report(report)


@subscribers.command("import")
@click.argument("digest_id")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@reports_errors
def subscribers_import(ctx: click.Context, digest_id: str, csv_file: Path) -> None:
    """Subscribe every address in CSV_FILE (a column named email/address, else the first)."""
    with opened(ctx) as aggregator, _bad_addresses():
        report = aggregator.subscribers().import_csv(digest_id, csv_file)
    _print_add_report(report)


@subscribers.command("remove")
@click.argument("digest_id")
@click.argument("address")
@click.pass_context
@reports_errors
def subscribers_remove(ctx: click.Context, digest_id: str, address: str) -> None:
    """Unsubscribe ADDRESS from DIGEST_ID; it gets nothing more, not even a pending issue."""
    with opened(ctx) as aggregator, _bad_addresses():
        removed = aggregator.subscribers().remove(digest_id, address)
    click.echo(f"{address}: {'unsubscribed' if removed else 'was not subscribed'}")


@subscribers.command("list")
@click.argument("digest_id")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.pass_context
@reports_errors
def subscribers_list(ctx: click.Context, digest_id: str, fmt: str) -> None:
    """Every reader of DIGEST_ID, with status and where the address came from."""
    with opened(ctx) as aggregator:
        listing = aggregator.subscribers().listing(digest_id)
    rows = [(s.address, s.status, s.source, _short_time(s.changed_at)) for s in listing]
    header = ("address", "status", "source", "since (UTC)")
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([header, *rows])
        return
    _print_table(header, rows)
    active = sum(1 for s in listing if s.status == "active")
    click.echo(f"{active} active, {len(listing) - active} unsubscribed")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.pass_context
@reports_errors
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve output/ and the unsubscribe endpoints (put it behind your HTTPS proxy)."""
    from .web import serve as run_server

    with opened(ctx) as aggregator:
        app = aggregator.web_app()
        run_server(app, host, port, ready=lambda url: click.echo(f"serving on {url}"))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--topic", help="Only entries with this topic id.")
@click.pass_context
@reports_errors
def export(ctx: click.Context, fmt: str, topic: str | None) -> None:
    """Stored entries, newest first, one per line."""
    with opened(ctx) as aggregator:
        rows = aggregator.export(topic=topic)
        if fmt == "jsonl":
            for row in rows:
                click.echo(json.dumps(row, ensure_ascii=False))
            return
        fields = ["feed", "id", "link", "title", "published", "topics", "story_id", "sources"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {**row, "topics": " ".join(row["topics"]), "sources": " ".join(row["sources"])}
            )


# ---------------------------------------------------------------- output helpers

R = TypeVar("R")


def _fetch_with_progress(aggregator: Aggregator, job: Callable[..., R]) -> R:
    """Run ``job`` with a progress bar when stderr is a terminal."""
    total = len(aggregator.config.feeds)
    if not sys.stderr.isatty() or total < 2:
        return job()
    with click.progressbar(length=total, label="Fetching", file=sys.stderr) as bar:
        return job(on_fetched=lambda _url: bar.update(1))


_RESULT_TEXT = {
    "changed": "new entries",
    "unchanged": "no changes",
    "not-modified": "not modified",
    "failed": "FAILED",
}


def _print_fetch_summary(report: FetchReport) -> None:
    """One row per feed, then the totals."""
    if report.outcomes:
        header = ("feed", "result", "new", "updated", "note")
        _print_table(header, [_outcome_row(o) for o in report.outcomes])
    ok = len(report.outcomes) - len(report.failed)
    click.echo(
        f"{len(report.outcomes)} feed(s) polled: {ok} ok, {len(report.failed)} failed; "
        f"{report.new_entries} new, {report.updated_entries} updated entries"
    )


def _outcome_row(outcome: FeedOutcome) -> tuple[str, ...]:
    failed = outcome.state == "failed"
    note = outcome.error if failed else (f"warning: {outcome.warning}" if outcome.warning else "")
    return (
        outcome.title[:40],
        _RESULT_TEXT[outcome.state],
        "-" if failed else str(outcome.stats.new),
        "-" if failed else str(outcome.stats.updated),
        (note or "")[:80],
    )


def _print_digest_report(report: DigestReport) -> None:
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


def _print_cycle(report: CycleReport) -> None:
    _print_fetch_summary(report.fetch)
    click.echo(f"published: {len(report.published)} file(s) changed")
    for digest_report in report.digests:
        _print_digest_report(digest_report)
    for problem in report.digest_errors:
        click.echo(f"error: {problem}", err=True)


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _feed_row(feed: Feed) -> dict[str, Any]:
    return {
        "url": feed.url,
        "title": feed.title,
        "last_fetched_at": _when(feed.last_fetched_at),
        "last_success_at": _when(feed.last_success_at),
        "http_status": feed.last_status,
        "error": feed.last_error,
        "warning": feed.last_warning,
        "consecutive_errors": feed.error_count,
        "entries": feed.entry_count,
        "next_due_at": _when(feed.next_due_at),
        "final_url": feed.final_url,
    }


def _print_status_table(feeds: Sequence[Feed]) -> None:
    header = ("feed", "last fetch (UTC)", "http", "entries", "next due (UTC)", "error")
    rows = [
        (
            feed.display_title[:40],
            _short_time(feed.last_fetched_at),
            str(feed.last_status or "-"),
            str(feed.entry_count),
            _short_time(feed.next_due_at),
            (feed.last_error or "")[:60],
        )
        for feed in feeds
    ]
    _print_table(header, rows)


def _print_explanation(explanation: Explanation, topic_ids: Sequence[str]) -> None:
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


def _digest_row(status: DigestStatus) -> dict[str, Any]:
    return {
        "digest": status.digest_id,
        "readers": status.readers,
        "last_issue": status.last_stamp,
        "last_issue_complete": status.last_complete,
        "pending": [_delivery_row(d) for d in status.pending],
        "failed": [_delivery_row(d) for d in status.failed],
    }


def _delivery_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "issue": delivery.stamp,
        "recipient": delivery.recipient,
        "attempts": delivery.attempts,
        "error": delivery.last_error,
        "next_attempt_at": _when(delivery.next_attempt_at),
    }


def _print_digest_status(digests: Sequence[DigestStatus]) -> None:
    header = ("digest", "readers", "last issue", "state")
    rows = []
    for d in digests:
        state = "complete" if d.last_complete else f"{len(d.pending)} pending"
        if d.last_stamp is None:
            state = "no issue yet"
        rows.append((d.digest_id, str(d.readers), d.last_stamp or "-", state))
    _print_table(header, rows)
    for d in digests:
        for delivery in (*d.pending, *d.failed):
            kind = "refused" if delivery.status == "failed" else "pending"
            click.echo(
                f"  {d.digest_id} {delivery.stamp} {delivery.recipient}: {kind}: "
                f"{delivery.last_error or 'not tried yet'}"
            )


def _print_add_report(report: AddReport) -> None:
    for label, addresses in (
        ("added", report.added),
        ("subscribed again", report.reactivated),
        ("already subscribed", report.unchanged),
    ):
        if addresses:
            shown = ", ".join(addresses[:5]) + (" …" if len(addresses) > 5 else "")
            click.echo(f"{label}: {len(addresses)} ({shown})")


@contextmanager
def _bad_addresses() -> Iterator[None]:
    """A bad address is the user's mistake: say which, exit 1."""
    try:
        yield
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _short_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=argv, prog_name="aggregator")
