"""Feed health, pure: which feeds a round polls, how moves are adopted, and each feed's state.

The timing of single feeds is polling.py's; this module decides across feeds and polls:

* A round polls the due feeds (``fetch``), or every feed (``fetch --all``), but never one
  retired by ``410 Gone`` nor one whose server's ``Retry-After`` is still in force — nor any
  other feed on that host: a server that asked us to slow down gets no requests from us
  for any of its feeds until then. ``fetch --feed URL --force`` overrides both for one feed.
* A permanent redirect (301/308) seen on ``ADOPT_AFTER_POLLS`` polls in a row, or for
  ``ADOPT_AFTER``, is adopted: later polls request the new URL directly, while the feed keeps
  its identity (nothing is re-published or re-sent) and ``status`` shows the feeds.yaml line
  to change. A temporary redirect (302/307) is followed, never adopted.
* A feed failing for ``FAILING_AFTER`` is *failing*: reported, still retried at least daily.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .models import Feed, FetchResult

__all__ = [
    "ADOPT_AFTER",
    "ADOPT_AFTER_POLLS",
    "FAILING_AFTER",
    "FeedHealth",
    "HealthState",
    "HeldFeed",
    "MoveState",
    "RoundPlan",
    "assess",
    "health",
    "plan_round",
    "track_move",
]

ADOPT_AFTER_POLLS = 3
ADOPT_AFTER = timedelta(hours=24)
FAILING_AFTER = timedelta(days=7)

HealthState = Literal[
    "ok", "not-modified", "backing-off", "rate-limited", "failing", "moved", "gone", "new"
]


@dataclass(frozen=True)
class HeldFeed:
    """A feed a round did not poll, and why (in words for the operator)."""

    feed: Feed
    reason: str


@dataclass(frozen=True)
class RoundPlan:
    poll: tuple[Feed, ...]
    held: tuple[HeldFeed, ...]


def plan_round(
    feeds: Sequence[Feed], now: datetime, *, everything: bool, forced: Collection[str] = ()
) -> RoundPlan:
    """Which of ``feeds`` to poll now; see the module docstring for the rules."""
    paused = _paused_hosts(feeds, now)
    poll: list[Feed] = []
    held: list[HeldFeed] = []
    for feed in feeds:
        if feed.url in forced:
            poll.append(feed)
            continue
        reason = _hold_reason(feed, now, paused)
        if reason is not None:
            if everything or _is_due(feed, now):
                held.append(HeldFeed(feed, reason))
        elif everything or _is_due(feed, now):
            poll.append(feed)
    return RoundPlan(tuple(poll), tuple(held))


def _is_due(feed: Feed, now: datetime) -> bool:
    return feed.next_due_at is None or feed.next_due_at <= now


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def _paused_hosts(feeds: Sequence[Feed], now: datetime) -> dict[str, datetime]:
    paused: dict[str, datetime] = {}
    for feed in feeds:
        if feed.retry_until is not None and feed.retry_until > now:
            host = _host(feed.request_url)
            paused[host] = max(paused.get(host, feed.retry_until), feed.retry_until)
    return paused


def _hold_reason(feed: Feed, now: datetime, paused: dict[str, datetime]) -> str | None:
    if feed.gone_at is not None:
        return (
            f"retired: the server answered 410 Gone on {_when(feed.gone_at)}; remove it from "
            "feeds.yaml, or try it again with `aggregator fetch --feed URL --force`"
        )
    if feed.retry_until is not None and feed.retry_until > now:
        return f"rate-limited: the server asked us to wait until {_when(feed.retry_until)}"
    until = paused.get(_host(feed.request_url))
    if until is not None:
        host = _host(feed.request_url)
        return f"rate-limited: {host} asked us to slow down until {_when(until)}"
    return None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class MoveState:
    """Where permanent redirects point, for how long, and whether that URL is adopted."""

    moved_to: str | None = None
    moved_since: datetime | None = None
    moved_count: int = 0
    fetch_url: str | None = None


def track_move(feed: Feed, result: FetchResult, now: datetime) -> MoveState:
    """The move state after a successful poll of ``feed`` that gave ``result``."""
    if not result.permanent_redirect or result.final_url in (feed.url, feed.request_url):
        # No redirect now: an adopted URL stays adopted; a pending move is forgotten.
        if feed.fetch_url is not None:
            return MoveState(feed.moved_to, feed.moved_since, feed.moved_count, feed.fetch_url)
        return MoveState()
    target = result.final_url
    if target == feed.moved_to and feed.moved_since is not None:
        since, count = feed.moved_since, feed.moved_count + 1
    else:
        since, count = now, 1
    adopted = count >= ADOPT_AFTER_POLLS or now - since >= ADOPT_AFTER
    return MoveState(target, since, count, target if adopted else feed.fetch_url)


def health(feed: Feed, now: datetime) -> HealthState:
    """One word for a feed's state, the worst first."""
    if feed.gone_at is not None:
        return "gone"
    if feed.retry_until is not None and feed.retry_until > now:
        return "rate-limited"
    if feed.failing_since is not None and now - feed.failing_since >= FAILING_AFTER:
        return "failing"
    if feed.error_count:
        return "backing-off"
    if feed.moved_to is not None:
        return "moved"
    if feed.last_fetched_at is None:
        return "new"
    return "not-modified" if feed.last_status == 304 else "ok"


@dataclass(frozen=True)
class FeedHealth:
    """A feed's state, and what the editor should do about it, if anything."""

    feed: Feed
    state: HealthState
    advice: str | None = None
    items_per_day: float | None = None  # lately; None until two dated items are stored

    @property
    def is_problem(self) -> bool:
        return self.state not in ("ok", "not-modified", "new")


def assess(
    feed: Feed, now: datetime, *, line: int, items_per_day: float | None = None
) -> FeedHealth:
    """The feed's state and advice naming its feeds.yaml ``line`` where an edit would help."""
    state = health(feed, now)
    where = f"feeds.yaml line {line}" if line else "feeds.yaml"
    advice: str | None = None
    if state == "gone":
        advice = f"{where}: the server says this feed is gone for good (410); remove it"
    elif feed.moved_to is not None and feed.fetch_url is not None:
        advice = f"{where}: the feed has moved permanently; change its url to {feed.moved_to}"
    elif state == "failing" and feed.failing_since is not None:
        since = _when(feed.failing_since)
        advice = f"failing since {since}, still retried daily: {feed.last_error}"
    return FeedHealth(feed, state, advice, items_per_day)
