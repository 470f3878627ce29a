"""Article identity in the store: which stored article an incoming entry is.

The keys and ids are decided in ``aggregator.identity`` (pure); this module looks them up
and records them inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, false, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from aggregator.identity import article_id, canonical_link, guid_key, identity_keys
from aggregator.models import Entry, ParsedEntry
from aggregator.store import entries as entry_ops
from aggregator.store.digests import insert_ignore
from aggregator.store.schema import article_keys, article_stories, entries
from aggregator.text import html_to_text

CHUNK = 500


def adopt_republished(
    conn: Connection,
    feed_url: str,
    incoming: Sequence[ParsedEntry],
    *,
    known: Container[str],
) -> tuple[list[ParsedEntry], dict[str, str]]:
    """An entry new to this feed (its id not in ``known``, the ids already stored) whose
    link is that of one of its stored entries is that entry republished (a new headline or
    id, same page): it takes the stored id, so it updates instead of adding. Returns the
    entries and {incoming id: stored id}."""
    new = [e for e in incoming if e.link]
    by_link = _stored_by_link(conn, feed_url, [e for e in new if e.entry_id not in known])
    taken = {e.entry_id for e in incoming}
    renamed: dict[str, str] = {}
    for entry in new:
        stored_id = by_link.get(canonical_link(entry.link) or "")
        if entry.entry_id in known or stored_id is None or stored_id in taken:
            continue
        renamed[entry.entry_id] = stored_id
        taken.add(stored_id)
    adopted = [replace(e, entry_id=renamed.get(e.entry_id, e.entry_id)) for e in incoming]
    return adopted, renamed


def assign_articles(
    conn: Connection, feed_url: str, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``rows`` (entries about to be inserted) with their ``article_id``: the stored article
    sharing a key with them, else a new one; their keys are recorded for the next feed."""
    keyed = [(row, identity_keys(row["entry_id"], row["link"])) for row in rows]
    found = _articles_by_key(conn, [k for _, keys in keyed for k in keys])
    result: list[dict[str, Any]] = []
    new_keys: dict[str, str] = {}
    for row, keys in keyed:
        known = next((found[k] for k in keys if k in found), None)
        article = known or article_id(keys, feed_url, row["entry_id"])
        for key in keys:
            found.setdefault(key, article)
            new_keys.setdefault(key, article)
        result.append({**row, "article_id": article})
    insert_ignore(conn, article_keys, [{"key": k, "article_id": a} for k, a in new_keys.items()])
    return result


@dataclass(frozen=True)
class StoryDecision:
    """What stories.py decided for one article, to be stored as it was decided."""

    article_id: str
    story_id: str
    joined: str | None
    reasons: tuple[str, ...]
    published: datetime
    story_keys: str | None = None  # the keys it was compared on, encoded
    keys_version: int | None = None  # of the rules that read them


@dataclass(frozen=True)
class StoryInput:
    """What a story decision reads of an article: its first-seen entry's title and start."""

    article_id: str
    feed_url: str
    title: str
    text: str  # the start of the summary's text, else of the content's; "" with keys
    published: datetime
    story_id: str | None
    keys: str | None = None  # its stored story keys, when of the version asked for


# Enough HTML for any text_chars a caller asks for but the most markup-heavy bodies: stories
# read 300 characters, and the window's full bodies in memory for that took a 300-feed cold
# round from 166 to 250 MB.
STORY_HTML_CHARS = 8000


def story_inputs_without_story(conn: Connection, text_chars: int) -> list[StoryInput]:
    """One input per article that has no story yet (no decision row in the outer join)."""
    no_decision = article_stories.c.article_id.is_(None)
    return _story_inputs(conn, text_chars, entries.c.article_id.is_not(None), no_decision)


def story_inputs(
    conn: Connection, article_ids: Sequence[str], text_chars: int, keys_version: int
) -> list[StoryInput]:
    """One input per article of those whose story is decided: its stored keys if they are
    of ``keys_version`` (and then no text), else the start of its text."""
    found: list[StoryInput] = []
    for part in entry_ops.chunks(article_ids, CHUNK):
        found += _story_inputs(
            conn,
            text_chars,
            entries.c.story_id.is_not(None),
            entries.c.article_id.in_(part),
            keys_version=keys_version,
        )
    return found


def _story_inputs(
    conn: Connection,
    text_chars: int,
    *conditions: ColumnElement[bool],
    keys_version: int | None = None,
) -> list[StoryInput]:
    # None: no keys wanted (a plain == None would match every row without a decision).
    keyed = false() if keys_version is None else article_stories.c.keys_version == keys_version
    query = (
        select(
            entries.c.article_id,
            entries.c.feed_url,
            entries.c.title,
            *(
                case((keyed, ""), else_=func.substr(body, 1, STORY_HTML_CHARS)).label(body.name)
                for body in (entries.c.summary, entries.c.content)
            ),
            entries.c.published,
            entries.c.story_id,
            case((keyed, article_stories.c.story_keys)).label("story_keys"),
        )
        .outerjoin(article_stories, article_stories.c.article_id == entries.c.article_id)
        .where(*conditions)
        .order_by(entries.c.first_seen_at, entries.c.feed_url, entries.c.entry_id)
    )
    first: dict[str, StoryInput] = {}  # the first-seen entry of each article, as leads()
    for row in conn.execute(query):
        if row.article_id in first:
            continue
        text = "" if row.story_keys else html_to_text(row.summary) or html_to_text(row.content)
        first[row.article_id] = StoryInput(
            row.article_id,
            row.feed_url,
            row.title,
            text[:text_chars],
            row.published,
            row.story_id,
            row.story_keys,
        )
    return list(first.values())


def leads(conn: Connection, query: Select[Any]) -> list[Entry]:
    """One entry per article from ``query``: the first seen, ties by feed and id."""
    ordered = query.order_by(entries.c.first_seen_at, entries.c.feed_url, entries.c.entry_id)
    first: dict[str, Entry] = {}
    for entry in entry_ops.load_entries(conn, ordered):
        first.setdefault(entry.article_id or "", entry)
    return list(first.values())


def decided_since(conn: Connection, published_since: datetime) -> list[str]:
    query = select(article_stories.c.article_id).where(
        article_stories.c.published >= published_since
    )
    return list(conn.execute(query).scalars())


def record_stories(conn: Connection, decided: Sequence[StoryDecision]) -> None:
    rows = [
        {
            "article_id": d.article_id,
            "story_id": d.story_id,
            "joined": d.joined,
            "reasons": json.dumps(list(d.reasons), ensure_ascii=False),
            "published": d.published,
            "story_keys": d.story_keys,
            "keys_version": d.keys_version,
        }
        for d in decided
    ]
    # Another process may have decided some of these meanwhile: its decision stands.
    insert_ignore(conn, article_stories, rows)
    stamped = (
        select(article_stories.c.story_id)
        .where(article_stories.c.article_id == entries.c.article_id)
        .scalar_subquery()
    )
    ids = [d.article_id for d in decided]
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        conn.execute(update(entries).where(entries.c.article_id.in_(part)).values(story_id=stamped))


def story_reasons(conn: Connection, article: str) -> tuple[str | None, str | None, list[str]]:
    """(story id, the article it joined, why) for ``explain``; Nones when it has no story."""
    row = conn.execute(
        select(article_stories).where(article_stories.c.article_id == article)
    ).first()
    if row is None:
        return None, None, []
    return row.story_id, row.joined, list(json.loads(row.reasons))


def find(conn: Connection, query: str) -> list[Entry]:
    """Entries whose id or link is ``query``, or whose article shares a key with it."""
    keys = [k for k in (guid_key(query), f"link:{canonical_link(query)}") if k]
    found = _articles_by_key(conn, keys)
    conditions = [entries.c.entry_id == query, entries.c.link == query]
    if found:
        conditions.append(entries.c.article_id.in_(set(found.values())))
    return entry_ops.load_entries(
        conn, entry_ops.entry_select(or_(*conditions)).order_by(*entry_ops.NEWEST_FIRST)
    )


def story_members(conn: Connection, story_id: str) -> list[Entry]:
    query = entry_ops.entry_select(entries.c.story_id == story_id)
    return leads(conn, query)


def prune_keys(conn: Connection) -> None:
    """Forget keys of articles no entry holds any more (after retention)."""
    orphan = (
        ~select(entries.c.article_id)
        .where(entries.c.article_id == article_keys.c.article_id)
        .exists()
    )
    conn.execute(delete(article_keys).where(orphan))


def _stored_by_link(
    conn: Connection, feed_url: str, candidates: Sequence[ParsedEntry]
) -> dict[str, str]:
    """{canonical link: stored entry id} for this feed's stored entries with those links,
    through the recorded keys (indexed), not a scan of the feed."""
    links = {link for e in candidates if (link := canonical_link(e.link))}
    articles = _articles_by_key(conn, [f"link:{link}" for link in links])
    if not articles:
        return {}
    query = select(entries.c.entry_id, entries.c.link).where(
        entries.c.feed_url == feed_url, entries.c.article_id.in_(set(articles.values()))
    )
    found: dict[str, str] = {}
    for row in conn.execute(query):
        link = canonical_link(row.link)
        if link is not None and link in links:
            found.setdefault(link, row.entry_id)
    return found


def _articles_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), CHUNK):
        part = unique[start : start + CHUNK]
        query = select(article_keys.c.key, article_keys.c.article_id).where(
            article_keys.c.key.in_(part)
        )
        found.update({row.key: row.article_id for row in conn.execute(query)})
    return found
