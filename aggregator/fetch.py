"""The only HTTP client in the package: FetchRequest in, FetchResult (or FetchError) out.

httpx is kept behind this module (only the optional ``transport`` seam exposes it) so the
client library can be swapped for a cheaper one at scale without touching callers.
Politeness is enforced here: a global and a per-host concurrency limit, conditional GET,
timeouts and a body-size cap. ``file://`` URLs and plain local paths are read too, with
the file's mtime standing in for Last-Modified so that unchanged files cost nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import os
import socket
import ssl
import stat
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType

import httpx

from aggregator import __version__
from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.models import Clock, FetchRequest, FetchResult, utc_now
from aggregator.netguard import AddressRefused, Reach, Resolver, guarded_transport, system_resolver

__all__ = ["ACCEPT", "MAX_REDIRECTS", "USER_AGENT", "Fetcher", "fetch_all"]


USER_AGENT = (
    f"aggregator/{__version__} (+https://github.com/aggregator-project/aggregator; feed aggregator)"
)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, application/feed+json;q=0.7, */*;q=0.1"
)
MAX_REDIRECTS = 5
# One hop may take this many `timeout`s in all (connect + every read), once it holds its slots.
WHOLE_FETCH_TIMEOUTS = 4

_PERMANENT_REDIRECTS = frozenset({301, 308})
# The body we hand on is decoded, so these would describe bytes the caller never sees.
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

OnDone = Callable[[FetchRequest, "FetchResult | FetchError"], None]


class Fetcher:
    """An async fetcher sharing one connection pool; use it as ``async with Fetcher(...)``."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        clock: Clock = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = USER_AGENT,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._seconds = settings.timeout.total_seconds()
        self._global = asyncio.Semaphore(max(1, settings.concurrency))
        self._hosts: dict[str, asyncio.Semaphore] = {}
        limits = httpx.Limits(
            max_connections=max(1, settings.concurrency),
            max_keepalive_connections=max(1, settings.concurrency),
        )
        # Two pools, so that a connection opened for a configured URL (which may be on a
        # private network) is never reused for a redirect that may only reach public ones.
        self._trusting = self._client(user_agent, limits, transport, "any", resolver)
        self._guarded = (
            self._trusting
            if settings.allow_private or transport is not None
            else self._client(user_agent, limits, None, "global", resolver)
        )

    def _client(
        self,
        user_agent: str,
        limits: httpx.Limits,
        transport: httpx.AsyncBaseTransport | None,
        reach: Reach,
        resolver: Resolver,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            # A given transport replaces the network, the guard's connect hook with it.
            transport=transport or guarded_transport(reach, limits, resolver),
            headers={"User-Agent": user_agent, "Accept": ACCEPT},
            # Our own semaphores bound the requests in flight, so waiting for a pooled
            # connection is never the slow part; no pool timeout.
            timeout=httpx.Timeout(self._seconds, pool=None),
            limits=limits,
            # Redirects are followed by hand: every hop is recorded, counted and re-checked.
            follow_redirects=False,
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._trusting.aclose()
        if self._guarded is not self._trusting:
            await self._guarded.aclose()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Retrieve one URL or local file; raises FetchError and nothing else."""
        scheme = _scheme(request.url, request.url)
        if scheme in ("http", "https"):
            return await self._fetch_http(request)
        if scheme == "file" or _looks_like_path(request.url, scheme):
            async with self._global:
                return await asyncio.to_thread(
                    _read_file, request, self._settings.max_bytes, self._clock
                )
        raise FetchError(request.url, f"unsupported URL scheme {scheme!r}")

    async def fetch_all(
        self, requests: Sequence[FetchRequest], on_done: OnDone | None = None
    ) -> list[FetchResult | FetchError]:
        """Fetch everything concurrently within the limits; results in request order.

        A failing feed yields its FetchError in its slot; only ``on_done`` raising aborts.
        """
        results: list[FetchResult | FetchError | None] = [None] * len(requests)

        async def one(index: int, request: FetchRequest) -> None:
            outcome: FetchResult | FetchError
            try:
                outcome = await self.fetch(request)
            except FetchError as error:
                outcome = error
            results[index] = outcome
            if on_done is not None:
                on_done(request, outcome)

        async with asyncio.TaskGroup() as group:
            for index, request in enumerate(requests):
                group.create_task(one(index, request))
        return [r for r in results if r is not None]

    # ------------------------------------------------------------ http

    async def _fetch_http(self, request: FetchRequest) -> FetchResult:
        url = request.url
        redirects: list[str] = []
        statuses: list[int] = []
        while True:
            hop = await self._exchange(request, url, self._client_for(request.url, url))
            if hop.location is None:
                break
            if len(redirects) >= MAX_REDIRECTS:
                raise FetchError(request.url, f"too many redirects (more than {MAX_REDIRECTS})")
            if hop.location == url or hop.location in redirects:
                raise FetchError(request.url, f"redirect loop at {hop.location}")
            redirects.append(url)
            statuses.append(hop.status)
            url = hop.location
            if _scheme(request.url, url) not in ("http", "https"):
                # A server must never be able to point us at local files or other schemes.
                raise FetchError(request.url, f"redirect to unsupported URL {url}")
        return _result(request, hop, url, redirects, statuses, self._clock())

    def _client_for(self, configured: str, url: str) -> httpx.AsyncClient:
        """The editor chose the configured host; anywhere else a redirect leads is guarded."""
        return self._trusting if _same_host(configured, url) else self._guarded

    async def _exchange(self, request: FetchRequest, url: str, client: httpx.AsyncClient) -> _Hop:
        """One request/response on one URL, with the limits held for just this hop."""
        headers = _conditional_headers(request)
        deadline = self._seconds * WHOLE_FETCH_TIMEOUTS
        try:
            async with (
                self._host_slot(url),
                self._global,
                asyncio.timeout(deadline),
                client.stream("GET", url, headers=headers) as response,
            ):
                return await self._read(request, response)
        except TimeoutError as exc:
            # Each read was within the timeout, but a trickling server would hold a slot forever.
            message = f"gave up after {_seconds_text(deadline)}: the server is sending too slowly"
            raise FetchError(request.url, message) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(request.url, _describe_error(exc, self._seconds)) from exc
        except AddressRefused as exc:
            raise FetchError(request.url, str(exc)) from exc
        except UnicodeError as exc:
            # httpx lets IDNA errors escape for an invalid punycode host ("xn--a"), in the
            # URL itself or in a redirect's Location (it resolves that even when not following).
            raise FetchError(request.url, f"invalid URL: {exc}") from exc

    async def _read(self, request: FetchRequest, response: httpx.Response) -> _Hop:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        location = response.headers.get("location")
        if 300 <= status < 400 and status != 304:
            if not location:
                raise FetchError(
                    request.url, f"{_status_text(response)} without Location", status=status
                )
            return _Hop(status, headers, None, str(response.url.join(location)))
        if status == 304:
            return _Hop(status, headers, None, None)
        if not 200 <= status < 300:
            raise FetchError(
                request.url,
                _status_text(response),
                status=status,
                retry_after=response.headers.get("retry-after"),
            )
        return _Hop(status, headers, await self._body(request, response), None)

    async def _body(self, request: FetchRequest, response: httpx.Response) -> bytes:
        limit = self._settings.max_bytes
        announced = _int_or_none(response.headers.get("content-length"))
        if announced is not None and announced > limit:
            raise FetchError(request.url, _too_large(limit), status=response.status_code)
        chunks: list[bytes] = []
        received = 0
        # aiter_bytes yields decoded bytes, so a small gzip bomb is caught too.
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > limit:
                raise FetchError(request.url, _too_large(limit), status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    @asynccontextmanager
    async def _host_slot(self, url: str) -> AsyncIterator[None]:
        # Keyed by host name, not port: politeness is owed to the machine.
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        semaphore = self._hosts.get(host)
        if semaphore is None:
            semaphore = self._hosts[host] = asyncio.Semaphore(max(1, self._settings.per_host))
        async with semaphore:
            yield


def fetch_all(
    requests: Sequence[FetchRequest],
    settings: FetchSettings,
    *,
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
    on_done: OnDone | None = None,
    resolver: Resolver = system_resolver,
) -> list[FetchResult | FetchError]:
    """Synchronous convenience around Fetcher.fetch_all (not callable from a running loop)."""

    async def run() -> list[FetchResult | FetchError]:
        async with Fetcher(settings, clock=clock, transport=transport, resolver=resolver) as f:
            return await f.fetch_all(requests, on_done)

    return asyncio.run(run())


# ---------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class _Hop:
    status: int
    headers: Mapping[str, str]
    content: bytes | None
    location: str | None  # absolute; set only when this hop is a redirect


def _same_host(a: str, b: str) -> bool:
    first, second = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (first.hostname, _port(first)) == (second.hostname, _port(second))


def _port(parts: urllib.parse.SplitResult) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())


def _scheme(feed_url: str, url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        # .port checks the range, which httpx leaves for connect() to blow up on.
        _ = parts.port
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket, port 99999
        raise FetchError(feed_url, f"invalid URL {url}: {exc}") from exc
    return parts.scheme.lower()


def _conditional_headers(request: FetchRequest) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    if request.etag:
        headers[b"If-None-Match"] = _header_bytes(request.etag)
    if request.last_modified:
        headers[b"If-Modified-Since"] = _header_bytes(request.last_modified)
    return headers


def _header_bytes(value: str) -> bytes:
    """A validator as bytes: httpx encodes a str header value as ASCII, raising otherwise.

    httpx decoded the response header as UTF-8 when valid, else as Latin-1. Re-encoding as
    Latin-1 gives the server's own bytes back in the second case (the usual one: most servers
    write headers as Latin-1); a value beyond Latin-1 can only have come from UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _result(
    request: FetchRequest,
    hop: _Hop,
    final_url: str,
    redirects: list[str],
    statuses: list[int],
    fetched_at: datetime,
) -> FetchResult:
    headers = {k: v for k, v in hop.headers.items() if k not in _DROPPED_HEADERS}
    etag = hop.headers.get("etag")
    last_modified = hop.headers.get("last-modified")
    if hop.status == 304:
        # A 304 often omits validators; the ones we sent are still the current ones.
        etag = etag or request.etag
        last_modified = last_modified or request.last_modified
    return FetchResult(
        url=request.url,
        final_url=final_url,
        status=hop.status,
        headers=headers,
        content=hop.content,
        fetched_at=fetched_at,
        redirects=tuple(redirects),
        etag=etag,
        last_modified=last_modified,
        permanent_redirect=bool(statuses) and all(s in _PERMANENT_REDIRECTS for s in statuses),
    )


def _status_text(response: httpx.Response) -> str:
    # The standard phrase where there is one: servers vary ("NOT FOUND", "", "Nope").
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = response.reason_phrase
    return f"HTTP {response.status_code} {phrase}".rstrip()


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _too_large(limit: int) -> str:
    return f"response larger than {limit} bytes"


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}s"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _describe_error(exc: Exception, timeout: float) -> str:
    """A short, human message for a client-library failure (pure; used in FetchError)."""
    seconds = _seconds_text(timeout)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {seconds} connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out after {seconds} waiting for the server to send data"
    if isinstance(exc, httpx.WriteTimeout):
        return f"timed out after {seconds} sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {seconds}"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the response body: {exc}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL: {exc}"
    if isinstance(exc, httpx.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"server sent a malformed response or closed the connection: {exc}"
    if isinstance(exc, httpx.NetworkError):
        return _describe_network_error(exc)
    return f"request failed: {exc or type(exc).__name__}"


def _describe_network_error(exc: httpx.NetworkError) -> str:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable"
        if isinstance(cause, OSError) and cause.errno == errno.EHOSTUNREACH:
            return "host unreachable"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    return f"network error: {exc}"


# ---------------------------------------------------------------- local files


def _looks_like_path(url: str, scheme: str) -> bool:
    # "C:\\feeds\\x.xml" parses with scheme "c"; a real scheme is never one letter.
    return scheme == "" or (len(scheme) == 1 and os.name == "nt")


def _local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "file":
        return Path(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(url, f"file URL names a remote host {parts.netloc!r}")
    return Path(urllib.request.url2pathname(parts.path))


def _read_file(request: FetchRequest, max_bytes: int, clock: Clock) -> FetchResult:
    """Read a local feed like an HTTP GET: mtime is its Last-Modified (1 s resolution)."""
    path = _local_path(request.url)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise FetchError(request.url, f"is a directory: {path}")
        if info.st_size > max_bytes:
            raise FetchError(request.url, _too_large(max_bytes))
        last_modified = email.utils.formatdate(info.st_mtime, usegmt=True)
        if request.last_modified == last_modified:
            content = None
        else:
            with path.open("rb") as handle:
                # The file may grow between stat and read; the cap holds regardless.
                content = handle.read(max_bytes + 1)
            if len(content) > max_bytes:
                raise FetchError(request.url, _too_large(max_bytes))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FetchError(request.url, f"no such file: {path}") from exc
    except PermissionError as exc:
        raise FetchError(request.url, f"permission denied: {path}") from exc
    except ValueError as exc:  # a NUL byte in the path, e.g. from "file:///a%00b"
        raise FetchError(request.url, f"invalid file path {str(path)!r}: {exc}") from exc
    except OSError as exc:
        raise FetchError(request.url, f"could not read file {path}: {exc.strerror or exc}") from exc
    return FetchResult(
        url=request.url,
        final_url=request.url,
        status=200 if content is not None else 304,
        headers={"last-modified": last_modified},
        content=content,
        fetched_at=clock(),
        etag=None,
        last_modified=last_modified,
    )
