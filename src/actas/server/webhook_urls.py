"""Which webhook URLs actas sends to: http(s), no credentials, public addresses only.

A webhook endpoint is a URL an API caller chooses and the worker then POSTs
signed events to, from inside the operator's network: without a check it
reaches the cloud metadata service (169.254.169.254), the database, or
anything else listening on a private or loopback address (SSRF).

``check`` resolves the host and refuses the URL unless every address it
resolves to is public. It runs when an endpoint is registered and again
before every delivery (DNS can change in between), and the delivery then
connects to the address that was checked, not to whatever the name resolves
to a moment later (``Target``): the Host header and, for https, the TLS
server name and certificate check still use the URL's host name.

``ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS`` lets loopback and private
addresses through (local development, a receiver on the same private
network). Link-local (the metadata services), multicast, unspecified and
reserved addresses are refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from actas._errors import WebhookUrlNotAllowed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as strings.
Resolver = Callable[[str, int], Sequence[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: an IPv4 address inside
# What ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS lets through; never link-local (metadata).
_PRIVATE_NETWORKS = frozenset({"loopback", "private"})


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses only."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked URL, and how to send to the checked address and nowhere else."""

    checked_url: str  # as given
    url: httpx.URL  # the URL with its host replaced by the checked address
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def check(url: str, *, allow_private: bool, resolve: Resolver = system_resolver) -> Target:
    """Return where to send ``url``'s requests; raise ``WebhookUrlNotAllowed`` if nowhere."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise _refused(url, "malformed", "it is not a valid URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise _refused(url, "scheme", "only http and https URLs with a host are allowed")
    if parsed.userinfo:
        raise _refused(url, "credentials",
                       "URLs with a user name or password are not allowed; authenticate the "
                       "webhook with its signature")
    literal = _literal(parsed.host)
    addresses = [literal] if literal is not None else _resolved(
        parsed.host, parsed.port or _DEFAULT_PORTS[parsed.scheme], resolve)
    if not addresses:
        raise _refused(url, "unresolvable", f"the host {parsed.host!r} does not resolve")
    for address in addresses:
        problem = why_not_public(address)
        if problem is None or (allow_private and problem in _PRIVATE_NETWORKS):
            continue
        hint = ("; only public addresses are allowed unless "
                "ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS is on"
                if problem in _PRIVATE_NETWORKS else "")
        raise _refused(url, problem,
                       f"{parsed.host} is or resolves to a {problem} address ({address}){hint}")
    pinned = addresses[0]
    host_header = parsed.netloc.decode("ascii")
    # TLS still names (and verifies the certificate of) the host, not the address.
    extensions = {"sni_hostname": parsed.raw_host.decode("ascii")} \
        if parsed.scheme == "https" and literal is None else {}
    return Target(checked_url=url, url=parsed.copy_with(host=str(pinned)),
                  headers={"Host": host_header},
                  extensions=extensions)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolved(host: str, port: int, resolve: Resolver) -> list[Address]:
    # An IPv6 address may come with its zone ("fe80::1%eth0").
    found = [_literal(text.split("%", 1)[0]) for text in resolve(host, port)]
    return [address for address in found if address is not None]


def why_not_public(address: Address) -> str | None:
    """``None`` for a public address, else what it is: loopback, private, link-local, ..."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (address.ipv4_mapped or address.sixtofour
                    or (address.teredo[1] if address.teredo else None)
                    or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                        if address in _NAT64 else None))
        if embedded is not None:  # judged by the IPv4 address it carries
            return why_not_public(embedded)
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "private"  # fec0::/10: deprecated, but still routed inside some networks
    if address.is_reserved:
        return "reserved"
    shared = isinstance(address, ipaddress.IPv4Address) and address in _SHARED
    if address.is_private or shared or not address.is_global:
        return "private"
    return None


def _refused(url: str, reason: str, why: str) -> WebhookUrlNotAllowed:
    shown = url if len(url) <= 200 else url[:200] + "…"
    return WebhookUrlNotAllowed(f"Webhooks cannot be sent to {shown!r}: {why}.",
                                reason=reason, param_name="url")
