"""Topic rules → topic assignments, each with the reasons it was made.

Runs over every stored entry, so each list of terms (keywords and phrases, weak terms,
context terms, excludes) is one precompiled alternation regex rather than a regex per term.

Term syntax: words separated by whitespace match across any run of whitespace; a word
ending in ``*`` matches any word starting with it (``ukrain*`` → Ukraine, Ukrainian,
Ukraine's). Matching is case-insensitive, Unicode-aware (Cyrillic included) and
whole-word: ``Kyiv`` does not match ``Kyivstar``.

Scoring: where a term appears says how much it means. Each distinct term scores once, the
weight of the most prominent field it appears in (:data:`FIELD_WEIGHTS`): a headline
mention outweighs a passing one in the body, and repeating a term in several fields adds
nothing. Keywords and phrases always score. Weak terms (a subject that may be something
else: "Russia") and context terms (an activity that may be someone else's: "missiles")
score only in company: a weak term when the entry also matches a keyword, phrase or
context term; a context term when it also matches a keyword, phrase or weak term. A topic
is assigned when the score reaches its threshold, or when the entry's feed is tagged with
it; any exclude term vetoes it either way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aggregator.models import TopicMatch
from aggregator.settings import TopicRule
from aggregator.text import html_to_text, one_line

MAX_REASONS = 5

# Points per field. A title is what the item is about; a summary is the item's own short
# account of itself; categories are the publisher's labels; a full body mentions much in
# passing. The default threshold (config.DEFAULT_TOPIC_THRESHOLD = 3) makes one keyword in
# the title enough, and one keyword in the summary or a category not enough on its own.
FIELD_WEIGHTS: Mapping[str, int] = {"title": 3, "summary": 2, "categories": 2, "content": 1}

TermKind = Literal["keyword", "phrase", "weak term", "context", "exclude"]

_FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True)
class TopicMiss:
    """Why an entry did not get a topic: its score, the threshold, and what fell short."""

    topic_id: str
    score: int
    threshold: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Term:
    kind: TermKind
    text: str  # as written in feeds.yaml, for the explanation
    pattern: re.Pattern[str]  # this term alone, to tell which one a combined hit was


@dataclass(frozen=True)
class _TermSet:
    combined: re.Pattern[str] | None  # all terms, one alternation; None when there are none
    terms: tuple[_Term, ...]


@dataclass(frozen=True)
class _CompiledTopic:
    id: str
    threshold: int
    strong: _TermSet  # keywords and phrases
    weak: _TermSet
    context: _TermSet
    exclude: _TermSet


@dataclass(frozen=True)
class CompiledTopics:
    """Topic rules ready to classify entries; build with :func:`compile_topics`."""

    topics: tuple[_CompiledTopic, ...]


@dataclass(frozen=True)
class _Hit:
    term: _Term
    field: str
    matched: str
    start: int  # in that field's text, so overlapping hits can be told apart


@dataclass(frozen=True)
class _Scored:
    """One topic weighed against one entry; the basis of both classify and explain_misses."""

    topic: _CompiledTopic
    hinted: bool
    veto: _Hit | None
    counted: tuple[_Hit, ...]  # each scoring term once, at its most prominent field
    lonely: tuple[_Hit, ...]  # weak or context terms that matched without company: 0 points
    score: int

    @property
    def assigned(self) -> bool:
        return self.veto is None and (self.hinted or self.score >= self.topic.threshold)


def compile_topics(rules: Sequence[TopicRule]) -> CompiledTopics:
    return CompiledTopics(tuple(_compile_topic(rule) for rule in rules))


def classify(
    compiled: CompiledTopics,
    *,
    title: str,
    summary: str,
    content: str,
    categories: Sequence[str] = (),
    feed_topics: Sequence[str] = (),
) -> tuple[TopicMatch, ...]:
    """The topics an entry belongs to, in rule order, each with up to MAX_REASONS reasons:
    the feed hint, the terms that scored (where, how many points) and the score."""
    fields = _fields(title=title, summary=summary, content=content, categories=categories)
    scored = (_score(topic, fields, frozenset(feed_topics)) for topic in compiled.topics)
    return tuple(TopicMatch(s.topic.id, _reasons(s)) for s in scored if s.assigned)


def explain_misses(
    compiled: CompiledTopics,
    *,
    title: str,
    summary: str,
    content: str,
    categories: Sequence[str] = (),
    feed_topics: Sequence[str] = (),
) -> tuple[TopicMiss, ...]:
    """The topics an entry did *not* get, in rule order, each saying why: the veto, or
    the score it reached, the terms that scored, the weak terms that lacked company and
    how many points were missing. Takes the same arguments as :func:`classify`."""
    fields = _fields(title=title, summary=summary, content=content, categories=categories)
    scored = (_score(topic, fields, frozenset(feed_topics)) for topic in compiled.topics)
    return tuple(
        TopicMiss(s.topic.id, s.score, s.topic.threshold, _reasons(s))
        for s in scored
        if not s.assigned
    )


# ---------------------------------------------------------------- compiling


def _compile_topic(rule: TopicRule) -> _CompiledTopic:
    # Phrases first: where a phrase and one of its words both match the same text,
    # the phrase is the better explanation.
    strong: list[tuple[TermKind, str]] = [("phrase", p) for p in rule.phrases]
    strong += [("keyword", k) for k in rule.keywords]
    return _CompiledTopic(
        rule.id,
        rule.threshold,
        _term_set(strong),
        _term_set([("weak term", w) for w in rule.weak]),
        _term_set([("context", c) for c in rule.context]),
        _term_set([("exclude", e) for e in rule.exclude]),
    )


def _term_set(candidates: Sequence[tuple[TermKind, str]]) -> _TermSet:
    terms: list[_Term] = []
    token_lists: list[tuple[str, ...]] = []
    for kind, text in candidates:
        tokens = _term_tokens(text)
        if tokens is None:
            continue
        token_lists.append(tokens)
        terms.append(_Term(kind, text, re.compile("".join(tokens), _FLAGS)))
    return _TermSet(_combined_regex(token_lists), tuple(terms))


def _term_tokens(term: str) -> tuple[str, ...] | None:
    """Regex pieces for one term (one per character, whitespace run or prefix tail),
    or None when the term could match anything (empty, "*")."""
    tokens: list[str] = []
    for word in _normalize(term).split():
        stem = word.rstrip("*")
        if not stem:
            return None
        if tokens:
            tokens.append(r"\s+")
        # Lower-cased keys let "Kyiv" and "kyiv" share a trie path; the regex ignores case.
        tokens.extend(re.escape(ch.lower() if len(ch.lower()) == 1 else ch) for ch in stem)
        if stem != word:
            tokens.append(r"\w*")
    return tuple(tokens) if tokens else None


_Trie = dict[str, "_Trie"]
_END = ""  # trie key marking that a term ends at this node


def _combined_regex(token_lists: Sequence[tuple[str, ...]]) -> re.Pattern[str] | None:
    """One regex matching any of the terms, as a trie (shared prefixes factored out).

    A flat alternation makes the engine try every term at every word start; the trie
    rejects most words on their first character, which matters at hundreds of terms.
    """
    if not token_lists:
        return None
    trie: _Trie = {}
    for tokens in token_lists:
        node = trie
        for token in tokens:
            node = node.setdefault(token, {})
        node[_END] = {}
    # \w-based lookarounds rather than \b: \b fails next to terms that start or end in
    # punctuation ("C++", "U.S."), and these work for any script.
    return re.compile(r"(?<!\w)" + _trie_regex(trie) + r"(?!\w)", _FLAGS)


def _trie_regex(node: _Trie) -> str:
    # Longer continuations before the end of a term, so "black sea fleet" wins over "black".
    branches: list[str] = []
    for token, child in node.items():
        if token == _END:
            continue
        chain = [token]
        # Follow unbranched runs iteratively: recursion only at real branch points.
        while len(child) == 1 and _END not in child:
            ((token, child),) = child.items()
            chain.append(token)
        branches.append("".join(chain) + _trie_regex(child))
    if _END in node:
        branches.append("")
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


# ---------------------------------------------------------------- matching and scoring


def _fields(
    *, title: str, summary: str, content: str, categories: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """(field name, plain text) pairs, most prominent field first: the order in which
    hits are credited and reported."""
    summary_text = html_to_text(summary)
    content_text = html_to_text(content)
    fields = [("title", _normalize(title)), ("summary", _normalize(summary_text))]
    # Each category on its own so a phrase cannot span two tags.
    fields.extend(("categories", _normalize(c)) for c in categories)
    # Many feeds repeat the summary as content; reporting the same hit twice explains nothing.
    if content_text != summary_text:
        fields.append(("content", _normalize(content_text)))
    return tuple((name, text) for name, text in fields if text)


def _score(
    topic: _CompiledTopic, fields: Sequence[tuple[str, str]], hinted: frozenset[str]
) -> _Scored:
    veto = next(_hits(topic.exclude, fields), None)
    # A word counts once: "Russian" inside the matched phrase "Russian troops" is not also
    # a weak-term hit, or every such phrase would score twice. Strong terms claim first.
    taken: set[tuple[str, int, int]] = set()
    found: list[tuple[_Hit, ...]] = []
    for terms in (topic.strong, topic.weak, topic.context):
        hits = tuple(h for h in _hits(terms, fields) if not _overlaps(h, taken))
        taken.update((h.field, h.start, h.start + len(h.matched)) for h in hits)
        found.append(_first_per_term(hits))
    strong, weak, context = found
    # "Russia" alone may be an election, "missiles" alone may be another war; together, or
    # next to a keyword, they mean the topic.
    weak_counts = bool(strong or context)
    context_counts = bool(strong or weak)
    counted = strong + (weak if weak_counts else ()) + (context if context_counts else ())
    lonely = (() if weak_counts else weak) + (() if context_counts else context)
    return _Scored(
        topic=topic,
        hinted=topic.id in hinted,
        veto=veto,
        counted=tuple(sorted(counted, key=lambda h: -FIELD_WEIGHTS[h.field])),
        lonely=lonely,
        score=sum(FIELD_WEIGHTS[h.field] for h in counted),
    )


def _hits(terms: _TermSet, fields: Sequence[tuple[str, str]]) -> Iterator[_Hit]:
    """Every hit, field by field (most prominent first), each credited to the first term
    that explains it."""
    if terms.combined is None:
        return
    for field_name, text in fields:
        for match in terms.combined.finditer(text):
            matched = match.group()
            term = next((t for t in terms.terms if t.pattern.fullmatch(matched)), None)
            if term is not None:  # always found: the hit was made by one of the terms
                yield _Hit(term, field_name, matched, match.start())


def _first_per_term(hits: Iterable[_Hit]) -> tuple[_Hit, ...]:
    # Fields come most prominent first, so a term's first hit is the one worth most.
    seen: set[str] = set()
    first: list[_Hit] = []
    for hit in hits:
        if hit.term.text not in seen:
            seen.add(hit.term.text)
            first.append(hit)
    return tuple(first)


def _overlaps(hit: _Hit, spans: set[tuple[str, int, int]]) -> bool:
    end = hit.start + len(hit.matched)
    return any(f == hit.field and s < end and hit.start < e for f, s, e in spans)


# ---------------------------------------------------------------- explaining


def _reasons(scored: _Scored) -> tuple[str, ...]:
    """Veto, feed hint, terms (scoring ones first, most points first), then the score
    line, which the MAX_REASONS cap never drops: it cuts term reasons instead."""
    topic = scored.topic
    head: list[str] = []
    if scored.veto is not None:
        head.append(f"vetoed by {_describe(scored.veto)}")
    if scored.hinted:
        head.append(f"source is tagged {topic.id} in feeds.yaml")
    terms = [f"{_describe(h)} (+{FIELD_WEIGHTS[h.field]})" for h in scored.counted]
    terms += [f"{_describe(h)} (+0: {_LONELY[h.term.kind]})" for h in scored.lonely]
    if not scored.counted and not scored.lonely and not scored.hinted:
        terms.append("no keyword, phrase or weak term matched")
    room = MAX_REASONS - len(head) - 1  # head holds at most two, MAX_REASONS is 5
    return (*head, *terms[:room], _score_line(scored))


_LONELY = {
    "weak term": "needs a keyword, phrase or context term alongside",
    "context": "needs a keyword, phrase or weak term alongside",
}


def _score_line(scored: _Scored) -> str:
    score, threshold = scored.score, scored.topic.threshold
    if score >= threshold:
        return f"score {score} ≥ threshold {threshold}"
    missing = threshold - score
    points = "point" if missing == 1 else "points"
    if scored.hinted and scored.veto is None:
        return f"score {score} < threshold {threshold}; assigned by the source tag alone"
    return f"score {score} < threshold {threshold}: {missing} more {points} needed"


def _describe(hit: _Hit) -> str:
    matched = one_line(hit.matched)
    if matched == hit.term.text:
        return f"{hit.term.kind} '{hit.term.text}' in {hit.field}"
    return f"{hit.term.kind} '{hit.term.text}' matched '{matched}' in {hit.field}"


def _normalize(text: str) -> str:
    # NFC so that a decomposed letter (base + combining mark, as in some Cyrillic text)
    # stays one word character: combining marks are not \w and would split the word.
    return unicodedata.normalize("NFC", text)
