# ruff: noqa: RUF002  (typographic quotes and Cyrillic in the docstring are the data here)
"""Same-story clustering: reports of one event from different outlets form one story.

Pure and incremental. :class:`StoryIndex` holds the items of the last ``window`` (48 h by
default); :meth:`StoryIndex.add` compares a new item only with the candidates an inverted
index finds sharing two of its most telling keys, decides, registers it and says why.

Identity. A story is named after the item that founded it (``story:`` + a 12-hex hash of
its key). A later item joins an existing story or founds its own; stories are never merged
or renamed, so an id handed out once stays. All state (document frequencies, postings, name
evidence, per-outlet statistics, which founders are present) covers exactly the items in the
window, so :meth:`StoryIndex.restore` of the window's stored assignments, in any order,
rebuilds what an uninterrupted run would hold, and later decisions come out the same.

Keys. Each item is read into *keys* (crudely stemmed words of its title and the start of
its text, Russian and Ukrainian transliterated so that "Avdiivka" and "Авдіївки" meet) and
whether it writes each as a *name*: see :mod:`aggregator.storykeys`.

Weights. A key weighs 1.0 in the title, 0.5 only in the text, 1.2 in both; × 1.5 for a
name; × its IDF. IDF comes from the window (``ln((max(N, 200) + 1) / (df + 0.5))``: the
floor keeps the first items of a run from all looking rare) or from a mapping given to the
constructor (see :func:`build_idf`). Two outlet habits are discounted, both learnt from the
window, not listed: text keys in 80 % of one outlet's recent items are its boilerplate
("The post … appeared first on …"); a title's kicker that the outlet repeats ("Middle East
Crisis: …", "WATCH: …") labels a series, not the event.

Decision. Two items are *tied* when
  * they share at least two evidence keys (IDF ≥ ``EVIDENCE_IDF``, i.e. in at most ~5 % of
    the window), at least one of them a name or rare (IDF ≥ ``RARE_IDF``, ~3 %), so two
    "Russia" items never tie on "Russia";
  * the cosine of their weighted vectors is at least ``MIN_COSINE``, plus ``TIME_PENALTY``
    per window between them: reports of one event bunch within hours (half of the hand-
    labelled same-story pairs are < 8 h apart), while a day later the same names usually
    mean the next development.
The new item joins the story of its best tie (highest cosine, then earliest, then key)
whose founding report is still within the window of it; else it founds a story. That
founder rule is what stops single-link chaining: without it a saga (a widow's statement,
the mother's plea, her lawsuit, the funeral) grows one link a day into a week-long blob.
Measured alternatives, none better than ±0.01 pairwise F1 on the labels (so not worth
their rules): a minimum mean cosine with the story's members, or with its founder; joining
on cosine with the story's centroid (average-link); a tighter founder span (24 h: 0.04
worse); title bigrams as extra keys; a week-long background IDF instead of the window's.

Candidates. An earlier item is scored only when it shares at least two of the new item's
evidence keys (the first rule of a tie) among the ``POSTINGS_PER_TERM`` most recent items
(by time) that have each key; counting them costs at most that many per key however full the
window, and on real feeds leaves ~3 items to score per add. At real density an evidence key
(in at most ~5 % of the window) has far fewer postings than that, so the bound only bites in
crowded windows: on the corpus replicated to 12x density, 32 and 64 postings make the same
10,000 decisions, and 32 scores a third fewer candidates.

Lead. :func:`lead` is the earliest report, ties broken by key: the report that broke the
story, which does not change as the story grows and is what readers date a story by.

Measured (``benchmarks/eval_grouping.py``, news-week: 808 items, 96 hand-labelled stories):
pairwise P 0.78 / R 0.63 / F1 0.70, B-cubed F1 0.93; TF-IDF cosine single-link (48 h) at
its best threshold: pairwise F1 0.45, B-cubed F1 0.89. Most remaining misses are reports
that share no words (widow/wife, cannabis/marijuana, quits/resigns) and remaining false
joins are next-day developments of one saga. Speed (``benchmarks/stories_speed.py``, one
core): 10,000 items at real-feed density (~250 in a window) in about 1.6 s, ~3 scored each;
at 12x that density (~3,000 in a window) about 5 s, ~24 each; the feed farm's 10,519 items
(``benchmarks/farm.py``, ~5,000 in a window) 3.5 s, ~34 each, the window taking ~16 MB.
Most scored candidates are settled on their keys and a bound of the cosine before a vector
is built (:meth:`_Scorer.could_reach`). Comparing with every item in the window instead
makes the same decisions 2-3x slower.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import itemgetter

from .storykeys import COMMON, KICKER, NAMED, TEXT, TITLE, ItemKeys, read_keys

__all__ = [
    "StoryAssignment",
    "StoryIndex",
    "StoryItem",
    "build_idf",
    "cluster",
    "item_keys",
    "lead",
    "story_id_of",
]


@dataclass(frozen=True)
class StoryItem:
    key: str  # stable id of the article
    title: str  # plain text
    text: str  # plain-text summary/body; only the first storykeys.TEXT_CHARS characters are read
    published: datetime  # UTC-aware
    source: str  # outlet/feed id


@dataclass(frozen=True)
class StoryAssignment:
    key: str
    story_id: str  # "story:" + a short stable hash of the story's founding item key
    joined: str | None  # key of the item it was tied to (None: founded a new story)
    reasons: tuple[str, ...]  # e.g. ("shared names: Avdiivka, Syrskyi", "cosine 0.41")


# ---------------------------------------------------------------- tuning

TITLE_WEIGHT = 1.0
TEXT_WEIGHT = 0.5
BOTH_WEIGHT = 1.2
NAME_BOOST = 1.5
IDF_FLOOR_DOCS = 200  # the window counts as at least this many items when computing IDF
EVIDENCE_IDF = 3.0  # ≈ in more than 5 % of the items: no evidence
RARE_IDF = 3.5  # ≈ in at most 3 % of the items: rare
MIN_COSINE = 0.30
TIME_PENALTY = 0.2  # added to MIN_COSINE per window of time between two items
BOILERPLATE_SHARE = 0.8  # a key in the text of this share of one source's items: boilerplate
BOILERPLATE_MIN_ITEMS = 5
POSTINGS_PER_TERM = 32
MAX_REASON_TERMS = 5


# ---------------------------------------------------------------- public API


def story_id_of(founder_key: str) -> str:
    """The id of the story that the item with this key founded."""
    digest = hashlib.blake2b(founder_key.encode("utf-8"), digest_size=6).hexdigest()
    return f"story:{digest}"


def lead(items: Sequence[StoryItem]) -> StoryItem:
    """The item that represents a story: the earliest report, ties broken by key."""
    if not items:
        raise ValueError("a story has at least one item")
    return min(items, key=lambda item: (item.published, item.key))


def cluster(
    items: Iterable[StoryItem],
    *,
    window: timedelta = timedelta(hours=48),
    idf: Mapping[str, float] | None = None,
) -> list[StoryAssignment]:
    """Assign every item to a story, adding them in (published, key) order."""
    index = StoryIndex(window=window, idf=idf)
    ordered = sorted(items, key=lambda item: (item.published, item.key))
    return [index.add(item) for item in ordered]


def item_keys(item: StoryItem) -> frozenset[str]:
    """The normalised keys an item is compared on (the keys of a ``build_idf`` mapping)."""
    return frozenset(read_keys(item.title, item.text).flags)


def build_idf(items: Iterable[StoryItem]) -> dict[str, float]:
    """A precomputed IDF over a background collection, for ``StoryIndex(idf=...)``."""
    df: Counter[str] = Counter()
    total = 0
    for item in items:
        df.update(item_keys(item))
        total += 1
    return {key: math.log((total + 1) / (count + 0.5)) for key, count in sorted(df.items())}


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class _Profile:
    flags: Mapping[str, int]  # key → storykeys flags
    kicker: str  # the title's label before a colon, normalised; "" when there is none
    # The keys of the title proper and the least weight each has (before IDF): the vector's
    # norm is at least theirs, which bounds a cosine before the vector is built.
    floors: tuple[tuple[str, float], ...]


def _profile(keys: ItemKeys) -> _Profile:
    floors = tuple((k, _FLOORS[bits]) for k, bits in keys.flags.items() if bits & TITLE)
    return _Profile(keys.flags, keys.kicker, floors)


def _ceiling(bits: int) -> float:
    """The largest weight (before IDF) a key with these flags can have."""
    titled = bits & (TITLE | KICKER)
    weight = BOTH_WEIGHT if titled and bits & TEXT else TITLE_WEIGHT if titled else TEXT_WEIGHT
    return weight * (1.0 if bits & COMMON else NAME_BOOST)


# By flags, so that every profile shares the same few float objects.
_CEILINGS = tuple(_ceiling(bits) for bits in range(2 * COMMON))
_FLOORS = tuple(TITLE_WEIGHT * (NAME_BOOST if bits & NAMED else 1.0) for bits in range(2 * COMMON))


# ---------------------------------------------------------------- the index

_posted_key = itemgetter(1)


@dataclass(frozen=True, slots=True)
class _Entry:
    item: StoryItem  # without its text: the profile holds what is compared
    profile: _Profile
    story_id: str
    joined: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Tie:
    entry: _Entry
    cosine: float
    shared: tuple[tuple[str, float], ...]  # (key, contribution), largest first


class StoryIndex:
    """The stories of the last ``window``; see the module docstring for the rules."""

    def __init__(
        self, *, window: timedelta = timedelta(hours=48), idf: Mapping[str, float] | None = None
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        self._window = window
        self._static_idf = idf
        # Unknown to a background collection means rarer than anything in it.
        self._unknown_idf = (
            max(idf.values(), default=math.log(IDF_FLOOR_DOCS + 1)) if idf is not None else 0.0
        )
        self._entries: dict[str, _Entry] = {}
        self._by_time: list[tuple[datetime, str]] = []  # heap, for eviction
        self._clock: datetime | None = None  # newest published time seen
        self._postings: dict[str, list[tuple[datetime, str]]] = {}  # key → items by time
        self._df: Counter[str] = Counter()
        self._named: Counter[str] = Counter()  # items that wrote the key as a name
        self._common: Counter[str] = Counter()  # … as a common word
        self._source_items: Counter[str] = Counter()
        self._kickers: Counter[tuple[str, str]] = Counter()  # (source, kicker) → items
        self._source_df: dict[str, Counter[str]] = {}
        self._stories: dict[str, dict[str, None]] = {}  # story id → member keys in window
        self._founders: dict[str, _Entry] = {}  # story id → its founding item, while in window
        self.comparisons = 0  # items scored so far: lets tests and benchmarks see the bound

    def __len__(self) -> int:
        return len(self._entries)

    def restore(self, item: StoryItem, story_id: str, keys: ItemKeys | None = None) -> None:
        """Re-register a stored assignment (after a restart) without deciding anything.

        ``keys`` are the item's :func:`~aggregator.storykeys.read_keys`, when stored: then
        its text is not read again.

        Restore every stored item published within ``window`` of the newest one, in any
        order; older ones are accepted and dropped. A story takes new items only while its
        founding item is in the window, so restoring members without their founder leaves
        that story closed, as it would have been.
        """
        if item.key in self._entries:
            return
        self._advance(item.published)
        profile = _profile(keys if keys is not None else read_keys(item.title, item.text))
        self._register(_Entry(_textless(item), profile, story_id, None, ()))
        self._evict()

    def add(self, item: StoryItem, keys: ItemKeys | None = None) -> StoryAssignment:
        """Decide which story ``item`` belongs to, register it, and say why.

        ``keys``: the item's ``read_keys(item.title, item.text)``, if the caller has them.
        """
        known = self._entries.get(item.key)
        if known is not None:
            return StoryAssignment(item.key, known.story_id, known.joined, known.reasons)
        keys = keys if keys is not None else read_keys(item.title, item.text)
        profile = _profile(keys)
        self._advance(item.published)
        self._evict()
        self._count(item, profile, +1)  # the new item is part of the IDF it is judged by
        tie = self._best_tie(item, profile)
        stored = _textless(item)
        if tie is None:
            entry = _Entry(stored, profile, story_id_of(item.key), None, ())
        else:
            reasons = self._explain(tie, keys.surfaces, profile)
            entry = _Entry(stored, profile, tie.entry.story_id, tie.entry.item.key, reasons)
        self._register(entry, counted=True)
        return StoryAssignment(item.key, entry.story_id, entry.joined, entry.reasons)

    # ------------------------------------------------------------ deciding

    def _best_tie(self, item: StoryItem, profile: _Profile) -> _Tie | None:
        scorer = _Scorer(self, item, profile)
        ties: list[_Tie] = []
        for candidate in self._candidates(item, scorer):
            tie = self._tie(scorer, candidate)
            if tie is not None:
                ties.append(tie)
        ties.sort(key=lambda t: (-t.cosine, t.entry.item.published, t.entry.item.key))
        return next((t for t in ties if self._open(t.entry.story_id, item)), None)

    def _open(self, story_id: str, item: StoryItem) -> bool:
        """Whether the story still takes reports: its first one is within the window of item.

        Without this a saga chains day after day into one story ("the mother's plea" → "her
        lawsuit" → "the funeral"), while a story is one event of one news cycle. A story
        whose founder has left the window is closed, which a restart sees the same way.
        """
        founder = self._founders.get(story_id)
        return founder is not None and abs(item.published - founder.item.published) <= (
            self._window
        )

    def _candidates(self, item: StoryItem, scorer: _Scorer) -> list[_Entry]:
        """Recent items that share at least two of the new item's evidence keys.

        Counted over each key's ``POSTINGS_PER_TERM`` most recent items (by time, not by
        arrival: a restart restores in any order), so one add costs a bounded number of
        counts however full the window, and only items that can pass the evidence rule
        are scored.
        """
        hits: Counter[str] = Counter()
        strong_hits: Counter[str] = Counter()
        for key in scorer.evidence:
            posting = self._postings.get(key)
            if posting:
                posted = list(map(_posted_key, posting[-POSTINGS_PER_TERM:]))
                hits.update(posted)
                if key in scorer.strong:
                    strong_hits.update(posted)
        found = [self._entries[k] for k, count in hits.items() if count >= 2]
        # Two shared evidence keys, one of them rare or a name: the evidence rule holds.
        scorer.evidence_met = {k for k in strong_hits if hits[k] >= 2}
        return [e for e in found if abs(e.item.published - item.published) <= self._window]

    def _tie(self, scorer: _Scorer, other: _Entry) -> _Tie | None:
        self.comparisons += 1
        mine = scorer.mine
        # Settle most candidates before building their vector, on the keys alone and on a
        # bound of the cosine; the vector only drops keys or lowers weights, so failing
        # here fails there.
        if other.item.key not in scorer.evidence_met and not self._enough_evidence(
            scorer, scorer.evidence.intersection(other.profile.flags), other
        ):
            return None
        # Reports of one event cluster in time: the further apart, the more they must share.
        apart = abs(scorer.published - other.item.published) / self._window
        threshold = MIN_COSINE + TIME_PENALTY * apart
        if not scorer.could_reach(other.profile, threshold):
            return None
        theirs = scorer.vector(other)
        shared = [k for k in mine if k in theirs]
        if not self._enough_evidence(scorer, scorer.evidence.intersection(shared), other):
            return None
        cosine = _cosine(mine, theirs)
        if cosine < threshold:
            return None
        contributions = sorted(
            ((k, mine[k] * theirs[k]) for k in shared), key=lambda kc: (-kc[1], kc[0])
        )
        return _Tie(other, cosine, tuple(contributions))

    def _enough_evidence(self, scorer: _Scorer, evidence: Set[str], other: _Entry) -> bool:
        """Two evidence keys, at least one of them rare or a name (never two "Russia"s)."""
        if len(evidence) < 2:
            return False
        if not scorer.rare.isdisjoint(evidence):
            return True
        return any(self._is_name(k, scorer.profile, other) for k in evidence)

    def _vector(self, source: str, profile: _Profile, scorer: _Scorer) -> dict[str, float]:
        # Text keys in most of this outlet's recent items are its boilerplate.
        items = self._source_items[source]
        source_df: Mapping[str, int] = self._source_df.get(source, {})
        boiler = BOILERPLATE_SHARE * items if items >= BOILERPLATE_MIN_ITEMS else math.inf
        # A kicker the outlet uses on other items too names its series, not this event.
        series = bool(profile.kicker) and self._kickers[(source, profile.kicker)] > 1
        named, common = self._named, self._common
        known_idf, idf = scorer.known_idf, scorer.idf  # hot loop: local names
        vector: dict[str, float] = {}
        for key, bits in profile.flags.items():
            in_title = bits & TITLE or (bits & KICKER and not series)
            in_text = bits & TEXT and source_df.get(key, 0) < boiler
            if in_title:
                weight = BOTH_WEIGHT if in_text else TITLE_WEIGHT
            elif in_text:
                weight = TEXT_WEIGHT
            else:
                continue
            if bits & NAMED or (not bits & COMMON and named.get(key, 0) > common.get(key, 0)):
                weight *= NAME_BOOST
            value = known_idf.get(key)
            vector[key] = weight * (idf(key) if value is None else value)
        return vector

    def _is_name(self, key: str, *profiles: _Profile | _Entry) -> bool:
        for p in profiles:
            profile = p.profile if isinstance(p, _Entry) else p
            bits = profile.flags.get(key, 0)
            if bits & (NAMED | COMMON):
                return bool(bits & NAMED)
        return self._named[key] > self._common[key]

    def _explain(
        self, tie: _Tie, surfaces: Mapping[str, str], profile: _Profile
    ) -> tuple[str, ...]:
        groups: dict[str, list[str]] = {"names": [], "figures": [], "terms": []}
        for key, _ in tie.shared:
            surface = surfaces[key]
            if surface[0].isdigit():
                groups["figures"].append(surface)
            elif self._is_name(key, profile, tie.entry):
                groups["names"].append(surface)
            else:
                groups["terms"].append(surface)
        reasons = [
            f"shared {kind}: " + ", ".join(written[:MAX_REASON_TERMS])
            for kind, written in groups.items()
            if written
        ]
        reasons.append(f"cosine {tie.cosine:.2f}")
        return tuple(reasons)

    # ------------------------------------------------------------ state

    def _advance(self, published: datetime) -> None:
        if self._clock is None or published > self._clock:
            self._clock = published

    def _evict(self) -> None:
        if self._clock is None:
            return
        cutoff = self._clock - self._window
        while self._by_time and self._by_time[0][0] < cutoff:
            _, key = heapq.heappop(self._by_time)
            entry = self._entries.pop(key, None)
            if entry is None:
                continue
            self._count(entry.item, entry.profile, -1)
            posted = (entry.item.published, key)
            for term in entry.profile.flags:
                posting = self._postings[term]
                posting.remove(posted)  # the oldest: found at once
                if not posting:
                    del self._postings[term]
            if self._founders.get(entry.story_id) is entry:
                del self._founders[entry.story_id]
            members = self._stories[entry.story_id]
            del members[key]
            if not members:
                del self._stories[entry.story_id]

    def _register(self, entry: _Entry, *, counted: bool = False) -> None:
        key = entry.item.key
        self._entries[key] = entry
        heapq.heappush(self._by_time, (entry.item.published, key))
        if not counted:
            self._count(entry.item, entry.profile, +1)
        posted = (entry.item.published, key)
        for term in entry.profile.flags:
            bisect.insort(self._postings.setdefault(term, []), posted)
        self._stories.setdefault(entry.story_id, {})[key] = None
        if story_id_of(key) == entry.story_id:
            self._founders[entry.story_id] = entry

    def _count(self, item: StoryItem, profile: _Profile, sign: int) -> None:
        source_df = self._source_df.setdefault(item.source, Counter())
        self._source_items[item.source] += sign
        if profile.kicker:
            kicker = (item.source, profile.kicker)
            self._kickers[kicker] += sign
            if self._kickers[kicker] <= 0:
                del self._kickers[kicker]
        for key, bits in profile.flags.items():
            self._df[key] += sign
            if bits & TEXT:  # boilerplate is what an outlet appends to every summary
                source_df[key] += sign
            if bits & NAMED:
                self._named[key] += sign
            elif bits & COMMON:
                self._common[key] += sign
        if sign < 0:
            # Counters keep zero entries; drop them so memory follows the window.
            for counter in (self._df, self._named, self._common, source_df):
                for key in profile.flags:
                    if key in counter and counter[key] <= 0:
                        del counter[key]
            if self._source_items[item.source] <= 0:
                del self._source_items[item.source]
                del self._source_df[item.source]


class _Scorer:
    """One decision's view of the index: IDF and vectors, each computed once."""

    def __init__(self, index: StoryIndex, item: StoryItem, profile: _Profile) -> None:
        self._index = index
        self.profile = profile
        self.published = item.published
        self.known_idf: dict[str, float] = {}
        self._vectors: dict[str, dict[str, float]] = {}
        self._log_docs = math.log(max(len(index._entries), IDF_FLOOR_DOCS) + 1)
        self.mine = index._vector(item.source, profile, self)
        # The keys that can count as evidence of a tie, and the rare ones among them.
        self.evidence = frozenset(k for k in self.mine if self.idf(k) >= EVIDENCE_IDF)
        self.rare = frozenset(k for k in self.evidence if self.idf(k) >= RARE_IDF)
        # Evidence keys that meet the "rare or a name" rule whatever the other item does.
        self.strong = self.rare | {k for k in self.evidence if profile.flags[k] & NAMED}
        self.norm = math.sqrt(sum(w * w for w in self.mine.values()))
        self._mine_idf = {k: w * self.known_idf[k] for k, w in self.mine.items()}
        # Candidates already known to pass the evidence rule (see StoryIndex._candidates).
        self.evidence_met: Set[str] = frozenset()

    def idf(self, key: str) -> float:
        value = self.known_idf.get(key)
        if value is None:
            static = self._index._static_idf
            if static is not None:
                value = static.get(key, self._index._unknown_idf)
            else:
                value = self._log_docs - math.log(self._index._df.get(key, 0) + 0.5)
            self.known_idf[key] = value
        return value

    def could_reach(self, other: _Profile, threshold: float) -> bool:
        """Whether the cosine of this item with ``other`` may reach ``threshold``, judged
        from ``other``'s profile alone by two upper bounds of it, cheaper one first."""
        shared = self.mine.keys() & other.flags.keys()
        # Cauchy-Schwarz: the cosine is at most the share of my norm on the shared keys.
        mine = self.mine
        if math.sqrt(sum(mine[k] * mine[k] for k in shared)) < (threshold - _SLACK) * self.norm:
            return False
        # The shared keys at their heaviest over ``other``'s title keys at their lightest.
        mine_idf, flags = self._mine_idf, other.flags
        dot = sum(_CEILINGS[flags[k]] * mine_idf[k] for k in shared)
        floor = self._norm_floor(other)
        return floor == 0.0 or dot >= (threshold - _SLACK) * self.norm * floor

    def _norm_floor(self, other: _Profile) -> float:
        """The least norm ``other``'s vector can have: its title keys at their least weight."""
        if self._index._static_idf is not None:
            idf = self.idf
            return math.sqrt(sum((weight * idf(k)) ** 2 for k, weight in other.floors))
        # Hot: the window IDF inlined; every key of an indexed item has a document frequency.
        log_docs, df, log = self._log_docs, self._index._df, math.log
        return math.sqrt(
            sum((weight * (log_docs - log(df[k] + 0.5))) ** 2 for k, weight in other.floors)
        )

    def vector(self, entry: _Entry) -> dict[str, float]:
        key = entry.item.key
        vector = self._vectors.get(key)
        if vector is None:
            vector = self._index._vector(entry.item.source, entry.profile, self)
            self._vectors[key] = vector
        return vector


_SLACK = 1e-9  # rounding must not rule out a tie


def _textless(item: StoryItem) -> StoryItem:
    # Held for the whole window: the text has been read into the profile by now.
    return replace(item, text="")


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    dot = sum(w * b[k] for k, w in a.items() if k in b)
    if dot == 0.0:
        return 0.0
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm
