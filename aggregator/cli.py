"""``aggregator`` command line: thin click commands over the ``Aggregator`` façade.

Exit codes: 0 ok (a failing feed is reported, not fatal), 1 user error (bad config,
unknown id), 2 internal error.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import __version__
from .app import Aggregator, make_aggregator
from .cli_output import (
    digest_row,
    feed_row,
    print_add_report,
    print_cycle,
    print_digest_report,
    print_digest_status,
    print_explanation,
    print_feed_problems,
    print_fetch_summary,
    print_status_table,
    print_table,
    short_time,
    spreadsheet_safe,
)
from .config import ENV_SECRET_KEY, check_config, load_config
from .errors import (
    AggregatorError,
    AlreadyRunningError,
    ConfigError,
    NotEmptyError,
    UnknownIdError,
)
from .store import open_store
from .store.database import has_state

log = logging.getLogger("aggregator")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2


def reports_errors(command: F) -> F:
    """Turn aggregator errors into a clear message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, not in click or at interpreter exit
            return result
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(EXIT_USER_ERROR)
        except (UnknownIdError, AlreadyRunningError, NotEmptyError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except AggregatorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INTERNAL_ERROR)
        except BrokenPipeError:
            _quiet_exit_on_closed_pipe()
        except click.ClickException:
            raise  # bad usage: main() says so and exits 1
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
    for chatty in ("httpx", "apscheduler", "alembic"):
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
    if has_state(config.database_url):  # moved or retired feeds: the edit the state asks for
        with opened(ctx) as aggregator:
            for feed in aggregator.feed_health():
                if feed.advice and feed.state in ("moved", "gone"):
                    click.echo(f"note: {feed.advice}", err=True)


@cli.command()
@click.option("--all", "all_feeds", is_flag=True, help="Poll every feed, not only the due ones.")
@click.option("--feed", "only", multiple=True, metavar="URL", help="Poll this feed now.")
@click.option(
    "--force", is_flag=True, help="With --feed: poll even if retired (410) or rate-limited."
)
@click.pass_context
@reports_errors
def fetch(ctx: click.Context, all_feeds: bool, only: tuple[str, ...], force: bool) -> None:
    """Poll the feeds that are due (or all) once and store their entries.

    Feeds retired by 410 Gone or asked by their server to wait (Retry-After) are held
    back, even with --all; each is named with the reason. --feed URL --force overrides.
    """
    if force and not only:
        raise click.UsageError(
            "--force needs --feed URL: it overrides a server's wishes for one feed"
        )
    with opened(ctx) as aggregator:
        poll = functools.partial(aggregator.fetch, all_feeds=all_feeds, only=only, force=force)
        report = _fetch_with_progress(aggregator, poll)
    print_fetch_summary(report)


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
        print_digest_report(report)
    if any(report.failed for report in reports):
        sys.exit(EXIT_INTERNAL_ERROR)


@cli.group()
def db() -> None:
    """The state database: bring its schema up to date, or copy it elsewhere."""


@db.command("migrate")
@click.pass_context
@reports_errors
def db_migrate(ctx: click.Context) -> None:
    """Upgrade the database's schema to this version (every command also does it on open)."""
    store = open_store(load_config(ctx.obj["config"]).database_url)
    store.close()
    click.echo(f"{store.display_url}: schema up to date")


@db.command("copy")
@click.argument("target_url")
@click.pass_context
@reports_errors
def db_copy(ctx: click.Context, target_url: str) -> None:
    """Copy the whole state into TARGET_URL, an empty database (SQLite to PostgreSQL, say).

    Stop the daemon first; afterwards point `database:` (or AGGREGATOR_DATABASE_URL) at it.
    """
    source = open_store(load_config(ctx.obj["config"]).database_url)
    try:
        target = open_store(target_url)
        try:
            copied = source.copy_to(target)
        finally:
            target.close()
    finally:
        source.close()
    rows = ", ".join(f"{count} {table}" for table, count in copied.items() if count)
    click.echo(f"copied {sum(copied.values())} rows into {target.display_url} ({rows or 'none'})")
    click.echo("now set `database:` in feeds.yaml (or AGGREGATOR_DATABASE_URL) to that URL")


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
        problems = [f for f in aggregator.feed_health() if f.is_problem]
    print_cycle(report)
    print_feed_problems(problems)
    if report.digests_failed:
        sys.exit(EXIT_INTERNAL_ERROR)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--failing", is_flag=True, help="Only feeds with a problem.")
@click.pass_context
@reports_errors
def status(ctx: click.Context, fmt: str, failing: bool) -> None:
    """Per-feed health (last fetch, HTTP status, error, entries, next due) and per-digest
    delivery (readers, latest issue, pending and refused deliveries)."""
    with opened(ctx) as aggregator:
        feeds = aggregator.feed_health()
        digests = aggregator.digest_status()
    if failing:
        feeds = [f for f in feeds if f.is_problem]
    if fmt == "json":
        rows = {
            "feeds": [feed_row(f) for f in feeds],
            "digests": [digest_row(d) for d in digests],
        }
        click.echo(json.dumps(rows, indent=2))
        return
    print_status_table(feeds)
    if digests:
        click.echo()
        print_digest_status(digests)


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
        print_explanation(explanation, topic_ids)


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
    print_add_report(report)


@subscribers.command("import")
@click.argument("digest_id")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@reports_errors
def subscribers_import(ctx: click.Context, digest_id: str, csv_file: Path) -> None:
    """Subscribe every address in CSV_FILE (a column named email/address, else the first)."""
    with opened(ctx) as aggregator, _bad_addresses():
        report = aggregator.subscribers().import_csv(digest_id, csv_file)
    print_add_report(report)


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
    rows = [(s.address, s.status, s.source, short_time(s.changed_at)) for s in listing]
    header = ("address", "status", "source", "since (UTC)")
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([header, *([spreadsheet_safe(cell) for cell in row] for row in rows)])
        return
    print_table(header, rows)
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
            flat = {**row, "topics": " ".join(row["topics"]), "sources": " ".join(row["sources"])}
            writer.writerow({key: spreadsheet_safe(flat.get(key)) for key in fields})


# ---------------------------------------------------------------- output helpers

R = TypeVar("R")


def _fetch_with_progress(aggregator: Aggregator, job: Callable[..., R]) -> R:
    """Run ``job`` with a progress bar when stderr is a terminal."""
    total = len(aggregator.config.feeds)
    if not sys.stderr.isatty() or total < 2:
        return job()
    with click.progressbar(length=total, label="Fetching", file=sys.stderr) as bar:
        return job(on_fetched=lambda _url: bar.update(1))


@contextmanager
def _bad_addresses() -> Iterator[None]:
    """A bad address is the user's mistake: say which, exit 1."""
    try:
        yield
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: documented exit codes, and quiet when the output pipe closes."""
    try:
        code = cli.main(args=argv, prog_name="aggregator", standalone_mode=False)
    except click.ClickException as exc:  # bad usage is the user's mistake, not ours
        exc.show()
        sys.exit(EXIT_USER_ERROR)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_USER_ERROR)
    except BrokenPipeError:
        _quiet_exit_on_closed_pipe()
    sys.exit(code if isinstance(code, int) else 0)


def _quiet_exit_on_closed_pipe() -> NoReturn:
    """The reader went away (`| head`): that is not an error. Python would complain again
    while flushing stdout at exit, so stdout is pointed at nothing first."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
