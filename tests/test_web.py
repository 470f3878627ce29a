"""aggregator.web through a real threaded server on 127.0.0.1: static files and unsubscribe.

The subscriber store is replaced by an in-memory fake of the ``Unsubscriber`` seam; the
store's own behaviour is tested with the store.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from aggregator.errors import StorageError
from aggregator.files import write_atomic
from aggregator.subscribers import (
    TokenClaim,
    UnsubscribeOutcome,
    decide_unsubscribe,
    make_token,
    new_nonce,
)
from aggregator.web import Unsubscriber, make_app, make_server
from aggregator.web.unsubscribe import MAX_BODY_BYTES

SECRET = b"web-test-secret-0123456789"
DIGEST = "ukraine-daily"
TITLE = "Ukraine war — daily <digest>"
BOB = "bob@example.org"
SECRET_TEXT = "TOP-SECRET-OUTSIDE-OUTPUT"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ------------------------------------------------------------------ fixtures


@dataclass
class FakeUnsubscriber:
    """Subscriptions in a dict: (digest_id, address) → [nonce, active]."""

    titles: dict[str, str] = field(default_factory=lambda: {DIGEST: TITLE})
    subscriptions: dict[tuple[str, str], list[str | bool]] = field(default_factory=dict)
    calls: list[TokenClaim] = field(default_factory=list)
    failing: bool = False

    def subscribe(self, digest_id: str, address: str) -> str:
        nonce = new_nonce()
        self.subscriptions[(digest_id, address)] = [nonce, True]
        return nonce

    def active(self, digest_id: str, address: str) -> bool:
        return bool(self.subscriptions[(digest_id, address)][1])

    def unsubscribe(self, claim: TokenClaim) -> UnsubscribeOutcome:
        self.calls.append(claim)
        if self.failing:
            raise StorageError("database is locked")
        row = self.subscriptions.get((claim.digest_id, claim.address))
        if claim.digest_id not in self.titles or row is None:
            return UnsubscribeOutcome.UNKNOWN
        outcome = decide_unsubscribe(claim, current_nonce=str(row[0]), active=bool(row[1]))
        if outcome is UnsubscribeOutcome.UNSUBSCRIBED:
            row[1] = False
        return outcome

    def digest_title(self, digest_id: str) -> str | None:
        return self.titles.get(digest_id)


@dataclass
class Site:
    base: str
    port: int
    output: Path
    store: FakeUnsubscriber

    def url(self, path: str) -> str:
        return self.base + path

    def token(self, nonce: str, *, digest_id: str = DIGEST, address: str = BOB) -> str:
        return make_token(SECRET, digest_id, address, nonce)

    def raw(self, request_target: str, method: str = "GET") -> tuple[int, bytes]:
        """Send a request line exactly as given (no client-side normalisation)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(
                f"{method} {request_target} HTTP/1.1\r\nHost: x\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, data


def build_output(root: Path) -> Path:
    output = root / "output"
    (output / "topics").mkdir(parents=True)
    (output / "digests" / DIGEST).mkdir(parents=True)
    (output / ".git").mkdir()
    (output / "index.html").write_text("<!doctype html><title>front</title>", "utf-8")
    (output / "feed.atom").write_text("<feed>atom</feed>", "utf-8")
    (output / "feed.json").write_text('{"version": "1.1"}', "utf-8")
    (output / "sources.opml").write_text("<opml/>", "utf-8")
    (output / "topics" / "tech.atom").write_text("<feed>tech</feed>", "utf-8")
    (output / "digests" / DIGEST / "index.html").write_text("digest archive", "utf-8")
    (output / "digests" / DIGEST / "2026-11-26T0700.txt").write_text("issue", "utf-8")
    (output / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (output / "status.html").write_text("status", "utf-8")
    (output / ".hidden").write_text(SECRET_TEXT, "utf-8")
    (output / ".feed.atom.x1y2.tmp").write_text(SECRET_TEXT, "utf-8")
    (output / ".git" / "config").write_text(SECRET_TEXT, "utf-8")
    (output / "noindex").mkdir()
    (root / "secret.txt").write_text(SECRET_TEXT, "utf-8")
    (output / "link-out").symlink_to(root / "secret.txt")
    (output / "dir-out").symlink_to(root)
    (output / "link-hidden").symlink_to(output / ".hidden")
    (output / "link-in.atom").symlink_to(output / "feed.atom")
    return output


@pytest.fixture
def store() -> FakeUnsubscriber:
    return FakeUnsubscriber()


def run_site(output: Path, app_secret: bytes | None, store: Unsubscriber | None) -> Iterator[str]:
    server = make_server(make_app(output, secret=app_secret, unsubscriber=store), "127.0.0.1", 0)
    # A short poll interval: shutdown() waits for the loop's next look at its flag.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def site(tmp_path: Path, store: FakeUnsubscriber) -> Iterator[Site]:
    output = build_output(tmp_path)
    for base in run_site(output, SECRET, store):
        yield Site(base, int(base.rsplit(":", 1)[1]), output, store)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


# ------------------------------------------------------------------ static files


def test_gzip_on_request_with_its_own_validator(site: Site, client: httpx.Client) -> None:
    big = "<feed>" + "<entry>Kyiv</entry>" * 2000 + "</feed>"
    (site.output / "big.atom").write_text(big, "utf-8")

    zipped = client.get(site.url("/big.atom"), headers={"Accept-Encoding": "gzip"})
    plain = client.get(site.url("/big.atom"), headers={"Accept-Encoding": "identity"})
    refused = client.get(site.url("/big.atom"), headers={"Accept-Encoding": "gzip;q=0"})

    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(big) // 10
    assert zipped.text == big  # httpx decodes it
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in refused.headers
    assert plain.text == big
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["etag"] != plain.headers["etag"]
    again = client.get(
        site.url("/big.atom"),
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/feed.atom", "application/atom+xml; charset=utf-8", "<feed>atom</feed>"),
        ("/feed.json", "application/feed+json", '{"version": "1.1"}'),
        ("/sources.opml", "text/x-opml; charset=utf-8", "<opml/>"),
        ("/status.html", "text/html; charset=utf-8", "status"),
        ("/topics/tech.atom", "application/atom+xml; charset=utf-8", "<feed>tech</feed>"),
        (f"/digests/{DIGEST}/2026-11-26T0700.txt", "text/plain; charset=utf-8", "issue"),
        ("/link-in.atom", "application/atom+xml; charset=utf-8", "<feed>atom</feed>"),
    ],
)
def test_serves_files_with_their_content_type(
    site: Site, client: httpx.Client, path: str, content_type: str, body: str
) -> None:
    response = client.get(site.url(path))

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.text == body
    assert response.headers["content-length"] == str(len(body.encode()))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', response.headers["etag"])
    assert response.headers["last-modified"].endswith(" GMT")


def test_binary_file(site: Site, client: httpx.Client) -> None:
    response = client.get(site.url("/logo.png"))
    assert response.headers["content-type"] == "image/png"
    assert response.content == b"\x89PNG\r\n\x1a\n"


def test_root_and_directories_serve_their_index(site: Site, client: httpx.Client) -> None:
    assert client.get(site.url("/")).text == "<!doctype html><title>front</title>"
    assert client.get(site.url(f"/digests/{DIGEST}/")).text == "digest archive"


def test_a_directory_without_its_slash_redirects_relative_so_mounts_keep_working(
    site: Site, client: httpx.Client
) -> None:
    response = client.get(site.url(f"/digests/{DIGEST}?x=1"))

    assert response.status_code == 301
    assert response.headers["location"] == f"./{DIGEST}/?x=1"
    followed = client.get(site.url(f"/digests/{DIGEST}"), follow_redirects=True)
    assert followed.text == "digest archive"


def test_a_directory_without_an_index_is_not_listed(site: Site, client: httpx.Client) -> None:
    assert client.get(site.url("/noindex/")).status_code == 404
    assert client.get(site.url("/topics/")).status_code == 404


def test_missing_files_and_a_missing_output_dir_are_404(
    tmp_path: Path, site: Site, client: httpx.Client
) -> None:
    assert client.get(site.url("/nope.atom")).status_code == 404
    for base in run_site(tmp_path / "not-yet", None, None):
        assert client.get(base + "/").status_code == 404
        assert client.get(base + "/feed.atom").status_code == 404


def test_large_files_are_streamed_whole(site: Site, client: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (site.output / "archive.bin").write_bytes(data)

    response = client.get(site.url("/archive.bin"))

    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(data))
    assert response.content == data


# ------------------------------------------------------------------ validators


def test_if_none_match_gives_304_without_a_body(site: Site, client: httpx.Client) -> None:
    first = client.get(site.url("/feed.atom"))
    etag = first.headers["etag"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(site.url("/feed.atom"), headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag

    other = client.get(site.url("/feed.atom"), headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200


def test_if_modified_since(site: Site, client: httpx.Client) -> None:
    last_modified = client.get(site.url("/feed.atom")).headers["last-modified"]

    assert (
        client.get(site.url("/feed.atom"), headers={"If-Modified-Since": last_modified}).status_code
        == 304
    )
    earlier = formatdate(time.time() - 86400 * 365 * 10, usegmt=True)
    assert (
        client.get(site.url("/feed.atom"), headers={"If-Modified-Since": earlier}).status_code
        == 200
    )
    assert (
        client.get(site.url("/feed.atom"), headers={"If-Modified-Since": "garbage"}).status_code
        == 200
    )


def test_if_none_match_takes_precedence_over_if_modified_since(
    site: Site, client: httpx.Client
) -> None:
    last_modified = client.get(site.url("/feed.atom")).headers["last-modified"]
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert client.get(site.url("/feed.atom"), headers=headers).status_code == 200


def test_etag_follows_atomic_replacement_and_not_unchanged_writes(
    site: Site, client: httpx.Client
) -> None:
    path = site.output / "feed.atom"
    etag = client.get(site.url("/feed.atom")).headers["etag"]

    write_atomic(path, path.read_bytes())  # unchanged: publish does not touch the file
    assert client.get(site.url("/feed.atom")).headers["etag"] == etag

    write_atomic(path, b"<feed>new entries</feed>")
    response = client.get(site.url("/feed.atom"), headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.text == "<feed>new entries</feed>"
    assert response.headers["etag"] != etag


# ------------------------------------------------------------------ methods


def test_head_has_get_headers_and_no_body(site: Site, client: httpx.Client) -> None:
    get = client.get(site.url("/feed.atom"))
    head = client.head(site.url("/feed.atom"))

    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]
    status, raw = site.raw("/feed.atom", method="HEAD")
    assert status == 200
    assert raw.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow(site: Site, client: httpx.Client, method: str) -> None:
    response = client.request(method, site.url("/feed.atom"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


# ------------------------------------------------------------------ nothing outside output/


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/topics/%2e%2e/%2e%2e/secret.txt",
        "/topics/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%2e%2e%5csecret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/topics//tech.atom",
        "/./feed.atom",
        "/feed.atom/",
        "/feed.atom%00.txt",
        "/feed.atom%00",
        "/%ff%fe",
        "/link-out",
        "/dir-out/secret.txt",
        "/dir-out/output/.hidden",
        "/link-hidden",
        "/.hidden",
        "/.feed.atom.x1y2.tmp",
        "/.git/config",
        "/.git/",
        "/%2egit/config",
        "http://example.org/../secret.txt",
        "secret.txt",
        "*",
    ],
)
def test_traversal_and_dotfiles_are_404(site: Site, target: str) -> None:
    status, raw = site.raw(target)

    assert status == 404, target
    assert SECRET_TEXT.encode() not in raw


def test_symlink_loops_are_404(site: Site) -> None:
    (site.output / "loop").symlink_to(site.output / "loop")
    assert site.raw("/loop")[0] == 404


def test_a_fifo_is_not_served_and_does_not_hang(site: Site) -> None:
    os.mkfifo(site.output / "pipe.txt")
    assert site.raw("/pipe.txt")[0] == 404


# ------------------------------------------------------------------ unsubscribe: GET


def test_get_shows_a_confirmation_form_and_changes_nothing(
    site: Site, client: httpx.Client
) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))

    response = client.get(site.url(f"/unsubscribe?token={token}"))

    assert response.status_code == 200
    page = response.text
    assert 'lang="en"' in page
    assert 'name="viewport"' in page
    assert "Unsubscribe <strong>b***@example.org</strong> from " in page
    assert "Ukraine war — daily &lt;digest&gt;" in page
    assert "<digest>" not in page
    assert re.search(r'<form method="post" action="\?token=[A-Za-z0-9_.-]+">', page)
    assert BOB not in page
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-robots-tag"] == "noindex"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert site.store.active(DIGEST, BOB)
    assert site.store.calls == []


def test_head_changes_nothing(site: Site, client: httpx.Client) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    response = client.head(site.url(f"/unsubscribe?token={token}"))
    assert response.status_code == 200
    assert response.content == b""
    assert site.store.calls == []


def test_get_for_a_digest_that_no_longer_exists_is_404(site: Site, client: httpx.Client) -> None:
    token = site.token("n1", digest_id="gone")
    response = client.get(site.url(f"/unsubscribe?token={token}"))
    assert response.status_code == 404
    assert "Subscription not found" in response.text


# ------------------------------------------------------------------ unsubscribe: POST


def test_rfc8058_one_click_post_unsubscribes_and_repeats_idempotently(
    site: Site, client: httpx.Client
) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    url = site.url(f"/unsubscribe?token={token}")

    response = client.post(url, content=ONE_CLICK, headers=FORM)

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-robots-tag"] == "noindex"
    assert not site.store.active(DIGEST, BOB)

    again = client.post(url, content=ONE_CLICK, headers=FORM)
    assert again.status_code == 200
    assert "already unsubscribed" in again.text
    assert not site.store.active(DIGEST, BOB)


def test_rfc8058_multipart_example_verbatim(site: Site) -> None:
    # RFC 8058 section 3.1, byte for byte, boundary parameter included as the RFC writes it.
    token = site.token(site.store.subscribe(DIGEST, BOB))
    body = (
        b"---FormBoundaryjWmhtjORrn\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
        b"\r\n"
        b"One-Click\r\n"
        b"---FormBoundaryjWmhtjORrn--\r\n"
    )
    request = (
        f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=---FormBoundaryjWmhtjORrn\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk

    assert reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200")
    assert not site.store.active(DIGEST, BOB)


def test_standard_multipart_post(site: Site, client: httpx.Client) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    response = client.post(
        site.url(f"/unsubscribe?token={token}"),
        data={"List-Unsubscribe": "One-Click"},
        files={"unused": ("a.txt", b"x")},  # forces multipart/form-data
    )
    assert response.status_code == 200
    assert not site.store.active(DIGEST, BOB)


def test_the_confirmation_form_submits_like_a_browser(site: Site, client: httpx.Client) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    page_url = site.url(f"/unsubscribe?token={token}")
    page = client.get(page_url).text
    action = re.search(r'<form method="post" action="([^"]+)">', page)
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page)
    assert action is not None

    response = client.post(httpx.URL(page_url).join(action.group(1)), data=dict(fields))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert not site.store.active(DIGEST, BOB)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
        (b"unsubscribe=1", "application/x-www-form-urlencoded"),
        (b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--b--", "multipart/form-data"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
def test_post_without_one_click_is_400_and_changes_nothing(
    site: Site, client: httpx.Client, body: bytes, content_type: str
) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    response = client.post(
        site.url(f"/unsubscribe?token={token}"),
        content=body,
        headers={
            "Content-Type": content_type + ("; boundary=b" if "multipart" in content_type else "")
        },
    )
    assert response.status_code == 400
    assert "did not confirm" in response.text
    assert site.store.active(DIGEST, BOB)
    assert site.store.calls == []


def test_an_oversized_body_is_413_and_unread(site: Site, client: httpx.Client) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    body = ONE_CLICK + b"&pad=" + b"x" * MAX_BODY_BYTES
    response = client.post(site.url(f"/unsubscribe?token={token}"), content=body, headers=FORM)
    assert response.status_code == 413
    assert site.store.active(DIGEST, BOB)


# ------------------------------------------------------------------ unsubscribe: refusals


def bad_tokens(site: Site) -> list[str]:
    good = site.token(site.store.subscribe(DIGEST, BOB))
    flipped = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    return [
        "",
        "garbage",
        flipped,
        good[:-1],
        make_token(b"another-key-0123456789", DIGEST, BOB, "n"),
        "%3Cscript%3Ealert(1)%3C/script%3E",
        f"{good}&token={good}",
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_tokens_are_400_and_change_nothing(
    site: Site, client: httpx.Client, method: str
) -> None:
    for token in bad_tokens(site):
        response = client.request(
            method, site.url(f"/unsubscribe?token={token}"), content=ONE_CLICK, headers=FORM
        )
        assert response.status_code == 400, token
        assert "This unsubscribe link is not valid" in response.text
        assert "<script>" not in response.text
        assert response.headers["cache-control"] == "no-store"
        if len(token) > 10:
            assert token.split("&")[0] not in response.text
    assert client.post(site.url("/unsubscribe"), content=ONE_CLICK, headers=FORM).status_code == 400
    assert site.store.calls == []
    assert site.store.active(DIGEST, BOB)


def test_a_link_from_an_earlier_subscription_is_410(site: Site, client: httpx.Client) -> None:
    old = site.token(site.store.subscribe(DIGEST, BOB))
    site.store.subscribe(DIGEST, BOB)  # re-subscribed: a new nonce

    response = client.post(site.url(f"/unsubscribe?token={old}"), content=ONE_CLICK, headers=FORM)

    assert response.status_code == 410
    assert "earlier subscription" in response.text
    assert site.store.active(DIGEST, BOB)


def test_an_unknown_subscriber_is_404(site: Site, client: httpx.Client) -> None:
    token = site.token("n1", address="nobody@example.org")
    response = client.post(site.url(f"/unsubscribe?token={token}"), content=ONE_CLICK, headers=FORM)
    assert response.status_code == 404
    assert "Subscription not found" in response.text


def test_a_failing_store_is_503_with_retry_after(site: Site, client: httpx.Client) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    site.store.failing = True
    response = client.post(site.url(f"/unsubscribe?token={token}"), content=ONE_CLICK, headers=FORM)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert "Nothing was changed" in response.text


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_unsubscribe_other_methods_are_405(site: Site, client: httpx.Client, method: str) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    response = client.request(method, site.url(f"/unsubscribe?token={token}"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert site.store.calls == []


@pytest.mark.parametrize(("app_secret", "with_store"), [(None, True), (SECRET, False), (b"", True)])
def test_without_secret_or_store_unsubscribe_is_503_and_files_still_served(
    tmp_path: Path,
    client: httpx.Client,
    store: FakeUnsubscriber,
    app_secret: bytes | None,
    with_store: bool,
) -> None:
    output = build_output(tmp_path)
    token = make_token(SECRET, DIGEST, BOB, store.subscribe(DIGEST, BOB))
    for base in run_site(output, app_secret, store if with_store else None):
        for method in ("GET", "POST"):
            response = client.request(
                method, f"{base}/unsubscribe?token={token}", content=ONE_CLICK, headers=FORM
            )
            assert response.status_code == 503
            assert "not set up to handle unsubscribe links" in response.text
        assert client.get(f"{base}/feed.atom").status_code == 200
    assert store.active(DIGEST, BOB)


# ------------------------------------------------------------------ server


def test_access_log_goes_through_logging_without_tokens(
    site: Site, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    token = site.token(site.store.subscribe(DIGEST, BOB))
    with caplog.at_level(logging.INFO, logger="aggregator.web"):
        client.get(site.url(f"/unsubscribe?token={token}"))
        site.raw(f"/unsubscribe?token={token} EXTRA")  # malformed request line
        # Access lines are written by the server thread after the reply has gone out.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            logged(caplog, "GET /unsubscribe 200") and logged(caplog, "Bad request")
        ):
            time.sleep(0.01)

    messages = [record.getMessage() for record in caplog.records]
    assert logged(caplog, "GET /unsubscribe 200")
    assert logged(caplog, "Bad request")
    assert all(token not in m for m in messages)
    assert all(BOB not in m for m in messages)


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aggregator.web import make_app, serve\n"
        "app = make_app(Path(sys.argv[1]), secret=None, unsubscriber=None)\n"
        "serve(app, '127.0.0.1', 0, ready=lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    output = build_output(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(
        [sys.executable, "-c", script, str(output)], stdout=subprocess.PIPE, text=True, env=env
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert httpx.get(url + "feed.atom", timeout=5).text == "<feed>atom</feed>"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert process.stdout.read().strip() == "stopped"
