"""Who a request comes from, for the per-client bounds (rate limits, the waiting room,
event subscriptions), behind a reverse proxy too.

A node behind a proxy (nginx, an ingress) sees every request come from the proxy's
address, so all its clients would share one client's bounds: one busy client could use
up everyone's rate, and 64 places of the waiting room would serve a whole city. With
``[api] trusted_proxies`` (addresses or networks) the node takes the client from the
``X-Forwarded-For`` header of a request that comes from a trusted proxy: read from the
right (each proxy appends the address it got the request from), the first address that
is not itself a trusted proxy is the client. Anything to its left was written by that
client and is not believed. A request from anywhere else is its peer address, whatever
it says in the header — so a client cannot pick its own bucket — and without trusted
proxies (the default) the header is never read.

Cheap before it is known who asks: at most :data:`MAX_HOPS` addresses of the header are
looked at, from the right; an address that does not parse ends the walk at the last
trusted hop (the proxy's own address is then the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # node/config.py reads the networks: no server import for the CLI
    from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 16  # addresses of X-Forwarded-For looked at, from the right
MAX_TRUSTED = 64  # entries of [api] trusted_proxies


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``[api] trusted_proxies``: addresses (``10.0.0.5``) or networks (``10.0.0.0/8``);
    ValueError naming the first that is neither."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(networks)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The address a request's per-client bounds are kept under."""
    peer = request.remote or "unknown"
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", ()), trusted)


def forwarded_client(peer: str, forwarded: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client behind ``peer`` given its ``X-Forwarded-For`` lines (see the module)."""
    if not trusted or not _is_trusted(_parsed(peer), trusted):
        return peer
    hops = [hop.strip() for line in forwarded for hop in line.split(",")][-MAX_HOPS:]
    client = peer
    for hop in reversed(hops):
        ip = _parsed(_bare(hop))
        if ip is None:
            return client
        client = str(ip)  # canonical
        if not _is_trusted(ip, trusted):
            return client
    return client


def _bare(hop: str) -> str:
    """An address as the header gives it, without brackets (IPv6) or a port."""
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else ""
    if hop.count(":") == 1:  # IPv4 with a port
        return hop.split(":", 1)[0]
    return hop


def _parsed(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(ip: Address | None, trusted: tuple[Network, ...]) -> bool:
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)
