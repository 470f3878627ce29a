"""aggregator.fetch against real HTTP servers on 127.0.0.1 and real files in tmp_path."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.fetch import ACCEPT, MAX_REDIRECTS, USER_AGENT, Fetcher, fetch_all
from aggregator.models import FetchRequest, FetchResult

FROZEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
ATOM = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'


def settings(**overrides: object) -> FetchSettings:
    values: dict[str, object] = {"timeout": timedelta(seconds=5)}
    values.update(overrides)
    return FetchSettings(**values)  # type: ignore[arg-type]


def fetch(
    request: FetchRequest | str,
    fetch_settings: FetchSettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    user_agent: str = USER_AGENT,
) -> FetchResult:
    if isinstance(request, str):
        request = FetchRequest(request)

    async def run() -> FetchResult:
        async with Fetcher(
            fetch_settings or settings(),
            clock=lambda: FROZEN,
            transport=transport,
            user_agent=user_agent,
        ) as fetcher:
            return await fetcher.fetch(request)

    return asyncio.run(run())


def fetch_error(request: FetchRequest | str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(request, **kwargs)  # type: ignore[arg-type]
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- plain GET


def test_200_keeps_body_validators_and_lower_cased_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        ATOM,
        content_type="application/atom+xml",
        headers={"ETag": '"v1"', "Last-Modified": LAST_MODIFIED, "X-Custom": "yes"},
    )
    url = httpserver.url_for("/feed")

    result = fetch(url)

    assert result.status == 200
    assert result.content == ATOM
    assert not result.not_modified
    assert result.etag == '"v1"'
    assert result.last_modified == LAST_MODIFIED
    assert result.headers["content-type"] == "application/atom+xml"
    assert result.headers["x-custom"] == "yes"
    assert all(name == name.lower() for name in result.headers)
    assert (result.url, result.final_url, result.redirects) == (url, url, ())
    assert result.permanent_redirect is False
    assert result.fetched_at == FROZEN


def test_user_agent_and_accept_headers_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/feed", headers={"User-Agent": USER_AGENT, "Accept": ACCEPT}
    ).respond_with_data(ATOM)
    httpserver.expect_request("/custom", headers={"User-Agent": "probe/1"}).respond_with_data(b"ok")

    assert fetch(httpserver.url_for("/feed")).content == ATOM
    assert fetch(httpserver.url_for("/custom"), user_agent="probe/1").content == b"ok"


def test_user_agent_names_the_project() -> None:
    assert USER_AGENT.startswith("aggregator/")
    assert USER_AGENT.endswith(
        "(+https://github.com/aggregator-project/aggregator; feed aggregator)"
    )
    assert "application/atom+xml" in ACCEPT


# ---------------------------------------------------------------- conditional GET


def test_second_request_is_conditional_and_304_has_no_content(httpserver: HTTPServer) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def handler(request: Request) -> Response:
        validators = (
            request.headers.get("If-None-Match"),
            request.headers.get("If-Modified-Since"),
        )
        seen.append(validators)
        if validators == ('"v1"', LAST_MODIFIED):
            return Response(b"", status=304)
        return Response(ATOM, headers={"ETag": '"v1"', "Last-Modified": LAST_MODIFIED})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    url = httpserver.url_for("/feed")

    first = fetch(url)
    second = fetch(FetchRequest(url, etag=first.etag, last_modified=first.last_modified))

    assert seen == [(None, None), ('"v1"', LAST_MODIFIED)]
    assert first.content == ATOM
    assert second.status == 304
    assert second.content is None
    assert second.not_modified
    # The 304 sent no validators of its own: the request's stay current.
    assert (second.etag, second.last_modified) == ('"v1"', LAST_MODIFIED)


def test_304_with_new_validators_replaces_them(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"", status=304, headers={"ETag": '"v2"'})

    result = fetch(FetchRequest(httpserver.url_for("/feed"), etag='"v1"', last_modified="x"))

    assert (result.status, result.content) == (304, None)
    assert (result.etag, result.last_modified) == ('"v2"', "x")


def test_non_ascii_validators_go_back_as_the_server_sent_them(httpserver: HTTPServer) -> None:
    # Regression: httpx encodes str header values as ASCII, so a stored ETag with "é" in
    # it raised UnicodeEncodeError out of fetch() (and so out of fetch_all) on every poll.
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"café"':
            return Response(b"", status=304)
        # werkzeug, like most servers, writes header values as Latin-1.
        return Response(ATOM, headers={"ETag": '"café"'})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    url = httpserver.url_for("/feed")

    first = fetch(url)
    second = fetch(FetchRequest(url, etag=first.etag))

    assert first.etag == '"café"'
    assert (second.status, second.content) == (304, None)


def test_validator_beyond_latin1_is_sent_as_utf8() -> None:
    sent: list[bytes] = []

    def app(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.raw[-1][1])
        return httpx.Response(304)

    result = fetch(
        FetchRequest("http://feeds.test/rss", etag='"新闻"'), transport=httpx.MockTransport(app)
    )

    assert result.status == 304
    assert sent == ['"新闻"'.encode()]


# ---------------------------------------------------------------- redirects


def redirect(httpserver: HTTPServer, path: str, status: int, location: str) -> None:
    httpserver.expect_request(path).respond_with_data(
        b"", status=status, headers={"Location": location}
    )


def test_mixed_redirect_chain_is_recorded_and_not_permanent(httpserver: HTTPServer) -> None:
    redirect(httpserver, "/a", 301, httpserver.url_for("/b"))
    redirect(httpserver, "/b", 302, "/c")  # relative Location
    httpserver.expect_request("/c").respond_with_data(ATOM)

    result = fetch(httpserver.url_for("/a"))

    assert result.content == ATOM
    assert result.redirects == (httpserver.url_for("/a"), httpserver.url_for("/b"))
    assert result.final_url == httpserver.url_for("/c")
    assert result.url == httpserver.url_for("/a")
    assert result.permanent_redirect is False


@pytest.mark.parametrize("statuses", [(301,), (301, 308)])
def test_only_permanent_hops_make_a_permanent_redirect(
    httpserver: HTTPServer, statuses: tuple[int, ...]
) -> None:
    paths = [f"/hop{i}" for i in range(len(statuses))] + ["/final"]
    for path, status, target in zip(paths, statuses, paths[1:], strict=False):
        redirect(httpserver, path, status, httpserver.url_for(target))
    httpserver.expect_request("/final").respond_with_data(ATOM)

    result = fetch(httpserver.url_for("/hop0"))

    assert result.permanent_redirect is True
    assert result.redirects == tuple(httpserver.url_for(p) for p in paths[:-1])
    assert result.final_url == httpserver.url_for("/final")


def test_redirect_loop_is_named_after_one_round(httpserver: HTTPServer) -> None:
    hits: list[str] = []

    def loop(request: Request) -> Response:
        hits.append(request.path)
        return Response(b"", status=302, headers={"Location": "/loop"})

    httpserver.expect_request("/loop").respond_with_handler(loop)

    error = fetch_error(httpserver.url_for("/loop"))

    assert "redirect loop" in str(error)
    assert len(hits) == 1


def test_redirect_chain_stops_after_the_limit(httpserver: HTTPServer) -> None:
    hits: list[str] = []

    def chain(request: Request) -> Response:
        hits.append(request.path)
        step = int(request.path.rsplit("/", 1)[1])
        return Response(b"", status=302, headers={"Location": f"/hop/{step + 1}"})

    for step in range(MAX_REDIRECTS + 3):
        httpserver.expect_request(f"/hop/{step}").respond_with_handler(chain)

    error = fetch_error(httpserver.url_for("/hop/0"))

    assert f"too many redirects (more than {MAX_REDIRECTS})" in str(error)
    assert len(hits) == MAX_REDIRECTS + 1


def test_redirect_to_a_local_file_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(ATOM)
    redirect(httpserver, "/feed", 302, secret.as_uri())

    error = fetch_error(httpserver.url_for("/feed"))

    assert "redirect to unsupported URL" in str(error)


def test_redirect_to_an_invalid_port_is_an_error() -> None:
    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "http://feeds.test:99999/feed"})

    error = fetch_error("http://feeds.test/feed", transport=httpx.MockTransport(app))

    assert "invalid URL http://feeds.test:99999/feed" in str(error)


def test_invalid_punycode_host_is_a_fetch_error() -> None:
    # Regression: httpx let idna's InvalidCodepoint (a UnicodeError) escape, for the feed URL
    # itself and for a redirect Location, which it resolves even when not following it.
    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://xn--a.test/feed"})

    for url in ("http://feeds.test/feed", "http://xn--a.test/feed"):
        error = fetch_error(url, transport=httpx.MockTransport(app))
        assert error.url == url
        assert "invalid URL" in str(error)


def test_redirect_without_location_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"", status=302)

    error = fetch_error(httpserver.url_for("/feed"))

    assert error.status == 302
    assert "without Location" in str(error)


# ---------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(
    ("status", "text"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")]
)
def test_error_status_becomes_fetch_error(httpserver: HTTPServer, status: int, text: str) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"nope", status=status)
    url = httpserver.url_for("/feed")

    error = fetch_error(url)

    assert error.status == status
    assert error.url == url
    assert str(error) == f"{url}: {text}"


# ---------------------------------------------------------------- body size and encoding


def test_announced_body_over_the_cap_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 2000)
    httpserver.expect_request("/fits").respond_with_data(b"x" * 1000)
    capped = settings(max_bytes=1000)

    error = fetch_error(httpserver.url_for("/big"), fetch_settings=capped)

    assert "response larger than 1000 bytes" in str(error)
    assert fetch(httpserver.url_for("/fits"), capped).content == b"x" * 1000


def test_streamed_body_over_the_cap_is_aborted_early(httpserver: HTTPServer) -> None:
    chunk = b"x" * 65536
    total_chunks = 4096  # 256 MiB: far more than socket buffers can hold
    sent_everything = threading.Event()

    def endless() -> Iterator[bytes]:
        for _ in range(total_chunks):
            yield chunk
        sent_everything.set()

    httpserver.expect_request("/stream").respond_with_response(
        Response(endless(), content_type="application/rss+xml")
    )

    error = fetch_error(httpserver.url_for("/stream"), fetch_settings=settings(max_bytes=100_000))

    assert "response larger than 100000 bytes" in str(error)
    # Had the client read to the end, the generator would have finished first.
    assert not sent_everything.is_set()


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_compressed_body_is_decoded(
    httpserver: HTTPServer, encoding: str, compress: object
) -> None:
    assert callable(compress)
    httpserver.expect_request("/feed").respond_with_data(
        compress(ATOM), headers={"Content-Encoding": encoding}
    )

    result = fetch(httpserver.url_for("/feed"))

    assert result.content == ATOM
    # The body is handed on decoded, so the encoding header would be a lie.
    assert "content-encoding" not in result.headers


def test_cap_applies_to_decoded_bytes(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 500_000)
    assert len(bomb) < 10_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})

    error = fetch_error(httpserver.url_for("/bomb"), fetch_settings=settings(max_bytes=10_000))

    assert "response larger than 10000 bytes" in str(error)


# ---------------------------------------------------------------- network failures


def test_slow_server_times_out(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response(ATOM)

    httpserver.expect_request("/slow").respond_with_handler(slow)

    error = fetch_error(
        httpserver.url_for("/slow"), fetch_settings=settings(timeout=timedelta(seconds=0.2))
    )

    assert "timed out after 0.2s" in str(error)
    assert error.status is None


def test_trickling_server_is_abandoned_at_the_whole_fetch_deadline(
    httpserver: HTTPServer,
) -> None:
    def trickle(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(60):  # 3 s in all, each byte far within the read timeout
                time.sleep(0.05)
                yield b" "

        return Response(body(), content_type="application/xml")

    httpserver.expect_request("/trickle").respond_with_handler(trickle)

    error = fetch_error(
        httpserver.url_for("/trickle"), fetch_settings=settings(timeout=timedelta(seconds=0.5))
    )

    assert "gave up after 2s: the server is sending too slowly" in str(error)


def test_closed_port_is_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"

    error = fetch_error(url)

    assert str(error) == f"{url}: connection refused"


class RaisingTransport(httpx.AsyncBaseTransport):
    """Fails the way httpx's own transport does, without touching any network."""

    def __init__(self, make: type[httpx.TransportError], cause: BaseException | None) -> None:
        self._make = make
        self._cause = cause

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self._make(str(self._cause or "boom"), request=request) from self._cause


@pytest.mark.parametrize(
    ("make", "cause", "message"),
    [
        (
            httpx.ConnectError,
            socket.gaierror(-2, "Name or service not known"),
            "DNS lookup failed",
        ),
        (httpx.ConnectTimeout, None, "timed out after 5s connecting"),
        (httpx.ConnectError, ConnectionResetError(104, "reset"), "connection reset"),
        (httpx.RemoteProtocolError, None, "malformed response"),
    ],
)
def test_transport_failures_get_clear_messages(
    make: type[httpx.TransportError], cause: BaseException | None, message: str
) -> None:
    error = fetch_error("http://feeds.test/rss", transport=RaisingTransport(make, cause))

    assert message in str(error)
    assert isinstance(error.__cause__, httpx.TransportError)


def test_unsupported_scheme_is_a_fetch_error() -> None:
    error = fetch_error("ftp://example.test/feed.xml")

    assert "unsupported URL scheme 'ftp'" in str(error)


@pytest.mark.parametrize("url", ["http://[::1/feed", "http://127.0.0.1:99999/feed", "http:///x"])
def test_malformed_url_is_a_fetch_error(url: str) -> None:
    error = fetch_error(url)

    assert error.url == url


def test_transport_seam_serves_requests() -> None:
    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ATOM, headers={"ETag": '"t"'})

    result = fetch("http://feeds.test/rss", transport=httpx.MockTransport(app))

    assert (result.content, result.etag) == (ATOM, '"t"')


# ---------------------------------------------------------------- concurrency limits


@dataclass
class ConcurrencyProbe:
    """Counts requests in flight at the server; a barrier forces the allowed overlap."""

    parties: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    barrier: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.parties)


@pytest.fixture
def threaded_server() -> Iterator[tuple[str, list[ConcurrencyProbe]]]:
    """A multi-threaded HTTP server (pytest-httpserver handles one request at a time)."""
    probes: list[ConcurrencyProbe] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            probe = probes[0]
            with probe.lock:
                probe.requests += 1
                probe.in_flight += 1
                probe.max_in_flight = max(probe.max_in_flight, probe.in_flight)
            try:
                # Released only once `parties` requests overlap, so a limit that is too
                # strict fails the test instead of passing it trivially ...
                probe.barrier.wait(timeout=5)
                status = 200
            except threading.BrokenBarrierError:
                status = 503
            # ... then held a moment longer, giving any request beyond the limit the
            # chance to show up in the count (a correct client never sends one).
            time.sleep(0.1)
            with probe.lock:
                # Decrement before answering: the client may start its next request
                # the moment it has this response.
                probe.in_flight -= 1
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", probes
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("concurrency", "per_host", "limit"), [(10, 2, 2), (3, 10, 3)], ids=["per-host", "global"]
)
def test_requests_in_flight_stay_within_limits(
    threaded_server: tuple[str, list[ConcurrencyProbe]],
    concurrency: int,
    per_host: int,
    limit: int,
) -> None:
    base, probes = threaded_server
    probe = ConcurrencyProbe(parties=limit)
    probes.append(probe)
    requests = [FetchRequest(f"{base}/feed/{i}") for i in range(limit * 3)]

    results = fetch_all(requests, settings(concurrency=concurrency, per_host=per_host))

    assert all(isinstance(r, FetchResult) and r.content == b"ok" for r in results)
    assert probe.requests == len(requests)
    assert probe.max_in_flight == limit


# ---------------------------------------------------------------- local files


@pytest.fixture
def feed_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "my feeds" / "local.xml"
    path.parent.mkdir()
    path.write_bytes(ATOM)
    mtime = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    os.utime(path, (mtime, mtime))
    return path, "Thu, 01 Jan 2026 00:00:00 GMT"


@pytest.mark.parametrize("as_uri", [True, False], ids=["file-url", "plain-path"])
def test_local_file_is_read_with_mtime_as_last_modified(
    feed_file: tuple[Path, str], as_uri: bool
) -> None:
    path, last_modified = feed_file
    assert email.utils.formatdate(path.stat().st_mtime, usegmt=True) == last_modified
    url = path.as_uri() if as_uri else str(path)

    result = fetch(url)

    assert result.status == 200
    assert result.content == ATOM
    assert dict(result.headers) == {"last-modified": last_modified}
    assert result.last_modified == last_modified
    assert (result.url, result.final_url, result.fetched_at) == (url, url, FROZEN)

    again = fetch(FetchRequest(url, last_modified=last_modified))

    assert (again.status, again.content) == (304, None)
    assert again.last_modified == last_modified


def test_changed_local_file_is_read_again(feed_file: tuple[Path, str]) -> None:
    path, last_modified = feed_file
    path.write_bytes(b"<rss/>")
    later = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    os.utime(path, (later, later))

    result = fetch(FetchRequest(path.as_uri(), last_modified=last_modified))

    assert (result.status, result.content) == (200, b"<rss/>")
    assert result.last_modified == "Fri, 02 Jan 2026 00:00:00 GMT"


def test_missing_local_file(tmp_path: Path) -> None:
    for url in ((tmp_path / "nope.xml").as_uri(), str(tmp_path / "nope.xml")):
        error = fetch_error(url)
        assert "no such file" in str(error)
        assert error.url == url


@pytest.mark.parametrize("url", ["file:///tmp/feed%00.xml", "/tmp/feed\x00.xml"])
def test_nul_byte_in_a_local_path_is_a_fetch_error(url: str) -> None:
    # Regression: Path.stat() raises ValueError ("embedded null byte"), not OSError.
    error = fetch_error(url)

    assert "invalid file path" in str(error)
    assert error.url == url


def test_local_file_over_the_cap_and_directory(feed_file: tuple[Path, str]) -> None:
    path, _ = feed_file

    too_big = fetch_error(str(path), fetch_settings=settings(max_bytes=10))
    directory = fetch_error(path.parent.as_uri())

    assert "response larger than 10 bytes" in str(too_big)
    assert "is a directory" in str(directory)


# ---------------------------------------------------------------- fetch_all


def test_fetch_all_keeps_order_and_mixes_results_with_errors(
    httpserver: HTTPServer, feed_file: tuple[Path, str]
) -> None:
    httpserver.expect_request("/one").respond_with_data(b"one")
    httpserver.expect_request("/gone").respond_with_data(b"", status=404)
    httpserver.expect_request("/two").respond_with_data(b"two")
    path, _ = feed_file
    requests = [
        FetchRequest(httpserver.url_for("/one")),
        FetchRequest(httpserver.url_for("/gone")),
        FetchRequest(f"http://127.0.0.1:{closed_port()}/"),
        FetchRequest(path.as_uri()),
        FetchRequest(httpserver.url_for("/two")),
    ]
    done: list[tuple[FetchRequest, FetchResult | FetchError]] = []

    results = fetch_all(
        requests, settings(), clock=lambda: FROZEN, on_done=lambda r, o: done.append((r, o))
    )

    assert [type(r) for r in results] == [
        FetchResult,
        FetchError,
        FetchError,
        FetchResult,
        FetchResult,
    ]
    ok = [r for r in results if isinstance(r, FetchResult)]
    assert [r.content for r in ok] == [b"one", ATOM, b"two"]
    assert [r.url for r in ok] == [requests[0].url, requests[3].url, requests[4].url]
    errors = [r for r in results if isinstance(r, FetchError)]
    assert [e.status for e in errors] == [404, None]
    assert sorted(id(r) for r, _ in done) == sorted(id(r) for r in requests)
    assert all(outcome is results[requests.index(r)] for r, outcome in done)


def test_fetch_all_with_no_requests() -> None:
    assert fetch_all([], settings()) == []
