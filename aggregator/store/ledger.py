"""``DigestLedger``: the store's newsletter half — issues, deliveries, the sender lease and
subscribers — one unit of work per method, errors wrapped as ``StorageError``.

The protocol that makes sending exactly-once is described in ``store/digests.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from aggregator.models import (
    Delivery,
    DeliveryStatus,
    DigestIssue,
    EntryKey,
    StoredIssue,
    Subscriber,
)
from aggregator.store import digests
from aggregator.store import subscribers as subs
from aggregator.store.database import storage_errors, write_transaction
from aggregator.subscribers import TokenClaim, UnsubscribeOutcome


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    host: str | None
    pid: int | None
    expires_at: datetime | None


@dataclass(frozen=True)
class NewIssue:
    """What claiming an issue records, besides the issue itself."""

    subject: str
    html: str
    text: str
    next_start: datetime
    recipients: tuple[tuple[str, str], ...]  # (address, Message-ID)
    articles: Mapping[EntryKey, str | None]  # each item's article, so no feed repeats it


class DigestLedger:
    def __init__(self, engine: Engine, display_url: str) -> None:
        self._engine = engine
        self.display_url = display_url

    # ------------------------------------------------------------ lease

    @storage_errors
    def take_lease(
        self,
        digest_id: str,
        *,
        owner: str,
        host: str,
        pid: int,
        now: datetime,
        expires_at: datetime,
        steal_from: str | None = None,
    ) -> bool:
        with write_transaction(self._engine) as conn:
            return digests.take_lease(
                conn,
                digest_id,
                owner=owner,
                host=host,
                pid=pid,
                now=now,
                expires_at=expires_at,
                steal_from=steal_from,
            )

    @storage_errors
    def lease_holder(self, digest_id: str) -> LeaseHolder | None:
        with self._engine.connect() as conn:
            row = digests.lease_holder(conn, digest_id)
        if row is None:
            return None
        return LeaseHolder(row.owner, row.host, row.pid, row.expires_at)

    @storage_errors
    def release_lease(self, digest_id: str, owner: str) -> None:
        with write_transaction(self._engine) as conn:
            digests.release_lease(conn, digest_id, owner)

    # ------------------------------------------------------------ issues

    @storage_errors
    def last_issue(self, digest_id: str) -> StoredIssue | None:
        with self._engine.connect() as conn:
            return digests.last_issue(conn, digest_id)

    @storage_errors
    def open_issues(self, digest_id: str | None = None) -> list[StoredIssue]:
        with self._engine.connect() as conn:
            return digests.open_issues(conn, digest_id)

    @storage_errors
    def issues(self, digest_id: str) -> list[StoredIssue]:
        with self._engine.connect() as conn:
            return digests.issues(conn, digest_id)

    @storage_errors
    def sent_entry_keys(self, digest_id: str) -> set[EntryKey]:
        with self._engine.connect() as conn:
            return digests.sent_entry_keys(conn, digest_id)

    @storage_errors
    def sent_article_ids(self, digest_id: str) -> set[str]:
        with self._engine.connect() as conn:
            return digests.sent_article_ids(conn, digest_id)

    @storage_errors
    def claim_issue(self, issue: DigestIssue, new: NewIssue, now: datetime) -> StoredIssue:
        with write_transaction(self._engine) as conn:
            return digests.claim_issue(
                conn,
                issue,
                subject=new.subject,
                html=new.html,
                text=new.text,
                next_start=new.next_start,
                recipients=new.recipients,
                articles=new.articles,
                now=now,
            )

    @storage_errors
    def complete_if_done(self, digest_id: str, stamp: str, now: datetime) -> bool:
        with write_transaction(self._engine) as conn:
            return digests.complete_if_done(conn, digest_id, stamp, now)

    @storage_errors
    def prune_issues(self, older_than: datetime) -> list[tuple[str, str]]:
        with write_transaction(self._engine) as conn:
            return digests.prune_issues(conn, older_than)

    # ------------------------------------------------------------ deliveries

    @storage_errors
    def deliveries(
        self, digest_id: str, stamp: str | None = None, *, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        with self._engine.connect() as conn:
            return digests.deliveries(conn, digest_id, stamp, status=status)

    @storage_errors
    def record_attempt(
        self,
        delivery: Delivery,
        *,
        status: DeliveryStatus,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        with write_transaction(self._engine) as conn:
            digests.record_attempt(
                conn, delivery, status=status, now=now, error=error, next_attempt_at=next_attempt_at
            )

    # ------------------------------------------------------------ subscribers

    @storage_errors
    def add_subscribers(
        self,
        digest_id: str,
        addresses: Sequence[str],
        *,
        source: str,
        now: datetime,
        new_nonce: Callable[[], str],
    ) -> dict[str, subs.AddResult]:
        with write_transaction(self._engine) as conn:
            return {
                address: subs.add(
                    conn, digest_id, address, source=source, now=now, new_nonce=new_nonce
                )
                for address in addresses
            }

    @storage_errors
    def recipients(
        self,
        digest_id: str,
        config_to: Sequence[str],
        *,
        now: datetime,
        new_nonce: Callable[[], str],
    ) -> list[Subscriber]:
        """The digest's active readers, giving new ``to:`` addresses their row first."""
        with write_transaction(self._engine) as conn:
            subs.add_config_recipients(conn, digest_id, config_to, now=now, new_nonce=new_nonce)
            return subs.recipients(conn, digest_id, config_to)

    @storage_errors
    def remove_subscriber(self, digest_id: str, address: str, now: datetime) -> bool:
        with write_transaction(self._engine) as conn:
            return subs.remove(conn, digest_id, address, now)

    @storage_errors
    def unsubscribe(self, claim: TokenClaim, now: datetime) -> UnsubscribeOutcome:
        with write_transaction(self._engine) as conn:
            return subs.unsubscribe(conn, claim, now)

    @storage_errors
    def subscribers(self, digest_id: str) -> list[Subscriber]:
        with self._engine.connect() as conn:
            return subs.listing(conn, digest_id)

    @storage_errors
    def nonces(self, digest_id: str) -> dict[str, str]:
        with self._engine.connect() as conn:
            return subs.nonces(conn, digest_id)
