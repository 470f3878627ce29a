"""The SSRF guard: the pure address policy, and its enforcement on real loopback servers.

Names are resolved through the fetcher's resolver seam, so that "public.test" and
"internal.test" can stand for a public host and a host on our own network while every
connection still goes to this machine's loopback server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher
from aggregator.models import FetchRequest, FetchResult
from aggregator.netguard import address_refusal

FEED = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'
SECRET = b"password=hunter2"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", ""),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
    ],
)
def test_non_global_addresses_are_refused_and_named(address: str, kind: str) -> None:
    reason = address_refusal(address)
    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_global_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None


# ---------------------------------------------------------------- enforced at connect time


def names(mapping: dict[str, str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in mapping:
            raise OSError(f"unknown host {host}")
        return [mapping[host]]

    return resolve


LOCAL = names({"public.test": "127.0.0.1", "internal.test": "127.0.0.1"})


def fetch(url: str, *, allow_private: bool = False, resolver=LOCAL) -> FetchResult:  # type: ignore[no-untyped-def]
    settings = FetchSettings(timeout=timedelta(seconds=5), allow_private=allow_private)

    async def run() -> FetchResult:
        async with Fetcher(settings, resolver=resolver) as fetcher:
            return await fetcher.fetch(FetchRequest(url))

    return asyncio.run(run())


def redirecting(httpserver: HTTPServer, location: str) -> str:
    httpserver.expect_request("/feed").respond_with_data(
        "", status=302, headers={"Location": location}
    )
    httpserver.expect_request("/secret").respond_with_data(SECRET)
    httpserver.expect_request("/moved").respond_with_data(FEED)
    return f"http://public.test:{httpserver.port}/feed"


def secret_requests(httpserver: HTTPServer) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == "/secret")


@pytest.mark.parametrize(
    "target",
    [
        "http://internal.test:{port}/secret",  # a name that resolves to our own network
        "http://127.0.0.1:{port}/secret",  # an address literal
        "http://[::ffff:127.0.0.1]:{port}/secret",  # the same, dressed as IPv6
    ],
)
def test_redirect_from_public_host_into_private_network_is_refused(
    httpserver: HTTPServer, target: str
) -> None:
    url = redirecting(httpserver, target.format(port=httpserver.port))

    with pytest.raises(FetchError) as info:
        fetch(url)

    message = str(info.value)
    assert "refused to follow a redirect" in message
    assert "loopback" in message
    assert "fetch.allow_private" in message
    assert secret_requests(httpserver) == 0


def test_configured_private_url_is_fetched(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED)

    result = fetch(f"http://127.0.0.1:{httpserver.port}/feed")  # chosen by the editor

    assert result.content == FEED


def test_redirect_within_the_configured_host_is_followed(httpserver: HTTPServer) -> None:
    url = redirecting(httpserver, f"http://public.test:{httpserver.port}/moved")

    result = fetch(url)

    assert result.content == FEED
    assert result.final_url.endswith("/moved")


def test_allow_private_lets_redirects_reach_private_hosts(httpserver: HTTPServer) -> None:
    url = redirecting(httpserver, f"http://internal.test:{httpserver.port}/secret")

    result = fetch(url, allow_private=True)

    assert result.content == SECRET


def test_unresolvable_redirect_target_is_a_dns_error(httpserver: HTTPServer) -> None:
    url = redirecting(httpserver, f"http://nowhere.test:{httpserver.port}/secret")

    with pytest.raises(FetchError) as info:
        fetch(url)

    assert "DNS lookup failed" in str(info.value)
