"""Store: real SQLite files (and PostgreSQL when AGGREGATOR_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command as alembic_command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from aggregator.config import FeedConfig
from aggregator.errors import StorageError
from aggregator.models import (
    DigestIssue,
    DigestItem,
    DigestSection,
    Entry,
    EntryKey,
    FetchResult,
    ParsedEntry,
    ParsedFeed,
    StoredIssue,
    TopicMatch,
)
from aggregator.store import Store, open_store
from aggregator.store.database import (
    MIGRATIONS_DIR,
    SCHEMA_HEAD,
    make_engine,
    newest_known_revision,
)
from aggregator.store.entries import content_hash, dedupe, plan_upsert
from aggregator.store.ledger import NewIssue
from aggregator.store.schema import metadata

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FEED_A = "https://a.example/feed"
FEED_B = "https://b.example/feed"
TABLES = {
    "feeds",
    "entries",
    "entry_topics",
    "digest_issues",
    "digest_issue_items",
    "digest_recipients",
    "digest_senders",
    "subscribers",
    "article_keys",
    "alembic_version",
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def db_url(database_url: str) -> str:
    """A URL to an empty database on each backend (conftest's ``database_url``)."""
    return database_url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.close()


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def parsed_entry(entry_id: str, **changes: Any) -> ParsedEntry:
    fields: dict[str, Any] = {
        "entry_id": entry_id,
        "title": f"Title {entry_id}",
        "link": f"https://a.example/{entry_id}",
        "summary": f"<p>Summary {entry_id}</p>",
        "content": f"<p>Content {entry_id}</p>",
        "published": T0 - timedelta(hours=1),
        "updated": None,
        "author": "Reporter",
        "categories": ("news",),
    }
    fields.update(changes)
    return ParsedEntry(**fields)


def parsed_feed(url: str, *entries: ParsedEntry, **changes: Any) -> ParsedFeed:
    fields: dict[str, Any] = {
        "url": url,
        "title": f"Own title of {url}",
        "link": url.replace("/feed", "/"),
        "feed_id": f"urn:feed:{url}",
        "updated": T0 - timedelta(minutes=5),
        "entries": entries,
    }
    fields.update(changes)
    return ParsedFeed(**fields)


def fetched(url: str, now: datetime, *, status: int = 200, **changes: Any) -> FetchResult:
    fields: dict[str, Any] = {
        "url": url,
        "final_url": url,
        "status": status,
        "headers": {},
        "content": None if status == 304 else b"<feed/>",
        "fetched_at": now,
    }
    fields.update(changes)
    return FetchResult(**fields)


def store_feed(
    store: Store,
    url: str,
    *entries: ParsedEntry,
    now: datetime = T0,
    topics: Mapping[str, tuple[TopicMatch, ...]] | None = None,
) -> Any:
    return store.record_success(
        url,
        fetched(url, now),
        parsed_feed(url, *entries),
        topics or {},
        next_due_at=now + timedelta(minutes=30),
        now=now,
    )


def match(topic_id: str, *reasons: str) -> TopicMatch:
    return TopicMatch(topic_id, reasons or (f"keyword in title for {topic_id}",))


def issue(stamp: str, start: datetime, end: datetime, *keys: EntryKey) -> DigestIssue:
    items = tuple(
        DigestItem(key, f"title {key.entry_id}", None, "Source", start, "text") for key in keys
    )
    return DigestIssue(
        digest_id="daily",
        title="Daily",
        stamp=stamp,
        window_start=start,
        window_end=end,
        sections=(DigestSection(None, "Other", items),),
    )


# ---------------------------------------------------------------- schema and opening


def test_open_migrates_to_head_and_reopening_is_harmless(db_url: str) -> None:
    first = open_store(db_url)
    first.sync_feeds([FeedConfig(FEED_A)], T0)
    first.close()

    second = open_store(db_url)  # already at head: must neither fail nor lose data
    assert [f.url for f in second.feeds()] == [FEED_A]
    second.close()

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            stored = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert stored == SCHEMA_HEAD == newest_known_revision()
            # schema.py and the migrations describe the same schema.
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            assert diff == []
    finally:
        engine.dispose()


def test_concurrent_opens_of_a_fresh_database_all_succeed(db_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []
    lock = threading.Lock()

    def opener() -> None:
        try:
            opened = open_store(db_url)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                stores.append(opened)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert errors == []
    assert len(stores) == 4


def test_sqlite_creates_the_directory_and_uses_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "agg.db"
    opened = open_store(f"sqlite:///{path}")
    opened.close()
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # foreign_keys is per connection, so observe it through its effect: cascade on prune.
    store = open_store(f"sqlite:///{path}")
    try:
        store.sync_feeds([FeedConfig(FEED_A)], T0)
        store_feed(store, FEED_A, parsed_entry("old"), topics={"old": (match("t"),)})
        assert store.prune(T0 + timedelta(days=1)) == 1
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM entry_topics").fetchone()[0] == 0


def test_sqlite_open_waits_while_another_connection_is_creating_the_file(tmp_path: Path) -> None:
    # Regression: switching a not-yet-WAL file to WAL while another connection holds its
    # write lock gets SQLITE_BUSY at once, busy_timeout or not, so two processes opening a
    # fresh database together failed now and then with "database is locked".
    path = tmp_path / "agg.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        creator.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, creator.execute, ["COMMIT"])
        release.start()
        opened = open_store(f"sqlite:///{path}")
        opened.close()
        release.join()
    finally:
        creator.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unusable_sqlite_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(StorageError):
        open_store(f"sqlite:///{blocker / 'agg.db'}")


def test_empty_sqlite_file_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agg.db"
    path.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))  # not a file another process is creating now
    with pytest.raises(StorageError) as caught:
        open_store(f"sqlite:///{path}")
    assert "is empty (0 bytes): restore it from a backup" in str(caught.value)
    assert path.stat().st_size == 0  # untouched: the operator decides


def test_damaged_sqlite_file_is_named_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "agg.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # a header, then garbage
    with pytest.raises(StorageError) as caught:
        open_store(f"sqlite:///{path}")
    assert "the database file is damaged" in str(caught.value)


def test_database_from_a_newer_version_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agg.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "agg.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(StorageError) as caught:
        open_store(url)
    assert "upgraded by a newer version of aggregator" in str(caught.value)


def test_garbage_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        open_store("this is not a database url")


def test_table_dropped_underneath_is_a_storage_error(db_url: str, store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE entry_topics"))
            conn.execute(text("DROP TABLE entries"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError) as caught:
        store.entries()
    assert caught.value.__cause__ is not None
    with pytest.raises(StorageError):
        store_feed(store, FEED_A, parsed_entry("1"))


def test_a_failed_record_success_leaves_nothing_half_written(db_url: str, store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:  # the last statement of the unit of work will fail
            conn.execute(text("DROP TABLE entry_topics"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError):
        store_feed(store, FEED_A, parsed_entry("1"), topics={"1": (match("war"),)}, now=at(5))
    feed = store.feed(FEED_A)
    assert feed is not None
    assert (feed.last_fetched_at, feed.last_status, feed.entry_count) == (None, None, 0)


def test_naive_datetime_is_refused_as_storage_error(store: Store) -> None:
    with pytest.raises(StorageError):
        store.sync_feeds([FeedConfig(FEED_A)], datetime(2025, 1, 1))


def test_recording_for_an_unknown_feed_is_a_storage_error_and_writes_nothing(
    store: Store,
) -> None:
    with pytest.raises(StorageError, match="unknown feed"):
        store_feed(store, FEED_A, parsed_entry("1"))
    assert store.entries() == []


def test_lone_surrogate_is_a_storage_error(store: Store) -> None:
    # Regression: sqlite3 and psycopg raise UnicodeEncodeError themselves, which SQLAlchemy
    # passes on unwrapped, so it escaped the StorageError boundary.
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    with pytest.raises(StorageError) as caught:
        store.record_failure(FEED_A, "bad \udcff byte", status=None, next_due_at=T0, now=T0)
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)
    assert store.feed(FEED_A).error_count == 0  # type: ignore[union-attr]


def test_extreme_dates_round_trip_whatever_the_session_time_zone(db_url: str) -> None:
    # Regression: psycopg returns timestamptz in the session's TimeZone, where years 1 and
    # 9999 UTC can fall outside datetime's range; storing worked, every read then failed.
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":
        options = url.query.get("options", "")
        # UTC+14 now, LMT -10:29 before 1901: both ends fall off datetime's range.
        url = url.update_query_dict({"options": f"{options} -ctimezone=Pacific/Kiritimati"})
    first = datetime(1, 1, 1, tzinfo=UTC)
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    opened = open_store(url.render_as_string(hide_password=False))
    try:
        opened.sync_feeds([FeedConfig(FEED_A)], T0)
        store_feed(
            opened,
            FEED_A,
            parsed_entry("first", published=first, updated=last),
            parsed_entry("last", published=last, updated=first),
        )
        # `published` in the future is clamped to when it was seen; `updated` is kept as given.
        assert [(e.entry_id, e.published, e.updated) for e in opened.entries()] == [
            ("last", T0, first),
            ("first", first, last),
        ]
    finally:
        opened.close()


def test_big_bodies_and_ids_at_the_parse_limit_are_stored(store: Store) -> None:
    # parse.py hands over ids of up to 1024 bytes (longer ones are hashed): they must fit
    # PostgreSQL's primary-key indexes even when incompressible, topics and digests included.
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    entry_id = os.urandom(512).hex()
    body = os.urandom(2_500_000).hex()  # 5 MB
    store_feed(
        store, FEED_A, parsed_entry(entry_id, content=body), topics={entry_id: (match("t"),)}
    )
    key = EntryKey(FEED_A, entry_id)
    claim(store, issue("s1", T0, at(1), key), "a@x.org", now=at(1))
    (stored,) = store.entries(topic="t")
    assert (stored.entry_id, stored.content) == (entry_id, body)
    assert store.ledger.sent_entry_keys("daily") == {key}


# ---------------------------------------------------------------- feeds


def test_sync_adds_deactivates_and_reactivates_feeds(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A, title="A"), FeedConfig(FEED_B)], T0)
    assert [(f.url, f.title, f.active, f.next_due_at) for f in store.feeds()] == [
        (FEED_A, "A", True, T0),
        (FEED_B, None, True, T0),
    ]
    store_feed(store, FEED_B, parsed_entry("b1"), now=at(1))

    store.sync_feeds([FeedConfig(FEED_A, title="A renamed")], at(2))
    assert [f.url for f in store.feeds()] == [FEED_A]
    assert store.feed(FEED_A).title == "A renamed"  # type: ignore[union-attr]
    retired = store.feed(FEED_B)
    assert retired is not None
    assert not retired.active
    assert retired.entry_count == 1  # entries stay until retention
    assert [e.entry_id for e in store.entries(feed_url=FEED_B)] == ["b1"]
    assert [f.url for f in store.feeds(active_only=False)] == [FEED_A, FEED_B]
    uncounted = store.feeds(active_only=False, counted=False)
    assert [(f.url, f.entry_count) for f in uncounted] == [(FEED_A, 0), (FEED_B, 0)]
    assert [f.url for f in store.due_feeds(at(100))] == [FEED_A]

    store.sync_feeds([FeedConfig(FEED_A), FeedConfig(FEED_B)], at(3))
    revived = store.feed(FEED_B)
    assert revived is not None
    assert revived.active
    assert revived.next_due_at == at(3)  # due at once, not at its old schedule
    assert revived.title == f"Own title of {FEED_B}"  # no config title: the feed's own
    # An already-active feed keeps its schedule.
    assert store.feed(FEED_A).next_due_at == T0  # type: ignore[union-attr]


def test_sync_racing_another_process_adding_the_same_feed(db_url: str, store: Store) -> None:
    # Regression: on PostgreSQL (READ COMMITTED, no write lock up front) two processes that
    # start together both found the feed missing and the second INSERT failed the startup.
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's BEGIN IMMEDIATE already serializes the two syncs")
    other = open_store(db_url)
    raced: list[bool] = []

    def other_process_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO feeds") and not raced:
            raced.append(True)
            other.sync_feeds([FeedConfig(FEED_A, title="other")], T0)

    engine = store._engine
    event.listen(engine, "before_cursor_execute", other_process_first)
    try:
        store.sync_feeds([FeedConfig(FEED_A, title="mine")], T0)
    finally:
        event.remove(engine, "before_cursor_execute", other_process_first)
        other.close()
    assert raced == [True]
    assert [f.url for f in store.feeds()] == [FEED_A]


def test_feed_lookup_of_missing_url_is_none(store: Store) -> None:
    assert store.feed("https://nowhere.example/") is None


def test_due_feeds_are_active_and_due_most_overdue_first(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A), FeedConfig(FEED_B)], T0)
    for url, due in ((FEED_A, at(20)), (FEED_B, at(10))):
        store.record_success(url, fetched(url, T0), None, {}, next_due_at=due, now=T0)
    assert store.due_feeds(at(5)) == []
    assert [f.url for f in store.due_feeds(at(10))] == [FEED_B]
    assert [f.url for f in store.due_feeds(at(30))] == [FEED_B, FEED_A]


def test_validators_are_stored_and_a_304_touches_state_only(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store.record_success(
        FEED_A,
        fetched(FEED_A, T0, etag='"v1"', last_modified="Sat, 01 Mar 2025 11:00:00 GMT"),
        parsed_feed(FEED_A, parsed_entry("1"), warning="recovered from bad XML"),
        {},
        next_due_at=at(30),
        now=T0,
    )
    feed = store.feed(FEED_A)
    assert feed is not None
    assert (feed.etag, feed.last_modified) == ('"v1"', "Sat, 01 Mar 2025 11:00:00 GMT")
    assert (feed.link, feed.feed_id, feed.updated) == (
        "https://a.example/",
        f"urn:feed:{FEED_A}",
        T0 - timedelta(minutes=5),
    )
    assert feed.last_warning == "recovered from bad XML"
    before = store.entries()

    # 304 without validators: the ones we sent still hold; entries untouched.
    stats = store.record_success(
        FEED_A,
        fetched(FEED_A, at(30), status=304, final_url="https://a.example/moved"),
        None,
        {},
        next_due_at=at(60),
        now=at(30),
    )
    assert not stats.changed
    after = store.feed(FEED_A)
    assert after is not None
    assert (after.etag, after.last_modified) == ('"v1"', "Sat, 01 Mar 2025 11:00:00 GMT")
    assert after.last_status == 304
    assert after.last_fetched_at == after.last_success_at == at(30)
    assert after.next_due_at == at(60)
    assert after.final_url == "https://a.example/moved"
    assert after.last_warning == "recovered from bad XML"
    assert after.title == feed.title
    assert store.entries() == before

    # A 304 that does send a fresh validator replaces it.
    store.record_success(
        FEED_A,
        fetched(FEED_A, at(60), status=304, etag='"v2"'),
        None,
        {},
        next_due_at=at(90),
        now=at(60),
    )
    assert store.feed(FEED_A).etag == '"v2"'  # type: ignore[union-attr]


def test_failures_count_up_and_a_success_resets(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store.record_failure(FEED_A, "connection refused", status=None, next_due_at=at(5), now=T0)
    store.record_failure(FEED_A, "HTTP 503", status=503, next_due_at=at(20), now=at(5))
    feed = store.feed(FEED_A)
    assert feed is not None
    assert (feed.error_count, feed.last_error, feed.last_status) == (2, "HTTP 503", 503)
    assert (feed.last_fetched_at, feed.last_success_at, feed.next_due_at) == (at(5), None, at(20))

    store_feed(store, FEED_A, parsed_entry("1"), now=at(20))
    healed = store.feed(FEED_A)
    assert healed is not None
    assert (healed.error_count, healed.last_error, healed.last_status) == (0, None, 200)
    assert healed.last_success_at == at(20)


# ---------------------------------------------------------------- entries


def test_insert_then_unchanged_then_updated_in_place(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    first = [parsed_entry("1"), parsed_entry("2"), parsed_entry("3")]
    stats = store_feed(store, FEED_A, *first, now=T0)
    assert (stats.new, stats.updated, stats.unchanged) == (3, 0, 0)

    stats = store_feed(store, FEED_A, *first, now=at(30))
    assert (stats.new, stats.updated, stats.unchanged) == (0, 0, 3)
    assert not stats.changed

    edited = [first[0], dataclasses.replace(first[1], title="Corrected title"), first[2]]
    stats = store_feed(store, FEED_A, *edited, now=at(60))
    assert (stats.new, stats.updated, stats.unchanged) == (0, 1, 2)
    stored = {e.entry_id: e for e in store.entries()}
    assert len(stored) == 3
    assert stored["2"].title == "Corrected title"
    assert stored["2"].first_seen_at == T0
    assert store.feed(FEED_A).entry_count == 3  # type: ignore[union-attr]


def test_duplicate_ids_in_one_document_last_wins_counted_once(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    stats = store_feed(
        store, FEED_A, parsed_entry("1", title="first copy"), parsed_entry("1", title="second")
    )
    assert (stats.new, stats.updated, stats.unchanged) == (1, 0, 0)
    assert [e.title for e in store.entries()] == ["second"]


def test_undated_entry_is_published_when_first_seen_and_keeps_that_date(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    undated = parsed_entry("1", published=None, updated=None)
    only_updated = parsed_entry("2", published=None, updated=T0 - timedelta(days=1))
    store_feed(store, FEED_A, undated, only_updated, now=at(7))
    stored = {e.entry_id: e for e in store.entries()}
    assert stored["1"].first_seen_at == at(7)
    # Dated when first seen, less under a second so that no two undated items tie.
    assert at(7) - timedelta(seconds=1) < stored["1"].published <= at(7)
    assert stored["2"].published == T0 - timedelta(days=1)

    store_feed(store, FEED_A, dataclasses.replace(undated, title="edited"), now=at(50))
    again = {e.entry_id: e for e in store.entries()}
    assert again["1"].title == "edited"
    assert again["1"].published == stored["1"].published  # an edit does not redate it


def test_entries_are_newest_first_with_deterministic_ties(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A, title="Alpha"), FeedConfig(FEED_B)], T0)
    same = T0 - timedelta(hours=2)
    store_feed(
        store,
        FEED_B,
        parsed_entry("b-tie", published=same),
        parsed_entry("b-new", published=T0 - timedelta(minutes=1)),
        now=T0,
    )
    store_feed(
        store,
        FEED_A,
        parsed_entry("a-tie-2", published=same),
        parsed_entry("a-tie-1", published=same),
        parsed_entry("a-old", published=T0 - timedelta(days=3)),
        now=T0,
    )
    # Same published: later first_seen first; then feed_url, entry_id.
    store_feed(store, FEED_B, parsed_entry("b-later", published=same), now=at(1))
    order = [e.entry_id for e in store.entries()]
    assert order == ["b-new", "b-later", "a-tie-1", "a-tie-2", "b-tie", "a-old"]
    assert [e.entry_id for e in store.entries(limit=2)] == ["b-new", "b-later"]
    assert [e.entry_id for e in store.entries(feed_url=FEED_A)] == ["a-tie-1", "a-tie-2", "a-old"]
    titles = {e.feed_url: e.feed_title for e in store.entries()}
    assert titles == {FEED_A: "Alpha", FEED_B: f"Own title of {FEED_B}"}
    first = store.entries()[0]
    assert first.published.tzinfo is not None
    assert first.published.utcoffset() == timedelta(0)
    assert first.categories == ("news",)
    assert first.author == "Reporter"
    assert first.story_id is None

    store.sync_feeds([FeedConfig(FEED_A)], at(2))
    active = [e.feed_url for e in store.entries(active_feeds_only=True)]
    assert set(active) == {FEED_A}
    assert len(store.entries()) == 6


def test_topic_filter_and_topics_ordered_by_id(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    topics = {
        "1": (match("war", "keyword 'Kyiv' in title"), match("europe")),
        "2": (match("tech"),),
    }
    store_feed(
        store, FEED_A, parsed_entry("1"), parsed_entry("2"), parsed_entry("3"), topics=topics
    )
    by_id = {e.entry_id: e for e in store.entries()}
    assert by_id["1"].topics == (match("europe"), match("war", "keyword 'Kyiv' in title"))
    assert by_id["3"].topics == ()
    assert [e.entry_id for e in store.entries(topic="war")] == ["1"]
    assert [e.entry_id for e in store.entries(topic="tech")] == ["2"]
    assert store.entries(topic="nothing") == []


def test_topics_are_replaced_when_an_entry_changes(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store_feed(
        store,
        FEED_A,
        parsed_entry("1"),
        parsed_entry("2"),
        topics={"1": (match("war"),), "2": (match("tech"),)},
    )
    # Entry 1 changed and is now only "europe"; entry 2 is unchanged, so its topics stay
    # even though this mapping gives none for it.
    store_feed(
        store,
        FEED_A,
        parsed_entry("1", summary="<p>new text</p>"),
        parsed_entry("2"),
        now=at(30),
        topics={"1": (match("europe"),)},
    )
    by_id = {e.entry_id: e.topic_ids for e in store.entries()}
    assert by_id == {"1": ("europe",), "2": ("tech",)}

    # Changed again and the mapping has nothing for it: it ends up with no topics.
    store_feed(store, FEED_A, parsed_entry("1", summary="<p>newer</p>"), now=at(60))
    assert store.entries(topic="europe") == []


def test_entries_seen_between_is_half_open(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store_feed(store, FEED_A, parsed_entry("early"), now=at(0))
    store_feed(store, FEED_A, parsed_entry("middle"), now=at(10))
    store_feed(store, FEED_A, parsed_entry("end"), now=at(20))
    seen = [e.entry_id for e in store.entries_seen_between(at(0), at(20))]
    assert sorted(seen) == ["early", "middle"]


def test_many_entries_are_stored_in_a_few_round_trips(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    batch = [parsed_entry(str(i)) for i in range(200)]
    topics = {str(i): (match("war"),) for i in range(200)}
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", count)
    try:
        stats = store_feed(store, FEED_A, *batch, topics=topics)
        edited = [dataclasses.replace(e, title=e.title + "!") for e in batch]
        updated = store_feed(store, FEED_A, *edited, now=at(30), topics=topics)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert stats.new == 200
    assert updated.updated == 200
    assert len(statements) < 30
    assert len(store.entries(topic="war")) == 200


def test_reclassify_rewrites_topics_and_counts_changed_sets(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store_feed(
        store,
        FEED_A,
        parsed_entry("kyiv", title="News from Kyiv"),
        parsed_entry("chips", title="New chips"),
        parsed_entry("weather", title="Rain"),
        topics={"kyiv": (match("war", "old reason"),), "weather": (match("war"),)},
    )

    def classify(entry: Entry) -> tuple[TopicMatch, ...]:
        found = []
        if "Kyiv" in entry.title:
            found.append(match("war", "keyword 'Kyiv' in title"))
        if "chips" in entry.title:
            found.append(match("tech"))
        return tuple(found)

    # kyiv: same set, new reasons (rewritten, not counted); chips gains; weather loses.
    assert store.reclassify(classify) == 2
    by_id = {e.entry_id: e.topics for e in store.entries()}
    assert by_id == {
        "kyiv": (match("war", "keyword 'Kyiv' in title"),),
        "chips": (match("tech"),),
        "weather": (),
    }
    assert store.reclassify(classify) == 0


def test_reclassify_pages_through_more_entries_than_one_page(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A), FeedConfig(FEED_B)], T0)
    store_feed(store, FEED_A, *[parsed_entry(f"a{i:04d}") for i in range(350)])
    store_feed(store, FEED_B, *[parsed_entry(f"b{i:04d}") for i in range(350)])
    assert store.reclassify(lambda entry: (match("all"),)) == 700
    assert len(store.entries(topic="all")) == 700


def test_prune_deletes_only_entries_old_by_both_dates(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    cutoff = T0 + timedelta(days=10)
    old = T0 - timedelta(days=30)
    store_feed(
        store,
        FEED_A,
        parsed_entry("old", published=old),
        parsed_entry("backdated-but-new", published=old),
        topics={"old": (match("war"),)},
        now=T0,
    )
    store_feed(store, FEED_A, parsed_entry("fresh", published=cutoff), now=cutoff)
    # Seen after the cutoff, although published long before it.
    store_feed(
        store, FEED_A, parsed_entry("late-find", published=old), now=cutoff + timedelta(days=1)
    )
    deleted = store.prune(cutoff)
    assert deleted == 2
    assert sorted(e.entry_id for e in store.entries()) == ["fresh", "late-find"]
    assert store.entries(topic="war") == []  # topic rows went with their entry


# ---------------------------------------------------------------- digests


def claim(store: Store, claimed: DigestIssue, *recipients: str, now: datetime) -> StoredIssue:
    new = NewIssue(
        subject="Daily",
        html="<p>issue</p>",
        text="issue",
        next_start=claimed.window_end - timedelta(hours=1),
        recipients=tuple((r, f"<{claimed.stamp}.{r}>") for r in recipients),
        articles={},
    )
    return store.ledger.claim_issue(claimed, new, now)


def test_a_claimed_issue_holds_its_items_and_one_pending_delivery_per_reader(
    store: Store,
) -> None:
    ledger = store.ledger
    one, two, three = (EntryKey(FEED_A, str(i)) for i in range(1, 4))
    first = issue("2025-03-01T0700", T0 - timedelta(days=1), T0, one, two)
    assert ledger.last_issue("daily") is None
    assert ledger.sent_entry_keys("daily") == set()

    stored = claim(store, first, "a@example.org", "b@example.org", now=at(1))
    assert (stored.stamp, stored.item_count, stored.html, stored.completed_at) == (
        first.stamp,
        2,
        "<p>issue</p>",
        None,
    )
    assert ledger.sent_entry_keys("daily") == {one, two}  # claimed counts as sent
    assert [i.stamp for i in ledger.open_issues()] == [first.stamp]
    a, b = ledger.deliveries("daily", first.stamp, status="pending")
    assert (a.recipient, a.message_id, a.attempts) == (
        "a@example.org",
        "<2025-03-01T0700.a@example.org>",
        0,
    )

    ledger.record_attempt(a, status="sent", now=at(2))
    ledger.record_attempt(a, status="failed", now=at(3), error="too late")  # sent stays sent
    ledger.record_attempt(b, status="pending", now=at(2), error="451", next_attempt_at=at(7))
    assert not ledger.complete_if_done("daily", first.stamp, at(3))
    [b] = ledger.deliveries("daily", first.stamp, status="pending")
    assert (b.attempts, b.last_error, b.next_attempt_at) == (1, "451", at(7))
    ledger.record_attempt(b, status="failed", now=at(8), error="550 no such user")
    assert ledger.complete_if_done("daily", first.stamp, at(9))
    assert ledger.open_issues() == []
    [sent] = ledger.deliveries("daily", first.stamp, status="sent")
    assert (sent.recipient, sent.sent_at, sent.attempts) == ("a@example.org", at(2), 1)

    second = issue("2025-03-02T0700", T0, T0 + timedelta(days=1), three)
    claim(store, second, "a@example.org", now=at(60 * 24))
    last = ledger.last_issue("daily")
    assert last is not None
    assert last.stamp == second.stamp
    assert ledger.sent_entry_keys("daily") == {one, two, three}
    assert ledger.last_issue("weekly") is None  # other digests are separate
    assert ledger.sent_entry_keys("weekly") == set()


def test_claiming_the_same_issue_twice_fails_and_keeps_the_first(store: Store) -> None:
    first = issue("s1", T0, at(1), EntryKey(FEED_A, "1"))
    claim(store, first, "a@example.org", now=at(1))
    with pytest.raises(StorageError):
        claim(store, first, "b@example.org", now=at(2))
    assert [d.recipient for d in store.ledger.deliveries("daily")] == ["a@example.org"]


def test_the_sender_lease_admits_one_owner_until_released_or_expired(store: Store) -> None:
    ledger = store.ledger

    def take(owner: str, now: datetime, steal_from: str | None = None) -> bool:
        return ledger.take_lease(
            "daily",
            owner=owner,
            host="h",
            pid=1,
            now=now,
            expires_at=now + timedelta(minutes=10),
            steal_from=steal_from,
        )

    assert take("one", T0)
    assert take("one", at(1))  # renewing
    assert not take("two", at(2))
    holder = ledger.lease_holder("daily")
    assert holder is not None
    assert (holder.owner, holder.expires_at) == ("one", at(11))
    assert take("two", at(2), steal_from="one")  # the caller found "one" dead
    assert not take("one", at(3))  # "one" lost it and must stop
    assert take("three", at(13))  # expired
    ledger.release_lease("daily", "three")
    assert ledger.lease_holder("daily") is None
    assert take("four", at(14))


def test_retention_forgets_complete_issues_only(store: Store) -> None:
    old = claim(
        store, issue("old", T0 - timedelta(days=2), T0, EntryKey(FEED_A, "1")), "a@x.org", now=T0
    )
    stuck = claim(store, issue("stuck", T0, at(1), EntryKey(FEED_A, "2")), "a@x.org", now=at(1))
    [delivery] = store.ledger.deliveries("daily", old.stamp)
    store.ledger.record_attempt(delivery, status="sent", now=at(1))
    store.ledger.complete_if_done("daily", old.stamp, at(1))
    assert store.ledger.prune_issues(T0 + timedelta(days=5)) == [("daily", "old")]
    assert [i.stamp for i in store.ledger.issues("daily")] == [stuck.stamp]
    assert store.ledger.deliveries("daily", old.stamp) == []
    assert store.ledger.sent_entry_keys("daily") == {EntryKey(FEED_A, "2")}


def test_digest_items_survive_pruning_of_their_entries(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store_feed(store, FEED_A, parsed_entry("1", published=T0 - timedelta(days=100)))
    key = EntryKey(FEED_A, "1")
    claim(store, issue("s1", T0 - timedelta(days=1), T0, key), "a@x.org", now=T0)
    assert store.prune(T0 + timedelta(days=1)) == 1
    assert store.ledger.sent_entry_keys("daily") == {key}


def test_only_a_feeds_first_fetch_is_marked_backfill(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A)], T0)
    store_feed(store, FEED_A, parsed_entry("archive"), now=T0)
    store_feed(store, FEED_A, parsed_entry("archive"), parsed_entry("news"), now=at(30))
    marks = {e.entry_id: e.backfill for e in store.entries()}
    assert marks == {"archive": True, "news": False}


def test_upgrading_a_0001_database_keeps_what_was_sent_sent(db_url: str) -> None:
    engine = make_engine(db_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        alembic_command.upgrade(config, "0001")
        conn.execute(
            text("INSERT INTO digest_issues VALUES ('daily', 's1', :start, :end, '<m1>', :end)"),
            {"start": T0 - timedelta(days=1), "end": T0},
        )
        conn.execute(text("INSERT INTO digest_issue_items VALUES ('daily', 's1', 'f', 'e1')"))
        conn.execute(
            text("INSERT INTO digest_deliveries VALUES ('daily', 's1', 'a@x.org', :at)"),
            {"at": T0},
        )
    engine.dispose()
    store = open_store(db_url)
    try:
        ledger = store.ledger
        assert ledger.open_issues() == []
        [issue_row] = ledger.issues("daily")
        assert (issue_row.item_count, issue_row.next_start) == (1, T0)
        [delivery] = ledger.deliveries("daily", "s1")
        assert (delivery.recipient, delivery.status, delivery.message_id) == (
            "a@x.org",
            "sent",
            "<m1>",
        )
        assert ledger.sent_entry_keys("daily") == {EntryKey("f", "e1")}
    finally:
        store.close()


# ---------------------------------------------------------------- pure upsert decisions


@pytest.mark.parametrize(
    "change",
    [
        {"title": "other"},
        {"link": "https://a.example/elsewhere"},
        {"summary": "other"},
        {"content": "other"},
        {"published": T0},
        {"author": "Someone else"},
        {"categories": ("news", "extra")},
    ],
)
def test_any_visible_change_changes_the_content_hash(change: dict[str, Any]) -> None:
    base = parsed_entry("1")
    assert content_hash(dataclasses.replace(base, **change)) != content_hash(base)


def test_a_bumped_updated_stamp_alone_is_no_change() -> None:
    from aggregator.store.entries import StoredVersion, plan_upsert

    base = parsed_entry("1")
    bumped = dataclasses.replace(base, updated=T0)
    assert content_hash(bumped) == content_hash(base)
    # Also against a row stored when the stamp was still part of the fingerprint.
    legacy = entry_ops_legacy_hash(base)
    plan = plan_upsert(FEED_A, [base], {"1": StoredVersion(legacy, T0)}, T0)
    assert (len(plan.updates), plan.unchanged) == (0, 1)


def entry_ops_legacy_hash(entry: Any) -> str:
    from aggregator.store.entries import _fingerprint

    return _fingerprint(entry, with_updated=True)


def test_plan_upsert_splits_new_updated_unchanged() -> None:
    from aggregator.store.entries import StoredVersion

    same, edited, fresh = parsed_entry("same"), parsed_entry("edited"), parsed_entry("fresh")
    stored = {
        "same": StoredVersion(content_hash(same), T0),
        "edited": StoredVersion("stale-hash", T0),
    }
    plan = plan_upsert(FEED_A, dedupe([same, edited, fresh]), stored, at(5))
    assert plan.inserted_ids == ["fresh"]
    assert plan.updated_ids == ["edited"]
    assert plan.unchanged == 1
    assert plan.inserts[0]["first_seen_at"] == at(5)
    assert "first_seen_at" not in plan.updates[0]


def test_future_dates_are_clamped_to_first_seen() -> None:
    future = dataclasses.replace(parsed_entry("future"), published=datetime(9999, 1, 1, tzinfo=UTC))
    plan = plan_upsert(FEED_A, dedupe([future, parsed_entry("past")]), {}, at(5))
    published = {row["entry_id"]: row["published"] for row in plan.inserts}
    assert published["future"] == at(5)
    assert published["past"] < at(5)


def test_iter_entries_pages_through_everything_in_the_same_order(store: Store) -> None:
    store.sync_feeds([FeedConfig(FEED_A), FeedConfig(FEED_B)], T0)
    same_time = T0 - timedelta(hours=1)  # ties on published: the keyset must break them
    for url in (FEED_A, FEED_B):
        store_feed(
            store,
            url,
            *(
                parsed_entry(f"{n}", published=same_time if n % 2 else T0 - timedelta(hours=n))
                for n in range(7)
            ),
            topics={"3": (match("war"),), "4": (match("war"),)},
        )
    everything = [e.key for e in store.entries()]

    assert [e.key for e in store.iter_entries(page=3)] == everything
    assert len(everything) == 14
    war = [e.key for e in store.entries(topic="war")]
    assert [e.key for e in store.iter_entries(topic="war", page=1)] == war
