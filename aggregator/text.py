"""Small plain-text helpers shared by topics, digest and render.

Feed HTML is already sanitized by parse.py; here it only has to become readable
text (for matching and for the plain-text digest), never markup again.
"""

from __future__ import annotations

from html.parser import HTMLParser

ELLIPSIS = "…"

# Elements whose content is never reader-visible text.
_HIDDEN = frozenset({"script", "style", "template", "noscript"})

# Elements that end a line visually: without a space here "<p>a</p><p>b</p>" would read "ab".
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details",
        "div", "dl", "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hr", "img", "li", "main", "nav", "ol", "p", "pre",
        "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        # convert_charrefs unescapes entities in data, including ones split across feeds.
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden_depth += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # "<br/>" or "<script/>": self-closing, so never opens a hidden region.
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment: tags stripped, entities unescaped,
    script/style contents dropped, block boundaries kept as spaces, whitespace collapsed."""
    if not html:
        return ""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return one_line("".join(parser.parts))


def shorten(text: str, limit: int = 280) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…" when cut.

    The result without its "…" is always a prefix of ``text``; a single word longer
    than the limit is cut mid-word rather than dropped.
    """
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    keep = text[: limit - 1]
    # Cut inside a word: back off to the last whitespace so no half word remains.
    if not text[limit - 1].isspace():
        boundary = max((i for i, ch in enumerate(keep) if ch.isspace()), default=-1)
        if boundary > 0 and keep[:boundary].strip():
            keep = keep[:boundary]
    keep = keep.rstrip()
    # A dangling separator before the ellipsis reads as a typo ("Kyiv, …").
    keep = keep.rstrip(",;:-\u2013\u2014").rstrip()
    return keep + ELLIPSIS


def one_line(text: str) -> str:
    """All whitespace runs (including CR/LF and Unicode separators) as single spaces, stripped.

    Safe for mail headers: no line break survives.
    """
    return " ".join(text.split())
