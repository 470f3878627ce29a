"""The pure decisions across feeds: who a round polls, how moves are adopted, feed states."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.health import (
    ADOPT_AFTER,
    ADOPT_AFTER_POLLS,
    FAILING_AFTER,
    assess,
    health,
    plan_round,
    track_move,
)
from aggregator.models import Feed, FetchResult

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def feed(url: str, **state: object) -> Feed:
    base = Feed(url=url, title=None, link=None, feed_id=None, updated=None, active=True)
    values: dict[str, object] = {"last_fetched_at": NOW - HOUR, "next_due_at": NOW - HOUR}
    return replace(base, **(values | state))  # type: ignore[arg-type]


def urls(feeds: tuple[Feed, ...]) -> list[str]:
    return [f.url for f in feeds]


def test_round_polls_due_feeds_and_all_of_them_on_request() -> None:
    due = feed("https://a.test/due")
    later = feed("https://a.test/later", next_due_at=NOW + HOUR)

    assert urls(plan_round([due, later], NOW, everything=False).poll) == [due.url]
    assert urls(plan_round([due, later], NOW, everything=True).poll) == [due.url, later.url]


def test_retired_and_rate_limited_feeds_are_held_even_when_polling_everything() -> None:
    gone = feed("https://gone.test/feed", gone_at=NOW - HOUR)
    limited = feed("https://busy.test/a", retry_until=NOW + HOUR)
    neighbour = feed("https://busy.test/b", next_due_at=NOW + HOUR)  # same host
    healthy = feed("https://fine.test/feed")

    plan = plan_round([gone, limited, neighbour, healthy], NOW, everything=True)

    assert urls(plan.poll) == [healthy.url]
    reasons = {h.feed.url: h.reason for h in plan.held}
    assert "410 Gone" in reasons[gone.url]
    assert "2026-12-05 10:00 UTC" in reasons[limited.url]
    assert "busy.test asked us to slow down" in reasons[neighbour.url]


def test_held_feeds_that_are_not_due_are_not_reported_in_a_normal_round() -> None:
    gone = feed("https://gone.test/feed", gone_at=NOW - HOUR, next_due_at=NOW + HOUR)
    assert plan_round([gone], NOW, everything=False).held == ()


def test_an_expired_retry_after_no_longer_holds() -> None:
    limited = feed("https://busy.test/a", retry_until=NOW - timedelta(seconds=1))
    assert urls(plan_round([limited], NOW, everything=False).poll) == [limited.url]


def test_force_overrides_retirement_and_retry_after_for_the_named_feed_only() -> None:
    gone = feed("https://gone.test/feed", gone_at=NOW - HOUR)
    limited = feed("https://busy.test/a", retry_until=NOW + HOUR)

    plan = plan_round([gone, limited], NOW, everything=True, forced={gone.url})

    assert urls(plan.poll) == [gone.url]
    assert urls(tuple(h.feed for h in plan.held)) == [limited.url]


def moved(url: str, target: str, *, status_chain: bool = True) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=target,
        status=200,
        headers={},
        content=b"x",
        fetched_at=NOW,
        redirects=(url,),
        permanent_redirect=status_chain,
    )


def test_a_permanent_move_is_adopted_after_consecutive_polls() -> None:
    current = feed("https://old.test/feed")
    target = "https://new.test/feed"
    states = []
    for _ in range(ADOPT_AFTER_POLLS):
        state = track_move(current, moved(current.url, target), NOW)
        states.append(state)
        current = replace(current, **state.__dict__)

    assert [s.fetch_url for s in states[:-1]] == [None] * (ADOPT_AFTER_POLLS - 1)
    assert states[-1].fetch_url == target
    assert current.request_url == target


def test_a_permanent_move_is_adopted_after_a_day_even_with_few_polls() -> None:
    first = track_move(
        feed("https://old.test/feed"), moved("https://old.test/feed", "https://n.test/"), NOW
    )
    pending = replace(feed("https://old.test/feed"), **first.__dict__)

    later = track_move(pending, moved(pending.url, "https://n.test/"), NOW + ADOPT_AFTER)

    assert later.fetch_url == "https://n.test/"


def test_temporary_redirects_and_vanished_moves_are_never_adopted() -> None:
    start = feed("https://old.test/feed")
    temporary = track_move(start, moved(start.url, "https://tmp.test/", status_chain=False), NOW)
    assert temporary.fetch_url is None
    assert temporary.moved_to is None

    pending = replace(start, moved_to="https://n.test/", moved_since=NOW, moved_count=2)
    no_redirect = FetchResult(start.url, start.url, 200, {}, b"x", NOW)
    assert track_move(pending, no_redirect, NOW).moved_to is None


def test_states_worst_first() -> None:
    assert health(feed("u", gone_at=NOW, error_count=3), NOW) == "gone"
    assert health(feed("u", retry_until=NOW + HOUR, error_count=1), NOW) == "rate-limited"
    failing = feed("u", error_count=9, failing_since=NOW - FAILING_AFTER)
    assert health(failing, NOW) == "failing"
    assert health(feed("u", error_count=1, failing_since=NOW - HOUR), NOW) == "backing-off"
    assert health(feed("u", moved_to="v", fetch_url="v"), NOW) == "moved"
    assert health(feed("u", last_status=304), NOW) == "not-modified"
    assert health(feed("u", last_status=200), NOW) == "ok"
    assert health(feed("u", last_fetched_at=None), NOW) == "new"


def test_advice_names_the_line_to_edit() -> None:
    adopted = feed(
        "https://old.test/feed", moved_to="https://new.test/feed", fetch_url="https://new.test/feed"
    )
    assert assess(adopted, NOW, line=12).advice == (
        "feeds.yaml line 12: the feed has moved permanently; change its url to https://new.test/feed"
    )
    gone = assess(feed("u", gone_at=NOW), NOW, line=3)
    assert gone.advice is not None
    assert gone.advice.startswith("feeds.yaml line 3:")
    failing = feed("u", error_count=30, failing_since=NOW - FAILING_AFTER, last_error="HTTP 500")
    assert assess(failing, NOW, line=1).advice == (
        "failing since 2026-11-28 09:00 UTC, still retried daily: HTTP 500"
    )
