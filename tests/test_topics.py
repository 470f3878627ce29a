from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aggregator.config import TopicRule
from aggregator.models import TopicMatch
from aggregator.topics import MAX_REASONS, classify, compile_topics

UKRAINE = TopicRule(
    id="ukraine-war",
    title="Ukraine war",
    keywords=("ukrain*", "Kyiv", "Zelensky", "Україна", "Киев*"),
    phrases=("black sea fleet",),
    exclude=("eurovision",),
)
TECH = TopicRule(id="tech", title="Technology", keywords=("AI", "C++", "chip*"))


def topics_of(
    rules: Sequence[TopicRule],
    *,
    title: str = "",
    summary: str = "",
    content: str = "",
    categories: Sequence[str] = (),
    feed_topics: Sequence[str] = (),
) -> tuple[str, ...]:
    matches = classify(
        compile_topics(rules),
        title=title,
        summary=summary,
        content=content,
        categories=categories,
        feed_topics=feed_topics,
    )
    return tuple(m.topic_id for m in matches)


def reasons_of(match: Sequence[TopicMatch], topic_id: str) -> tuple[str, ...]:
    return next(m.reasons for m in match if m.topic_id == topic_id)


# ---------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    "title",
    [
        "Kyiv under attack",
        "KYIV under attack",
        "attack on kyiv",
        "Kyiv's mayor",
        "(Kyiv)",
        "Kyiv—Lviv",
        "Ukraine",
        "Ukrainian grain",
        "Ukraine's allies",
        "UKRAINIANS",
        "Zelensky speaks",
        "Україна та світ",
        "УКРАЇНА",
        "Новости Киева",
        "в Киеве",
        "Киев",
    ],
)
def test_keyword_matches(title: str) -> None:
    assert topics_of([UKRAINE], title=title) == ("ukraine-war",)


@pytest.mark.parametrize(
    "title",
    [
        "Kyivstar outage",  # whole word only
        "preKyiv",
        "Kyiv_2",  # underscore is a word character
        "Zelenskyy",  # not a prefix term
        "Україна2024",  # noqa: RUF001 - Cyrillic on purpose
        "ПодКиев",
        "nothing relevant",
        "",
    ],
)
def test_keyword_does_not_match(title: str) -> None:
    rules = [TopicRule(id="t", title="T", keywords=("Kyiv", "Zelensky", "Україна", "Киев*"))]
    assert topics_of(rules, title=title) == ()


def test_prefix_needs_star() -> None:
    exact = [TopicRule(id="t", title="T", keywords=("Ukraine",))]
    assert topics_of(exact, title="Ukraine") == ("t",)
    assert topics_of(exact, title="Ukrainer") == ()
    assert topics_of(exact, title="Ukrainian") == ()
    prefix = [TopicRule(id="t", title="T", keywords=("Ukraine*",))]
    assert topics_of(prefix, title="Ukrainer") == ("t",)
    assert topics_of(prefix, title="Ukraine") == ("t",)
    # The stem itself must be whole at the start.
    assert topics_of(prefix, title="preUkraine") == ()


def test_stem_alone_matches_with_star() -> None:
    assert topics_of([UKRAINE], title="Ukrain") == ("ukraine-war",)


def test_punctuated_keywords() -> None:
    assert topics_of([TECH], title="Modern C++ tips") == ("tech",)
    assert topics_of([TECH], title="C++20 released") == ()
    assert topics_of([TECH], title="chipmakers rally") == ("tech",)
    assert topics_of([TECH], title="AI boom") == ("tech",)
    assert topics_of([TECH], title="said the AIDS charity") == ()


def test_decomposed_unicode_matches() -> None:
    rules = [TopicRule(id="t", title="T", keywords=("Київ",))]
    decomposed = unicodedata.normalize("NFD", "Новини: Київ сьогодні")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert topics_of(rules, title=decomposed) == ("t",)


# ---------------------------------------------------------------- phrases


@pytest.mark.parametrize(
    "summary",
    [
        "The Black Sea Fleet moved",
        "the black  sea\nfleet",
        "<p>BLACK SEA <b>FLEET</b></p>",
        "black\tsea fleet.",
    ],
)
def test_phrase_matches_whitespace_tolerant(summary: str) -> None:
    rules = [TopicRule(id="navy", title="Navy", phrases=("black sea fleet",))]
    assert topics_of(rules, summary=summary) == ("navy",)


@pytest.mark.parametrize(
    "summary", ["black sea fleets", "the black sea is calm; the fleet", "blacksea fleet"]
)
def test_phrase_does_not_match(summary: str) -> None:
    rules = [TopicRule(id="navy", title="Navy", phrases=("black sea fleet",))]
    assert topics_of(rules, summary=summary) == ()


def test_phrase_does_not_span_categories() -> None:
    rules = [TopicRule(id="navy", title="Navy", phrases=("black sea fleet",))]
    assert topics_of(rules, categories=["Black Sea", "Fleet"]) == ()
    assert topics_of(rules, categories=["War", "Black Sea Fleet"]) == ("navy",)


# ---------------------------------------------------------------- fields


@pytest.mark.parametrize("field", ["title", "summary", "content"])
def test_each_text_field_is_searched(field: str) -> None:
    kwargs = {"title": "", "summary": "", "content": ""}
    kwargs[field] = "News from Kyiv"
    matches = classify(compile_topics([UKRAINE]), **kwargs)
    assert reasons_of(matches, "ukraine-war") == (f"keyword 'Kyiv' in {field}",)


def test_categories_are_searched() -> None:
    matches = classify(
        compile_topics([UKRAINE]), title="", summary="", content="", categories=["Ukraine"]
    )
    assert reasons_of(matches, "ukraine-war") == (
        "keyword 'ukrain*' matched 'Ukraine' in categories",
    )


def test_html_is_not_searched_as_markup() -> None:
    rules = [TopicRule(id="t", title="T", keywords=("kyiv",))]
    # In attributes and scripts only: not visible text, not a match.
    assert topics_of(rules, content='<a href="https://kyiv.example/">link</a>') == ()
    assert topics_of(rules, content="<script>var kyiv = 1;</script>") == ()
    assert topics_of(rules, content="<p>in&nbsp;Kyiv&nbsp;today</p>") == ("t",)


# ---------------------------------------------------------------- exclusions and hints


def test_exclude_vetoes() -> None:
    assert topics_of([UKRAINE], title="Ukraine at Eurovision") == ()
    assert topics_of([UKRAINE], title="Ukraine", content="eurovision results") == ()
    assert topics_of([UKRAINE], title="Ukraine", categories=["Eurovision"]) == ()


def test_exclude_is_whole_word() -> None:
    assert topics_of([UKRAINE], title="Ukraine", summary="eurovisionary") == ("ukraine-war",)


def test_exclude_vetoes_feed_hint() -> None:
    assert topics_of([UKRAINE], title="Eurovision final", feed_topics=["ukraine-war"]) == ()


def test_exclude_only_vetoes_its_own_topic() -> None:
    rules = [UKRAINE, TopicRule(id="music", title="Music", keywords=("eurovision",))]
    assert topics_of(rules, title="Ukraine at Eurovision") == ("music",)


def test_feed_hint_assigns_topic() -> None:
    matches = classify(
        compile_topics([UKRAINE, TECH]),
        title="Weather",
        summary="",
        content="",
        feed_topics=["tech"],
    )
    assert matches == (TopicMatch("tech", ("source is tagged tech in feeds.yaml",)),)


def test_feed_hint_for_unknown_topic_is_ignored() -> None:
    assert topics_of([UKRAINE], title="Weather", feed_topics=["nope"]) == ()


def test_feed_hint_comes_first_then_term_reasons() -> None:
    matches = classify(
        compile_topics([UKRAINE]),
        title="Kyiv",
        summary="",
        content="",
        feed_topics=["ukraine-war"],
    )
    assert reasons_of(matches, "ukraine-war") == (
        "source is tagged ukraine-war in feeds.yaml",
        "keyword 'Kyiv' in title",
    )


# ---------------------------------------------------------------- reasons and order


def test_reasons_name_term_match_and_field() -> None:
    matches = classify(
        compile_topics([UKRAINE]),
        title="Kyiv and Ukraine's allies",
        summary="<p>The Black  Sea Fleet</p>",
        content="",
    )
    assert reasons_of(matches, "ukraine-war") == (
        "keyword 'Kyiv' in title",
        "keyword 'ukrain*' matched 'Ukraine' in title",
        "phrase 'black sea fleet' matched 'Black Sea Fleet' in summary",
    )


def test_first_hit_per_term_per_field_only() -> None:
    matches = classify(
        compile_topics([UKRAINE]), title="Kyiv, Kyiv, KYIV", summary="kyiv", content=""
    )
    assert reasons_of(matches, "ukraine-war") == (
        "keyword 'Kyiv' in title",
        "keyword 'Kyiv' matched 'kyiv' in summary",
    )


def test_content_equal_to_summary_is_not_reported_twice() -> None:
    matches = classify(compile_topics([UKRAINE]), title="", summary="Kyiv", content="<p>Kyiv</p>")
    assert reasons_of(matches, "ukraine-war") == ("keyword 'Kyiv' in summary",)


def test_reasons_are_capped() -> None:
    rule = TopicRule(id="t", title="T", keywords=tuple(f"w{i}" for i in range(10)))
    text = " ".join(f"w{i}" for i in range(10))
    matches = classify(compile_topics([rule]), title=text, summary=text, content="")
    assert len(reasons_of(matches, "t")) == MAX_REASONS
    assert reasons_of(matches, "t")[0] == "keyword 'w0' in title"


def test_output_follows_rule_order_and_allows_several_topics() -> None:
    title = "AI chips for Kyiv"
    assert topics_of([UKRAINE, TECH], title=title) == ("ukraine-war", "tech")
    assert topics_of([TECH, UKRAINE], title=title) == ("tech", "ukraine-war")


def test_reasons_name_each_term_and_field_in_a_stable_order() -> None:
    compiled = compile_topics([UKRAINE, TECH])
    kwargs = {"title": "Kyiv AI", "summary": "Ukraine chips", "content": "C++ Україна"}
    first = classify(compiled, **kwargs)
    assert first == classify(compile_topics([UKRAINE, TECH]), **kwargs)
    assert [m.topic_id for m in first] == ["ukraine-war", "tech"]
    assert all(m.reasons for m in first)
    assert any("in title" in r for r in first[0].reasons)
    assert any("in summary" in r for r in first[0].reasons)


def test_empty_and_wildcard_terms_match_nothing() -> None:
    rules = [TopicRule(id="t", title="T", keywords=("", "*", "   "), exclude=("*",))]
    assert topics_of(rules, title="anything at all") == ()
    assert topics_of(rules, title="anything", feed_topics=["t"]) == ("t",)


def test_regex_metacharacters_are_literal() -> None:
    rules = [TopicRule(id="t", title="T", keywords=("a.b", "(x)"))]
    assert topics_of(rules, title="axb") == ()
    assert topics_of(rules, title="see a.b now") == ("t",)
    assert topics_of(rules, title="see (x) now") == ("t",)


def test_no_rules() -> None:
    assert classify(compile_topics([]), title="Kyiv", summary="", content="") == ()


# ---------------------------------------------------------------- properties

_CYRILLIC = "абвгдеєжзиіїкУКРАЇНА"
_letters = st.text(alphabet=string.ascii_lowercase + _CYRILLIC, min_size=2, max_size=8)


@given(word=_letters, flip=st.lists(st.booleans(), min_size=8, max_size=8))
def test_property_case_insensitive(word: str, flip: list[bool]) -> None:
    variant = "".join(c.upper() if f else c.lower() for c, f in zip(word, flip, strict=False))
    rules = [TopicRule(id="t", title="T", keywords=(word,))]
    assert topics_of(rules, title=f"before {variant} after") == ("t",)


@given(word=_letters, prefix=_letters, suffix=_letters)
def test_property_whole_word(word: str, prefix: str, suffix: str) -> None:
    rules = [TopicRule(id="t", title="T", keywords=(word,))]
    assert topics_of(rules, title=f"{word}{suffix}") == ()
    assert topics_of(rules, title=f"{prefix}{word}") == ()
    assert topics_of(rules, title=f"{prefix}, {word}. {suffix}") == ("t",)


@given(word=_letters, prefix=_letters, suffix=_letters)
def test_property_prefix_form(word: str, prefix: str, suffix: str) -> None:
    rules = [TopicRule(id="t", title="T", keywords=(word + "*",))]
    assert topics_of(rules, title=f"x {word}{suffix} y") == ("t",)
    glued = f"{prefix}{word}{suffix}"
    assume(not glued.lower().startswith(word.lower()))
    assert topics_of(rules, title=glued) == ()


@given(
    words=st.lists(_letters, min_size=2, max_size=4),
    gaps=st.lists(st.sampled_from([" ", "  ", "\n", "\t "]), min_size=3, max_size=3),
)
def test_property_phrase_whitespace(words: list[str], gaps: list[str]) -> None:
    rules = [TopicRule(id="t", title="T", phrases=(" ".join(words),))]
    text = "".join(w + g for w, g in zip(words, [*gaps, ""], strict=False)).strip()
    assert topics_of(rules, summary=text) == ("t",)
    assert topics_of(rules, summary="".join(words)) == ()


def test_terms_sharing_a_prefix_are_told_apart() -> None:
    rules = [TopicRule(id="t", title="T", keywords=("Kyiv", "Kyivstar", "Kyi*", "Kharkiv"))]
    compiled = compile_topics(rules)

    def reasons(title: str) -> tuple[str, ...]:
        return reasons_of(classify(compiled, title=title, summary="", content=""), "t")

    assert reasons("Kyivstar") == ("keyword 'Kyivstar' in title",)
    assert reasons("Kyiv") == ("keyword 'Kyiv' in title",)
    assert reasons("Kyivan") == ("keyword 'Kyi*' matched 'Kyivan' in title",)
    assert reasons("Kharkiv") == ("keyword 'Kharkiv' in title",)
    assert topics_of(rules, title="Kharkivs Kyivstars") == ("t",)  # via Kyi* only
    assert topics_of(rules, title="Kharkivs Ky") == ()


@given(
    keywords=st.lists(_letters, min_size=1, max_size=12, unique_by=str.lower),
    pick=st.integers(min_value=0, max_value=11),
    stars=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_property_combined_regex_equals_union_of_terms(
    keywords: list[str], pick: int, stars: list[bool]
) -> None:
    terms = [k + "*" if s else k for k, s in zip(keywords, stars, strict=False)]
    rules = [TopicRule(id="t", title="T", keywords=tuple(terms))]
    word = keywords[pick % len(keywords)]
    matches = classify(compile_topics(rules), title=f"x {word} y", summary="", content="")
    assert [m.topic_id for m in matches] == ["t"]
    (reason,) = matches[0].reasons
    # The reported term really matches the word it names.
    reported = reason.split("'")[1]
    assert topics_of([TopicRule(id="r", title="R", keywords=(reported,))], title=word) == ("r",)
