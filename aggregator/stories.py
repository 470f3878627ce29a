# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic and typographic quotes are the data here)
"""Same-story clustering: reports of one event from different outlets form one story.

Pure and incremental. :class:`StoryIndex` holds the items of the last ``window`` (48 h by
default); :meth:`StoryIndex.add` compares a new item only with the candidates an inverted
index returns for its most discriminative keys, decides, registers it and says why.

Identity. A story is named after the item that founded it (``story:`` + a 12-hex hash of
its key). A later item joins an existing story or founds its own; stories are never merged
or renamed, so an id handed out once stays. All state (document frequencies, postings, name
evidence, per-outlet statistics, which founders are present) covers exactly the items in the
window, so :meth:`StoryIndex.restore` of the window's stored assignments, in any order,
rebuilds what an uninterrupted run would hold, and later decisions come out the same.

Terms. The title and the first ``TEXT_CHARS`` characters of the text are split into words
(Unicode-aware; look-alike letters from the other script are repaired, "U.S." is "US").
Stopwords go (English, Russian, Ukrainian, headline fillers such as "says" or "watch").
Each word becomes a *key*: English words lose their inflection (crude suffix stripping);
Russian and Ukrainian words lose one case/number ending and are transliterated to Latin
("г"/"и" read the Ukrainian way when the text has Ukrainian letters); then every key is cut
to ``KEY_LENGTH`` characters and loses trailing vowels. Crude, but it lets "Avdiivka",
"Авдіївка" and "Авдіївки" meet, and "Zelenskyy"/"Зеленського", "Syrskyi"/"Сирський".
Russian spellings ("Авдеевка") meet each other, not the Ukrainian or English ones.

Names. A word is a *name* when it is capitalised where a common word would not be (not
first in a clause, in text that is not Title Case), an acronym, or a number of two or more
digits ("31,000 troops", "500 sanctions" are facts of one event). A word seen capitalised
only where every word is (NYT-style Title Case, the start of a sentence) is settled by the
window: a name if other items wrote it as one more often than in lower case.

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
window, and on real feeds leaves ~3 items to score per add.

Lead. :func:`lead` is the earliest report, ties broken by key: the report that broke the
story, which does not change as the story grows and is what readers date a story by.

Measured (``benchmarks/eval_grouping.py``, news-week: 808 items, 96 hand-labelled stories):
pairwise P 0.78 / R 0.63 / F1 0.70, B-cubed F1 0.93; TF-IDF cosine single-link (48 h) at
its best threshold: pairwise F1 0.45, B-cubed F1 0.89. Most remaining misses are reports
that share no words (widow/wife, cannabis/marijuana, quits/resigns) and remaining false
joins are next-day developments of one saga. Speed (``benchmarks/stories_speed.py``, one
core): 10,000 items at real-feed density (~250 in a window) in about 2 s, ~3 scored each; at
12x that density (~3,000 in a window) about 6 s, ~35 each; the feed farm's 10,519 items
(``benchmarks/farm.py``, ~5,000 in a window) 7 s, ~60 each. Most scored candidates are
settled on their keys and a bound of the cosine before a vector is built
(:meth:`_Scorer.cosine_ceiling`). Comparing with every item in the window instead makes the
same decisions 2-3x slower.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from operator import itemgetter

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
    text: str  # plain-text summary/body; only the first TEXT_CHARS characters are read
    published: datetime  # UTC-aware
    source: str  # outlet/feed id


@dataclass(frozen=True)
class StoryAssignment:
    key: str
    story_id: str  # "story:" + a short stable hash of the story's founding item key
    joined: str | None  # key of the item it was tied to (None: founded a new story)
    reasons: tuple[str, ...]  # e.g. ("shared names: Avdiivka, Syrskyi", "cosine 0.41")


# ---------------------------------------------------------------- tuning

TEXT_CHARS = 300  # summaries past this are body text: more noise than evidence
KEY_LENGTH = 6  # keys are cut here: a crude stemmer that works for three languages
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
KICKER_WORDS = 4  # a title's head before a colon up to this long may be a series label
POSTINGS_PER_TERM = 64
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
    return frozenset(_profile(item).terms)


def build_idf(items: Iterable[StoryItem]) -> dict[str, float]:
    """A precomputed IDF over a background collection, for ``StoryIndex(idf=...)``."""
    df: Counter[str] = Counter()
    total = 0
    for item in items:
        df.update(item_keys(item))
        total += 1
    return {key: math.log((total + 1) / (count + 0.5)) for key, count in sorted(df.items())}


# ---------------------------------------------------------------- terms


@dataclass(frozen=True)
class _Term:
    surface: str  # as first written in the item, for explanations
    in_title: bool  # in the title proper
    in_kicker: bool  # in the title's kicker ("Middle East Crisis: …")
    in_text: bool
    name: bool | None  # True/False when the item settles it, None: ask the window


@dataclass(frozen=True)
class _Profile:
    terms: Mapping[str, _Term]
    kicker: str  # the title's label before a colon, normalised; "" when there is none
    # Bounds on the vector that need no window state but IDF, to rule out most candidates
    # before building their vector: each key's largest possible weight (before IDF), and
    # the keys of the title proper, which always count at least this much.
    ceilings: Mapping[str, float]
    floors: tuple[tuple[str, float], ...]


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS = _word_set(
    """
    a about above after again against ago all almost also although always am among an and
    another any are aren't around as at away back be became because been before being below
    between both but by can cannot could did do does doing done down during each either else
    even ever every few for from further get gets getting go goes going gone got had has have
    having he her here hers herself him himself his how however i if in including into is it
    its itself just least less like made make makes many may me might more most much must my
    near nearly never new no nor not now of off often on once one only onto or other others
    our ours out over own per perhaps put rather really same say says said see seen she should
    since so some still such than that the their theirs them themselves then there these they
    this those though through thus to too toward towards under until up upon us use used very
    via was we well were what when where whether which while who whom whose why will with
    within without would yet you your yours
    amid according added adds ahead alongside already ask asked asks become becomes big call
    called calls come comes coming day days early first four full give gives good great half
    here's high hit keep key know last late later latest let lets live long look looks major
    man mr mrs ms next news nine old part people plan plans point quickly report reported
    reports reportedly second set seven show shows six take takes taken ten tell tells thing
    things think three time times today told top two update updates video want wants watch
    way ways week weeks what's who's world year years yesterday
    """
)

_CYRILLIC_STOPWORDS = _word_set(
    """
    а без более бы был была были было быть в вам вас весь во вот все всех вы где да даже для
    до его ее её ей если есть еще ещё же за здесь и из или им их к как когда кто ли либо мне
    может мы на над не нет ни них но ну о об однако он она они оно от по под после при про с
    со так также там те тем то того тоже только том ту тут у уже чем что чтобы эта эти это
    этот этого я года году заявил заявила сообщил сообщила сообщили против время
    і й та але або чи що це цей ця ці як від із зі між через після під над при про для його
    її їх він вона воно вони ми ви ти був була було були бути буде також вже ще які який яка
    яке того тому тоді коли де тут усі всі весь може можна має року році заявив заявила
    повідомив повідомила проти час
    """
)

# Headline connectives around which the next word starts a new clause ("Kremlin: Putin …").
_CLAUSE_BREAK = re.compile(r"[.!?:;…|—–]|\s-\s|(?:^|\s)[(\['‘\"“«„]+$")
_DOTTED_ACRONYM = re.compile(r"\b(?:[A-Za-z]\.){2,}")
_WORD = re.compile(r"\d+(?:[.,]\d+)*[^\W\d_]*|[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+)*")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")

# Case, number and verb endings of Russian and Ukrainian, longest first.
_CYRILLIC_ENDINGS = tuple(
    sorted(
        _word_set(
            """
            ами ями ого его ому ему ими ыми ій ий ый ой ей ая яя ое ее ые ие ую юю ом ем ам
            ям ах ях ов ев ів їв ою ею ої ії ть ти ся сь а я о е и ы у ю і ї є ь й
            """
        ),
        key=lambda ending: (-len(ending), ending),
    )
)

_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "e",
    "є": "ie", "ж": "zh", "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k",
    "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "",
    "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia",
}  # fmt: skip
# Ukrainian spells "г" /h/ and "и" /y/ (Харків → Kharkiv, Київ → Kyiv, Зеленський → Zelenskyi).
_TRANSLIT_UK = {**_TRANSLIT, "г": "h", "и": "y"}
_UKRAINIAN_LETTERS = frozenset("іїєґ")

# Letters that look alike in both scripts: "Сourt" typed with a Cyrillic С is still "Court".
_TO_LATIN = str.maketrans("АВЕКМНОРСТХаеорсухіјѕ", "ABEKMHOPCTXaeopcyxijs")
_TO_CYRILLIC = str.maketrans("ABEKMHOPCTXaeopcyx", "АВЕКМНОРСТХаеорсух")

_VOWELS = frozenset("aeiouy")


def _profile(item: StoryItem) -> _Profile:
    text = item.text[:TEXT_CHARS]
    ukrainian = not _UKRAINIAN_LETTERS.isdisjoint((item.title + text).lower())
    kicker, title = _split_kicker(item.title)
    title_words = _words(title)
    kicker_words = _words(kicker)
    title_case = _is_title_case(kicker_words + title_words)
    surfaces: dict[str, str] = {}
    fields: dict[str, set[str]] = {"kicker": set(), "title": set(), "text": set()}
    names: dict[str, bool | None] = {}
    for field, words, trust_case in (
        ("kicker", kicker_words, not title_case),
        ("title", title_words, not title_case),
        ("text", _words(text), True),
    ):
        for word, initial in words:
            analysed = _analyse(word, ukrainian=ukrainian)
            if analysed is None:
                continue
            key, is_number = analysed
            name = _name_evidence(word, initial=initial, trust_case=trust_case, number=is_number)
            if key in surfaces:
                names[key] = _merge_name(names[key], name)
            else:
                surfaces[key] = word
                names[key] = name
            fields[field].add(key)
    terms = {
        key: _Term(
            surface,
            key in fields["title"],
            key in fields["kicker"],
            key in fields["text"],
            names[key],
        )
        for key, surface in surfaces.items()
    }
    return _Profile(
        terms,
        " ".join(kicker.lower().split()),
        {key: _ceiling(term) for key, term in terms.items()},
        tuple((key, _floor(term)) for key, term in terms.items() if term.in_title),
    )


def _ceiling(term: _Term) -> float:
    titled = term.in_title or term.in_kicker
    weight = BOTH_WEIGHT if titled and term.in_text else TITLE_WEIGHT if titled else TEXT_WEIGHT
    return weight * (1.0 if term.name is False else NAME_BOOST)


def _floor(term: _Term) -> float:
    return TITLE_WEIGHT * (NAME_BOOST if term.name is True else 1.0)


def _split_kicker(title: str) -> tuple[str, str]:
    """(kicker, rest): "WATCH: …", "Middle East Crisis: …" label a series, not the event."""
    head, colon, rest = title.partition(":")
    if colon and rest.strip() and 1 <= len(head.split()) <= KICKER_WORDS:
        return head, rest
    return "", title


def _words(text: str) -> list[tuple[str, bool]]:
    """(word, starts a clause) for each word, in order."""
    text = unicodedata.normalize("NFKC", text)
    text = _DOTTED_ACRONYM.sub(lambda m: m.group().replace(".", ""), text)
    words: list[tuple[str, bool]] = []
    end = 0
    for match in _WORD.finditer(text):
        gap = text[end : match.start()]
        initial = not words or bool(_CLAUSE_BREAK.search(gap))
        words.append((_fix_mixed_script(match.group()), initial))
        end = match.end()
    return words


def _is_title_case(words: Sequence[tuple[str, bool]]) -> bool:
    """Whether every content word is capitalised, so capitals there say nothing."""
    content = [w for w, _ in words if len(w) >= 4 and w[0].isalpha() and not w.isupper()]
    if len(content) < 3:
        return False
    capitalised = sum(1 for w in content if w[0].isupper())
    return capitalised >= 0.75 * len(content)


def _name_evidence(word: str, *, initial: bool, trust_case: bool, number: bool) -> bool | None:
    if number:
        return True
    if len(word) >= 2 and word.isupper():
        return True  # an acronym: NATO, ICJ, ЗСУ
    if not word[0].isupper():
        return False if trust_case else None
    if trust_case and not initial:
        return True
    return None


def _merge_name(a: bool | None, b: bool | None) -> bool | None:
    if a is None:
        return b
    if b is None:
        return a
    return a or b  # "Bank" mid-sentence once is enough to make it a name


def _fix_mixed_script(word: str) -> str:
    if word.isascii():
        return word
    latin = sum(1 for ch in word if "a" <= ch.lower() <= "z")
    cyrillic = sum(1 for ch in word if "\u0400" <= ch <= "\u04ff")
    if not latin or not cyrillic:
        return word
    return word.translate(_TO_LATIN if latin >= cyrillic else _TO_CYRILLIC)


@lru_cache(maxsize=1 << 16)  # news vocabulary repeats: most words were analysed before
def _analyse(word: str, *, ukrainian: bool) -> tuple[str, bool] | None:
    """(key, is a number) or None for a word that carries no evidence."""
    if word[0].isdigit():
        digits = word.replace(",", "")
        ordinal = _ORDINAL.match(digits)
        if ordinal:
            digits = ordinal.group(1)
        if len(digits) < 2:
            return None  # "3 killed", "2nd": small numbers recur everywhere
        return digits.lower(), True
    lower = word.lower()
    acronym = len(word) >= 2 and word.isupper()
    # "US", "IT", "UN": short acronyms that spell a stopword are still names.
    if (lower in _STOPWORDS or lower in _CYRILLIC_STOPWORDS) and not (acronym and len(word) <= 3):
        return None
    if len(lower) < 2:
        return None
    cyrillic = "\u0400" <= lower[0] <= "\u04ff"
    key = _cyrillic_key(lower, ukrainian=ukrainian) if cyrillic else _latin_key(lower)
    return _trim(key), False


def _latin_key(word: str) -> str:
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "").replace("-", "")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "sui":
                break  # "press", "bus", "Paris", "analysis" keep their s
            word = word[: -len(suffix)] + repl
            break
    return word


def _cyrillic_key(word: str, *, ukrainian: bool) -> str:
    word = word.replace("’", "").replace("'", "").replace("-", "")
    for ending in _CYRILLIC_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)]
            break
    table = _TRANSLIT_UK if ukrainian else _TRANSLIT
    return "".join(table.get(ch, ch) for ch in word)


def _trim(key: str) -> str:
    # Cut, then drop trailing vowels: Latin words keep endings that Cyrillic ones lost
    # ("syrskyi" vs "сирськ-ий", "odesa" vs "одес-а").
    key = key[:KEY_LENGTH]
    while len(key) > 4 and key[-1] in _VOWELS:
        key = key[:-1]
    return key


# ---------------------------------------------------------------- the index

_posted_key = itemgetter(1)


@dataclass(frozen=True)
class _Entry:
    item: StoryItem
    profile: _Profile
    story_id: str
    joined: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
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

    def restore(self, item: StoryItem, story_id: str) -> None:
        """Re-register a stored assignment (after a restart) without deciding anything.

        Restore every stored item published within ``window`` of the newest one, in any
        order; older ones are accepted and dropped. A story takes new items only while its
        founding item is in the window, so restoring members without their founder leaves
        that story closed, as it would have been.
        """
        if item.key in self._entries:
            return
        self._advance(item.published)
        self._register(_Entry(item, _profile(item), story_id, None, ()))
        self._evict()

    def add(self, item: StoryItem) -> StoryAssignment:
        """Decide which story ``item`` belongs to, register it, and say why."""
        known = self._entries.get(item.key)
        if known is not None:
            return StoryAssignment(item.key, known.story_id, known.joined, known.reasons)
        profile = _profile(item)
        self._advance(item.published)
        self._evict()
        self._count(item, profile, +1)  # the new item is part of the IDF it is judged by
        tie = self._best_tie(item, profile)
        if tie is None:
            entry = _Entry(item, profile, story_id_of(item.key), None, ())
        else:
            reasons = self._explain(tie, profile)
            entry = _Entry(item, profile, tie.entry.story_id, tie.entry.item.key, reasons)
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
        for key in scorer.evidence:
            posting = self._postings.get(key)
            if posting:
                hits.update(map(_posted_key, posting[-POSTINGS_PER_TERM:]))
        found = (self._entries[k] for k, count in hits.items() if count >= 2)
        return [e for e in found if abs(e.item.published - item.published) <= self._window]

    def _tie(self, scorer: _Scorer, other: _Entry) -> _Tie | None:
        self.comparisons += 1
        mine = scorer.mine
        # Settle most candidates before building their vector, on the keys alone and on a
        # bound of the cosine; the vector only drops keys or lowers weights, so failing
        # here fails there.
        if not self._enough_evidence(
            scorer, scorer.evidence.intersection(other.profile.terms), other
        ):
            return None
        # Reports of one event cluster in time: the further apart, the more they must share.
        apart = abs(scorer.published - other.item.published) / self._window
        threshold = MIN_COSINE + TIME_PENALTY * apart
        if scorer.cosine_ceiling(other.profile) < threshold:
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
        for key, term in profile.terms.items():
            in_title = term.in_title or (term.in_kicker and not series)
            in_text = term.in_text and source_df.get(key, 0) < boiler
            if in_title:
                weight = BOTH_WEIGHT if in_text else TITLE_WEIGHT
            elif in_text:
                weight = TEXT_WEIGHT
            else:
                continue
            name = term.name
            if name is None:
                name = named.get(key, 0) > common.get(key, 0)
            if name:
                weight *= NAME_BOOST
            value = known_idf.get(key)
            vector[key] = weight * (idf(key) if value is None else value)
        return vector

    def _is_name(self, key: str, *profiles: _Profile | _Entry) -> bool:
        for p in profiles:
            profile = p.profile if isinstance(p, _Entry) else p
            term = profile.terms.get(key)
            if term is not None and term.name is not None:
                return term.name
        return self._named[key] > self._common[key]

    def _explain(self, tie: _Tie, profile: _Profile) -> tuple[str, ...]:
        groups: dict[str, list[str]] = {"names": [], "figures": [], "terms": []}
        for key, _ in tie.shared:
            surface = profile.terms[key].surface
            if surface[0].isdigit():
                groups["figures"].append(surface)
            elif self._is_name(key, profile, tie.entry):
                groups["names"].append(surface)
            else:
                groups["terms"].append(surface)
        reasons = [
            f"shared {kind}: " + ", ".join(surfaces[:MAX_REASON_TERMS])
            for kind, surfaces in groups.items()
            if surfaces
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
            for term in entry.profile.terms:
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
        for term in entry.profile.terms:
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
        for key, term in profile.terms.items():
            self._df[key] += sign
            if term.in_text:  # boilerplate is what an outlet appends to every summary
                source_df[key] += sign
            if term.name is True:
                self._named[key] += sign
            elif term.name is False:
                self._common[key] += sign
        if sign < 0:
            # Counters keep zero entries; drop them so memory follows the window.
            for counter in (self._df, self._named, self._common, source_df):
                for key in profile.terms:
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
        self.norm = math.sqrt(sum(w * w for w in self.mine.values()))

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

    def cosine_ceiling(self, other: _Profile) -> float:
        """At least the cosine of this item with ``other``, from ``other``'s profile alone."""
        mine, ceilings, known = self.mine, other.ceilings, self.known_idf  # mine's IDFs are known
        dot = sum(ceilings[k] * mine[k] * known[k] for k in mine.keys() & ceilings.keys())
        if dot == 0.0:
            return 0.0
        idf = self.idf
        floor = math.sqrt(sum((weight * idf(k)) ** 2 for k, weight in other.floors))
        if floor == 0.0:
            return math.inf
        return dot / (self.norm * floor) + 1e-9  # rounding must not rule out a tie

    def vector(self, entry: _Entry) -> dict[str, float]:
        key = entry.item.key
        vector = self._vectors.get(key)
        if vector is None:
            vector = self._index._vector(entry.item.source, entry.profile, self)
            self._vectors[key] = vector
        return vector


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    dot = sum(w * b[k] for k, w in a.items() if k in b)
    if dot == 0.0:
        return 0.0
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm
