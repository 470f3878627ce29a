"""The little HTTP the app speaks: a Response record, sending it (HEAD without a body), plain
error answers, and the small standalone HTML page the unsubscribe flow shows."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from wsgiref.types import StartResponse

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Response:
    """A complete answer. ``body`` may be a file stream; ``send`` closes it when unused."""

    status: HTTPStatus
    headers: Headers = ()
    body: Iterable[bytes] = ()


def send(response: Response, start_response: StartResponse, *, head: bool) -> Iterable[bytes]:
    """Start ``response`` and return its body (nothing for HEAD: the headers are the same,
    Content-Length included, as the GET would send)."""
    status = response.status
    start_response(f"{status.value} {status.phrase}", list(response.headers))
    if head:
        close = getattr(response.body, "close", None)
        if close is not None:
            close()
        return []
    return response.body


def text_response(status: HTTPStatus, message: str, headers: Headers = ()) -> Response:
    body = f"{message}\n".encode()
    return Response(
        status,
        (
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ),
        (body,),
    )


def not_found() -> Response:
    return text_response(HTTPStatus.NOT_FOUND, "Not found.")


def method_not_allowed(allowed: tuple[str, ...], headers: Headers = ()) -> Response:
    allow = ", ".join(allowed)
    return text_response(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"Method not allowed here; use {allow}.",
        (("Allow", allow), *headers),
    )


# ------------------------------------------------------------------ HTML pages

_STYLE = (
    "body{margin:0;padding:2rem 1rem;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif;color:#1b1b1b;background:#f6f6f4}"
    "main{max-width:34rem;margin:0 auto;padding:1.5rem 2rem;background:#fff;"
    "border:1px solid #d9d9d6;border-radius:8px}"
    "h1{margin-top:0;font-size:1.4rem;line-height:1.25}"
    "button{font:inherit;font-weight:600;padding:.65rem 1.3rem;border:0;border-radius:6px;"
    "color:#fff;background:#a4262c;cursor:pointer}"
    "button:hover{background:#7f1d22}"
    "button:focus-visible{outline:3px solid #1a5fb4;outline-offset:3px}"
    ".note{color:#505050;font-size:.95rem}"
    "@media (prefers-color-scheme:dark){body{color:#ececec;background:#161616}"
    "main{background:#202020;border-color:#3a3a3a}.note{color:#b8b8b8}}"
)
# The one inline style block, allowed by its hash: the page runs no script and loads nothing.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode("ascii")
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

PAGE_HEADERS: Headers = (
    ("Content-Type", "text/html; charset=utf-8"),
    # Unsubscribe URLs carry a personal token: keep the pages out of caches, search indexes
    # and other sites' Referer logs.
    ("Cache-Control", "no-store"),
    ("X-Robots-Tag", "noindex"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", _CSP),
)


def html_page(status: HTTPStatus, heading: str, body_html: str, headers: Headers = ()) -> Response:
    """A standalone page; ``heading`` is text (escaped here), ``body_html`` is markup the
    caller has already escaped."""
    title = html.escape(heading)
    document = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{title}</h1>\n{body_html}\n</main>\n</body>\n</html>\n"
    ).encode()
    return Response(
        status,
        (*PAGE_HEADERS, ("Content-Length", str(len(document))), *headers),
        (document,),
    )
