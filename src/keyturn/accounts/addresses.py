"""The client's IP address: parsed, bucketed for the throttles, and found behind
trusted proxies.

Framework-free: the web layer hands in the socket peer and the
``X-Forwarded-For`` header (:func:`client_address`, :func:`trusted_peer`); the
sign-in and registration throttles count a client by :func:`client_bucket`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence

__all__ = ["client_address", "client_bucket", "trusted_peer"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_bucket(client: str, ipv6_prefix: int = 64) -> str:
    """What the per-client limits count ``client`` as: an IPv6 address's
    ``/ipv6_prefix`` network (``2001:db8::/64``), an IPv4 address (or an
    IPv4-mapped IPv6 one, as IPv4) by itself, anything else (a unix socket,
    ``"unknown"``) as given."""
    address = _parse_ip(client)
    if address is None:
        return client
    if isinstance(address, ipaddress.IPv4Address) or ipv6_prefix >= 128:
        return str(address)
    return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))


def _parse_ip(text: str) -> _IPAddress | None:
    """An IP address from a header entry or a peer string, tolerating a port
    (``1.2.3.4:80``, ``[::1]:80``) and IPv4-mapped IPv6; None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: _IPAddress, networks: Sequence[_IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted_proxies: Sequence[str],
) -> str:
    """The address a request really comes from, for throttling and audit.

    The socket peer, unless the peer is one of ``trusted_proxies`` (addresses or
    CIDRs): then the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy. Entries left of that are written by the client and can be
    forged, so they are never believed. A malformed header, or one made only of
    trusted proxies, yields the peer (or the left-most entry, respectively).

    Returns:
        A normalized IP address string, or the raw peer string when the peer is
        not an IP address (a unix socket), or ``"unknown"`` without a peer.
    """
    if not peer:
        return "unknown"
    peer_ip = _parse_ip(peer)
    if peer_ip is None:
        return peer
    networks = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]
    if not forwarded_for or not _trusted(peer_ip, networks):
        return str(peer_ip)
    hops = [_parse_ip(entry) for entry in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop is None:
            return str(peer_ip)
        if not _trusted(hop, networks):
            return str(hop)
    first = hops[0]
    return str(first) if first is not None else str(peer_ip)


def trusted_peer(trusted_proxies: Sequence[str]) -> Callable[[str], bool]:
    """A test of whether a socket peer is one of ``trusted_proxies`` (addresses or
    CIDRs; IPv4-mapped IPv6 counts as IPv4), remembering recent answers so a
    request from a known proxy costs a dictionary lookup."""
    networks = tuple(ipaddress.ip_network(item, strict=False) for item in trusted_proxies)

    @functools.lru_cache(maxsize=1024)
    def is_trusted(peer: str) -> bool:
        address = _parse_ip(peer)
        return address is not None and _trusted(address, networks)

    return is_trusted
