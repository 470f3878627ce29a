"""Serving ``output/`` read-only: GET and HEAD, validators and 304s, and nothing outside it.

A request path is accepted only in canonical form: no ``.``/``..`` segments, no dotfiles
(atomic writes leave ``.name.tmp`` files behind for a moment), no empty segments, NUL or
backslash; then the resolved file must still lie inside the resolved output directory, so
a symlink pointing out of it is refused too. Anything refused is a plain 404, the same as a
missing file, so probing learns nothing.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import stat
from collections.abc import Iterator, Mapping
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote
from wsgiref.types import WSGIEnvironment

from aggregator.web.responses import Headers, Response, method_not_allowed, not_found

STATIC_METHODS = ("GET", "HEAD")
CHUNK_BYTES = 64 * 1024
# Below this, gzip's header costs more than it saves; above it, compressing per request
# costs more time than a reverse proxy with a cache should leave to us.
GZIP_MIN_BYTES = 1024
GZIP_MAX_BYTES = 32 * 1024 * 1024
INDEX = "index.html"

CONTENT_TYPES: Mapping[str, str] = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/vnd.microsoft.icon",
    ".woff2": "font/woff2",
}
# Python's built-in table only: the host's /etc/mime.types must not change what we send.
_FALLBACK_TYPES = mimetypes.MimeTypes()


def content_type(name: str) -> str:
    """The Content-Type for a file name; text is always declared UTF-8 (publish writes it so)."""
    suffix = os.path.splitext(name)[1].lower()
    known = CONTENT_TYPES.get(suffix)
    if known is not None:
        return known
    guessed = _FALLBACK_TYPES.guess_type(name, strict=False)[0]
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def static_response(root: Path, environ: WSGIEnvironment) -> Response:
    """The answer for a request under ``root`` (which need not exist yet: then all is 404)."""
    if environ.get("REQUEST_METHOD") not in STATIC_METHODS:
        return method_not_allowed(STATIC_METHODS)
    path = request_path(environ)
    if path is None:
        return not_found()
    if path == "":
        # Mounted without a trailing slash: relative links in index.html need one.
        return _redirect(quote(_decoded(environ.get("SCRIPT_NAME", "")) or "") + "/", environ)
    parts = _segments(path)
    if parts is None:
        return not_found()
    target = _locate(root, parts)
    if target is not None and target.is_dir():
        if not path.endswith("/"):
            return _redirect("./" + quote(parts[-1]) + "/", environ)
        target = _locate(root, [*parts, INDEX])
    elif path.endswith("/"):
        return not_found()  # a file named as if it were a directory
    if target is None:
        return not_found()
    return _file_response(target, environ)


def request_path(environ: WSGIEnvironment) -> str | None:
    """PATH_INFO as text; None when its bytes are not UTF-8 (no file of ours has such a name)."""
    return _decoded(environ.get("PATH_INFO", ""))


def _decoded(value: str) -> str | None:
    # PEP 3333 hands over the raw bytes as latin-1 code points.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def _segments(path: str) -> list[str] | None:
    """The path's segments, or None when the path is not in canonical, harmless form."""
    if not path.startswith("/"):
        return None  # includes absolute-form request targets such as http://host/x
    parts = path[1:].split("/")
    if parts[-1] == "":
        parts.pop()  # a trailing slash: the directory's index
    for part in parts:
        if not part or part.startswith(".") or "\x00" in part or "\\" in part:
            return None
    return parts


def _locate(root: Path, parts: list[str]) -> Path | None:
    """The real path of ``root/parts`` if it exists and stays inside ``root`` (symlinks
    followed, and a link to a dotfile inside is refused like the dotfile itself)."""
    try:
        real_root = root.resolve(strict=True)
        target = real_root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(real_root):
        return None
    if any(part.startswith(".") for part in target.relative_to(real_root).parts):
        return None
    return target


def _file_response(path: Path, environ: WSGIEnvironment) -> Response:
    # O_NONBLOCK: opening a FIFO someone left in output/ must not hang the worker.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return not_found()
    # The open file, not the name, decides what is sent: a concurrent atomic replace swaps
    # the name but not this inode, so headers and body always describe the same bytes.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return not_found()
    stream = os.fdopen(fd, "rb")
    kind = content_type(path.name)
    compressible = _compressible(kind) and GZIP_MIN_BYTES <= info.st_size <= GZIP_MAX_BYTES
    gzipped = compressible and _accepts_gzip(environ)
    # The gzip body is another representation: it gets its own ETag (RFC 9110 8.8.3).
    etag = f'"{info.st_size:x}-{info.st_mtime_ns:x}{"-gz" if gzipped else ""}"'
    validators: Headers = (
        ("ETag", etag),
        ("Last-Modified", formatdate(info.st_mtime, usegmt=True)),
        # Outputs change whenever publish runs; a revalidation costs a 304.
        ("Cache-Control", "no-cache"),
        *((("Vary", "Accept-Encoding"),) if compressible else ()),
    )
    if _not_modified(environ, etag, int(info.st_mtime)):
        stream.close()
        return Response(HTTPStatus.NOT_MODIFIED, validators)
    if gzipped:
        with stream:
            # mtime=0: the same file always compresses to the same bytes.
            compressed = gzip.compress(stream.read(), compresslevel=6, mtime=0)
        headers: Headers = (
            ("Content-Type", kind),
            ("Content-Encoding", "gzip"),
            ("Content-Length", str(len(compressed))),
            ("X-Content-Type-Options", "nosniff"),
            *validators,
        )
        return Response(HTTPStatus.OK, headers, [compressed])
    headers = (
        ("Content-Type", kind),
        ("Content-Length", str(info.st_size)),
        ("X-Content-Type-Options", "nosniff"),
        *validators,
    )
    wrapper = environ.get("wsgi.file_wrapper")
    body = wrapper(stream, CHUNK_BYTES) if wrapper is not None else _FileChunks(stream)
    return Response(HTTPStatus.OK, headers, body)


def _compressible(kind: str) -> bool:
    media = kind.partition(";")[0]
    return media.startswith("text/") or media.endswith(("+xml", "/xml", "+json", "/json"))


def _accepts_gzip(environ: WSGIEnvironment) -> bool:
    for coding in environ.get("HTTP_ACCEPT_ENCODING", "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            return _quality(params) > 0
    return False


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _not_modified(environ: WSGIEnvironment, etag: str, mtime: int) -> bool:
    # RFC 9110 13.2.2: If-None-Match, when present, decides; If-Modified-Since is ignored.
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return _etag_listed(if_none_match, etag)
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False  # an unparsable date is ignored, as RFC 9110 requires
    return mtime <= since.timestamp()


def _etag_listed(header: str, etag: str) -> bool:
    # If-None-Match compares weakly: W/"x" matches "x".
    if header.strip() == "*":
        return True
    listed = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag in listed


def _redirect(location: str, environ: WSGIEnvironment) -> Response:
    query = environ.get("QUERY_STRING", "")
    if query:
        location = f"{location}?{query}"
    return Response(HTTPStatus.MOVED_PERMANENTLY, (("Location", location), ("Content-Length", "0")))


class _FileChunks:
    """A file as an iterable of chunks, for servers without ``wsgi.file_wrapper``; WSGI
    servers call ``close`` when done, even after a client hung up."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._stream.read(CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        self._stream.close()
