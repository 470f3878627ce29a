"""``aggregator run``: the daemon.

Jobs run one at a time on a single worker thread, so they share the façade without
locks. Feeds are not given one job each: a frequent *tick* polls whatever the store
says is due (polling.py decides when, with jitter and backoff). That keeps the
schedule in the database, where a reloaded feeds.yaml, a restart or (later) several
workers claiming rows on PostgreSQL all see the same truth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from .app import Aggregator, make_aggregator
from .config import load_config
from .daemon_lock import daemon_lock
from .errors import AggregatorError, ConfigError
from .newsletter import DigestReport, require_secret

log = logging.getLogger(__name__)

CONFIG_CHECK_SECONDS = 5.0
PRUNE_HOURS = 6
RETRY_SECONDS = 60
_DIGEST_JOB_PREFIX = "digest:"


def config_fingerprint(path: Path) -> str | None:
    """A digest of the config file's bytes; None while it is missing (mid-save)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Daemon:
    """Owns the APScheduler instance and the jobs it runs against one ``Aggregator``."""

    def __init__(self, aggregator: Aggregator, *, tick: float = 15.0) -> None:
        self._aggregator = aggregator
        self._tick = tick
        self._fingerprint = config_fingerprint(aggregator.config.path)
        self._published_once = False
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )

    def start(self) -> None:
        now = datetime.now(UTC)
        self._scheduler.add_job(
            self.poll, "interval", seconds=self._tick, id="poll", next_run_time=now
        )
        self._scheduler.add_job(
            self.check_config, "interval", seconds=CONFIG_CHECK_SECONDS, id="config"
        )
        self._scheduler.add_job(self.prune, "interval", hours=PRUNE_HOURS, id="prune")
        self._scheduler.add_job(
            self.retry_deliveries, "interval", seconds=RETRY_SECONDS, id="retry", next_run_time=now
        )
        self._schedule_digests()
        self._scheduler.start()
        log.info(
            "daemon started: %d feeds, %d digests, config %s",
            len(self._aggregator.config.feeds),
            len(self._aggregator.config.digests),
            self._aggregator.config.path,
        )

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    def stop(self) -> None:
        """Let the running job finish (files are replaced atomically anyway), then stop."""
        self._scheduler.shutdown(wait=True)
        log.info("daemon stopped")

    # ------------------------------------------------------------ jobs

    def poll(self) -> None:
        with _logged("poll"):
            report = self._aggregator.fetch()
            for outcome in report.failed:
                log.warning("feed failed: %s: %s", outcome.title, outcome.error)
            for held in report.held:
                log.debug("feed not polled: %s: %s", held.feed.display_title, held.reason)
            if report.changed or not self._published_once:
                changed = self._aggregator.publish()
                self._published_once = True
                log.info(
                    "polled %d feed(s): %d new, %d updated; %d output file(s) changed",
                    len(report.outcomes),
                    report.new_entries,
                    report.updated_entries,
                    len(changed),
                )
            elif report.outcomes or report.held:
                self._aggregator.write_status_page()  # states and next polls moved on

    def check_config(self) -> None:
        fingerprint = config_fingerprint(self._aggregator.config.path)
        if fingerprint is None or fingerprint == self._fingerprint:
            return
        try:
            changed = self._aggregator.reload_config()
        except ConfigError as exc:
            self._fingerprint = fingerprint  # this file stays invalid until it is edited
            log.error("feeds.yaml not reloaded, keeping the running configuration:\n%s", exc)
            return
        except AggregatorError as exc:
            # Not remembered: the next check tries this file again (the database may be busy).
            log.error("feeds.yaml not reloaded yet, keeping the running configuration: %s", exc)
            return
        self._fingerprint = fingerprint
        if changed:
            log.info("feeds.yaml reloaded: %d feeds", len(self._aggregator.config.feeds))
            self._schedule_digests()
            self._published_once = False  # topic or site changes may alter every output
            self._scheduler.modify_job("poll", next_run_time=datetime.now(UTC))

    def send_digest(self, digest_id: str) -> None:
        """The digest's cron job: send (or, with no smtp section, preview) its next issue."""
        with _logged(f"digest {digest_id}"):
            send = self._aggregator.config.smtp is not None
            for report in self._aggregator.digest(digest_id, send=send):
                _log_report(report)

    def retry_deliveries(self) -> None:
        """Finish unfinished issues whose deliveries are due again (after a 4xx or outage)."""
        if self._aggregator.config.smtp is None:
            return
        with _logged("retrying deliveries"):
            for report in self._aggregator.resume_digests():
                _log_report(report)

    def prune(self) -> None:
        with _logged("prune"):
            removed = self._aggregator.prune()
            if removed:
                log.info("pruned %d entries past retention", removed)

    # ------------------------------------------------------------ helpers

    def _schedule_digests(self) -> None:
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_DIGEST_JOB_PREFIX):
                job.remove()
        for digest in self._aggregator.config.digests:
            trigger = CronTrigger.from_crontab(digest.schedule, timezone=digest.timezone)
            self._scheduler.add_job(
                self.send_digest,
                trigger,
                args=[digest.id],
                id=_DIGEST_JOB_PREFIX + digest.id,
            )


def _log_report(report: DigestReport) -> None:
    if report.stamp is not None and (report.sent_to or report.resumed or not report.skipped_reason):
        log.info(
            "digest %s %sissue %s: %d item(s); sent to %d reader(s)",
            report.digest_id,
            "resumed " if report.resumed else "",
            report.stamp,
            report.item_count,
            len(report.sent_to),
        )
    if report.skipped_reason:
        log.info("digest %s: %s", report.digest_id, report.skipped_reason)
    for error in report.errors:
        log.error("digest %s: %s", report.digest_id, error)
    if report.pending:
        log.warning(
            "digest %s issue %s: %d delivery(ies) pending; retried automatically",
            report.digest_id,
            report.stamp,
            report.pending,
        )


@contextmanager
def _logged(what: str) -> Iterator[None]:
    """Keep the daemon alive through any job failure, and say what failed."""
    try:
        yield
    except AggregatorError as exc:
        log.error("%s failed: %s", what, exc)
    except Exception:
        log.exception("%s failed unexpectedly", what)


def run_daemon(config_path: str | os.PathLike[str], *, tick: float = 15.0) -> None:
    """Run until SIGINT or SIGTERM."""
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
        # Alembic narrates every start ("Context impl SQLiteImpl."): noise in a daemon's log.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # Locked before the database is opened: a refused second daemon migrates and syncs nothing.
    with (
        daemon_lock(load_config(config_path).database_url),
        make_aggregator(config_path) as aggregator,
    ):
        if aggregator.config.smtp is not None and aggregator.config.digests:
            require_secret(aggregator.config)  # fail at start, not at the first cron run
        daemon = Daemon(aggregator, tick=tick)
        daemon.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            daemon.stop()
