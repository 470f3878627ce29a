from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.text import ELLIPSIS, html_to_text, one_line, shorten

# ---------------------------------------------------------------- html_to_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("<p>one</p><p>two</p>", "one two"),
        ("a<br>b<br/>c", "a b c"),
        ("<ul><li>x</li><li>y</li></ul>", "x y"),
        ("<h1>Title</h1><div>body</div>", "Title body"),
        ("in<i>line</i>word", "inlineword"),
        ("AT&amp;T &lt;tag&gt; &quot;q&quot; &#8212; &#x41;", 'AT&T <tag> "q" \u2014 A'),
        ("caf&eacute;&nbsp;au lait", "caf\u00e9 au lait"),
        ("<script>alert('x')</script>visible", "visible"),
        ("<style>p { color: red }</style><p>styled</p>", "styled"),
        ("  lots \n\n of\t\twhitespace  ", "lots of whitespace"),
        ("<p>Киев и Україна</p>", "Киев и Україна"),
        ("a < b and c > d", "a < b and c > d"),
        ("<!-- a comment -->text", "text"),
        ("<p>unclosed <b>bold", "unclosed bold"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_self_closing_script_hides_nothing() -> None:
    assert html_to_text("<script/>after") == "after"


@given(st.text())
def test_html_to_text_output_is_collapsed(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip()
    assert "  " not in text
    assert "\n" not in text


@given(st.text(alphabet=st.characters(blacklist_characters="<&")))
def test_html_to_text_of_tagless_text_only_collapses_whitespace(text: str) -> None:
    assert html_to_text(text) == one_line(text)


# ---------------------------------------------------------------- shorten


def test_shorten_leaves_short_text_alone() -> None:
    assert shorten("short text", 280) == "short text"
    assert shorten("x" * 10, 10) == "x" * 10


def test_shorten_cuts_at_word_boundary() -> None:
    assert shorten("hello world foo bar", 12) == "hello world" + ELLIPSIS
    assert shorten("hello world foo bar", 14) == "hello world" + ELLIPSIS
    assert shorten("hello world foo bar", 16) == "hello world foo" + ELLIPSIS


def test_shorten_cuts_exactly_at_space() -> None:
    # The character dropped first is a space: the whole last word fits.
    assert shorten("abcd efgh", 5) == "abcd" + ELLIPSIS


def test_shorten_cuts_long_word_hard() -> None:
    assert shorten("abcdefghijklmnop", 5) == "abcd" + ELLIPSIS


def test_shorten_drops_dangling_punctuation() -> None:
    assert shorten("Kyiv, Lviv and Odesa", 10) == "Kyiv" + ELLIPSIS


def test_shorten_default_limit() -> None:
    text = "word " * 100
    result = shorten(text)
    assert len(result) <= 280
    assert result.endswith(ELLIPSIS)


def test_shorten_tiny_limits() -> None:
    assert shorten("abc", 1) == ELLIPSIS
    assert shorten("abc", 0) == ""


@given(st.text(), st.integers(min_value=0, max_value=400))
def test_shorten_never_exceeds_limit_and_is_a_prefix(text: str, limit: int) -> None:
    result = shorten(text, limit)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
    elif limit >= 1:
        assert result.endswith(ELLIPSIS)
        assert text.startswith(result[: -len(ELLIPSIS)])


@given(
    st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=8), min_size=1, max_size=60),
    st.integers(min_value=10, max_value=200),
)
def test_shorten_never_leaves_half_a_word(words: list[str], limit: int) -> None:
    text = " ".join(words)
    result = shorten(text, limit)
    kept = result.removesuffix(ELLIPSIS)
    if kept and result != text and " " in text[: limit - 1]:
        # Every kept word is a whole word of the original.
        assert kept.split(" ") == words[: len(kept.split(" "))]


# ---------------------------------------------------------------- one_line


def test_one_line_collapses_line_breaks() -> None:
    assert one_line("  Subject\r\n Injected: header\n\tmore  ") == "Subject Injected: header more"
    assert one_line("a\u2028b\x85c\u00a0d") == "a b c d"


@given(st.text())
def test_one_line_has_no_line_breaks(text: str) -> None:
    result = one_line(text)
    assert "\r" not in result
    assert "\n" not in result
    assert result == result.strip()
    assert result.split() == text.split()
