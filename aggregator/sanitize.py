"""HTML from feeds, made safe to republish and to mail: an allowlist, applied by Ammonia.

Everything that carries HTML — summaries and contents whatever type the feed declared them
(``text/html``, ``application/xhtml+xml``, but also ``text/xml`` or ``image/svg+xml``, which
feedparser's own sanitizer skips) — goes through :func:`sanitize_html` before it is stored, so
the published feeds, the JSON Feed, the front page and the digests all get the same markup.

The policy is an allowlist (nh3, the Python binding of the Rust Ammonia library): text
formatting, lists, quotes, tables, figures and images survive; scripts, styles, forms, frames,
embedded objects, SVG and MathML, event handlers and ``style`` attributes do not, and links
keep only ``http``, ``https`` and ``mailto`` URLs (``javascript:``, ``data:`` and ``vbscript:``
in any spelling are dropped with the attribute). A denylist cannot be right: every new element
or attribute with a URL in it (SVG ``<animate values>``, ``<form action>``) is a new hole.
"""

from __future__ import annotations

import nh3

__all__ = ["ALLOWED_TAGS", "URL_SCHEMES", "sanitize_html"]

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col",
        "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
        "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
        "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span",
        "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "time", "tr", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope", "abbr"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Contents of these go too, not just their tags: the text of a script is not prose.
_DROPPED_WITH_CONTENT = {"script", "style", "template", "svg", "math", "noscript", "iframe"}


def sanitize_html(fragment: str) -> str:
    """``fragment`` with only allowlisted elements, attributes and URL schemes left.

    Links get ``rel="noopener noreferrer"`` so that a page opened from a feed cannot reach
    back into the reader's tab.
    """
    if not fragment:
        return ""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
