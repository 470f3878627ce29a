"""Topic rules → topic assignments, each with the reasons it was made.

Runs over every stored entry, so each topic is one precompiled alternation regex
(plus one for its excludes) rather than a regex per keyword.

Term syntax (keywords, phrases and excludes alike): words separated by whitespace
match across any run of whitespace; a word ending in ``*`` matches any word starting
with it (``ukrain*`` → Ukraine, Ukrainian, Ukraine's). Matching is case-insensitive,
Unicode-aware (Cyrillic included) and whole-word: ``Kyiv`` does not match ``Kyivstar``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from aggregator.config import TopicRule
from aggregator.models import TopicMatch
from aggregator.text import html_to_text, one_line

MAX_REASONS = 5

TermKind = Literal["keyword", "phrase"]

_FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True)
class _Term:
    kind: TermKind
    text: str  # as written in feeds.yaml, for the explanation
    pattern: re.Pattern[str]  # this term alone, to tell which one a combined hit was


@dataclass(frozen=True)
class _CompiledTopic:
    id: str
    include: re.Pattern[str] | None  # all terms, one alternation
    terms: tuple[_Term, ...]
    exclude: re.Pattern[str] | None


@dataclass(frozen=True)
class CompiledTopics:
    """Topic rules ready to classify entries; build with :func:`compile_topics`."""

    topics: tuple[_CompiledTopic, ...]


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
    """The topics an entry belongs to, in rule order, each with up to MAX_REASONS reasons."""
    fields = _fields(title=title, summary=summary, content=content, categories=categories)
    hinted = frozenset(feed_topics)
    matches: list[TopicMatch] = []
    for topic in compiled.topics:
        if topic.exclude is not None and any(topic.exclude.search(text) for _, text in fields):
            continue  # a veto beats everything, feed hints included
        reasons: list[str] = []
        if topic.id in hinted:
            reasons.append(f"source is tagged {topic.id} in feeds.yaml")
        reasons.extend(_term_reasons(topic, fields, limit=MAX_REASONS - len(reasons)))
        if reasons:
            matches.append(TopicMatch(topic.id, tuple(reasons)))
    return tuple(matches)


# ---------------------------------------------------------------- compiling


def _compile_topic(rule: TopicRule) -> _CompiledTopic:
    # Phrases first: where a phrase and one of its words both match the same text,
    # the phrase is the better explanation.
    candidates: list[tuple[TermKind, str]] = [("phrase", p) for p in rule.phrases]
    candidates += [("keyword", k) for k in rule.keywords]
    terms: list[_Term] = []
    token_lists: list[tuple[str, ...]] = []
    for kind, text in candidates:
        tokens = _term_tokens(text)
        if tokens is None:
            continue
        token_lists.append(tokens)
        pattern = re.compile("".join(tokens), _FLAGS)
        terms.append(_Term(kind, text, pattern))
    excludes = [t for t in (_term_tokens(e) for e in rule.exclude) if t is not None]
    return _CompiledTopic(
        rule.id, _combined_regex(token_lists), tuple(terms), _combined_regex(excludes)
    )


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


# ---------------------------------------------------------------- matching


def _fields(
    *, title: str, summary: str, content: str, categories: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """(field name, plain text) pairs in the order reasons are reported."""
    summary_text = html_to_text(summary)
    content_text = html_to_text(content)
    fields = [("title", _normalize(title)), ("summary", _normalize(summary_text))]
    # Many feeds repeat the summary as content; reporting the same hit twice explains nothing.
    if content_text != summary_text:
        fields.append(("content", _normalize(content_text)))
    # Each category on its own so a phrase cannot span two tags.
    fields.extend(("categories", _normalize(c)) for c in categories)
    return tuple((name, text) for name, text in fields if text)


def _term_reasons(
    topic: _CompiledTopic, fields: Sequence[tuple[str, str]], *, limit: int
) -> list[str]:
    if topic.include is None or limit <= 0:
        return []
    reasons: list[str] = []
    reported: set[tuple[int, str]] = set()
    for field_name, text in fields:
        for index, matched in _hits(topic, text):
            if (index, field_name) in reported:
                continue
            reported.add((index, field_name))
            reasons.append(_reason(topic.terms[index], matched, field_name))
            if len(reasons) >= limit:
                return reasons
    return reasons


def _hits(topic: _CompiledTopic, text: str) -> Iterator[tuple[int, str]]:
    """(index of the first term that explains the hit, matched text) for each hit."""
    if topic.include is None:
        return
    for match in topic.include.finditer(text):
        matched = match.group()
        index = next((i for i, t in enumerate(topic.terms) if t.pattern.fullmatch(matched)), None)
        if index is not None:  # always found: the hit was made by one of the terms
            yield index, matched


def _reason(term: _Term, matched: str, field_name: str) -> str:
    matched = one_line(matched)
    if matched == term.text:
        return f"{term.kind} '{term.text}' in {field_name}"
    return f"{term.kind} '{term.text}' matched '{matched}' in {field_name}"


def _normalize(text: str) -> str:
    # NFC so that a decomposed letter (base + combining mark, as in some Cyrillic text)
    # stays one word character: combining marks are not \w and would split the word.
    return unicodedata.normalize("NFC", text)
