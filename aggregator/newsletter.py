"""Issuing a digest: the I/O pipeline from stored entries to every reader's inbox.

    lease ─► resume open issues ─► plan (digest.py) ─► render ─► web copy ─► claim ─► deliver

The decisions are pure (``digest.py``: what goes in; ``deliver.next_attempt``: when to try
again); this module does the reading, writing and sending around them, in an order that
makes delivery exactly-once (see ``store/digests.py``):

- one sender per digest at a time (a lease in the database, renewed after every message;
  a holder found dead on this host is taken over at once, any other after the lease expires);
- an issue is claimed, with its rendered mail and one pending delivery per reader, before
  the first SMTP command; each delivery is recorded right after the server accepted it;
- an issue with pending deliveries is finished, same stamp and Message-IDs, before a new
  one is planned. A crash between the server's "250" and our record re-sends that one
  message, with the same Message-ID, so receiving systems can drop the copy.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from .archive import ArchivedIssue, remove_issue_files, write_archive
from .config import Config, DigestConfig, SmtpConfig
from .deliver import Attempt, deliver, next_attempt
from .digest import candidates_since, eligible_entries, issue_window, next_start, plan_issue
from .errors import AggregatorError, ConfigError, ConfigProblem, DeliveryError
from .message import build_message, make_list_id, make_message_id
from .models import Clock, Delivery, DigestIssue, Entry, RenderedIssue, StoredIssue
from .render import render_issue, write_private_copy, write_web_copy
from .store import Store
from .store.ledger import DigestLedger, NewIssue
from .subscribers import make_token, new_nonce, unsubscribe_links

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(minutes=10)
"""Longer than any one SMTP transaction can take (each command times out well before)."""


@dataclass(frozen=True)
class DigestReport:
    """What one issue of a digest did in this run (previewed, sent, resumed or skipped)."""

    digest_id: str
    stamp: str | None = None
    item_count: int = 0
    more: int = 0
    paths: tuple[Path, ...] = ()
    sent_to: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # "address: why", and problems writing the archive
    pending: int = 0  # deliveries still to do after this run
    resumed: bool = False
    skipped_reason: str | None = None
    text: str = field(default="", repr=False)  # the plain-text issue, for --dry-run

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.pending > 0


@dataclass(frozen=True)
class DigestStatus:
    """A digest at a glance: readers, the latest issue, and deliveries that need a look."""

    digest_id: str
    readers: int
    last_stamp: str | None
    last_complete: bool
    pending: tuple[Delivery, ...]
    failed: tuple[Delivery, ...]  # refused for good, in issues still retained


class Newsletter:
    """Previews, issues, resumes and prunes digest issues for one configuration."""

    def __init__(
        self,
        config: Config,
        store: Store,
        env: jinja2.Environment,
        *,
        clock: Clock,
        sleep: Callable[[float], None],
    ) -> None:
        self._config = config
        self._store = store
        self._ledger = store.ledger
        self._env = env
        self._clock = clock
        self._sleep = sleep

    # ------------------------------------------------------------ preview

    def preview(self, digest: DigestConfig, *, write: bool = True) -> DigestReport:
        """Render the next issue into the state folder; record and send nothing."""
        now = self._clock()
        rendered, _ = self._render_next(digest, self._ledger.last_issue(digest.id), now)
        issue = rendered.issue
        paths: tuple[Path, ...] = ()
        if write:
            eml = self._inspection_copy(rendered)
            directory = self._private_dir(digest.id) / "preview"
            _clear(directory)  # only the latest preview is of use
            paths = write_private_copy(directory, issue.stamp, rendered.html, rendered.text, eml)
        return DigestReport(
            digest.id,
            issue.stamp,
            len(issue.items),
            issue.more,
            paths,
            text=rendered.text,
        )

    # ------------------------------------------------------------ send

    def send(self, digest: DigestConfig, *, resume_only: bool = False) -> list[DigestReport]:
        """Finish open issues, then (unless ``resume_only``) issue the next one.

        Another process sending this digest right now is left alone: the report says so.
        """
        self._require_secret()
        self._require_smtp()  # before anything is claimed
        with self._lease(digest.id) as lease:
            if lease is None:
                holder = self._ledger.lease_holder(digest.id)
                who = f"pid {holder.pid} on {holder.host}" if holder else "another process"
                reason = f"another sender ({who}) is sending this digest; left it to them"
                return [DigestReport(digest.id, skipped_reason=reason)]
            reports = [
                self._deliver(digest, issue, lease, resumed=True, due_only=resume_only)
                for issue in self._ledger.open_issues(digest.id)
            ]
            if resume_only or any(r.pending for r in reports):
                return reports
            return [*reports, self._issue_next(digest, lease)]

    def _issue_next(self, digest: DigestConfig, lease: _Lease) -> DigestReport:
        now = self._clock()
        last = self._ledger.last_issue(digest.id)
        rendered, eligible = self._render_next(digest, last, now)
        issue = rendered.issue
        report = DigestReport(digest.id, issue.stamp, len(issue.items), issue.more)
        if not issue.items:
            return replace(report, skipped_reason="no new items since the last issue; not sent")
        if last is not None and issue.stamp == last.stamp:
            # Stamps name files and delivery records; the last issue keeps its own.
            reason = "an issue of this digest went out this minute; try again in a minute"
            return replace(report, skipped_reason=reason)
        readers = self._ledger.recipients(digest.id, digest.to, now=now, new_nonce=new_nonce)
        if not readers:
            reason = f"no subscribers (add some: aggregator subscribers add {digest.id} ADDRESS)"
            return replace(report, skipped_reason=reason)
        # Files first: an output folder we cannot write fails the run before anything is claimed.
        paths = write_web_copy(rendered, self._config.output_dir) + write_private_copy(
            self._private_dir(digest.id),
            issue.stamp,
            rendered.html,
            rendered.text,
            self._inspection_copy(rendered),
        )
        site = self._config.site
        claimed = self._ledger.claim_issue(
            issue,
            NewIssue(
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                next_start=next_start(eligible, issue),
                recipients=tuple(
                    (r.address, make_message_id(issue, site, r.address)) for r in readers
                ),
                articles={e.key: e.article_id for e in eligible},
            ),
            now,
        )
        errors = self._write_archive(digest)
        sent = self._deliver(digest, claimed, lease, resumed=False, due_only=False)
        return replace(sent, paths=paths, errors=(*errors, *sent.errors), more=issue.more)

    def _render_next(
        self, digest: DigestConfig, last: StoredIssue | None, now: datetime
    ) -> tuple[RenderedIssue, list[Entry]]:
        window = issue_window(digest, last, now)
        since = candidates_since(digest, last, now)
        eligible = eligible_entries(
            digest,
            self._store.entries_seen_between(since, now),
            already_sent=self._ledger.sent_entry_keys(digest.id),
            since=since,
            window=window,
            sent_articles=self._ledger.sent_article_ids(digest.id),
        )
        issue = plan_issue(digest, self._config.topics, eligible, window=window)
        rendered = render_issue(issue, digest=digest, site=self._config.site, env=self._env)
        return rendered, eligible

    # ------------------------------------------------------------ deliveries

    def _deliver(
        self,
        digest: DigestConfig,
        issue: StoredIssue,
        lease: _Lease,
        *,
        resumed: bool,
        due_only: bool,
    ) -> DigestReport:
        now = self._clock()
        pending = [
            d
            for d in self._ledger.deliveries(digest.id, issue.stamp, status="pending")
            if not due_only or d.next_attempt_at is None or d.next_attempt_at <= now
        ]
        by_address = {d.recipient: d for d in pending}
        sent: list[str] = []
        errors: list[str] = []

        def record(attempt: Attempt) -> bool:
            delivery = by_address[attempt.recipient]
            if attempt.error is None:
                self._ledger.record_attempt(delivery, status="sent", now=self._clock())
                sent.append(attempt.recipient)
            else:
                errors.append(f"{attempt.recipient}: {attempt.error}")
                self._record_failure(delivery, attempt.error)
            return lease.renew()

        nonces = self._ledger.nonces(digest.id)
        deliver(
            self._require_smtp(),
            [d.recipient for d in pending],
            lambda address: self._message(digest, issue, by_address[address], nonces),
            on_result=record,
            sleep=self._sleep,
        )
        self._ledger.complete_if_done(digest.id, issue.stamp, self._clock())
        left = len(self._ledger.deliveries(digest.id, issue.stamp, status="pending"))
        return DigestReport(
            digest.id,
            issue.stamp,
            issue.item_count,
            issue.more_count,
            sent_to=tuple(sent),
            errors=tuple(errors),
            pending=left,
            resumed=resumed,
        )

    def _record_failure(self, delivery: Delivery, error: DeliveryError) -> None:
        """A refused address fails for good; anything else waits for a later attempt,
        until ``next_attempt`` gives up."""
        now = self._clock()
        attempts = delivery.attempts + 1
        if error.permanent and error.recipient_only:
            self._ledger.record_attempt(delivery, status="failed", now=now, error=str(error))
            return
        retry = next_attempt(attempts, now)
        if retry is None:
            message = f"gave up after {attempts} attempts: {error}"
            self._ledger.record_attempt(delivery, status="failed", now=now, error=message)
            return
        self._ledger.record_attempt(
            delivery, status="pending", now=now, error=str(error), next_attempt_at=retry
        )

    def _message(
        self,
        digest: DigestConfig,
        issue: StoredIssue,
        delivery: Delivery,
        nonces: Mapping[str, str],
    ) -> bytes:
        secret = self._require_secret()
        token = make_token(
            secret, digest.id, delivery.recipient, nonces.get(delivery.recipient, "")
        )
        smtp = self._require_smtp()
        links = unsubscribe_links(
            self._config.site.app_url,
            token,
            smtp.unsubscribe_mailbox or _address_of(smtp.sender),
            digest.id,
        )
        return build_message(
            _as_rendered(issue, digest),
            sender=smtp.sender,
            recipient=delivery.recipient,
            message_id=delivery.message_id,
            list_id=make_list_id(digest.id, self._config.site),
            date=issue.window_end,
            unsubscribe=links,
        )

    def status(self, digest: DigestConfig) -> DigestStatus:
        stored = {s.address: s for s in self._ledger.subscribers(digest.id)}
        listed = set(digest.to)
        readers = {a for a, s in stored.items() if s.status == "active" and s.source != "config"}
        readers |= {a for a in listed if a not in stored or stored[a].status == "active"}
        last = self._ledger.last_issue(digest.id)
        return DigestStatus(
            digest.id,
            len(readers),
            last.stamp if last else None,
            last is not None and last.completed_at is not None,
            tuple(self._ledger.deliveries(digest.id, status="pending")),
            tuple(self._ledger.deliveries(digest.id, status="failed")),
        )

    # ------------------------------------------------------------ archive and retention

    def prune(self, older_than: datetime) -> int:
        """Forget complete issues that ended before ``older_than``, and their files."""
        pruned = self._ledger.prune_issues(older_than)
        for digest in self._config.digests:
            stamps = [stamp for digest_id, stamp in pruned if digest_id == digest.id]
            if stamps:
                remove_issue_files(self._config.output_dir, digest.id, stamps)
                remove_issue_files(self._config.state_dir, digest.id, stamps)
                self._write_archive(digest)
        return len(pruned)

    def _write_archive(self, digest: DigestConfig) -> list[str]:
        archived = [
            ArchivedIssue(i.digest_id, i.stamp, i.subject, i.window_end, i.item_count)
            for i in self._ledger.issues(digest.id)
        ]
        try:
            write_archive(self._config.output_dir, self._config.site, digest, archived)
        except (OSError, AggregatorError) as exc:
            return [f"archive of {digest.id}: {exc}"]
        return []

    # ------------------------------------------------------------ helpers

    @contextmanager
    def _lease(self, digest_id: str) -> Iterator[_Lease | None]:
        lease = _Lease(self._ledger, digest_id, self._clock)
        if not lease.take():
            yield None
            return
        try:
            yield lease
        finally:
            lease.release()

    def _inspection_copy(self, rendered: RenderedIssue) -> bytes:
        sender = self._config.smtp.sender if self._config.smtp else default_sender(self._config)
        return build_message(
            rendered,
            sender=sender,
            recipient=_address_of(sender),
            message_id=make_message_id(rendered.issue, self._config.site, "preview"),
            list_id=make_list_id(rendered.issue.digest_id, self._config.site),
            date=rendered.issue.window_end,
            unsubscribe=None,
        )

    def _private_dir(self, digest_id: str) -> Path:
        return self._config.state_dir / "digests" / digest_id

    def _require_smtp(self) -> SmtpConfig:
        smtp = self._config.smtp
        if smtp is None:
            problem = ConfigProblem(
                str(self._config.path), 1, "smtp", "sending needs an smtp section (host, from)"
            )
            raise ConfigError([problem])
        return smtp

    def _require_secret(self) -> bytes:
        return require_secret(self._config)


def require_secret(config: Config) -> bytes:
    """The key that signs unsubscribe links; a clear error when sending without one."""
    if config.secret_key is None:
        why = (
            "is not set; sending digests needs it to sign unsubscribe links "
            "(e.g. export AGGREGATOR_SECRET_KEY=$(openssl rand -base64 32))"
        )
        raise ConfigError([ConfigProblem("environment", 0, "AGGREGATOR_SECRET_KEY", why)])
    return config.secret_key


class _Lease:
    """This process's claim on sending one digest."""

    def __init__(self, ledger: DigestLedger, digest_id: str, clock: Clock) -> None:
        self._ledger = ledger
        self._digest_id = digest_id
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._pid = os.getpid()

    def take(self) -> bool:
        if self._take(steal_from=None):
            return True
        holder = self._ledger.lease_holder(self._digest_id)
        if holder is None or holder.host != self._host or holder.pid is None:
            return holder is None and self._take(steal_from=None)
        if _alive(holder.pid):
            return False
        log.warning(
            "digest %s: taking over from a sender that died (pid %d)", self._digest_id, holder.pid
        )
        return self._take(steal_from=holder.owner)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (then stop sending at once)."""
        return self._take(steal_from=None)

    def release(self) -> None:
        self._ledger.release_lease(self._digest_id, self._owner)

    def _take(self, *, steal_from: str | None) -> bool:
        now = self._clock()
        return self._ledger.take_lease(
            self._digest_id,
            owner=self._owner,
            host=self._host,
            pid=self._pid,
            now=now,
            expires_at=now + LEASE_TTL,
            steal_from=steal_from,
        )


def _clear(directory: Path) -> None:
    for old in directory.glob("*"):
        if old.suffix in (".html", ".txt", ".eml"):
            old.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _as_rendered(issue: StoredIssue, digest: DigestConfig) -> RenderedIssue:
    shell = DigestIssue(
        digest_id=issue.digest_id,
        title=digest.title,
        stamp=issue.stamp,
        window_start=issue.window_start,
        window_end=issue.window_end,
        sections=(),
        more=issue.more_count,
    )
    return RenderedIssue(shell, issue.subject, issue.html, issue.text, "", "")


def _address_of(mailbox: str) -> str:
    return parseaddr(mailbox)[1]


def default_sender(config: Config) -> str:
    """The From of previews when there is no smtp section."""
    host = urlsplit(config.site.url).hostname or "localhost"
    return formataddr((config.site.title, f"digest@{host}"))


__all__: Sequence[str] = ["DigestReport", "Newsletter", "default_sender", "require_secret"]
