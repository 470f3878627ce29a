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
from .app import Aggregator, CycleReport, DigestReport, make_aggregator
from .config import check_config
from .errors import AggregatorError, ConfigError, UnknownIdError
from .ingest import FeedOutcome, FetchReport
from .models import Feed

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
    """Build the next issue of digest DIGEST_ID and render it to output/."""
    with opened(ctx) as aggregator:
        report = aggregator.digest(digest_id, send=send and not dry_run, write=not dry_run)
    if dry_run:
        click.echo(report.rendered.text)
        return
    _print_digest_report(report)
    if report.errors:
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


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@reports_errors
def status(ctx: click.Context, fmt: str) -> None:
    """Per-feed health: last fetch, HTTP status, error, entries, next due."""
    with opened(ctx) as aggregator:
        feeds = aggregator.status()
    if fmt == "json":
        click.echo(json.dumps([_feed_row(f) for f in feeds], indent=2))
    else:
        _print_status_table(feeds)


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
        fields = ["feed", "id", "link", "title", "published", "topics", "story_id"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "topics": " ".join(row["topics"])})


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
    issue = report.rendered.issue
    click.echo(f"digest {report.digest_id} issue {issue.stamp}: {report.item_count} item(s)")
    for path in report.paths:
        click.echo(f"  {path}")
    if report.skipped_reason:
        click.echo(f"  {report.skipped_reason}")
    if report.sent_to:
        click.echo(f"  sent to {', '.join(report.sent_to)}")
    for error in report.errors:
        click.echo(f"  delivery failed: {error}", err=True)


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


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _short_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=argv, prog_name="aggregator")
