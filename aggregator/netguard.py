"""The SSRF guard: which addresses a fetch may connect to, checked at connect time.

A feed is a URL someone else controls. Its server can answer ``302 Location:
http://169.254.169.254/…`` (a cloud metadata service), ``http://127.0.0.1:6379/`` or any
host whose name resolves to an address on our own network, and what we fetch there would
be republished in ``output/``. So:

* the URL the editor configured may be on any address: an intranet feed is a choice;
* a redirect may stay on the configured host (same name and port) wherever that is: the
  editor chose the host, and an intranet server redirecting within itself is normal;
* a redirect anywhere else must resolve to global addresses only, unless
  ``fetch.allow_private: true``.

The decision (:func:`address_refusal`) is pure. It is enforced where the connection is
made (:class:`GuardedBackend`): the host name is resolved once, the addresses are checked,
and the socket is opened to a checked address, so DNS answering differently between a
check and the connection (rebinding) cannot slip past it. The HTTP client sees an ordinary
network backend; swapping the client means giving the new one the same connect hook.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal

import httpcore
import httpx

__all__ = [
    "AddressRefused",
    "GuardedBackend",
    "Reach",
    "Resolver",
    "address_refusal",
    "guarded_transport",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
Reach = Literal["any", "global"]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Named ranges first: a precise word helps the operator more than "not global".
_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("an unspecified address", lambda a: a.is_unspecified),
    ("a loopback address", lambda a: a.is_loopback),
    ("a link-local address", lambda a: a.is_link_local),
    ("a multicast address", lambda a: a.is_multicast),
    ("a shared (carrier-grade NAT) address", lambda a: a in _CGNAT),
    ("a private address", lambda a: a.is_private),
    ("a reserved address", lambda a: a.is_reserved),
)


def address_refusal(address: str | IPAddress) -> str | None:
    """Why a redirect may not connect to ``address``, or None when it is a global address.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are judged
    by the IPv4 address they reach.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded)
        return None if reason is None else f"{reason} ({embedded} inside {ip})"
    for kind, matches in _KINDS:
        if matches(ip):
            return kind
    return None if ip.is_global else "a non-global address"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server half is a public relay
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class AddressRefused(Exception):
    """The guard refused every address a host resolved to; the message says why."""


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The host's addresses from the system resolver, in its order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects in one step, so only a checked address is dialled."""

    def __init__(self, reach: Reach, resolver: Resolver = system_resolver) -> None:
        self._reach = reach
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the host's next address, as a browser would
        assert last_error is not None  # _addresses never returns an empty list
        raise last_error

    async def _addresses(self, host: str, port: int) -> list[str]:
        literal = _ip_literal(host)
        try:
            found = [str(literal)] if literal else list(await self._resolver(host, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"DNS lookup failed: {exc}") from exc
        if not found:
            raise httpcore.ConnectError(f"DNS lookup failed: no address for {host}")
        if self._reach == "any":
            return found
        allowed = [a for a in found if address_refusal(a) is None]
        if not allowed:
            reason = address_refusal(found[0])
            shown = host if literal else f"{host} ({found[0]})"
            raise AddressRefused(
                f"refused to follow a redirect to {shown}: {reason}; a feed's server may not "
                "send us into a private network (set fetch.allow_private: true to allow it)"
            )
        return allowed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("connecting to a Unix socket is not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: GuardedBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # httpx takes no network backend, so its pool is rebuilt around ours: the one place
        # we lean on httpx internals, and tests/test_netguard.py fails loudly if it moves.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_transport(
    reach: Reach, limits: httpx.Limits, resolver: Resolver = system_resolver
) -> httpx.AsyncBaseTransport:
    """An httpx transport whose every connection goes through :class:`GuardedBackend`."""
    return _GuardedTransport(GuardedBackend(reach, resolver), limits)
