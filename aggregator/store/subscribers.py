"""Subscriber rows: who reads each digest, and who asked to stop.

An unsubscribed row is kept (not deleted) so that an address listed under ``to:`` in
feeds.yaml stays unsubscribed when the reader asked for it: the reader's word wins over
the file until someone adds the address again by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, or_, select, update
from sqlalchemy.engine import Connection

from aggregator.models import Subscriber
from aggregator.store.digests import drop_pending, insert_ignore
from aggregator.store.schema import subscribers
from aggregator.subscribers import TokenClaim, UnsubscribeOutcome, decide_unsubscribe

AddResult = Literal["added", "reactivated", "unchanged"]


def add(
    conn: Connection,
    digest_id: str,
    address: str,
    *,
    source: str,
    now: datetime,
    new_nonce: Callable[[], str],
) -> AddResult:
    row = _row(conn, digest_id, address)
    if row is None:
        values = {
            "digest_id": digest_id,
            "address": address,
            "status": "active",
            "source": source,
            "nonce": new_nonce(),
            "added_at": now,
            "changed_at": now,
        }
        insert_ignore(conn, subscribers, [values])
        return "added"
    if row.status == "active":
        return "unchanged"
    # A new subscription: links from the old one must not end it.
    _set(conn, digest_id, address, status="active", source=source, nonce=new_nonce(), now=now)
    return "reactivated"


def add_config_recipients(
    conn: Connection,
    digest_id: str,
    addresses: Sequence[str],
    *,
    now: datetime,
    new_nonce: Callable[[], str],
) -> None:
    """Give every ``to:`` address a row (and so a nonce for its unsubscribe link); existing
    rows, unsubscribed ones included, are left as they are."""
    rows = [
        {
            "digest_id": digest_id,
            "address": address,
            "status": "active",
            "source": "config",
            "nonce": new_nonce(),
            "added_at": now,
            "changed_at": now,
        }
        for address in addresses
    ]
    insert_ignore(conn, subscribers, rows)


def recipients(conn: Connection, digest_id: str, config_to: Sequence[str]) -> list[Subscriber]:
    """Active readers: everyone added by hand or CSV, and the ``to:`` addresses still listed."""
    query = (
        select(subscribers)
        .where(
            subscribers.c.digest_id == digest_id,
            subscribers.c.status == "active",
            or_(subscribers.c.source != "config", subscribers.c.address.in_(list(config_to))),
        )
        .order_by(subscribers.c.address)
    )
    return [_subscriber(row) for row in conn.execute(query)]


def remove(conn: Connection, digest_id: str, address: str, now: datetime) -> bool:
    """Unsubscribe by hand; returns False when the address was not an active reader."""
    row = _row(conn, digest_id, address)
    if row is None or row.status != "active":
        return False
    _set(conn, digest_id, address, status="unsubscribed", nonce=row.nonce, now=now)
    drop_pending(conn, digest_id, address)
    return True


def unsubscribe(conn: Connection, claim: TokenClaim, now: datetime) -> UnsubscribeOutcome:
    """Follow an unsubscribe link (see ``decide_unsubscribe``); its pending deliveries go too."""
    row = _row(conn, claim.digest_id, claim.address)
    outcome = decide_unsubscribe(
        claim,
        current_nonce=None if row is None else row.nonce,
        active=row is not None and row.status == "active",
    )
    if outcome is UnsubscribeOutcome.UNSUBSCRIBED:
        _set(
            conn, claim.digest_id, claim.address, status="unsubscribed", nonce=claim.nonce, now=now
        )
        drop_pending(conn, claim.digest_id, claim.address)
    return outcome


def listing(conn: Connection, digest_id: str) -> list[Subscriber]:
    query = (
        select(subscribers)
        .where(subscribers.c.digest_id == digest_id)
        .order_by(subscribers.c.address)
    )
    return [_subscriber(row) for row in conn.execute(query)]


def nonces(conn: Connection, digest_id: str) -> dict[str, str]:
    query = select(subscribers.c.address, subscribers.c.nonce).where(
        subscribers.c.digest_id == digest_id
    )
    return {row.address: row.nonce for row in conn.execute(query)}


def _row(conn: Connection, digest_id: str, address: str) -> Row[Any] | None:
    query = select(subscribers).where(
        subscribers.c.digest_id == digest_id, subscribers.c.address == address
    )
    return conn.execute(query).first()


def _set(
    conn: Connection,
    digest_id: str,
    address: str,
    *,
    status: str,
    nonce: str,
    now: datetime,
    source: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "nonce": nonce, "changed_at": now}
    if source is not None:
        values["source"] = source
    conn.execute(
        update(subscribers)
        .where(subscribers.c.digest_id == digest_id, subscribers.c.address == address)
        .values(**values)
    )


def _subscriber(row: Row[Any]) -> Subscriber:
    return Subscriber(
        digest_id=row.digest_id,
        address=row.address,
        status=row.status,
        source=row.source,
        nonce=row.nonce,
        added_at=row.added_at,
        changed_at=row.changed_at,
    )
