"""The ``Aggregator`` façade: one object per feeds.yaml that the CLI and scheduler drive.

It wires the stages together and owns nothing but the wiring: decisions live in the
pure modules, I/O in fetch/store/publish/render/deliver.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jinja2

from .analysis import Analysed, Classifier, analyse, classify_entry
from .config import Config, DigestConfig, FeedConfig, load_config, require_digest
from .errors import AggregatorError, FetchError, UnknownIdError
from .explain import Explanation, explain
from .health import FeedHealth, assess, plan_round
from .ingest import Analyser, FeedOutcome, FetchReport, ingest_result
from .models import Clock, Feed, FetchRequest, FetchResult, utc_now
from .newsletter import DigestReport, DigestStatus, Newsletter
from .parse_pool import ParsePool
from .pipeline import stream_round
from .publish import plan_outputs, self_url, write_outputs
from .publish.archives import write_archives
from .publish.history import ARCHIVE_DIR, with_history
from .publish.websub import ping_hub
from .publish.writer import write_file
from .render import make_environment
from .status_page import render_status_page
from .store import Store, open_store
from .storylines import StoryBook
from .subscriptions import Subscribers
from .topics import compile_topics
from .web import WSGIApplication, make_app

log = logging.getLogger(__name__)

CLAIM_BATCH = 100  # feeds claimed at a time, at least (8 times fetch.concurrency when more)


@dataclass(frozen=True)
class CycleReport:
    """One full cycle: fetch everything, publish, build each digest."""

    fetch: FetchReport
    published: tuple[Path, ...]
    digests: tuple[DigestReport, ...] = ()
    digest_errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def digests_failed(self) -> bool:
        return bool(self.digest_errors) or any(r.failed for r in self.digests)


class Aggregator:
    """Drives the pipeline for one configuration. Make one with ``make_aggregator``."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        self._topics = compile_topics(config.topics)
        self._templates: jinja2.Environment | None = None
        self._stories = StoryBook()
        # Names this process's claims on feeds; other workers on the database skip them.
        self._worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # One parse worker per core, started at the first parse (a worker costs ~30 MB).
        self._parse_pool = ParsePool(workers=min(2, os.cpu_count() or 1))
        store.sync_feeds(config.feeds, clock())

    @property
    def config(self) -> Config:
        return self._config

    @property
    def store(self) -> Store:
        return self._store

    def close(self) -> None:
        try:
            self._parse_pool.close()
        finally:
            self._store.close()

    def __enter__(self) -> Aggregator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ config

    def reload_config(self) -> bool:
        """Re-read feeds.yaml; returns whether anything changed.

        All or nothing: the new configuration takes effect only once its feeds and topic
        assignments are stored. Raises ConfigError (invalid file) or StorageError (the
        database refused) and keeps the running configuration; both steps are idempotent,
        so the caller simply retries.
        """
        new = load_config(self._config.path)
        if new == self._config:
            return False
        if new.database_url != self._config.database_url:
            # Moving state between databases under a running daemon would lose or fork it.
            log.warning(
                "feeds.yaml names another database; restart to use it (still on %s)",
                self._store.display_url,
            )
        hints = _hints(new)
        topics_changed = new.topics != self._config.topics or hints != _hints(self._config)
        topics = compile_topics(new.topics)
        self._store.sync_feeds(new.feeds, self._clock())
        if topics_changed:
            count = self._store.reclassify(
                lambda entry: classify_entry(entry, topics, hints.get(entry.feed_url, ()))
            )
            log.info("topic rules changed: %d stored entries re-classified", count)
        self._config, self._topics, self._templates = new, topics, None
        return True

    # ------------------------------------------------------------ fetch

    def fetch(
        self,
        *,
        all_feeds: bool = False,
        only: Collection[str] = (),
        force: bool = False,
        on_fetched: Callable[[str], None] | None = None,
    ) -> FetchReport:
        """Poll the due feeds (or all, or ``only`` these) once and store what they hold.

        Feeds retired by 410 or under a server's Retry-After are held back even with
        ``all_feeds`` (the report says why); ``force`` polls the ``only`` feeds regardless.
        """
        now = self._clock()
        by_url = {f.url: f for f in self._config.feeds}
        unknown = sorted(set(only) - by_url.keys())
        if unknown:
            raise UnknownIdError(f"no feed with url {unknown[0]} in feeds.yaml")
        # Every feed, not only the due ones: a host's Retry-After on one holds back the rest.
        stored = [f for f in self._store.feeds(counted=False) if f.url in by_url]
        if only:
            stored = [f for f in stored if f.url in only]
        plan = plan_round(
            stored, now, everything=all_feeds or bool(only), forced=only if force else ()
        )
        outcomes: list[FeedOutcome] = []
        try:
            # A scheduled round re-checks at the claim that each feed is still due.
            due_only = not (all_feeds or only)
            for batch in self._claimed_batches(plan.poll, due_only=due_only):
                outcomes += self._poll(batch, by_url, on_fetched)
        finally:
            self._store.release_claims(self._worker)
        report = FetchReport(tuple(outcomes), held=plan.held)
        if report.new_entries:
            with self._store.exclusive("stories"):
                self._stories.assign(self._store)
        return report

    def _claimed_batches(self, planned: Sequence[Feed], *, due_only: bool) -> Iterator[list[Feed]]:
        """The planned feeds that no other worker on this database holds (or, ``due_only``,
        has polled since the plan was made), claimed a batch at a time just before polling:
        workers sharing a database split a round instead of the first one taking it all."""
        size = max(CLAIM_BATCH, 8 * self._config.fetch.concurrency)
        lease = self._config.fetch.lease
        for start in range(0, len(planned), size):
            chunk = planned[start : start + size]
            urls = [f.url for f in chunk]
            claimed = self._store.claim_feeds(
                urls, worker=self._worker, now=self._clock(), lease=lease, due_only=due_only
            )
            batch = [f for f in chunk if f.url in claimed]
            if batch:
                yield batch

    def _poll(
        self,
        poll: Sequence[Feed],
        by_url: Mapping[str, FeedConfig],
        on_fetched: Callable[[str], None] | None,
    ) -> list[FeedOutcome]:
        requests = [FetchRequest(f.request_url, f.etag, f.last_modified) for f in poll]
        analyse_feed = self._analyser()

        def handle(index: int, outcome: FetchResult | FetchError) -> FeedOutcome:
            feed = poll[index]
            result = ingest_result(
                self._store,
                by_url[feed.url],
                outcome,
                analyse=analyse_feed,
                stored=feed,
                now=self._clock(),
                min_interval=self._config.fetch.min_interval,
            )
            if on_fetched is not None:
                on_fetched(feed.url)
            return result

        outcomes = stream_round(
            requests,
            self._config.fetch,
            handle,
            workers=self._parse_pool.workers,
            clock=self._clock,
            transport=self._transport,
        )
        return outcomes

    def _analyser(self) -> Analyser:
        """Parse and classify in a parse worker, under the parse deadline; the rules and
        the deadline are read per round, so a reload applies them."""
        rules = tuple(self._config.topics)
        deadline = self._config.fetch.parse_timeout.total_seconds()
        pool = self._parse_pool

        def analyse_in_worker(result: FetchResult, feed_topics: tuple[str, ...]) -> Analysed:
            job = functools.partial(analyse, classifier=Classifier(rules, feed_topics))
            return pool.run(job, result, deadline=deadline)

        return analyse_in_worker

    # ------------------------------------------------------------ publish

    def publish(self) -> list[Path]:
        """Write every output (merged and topic feeds in Atom and JSON, archive pages, front
        page, OPML, status page), ping the hub; returns the files that changed. Workers
        sharing a database publish one at a time, each from what all have stored."""
        with self._store.exclusive("publish"):
            return self._publish()

    def _publish(self) -> list[Path]:
        cfg = self._config
        limit = cfg.defaults.feed_items
        # The newest `limit` overall plus the newest `limit` of each topic is every entry
        # any output can hold; plan_outputs picks from there.
        candidates = {e.key: e for e in self._store.entries(limit=limit)}
        for topic in cfg.topics:
            candidates.update((e.key, e) for e in self._store.entries(topic=topic.id, limit=limit))
        outputs = plan_outputs(cfg.site, cfg.topics, list(candidates.values()), limit)
        sources = {f.url: f for f in self._store.feeds(active_only=False)}
        archived, changed = write_archives(
            self._store,
            cfg.output_dir,
            self._clock(),
            site=cfg.site,
            sources=sources,
            topics=cfg.topics,
        )
        changed += write_outputs(
            with_history(outputs, archived),
            cfg.output_dir,
            site=cfg.site,
            sources=sources,
            topics=cfg.topics,
        )
        self._announce(changed)
        return changed + self.write_status_page()

    def _announce(self, changed: Sequence[Path]) -> None:
        """Ping the WebSub hub with the live feeds that changed (never the archives)."""
        hub, out = self._config.site.hub, self._config.output_dir
        feeds = [p for p in changed if p.exists() and p.suffix in (".atom", ".json")]
        live = [p.relative_to(out).as_posix() for p in feeds if p.parent.name != ARCHIVE_DIR]
        if hub and live:
            ping_hub(hub, [self_url(self._config.site, path) for path in live], sleep=self._sleep)

    def write_status_page(self) -> list[Path]:
        """``output/status.html``, every source's health; returns it if it changed."""
        page = render_status_page(self.feed_health(), title=self._config.site.title)
        return write_file(self._config.output_dir, "status.html", page)

    # ------------------------------------------------------------ digests

    def digest(
        self, digest_id: str, *, send: bool = False, write: bool = True
    ) -> list[DigestReport]:
        """Preview the next issue of a digest (into the state folder), or with ``send``
        finish any unfinished issue and send the next one."""
        digest = self._require_digest(digest_id)
        if not send:
            return [self._newsletter().preview(digest, write=write)]
        return self._newsletter().send(digest)

    def resume_digests(self) -> list[DigestReport]:
        """Retry the deliveries that are due, of every unfinished issue (the daemon's job)."""
        open_ids = {issue.digest_id for issue in self._store.ledger.open_issues()}
        reports: list[DigestReport] = []
        for digest in self._config.digests:
            if digest.id in open_ids:
                reports.extend(self._newsletter().send(digest, resume_only=True))
        return reports

    def subscribers(self) -> Subscribers:
        return Subscribers(self._config, self._store.ledger, self._clock)

    def web_app(self) -> WSGIApplication:
        """The WSGI app over output/ with the unsubscribe endpoints."""
        return make_app(
            self._config.output_dir,
            secret=self._config.secret_key,
            unsubscriber=self.subscribers(),
        )

    def _require_digest(self, digest_id: str) -> DigestConfig:
        return require_digest(self._config, digest_id)

    def _newsletter(self) -> Newsletter:
        return Newsletter(
            self._config, self._store, self._template_env(), clock=self._clock, sleep=self._sleep
        )

    def _template_env(self) -> jinja2.Environment:
        if self._templates is None:
            self._templates = make_environment(self._config.templates_dir)
        return self._templates

    # ------------------------------------------------------------ cycle, status, export

    def run_once(
        self,
        *,
        send: bool = False,
        on_fetched: Callable[[str], None] | None = None,
    ) -> CycleReport:
        """Fetch every feed, publish, prune, and build each digest's next issue."""
        report = self.fetch(all_feeds=True, on_fetched=on_fetched)
        published = self.publish()
        self.prune()
        digests: list[DigestReport] = []
        problems: list[str] = []
        for digest in self._config.digests:
            try:
                digests.extend(self.digest(digest.id, send=send))
            except AggregatorError as exc:
                # One broken template or dead SMTP server must not cost the other digests.
                problems.append(f"digest {digest.id}: {exc}")
        return CycleReport(report, tuple(published), tuple(digests), tuple(problems))

    def explain(self, query: str) -> list[Explanation]:
        """Why each entry named by ``query`` (id or link) has its topics and story."""
        found = explain(self._store, query, self._topics, _hints(self._config))
        if not found:
            raise UnknownIdError(f"no stored entry has the id or link {query!r}")
        return found

    def prune(self) -> int:
        """Forget entries and digest issues past ``retention``; returns the entries removed."""
        cutoff = self._clock() - self._config.defaults.retention
        self._newsletter().prune(cutoff)
        return self._store.prune(cutoff)

    def status(self) -> list[Feed]:
        return self._store.feeds()

    def feed_health(self) -> list[FeedHealth]:
        """Every configured feed's state, worst problems named with the line to edit."""
        lines = {f.url: f.line for f in self._config.feeds}
        now = self._clock()
        rates = self._store.publishing_rates(now)
        return [
            assess(f, now, line=lines.get(f.url, 0), items_per_day=rates.get(f.url))
            for f in self._store.feeds()
        ]

    def digest_status(self) -> list[DigestStatus]:
        return [self._newsletter().status(d) for d in self._config.digests]

    def export(self, *, topic: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored entries as plain rows (DESIGN.md "export" keys), newest first."""
        if topic is not None and self._config.topic(topic) is None:
            known = ", ".join(t.id for t in self._config.topics) or "none"
            raise UnknownIdError(f"no topic {topic!r} in {self._config.path} (known: {known})")
        shared = self._store.article_sources()
        for entry in self._store.iter_entries(topic=topic):
            yield {
                "feed": entry.feed_url,
                "id": entry.entry_id,
                "link": entry.link,
                "title": entry.title,
                "published": entry.published.isoformat(),
                "topics": list(entry.topic_ids),
                "story_id": entry.story_id,
                "sources": shared.get(entry.article_id or "", [entry.feed_url]),
            }


def _hints(config: Config) -> dict[str, tuple[str, ...]]:
    return {f.url: f.topics for f in config.feeds if f.topics}


def make_aggregator(
    config_path: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Aggregator:
    """Load feeds.yaml, open (and migrate) its database, and return the façade.

    ``clock``, ``transport`` and ``sleep`` are the edges tests replace: "now", the network
    under the HTTP client, and the pause between SMTP retries.
    """
    path = Path(config_path or os.environ.get("AGGREGATOR_CONFIG") or "feeds.yaml")
    config = load_config(path)
    store = open_store(config.database_url)
    return Aggregator(config, store, clock=clock or utc_now, transport=transport, sleep=sleep)


__all__: Sequence[str] = [
    "Aggregator",
    "CycleReport",
    "DigestReport",
    "FeedOutcome",
    "FetchReport",
    "make_aggregator",
]
