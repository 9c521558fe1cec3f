"""Where webhooks may go: not to private, loopback, link-local or other non-public addresses
(server-side request forgery), unless ``CSAI_WEBHOOK_ALLOW_PRIVATE`` is set (tests, ``make run``)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(Exception):
    """The URL points at an address webhooks may not reach."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def url_check(url: str) -> None:
    """Refuse, without a DNS lookup, what is visibly not public: a private IP literal or a
    ``localhost`` name. Raises ``AddressRefused``. The name's addresses are checked again at
    every delivery (``url_resolve_check``), since DNS answers change."""
    if settings.CSAI_WEBHOOK_ALLOW_PRIVATE:
        return
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        raise AddressRefused("The URL has no host.")
    if host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused(f"{host} is this machine.")
    literal = _literal(host)
    if literal is not None and not _public(literal):
        raise AddressRefused(f"{host} is not a public address.")


def url_resolve_check(url: str) -> None:
    """Refuse a URL whose host resolves to any non-public address. Raises ``AddressRefused``,
    or ``OSError`` when the name does not resolve (a transient failure).

    The connection resolves the name again: a DNS server that answers differently within
    seconds could still point it elsewhere. Deployments that take endpoints from untrusted
    people should also send webhooks through an egress proxy that filters addresses."""
    url_check(url)
    if settings.CSAI_WEBHOOK_ALLOW_PRIVATE:
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for *_, sockaddr in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
        if not _public(sockaddr[0]):
            raise AddressRefused(f"{parts.hostname} resolves to {sockaddr[0]}, not a public address.")
