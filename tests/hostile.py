"""A fault-injecting feed server on 127.0.0.1: one path per misbehaviour, many threads.

``/<kind>/<n>`` answers the way ``kind`` says (see ``KINDS``); ``n`` only makes URLs
distinct so that many feeds of one kind can be configured. Used by the polling tests and by
``benchmarks/hostile_round.py``.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .feeds import Item, rss

SLOW_SECONDS = 3.0  # longer than the tests' 1 s fetch timeout
SECRET = b"password=hunter2"

HTML_PAGE = b"""<!doctype html><html><head><title>News</title>
<link rel="alternate" type="application/rss+xml" href="/ok/feed.xml"></head>
<body>hi</body></html>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><item><guid>x1</guid><title>&xxe;</title>
<description>external entity</description></item></channel></rss>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><rss version="2.0"><channel><title>l</title><item><guid>l1</guid>'
    b"<title>&lol9;</title></item></channel></rss>"
)
# Quadratic for feedparser (RSS 0.91, so the lxml fast path, linear in it, declines it).
PATHOLOGICAL = (
    b'<?xml version="1.0"?><rss version="0.91"><channel><title>h</title><item><title>x</title>'
    b"<description>" + b"&lt;!--" * 200_000 + b"</description></item></channel></rss>"
)
BOMB = gzip.compress(b"\0" * (20 * 1024 * 1024))  # 20 MB of zeros in ~20 KB


def feed_body(path: str) -> bytes:
    return rss([Item(f"{path}-1", f"Kyiv report from {path}", "Air defence was active.")])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read the server's own log

    def do_GET(self) -> None:
        server: HostileServer = self.server.owner  # type: ignore[attr-defined]
        server.record(self.path)
        kind = self.path.strip("/").split("/", 1)[0]
        KINDS.get(kind, _not_found)(self)

    # -------------------------------------------------------- helpers

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        headers.setdefault("Content-Type", "application/rss+xml")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _ok(h: _Handler) -> None:
    body = feed_body(h.path)
    etag = f'"{len(body)}"'
    if h.headers.get("If-None-Match") == etag:
        h.send(304, ETag=etag)
    else:
        h.send(200, body, ETag=etag)


def _same_bytes(h: _Handler) -> None:
    h.send(200, feed_body(h.path))  # no validators: only a content hash can tell


def _slow(h: _Handler) -> None:
    time.sleep(SLOW_SECONDS)
    h.send(200, feed_body(h.path))


def _drip(h: _Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/rss+xml")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    for _ in range(40):  # each byte within the read timeout, the whole far beyond it
        try:
            h.wfile.write(b" ")
            h.wfile.flush()
        except OSError:
            return
        time.sleep(0.5)


def _reset(h: _Handler) -> None:
    # SO_LINGER 0: close() sends RST, the way a crashing proxy does.
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def _bomb(h: _Handler) -> None:
    h.send(200, BOMB, Content_Encoding="gzip")


def _oversized(h: _Handler) -> None:
    h.send(200, b"<rss>" + b" " * (3 * 1024 * 1024) + b"</rss>")


def _status(code: int, **headers: str) -> Callable[[_Handler], None]:
    return lambda h: h.send(code, b"", **headers)


def _redirect(code: int, location: Callable[[_Handler], str]) -> Callable[[_Handler], None]:
    return lambda h: h.send(code, b"", Location=location(h))


def _body(data: bytes, content_type: str = "application/rss+xml") -> Callable[[_Handler], None]:
    return lambda h: h.send(200, data, Content_Type=content_type)


def _not_found(h: _Handler) -> None:
    h.send(404, b"no such thing", Content_Type="text/plain")


KINDS: dict[str, Callable[[_Handler], None]] = {
    "ok": _ok,
    "same": _same_bytes,
    "error500": _status(500),
    "notfound": _not_found,
    "gone": _status(410),
    "limited": _status(429, Retry_After="3600"),
    "unavailable": _status(503, Retry_After="7200"),
    "moved": _redirect(301, lambda h: h.path.replace("/moved/", "/ok/moved-")),
    "moved308": _redirect(308, lambda h: h.path.replace("/moved308/", "/ok/moved308-")),
    "loop": _redirect(302, lambda h: h.path),
    "chain": _redirect(302, lambda h: f"{h.path}/more"),
    "sneaky": _redirect(302, lambda h: f"http://127.0.0.2:{h.server.server_port}/secret"),
    "secret": _body(SECRET, "text/plain"),
    "slow": _slow,
    "drip": _drip,
    "reset": _reset,
    "bomb": _bomb,
    "oversized": _oversized,
    "html": _body(HTML_PAGE, "text/html"),
    "garbage": _body(b"\x00\x01 this is not a feed at all \xff\xfe"),
    "empty": _body(b""),
    "latin1": _body(
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\xe9'
        b"</title><item><guid>c1</guid><title>Kyiv caf\xe9 reopens</title></item>"
        b"</channel></rss>"
    ),
    "xxe": _body(XXE),
    "laughs": _body(LAUGHS),
    "pathological": _body(PATHOLOGICAL),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a round opens many connections at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client giving up mid-answer (a deadline, a size cap) is the point here


class HostileServer:
    """The server, its address, and which paths were requested how often."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, kind: str, n: int | str = 0, *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{kind}/{n}"

    def record(self, path: str) -> None:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def hits(self, prefix: str) -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    server = HostileServer(httpd)
    httpd.owner = server  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
