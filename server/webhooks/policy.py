"""Which hosts a webhook may reach: loopback and the operator's list, or any public host if the operator says so.

A webhook makes the server send requests where a project owner points it, so a careless policy turns
the server into a proxy into its own network (SSRF). The host's name is checked, then every address it
resolves to: a name that resolves to a private, link-local or loopback address it was not allowed is
refused whole. The check runs when the webhook is registered and again before every attempt, and the
sender connects to the very addresses checked, so a name that changes its answer meanwhile (DNS
rebinding) gains nothing.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from assay.errors import BadRequest

SCHEMES = ("http", "https")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
HOSTS_SETTING = "ASSAY_WEBHOOK_HOSTS"
ANY_HOST_SETTING = "ASSAY_WEBHOOK_ANY_HOST"


class Refused(BadRequest):
    """A webhook URL the policy does not let the server reach."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower case, no brackets, no trailing dot
    port: int
    path: str  # with the query

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url) -> Target:
    if not isinstance(url, str) or not url.strip() or len(url) > 2000:
        raise BadRequest("url must be an http:// or https:// URL of at most 2000 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"url is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise BadRequest("url must be an http:// or https:// URL with a host, e.g. https://hooks.example.com/assay")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("url must not carry a user name or password: the body is signed with the webhook's "
                         "secret, which is how the receiver knows it comes from Assay")
    scheme = parts.scheme.lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url.strip(), scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80),
                  path)


def _address(text: str):
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def kind_of(address) -> str:
    """``loopback``, ``link-local``, ``unusable`` (unspecified, multicast), ``global`` or ``private`` (the rest:
    RFC 1918, unique-local, carrier-grade NAT, documentation and reserved ranges)."""
    if address.is_unspecified or address.is_multicast:
        return "unusable"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_global:
        return "global"
    return "private"


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (the system's resolver), in its order. Tests replace this."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class HostPolicy:
    hosts: frozenset = frozenset()  # names (or address literals) the operator allows, whatever they resolve to
    any_host: bool = False  # also any other host whose addresses are all public

    @classmethod
    def from_config(cls, config) -> "HostPolicy":
        hosts = config.get("WEBHOOK_HOSTS") or []
        if isinstance(hosts, str):
            hosts = hosts.split(",")
        any_host = config.get("WEBHOOK_ANY_HOST", False)
        if isinstance(any_host, str):
            any_host = any_host.strip().lower() in ("1", "true", "yes", "on")
        return cls(frozenset(str(h).strip().lower().rstrip(".") for h in hosts if str(h).strip()), bool(any_host))

    def _loopback_name(self, host: str) -> bool:
        address = _address(host)
        if address is not None:
            return address.is_loopback
        return host in LOOPBACK_NAMES or host.endswith(".localhost")

    def check_name(self, target: Target) -> None:
        """Refuse a host the policy never allows, before asking any resolver about it."""
        if self._loopback_name(target.host) or target.host in self.hosts or self.any_host:
            return
        raise Refused(f"webhooks may post to this machine (loopback) and to the hosts the operator lists in "
                      f"{HOSTS_SETTING} (comma-separated); {target.host} is not one of them. Ask the operator "
                      f"to add it, or to set {ANY_HOST_SETTING}=true to allow any public host")

    def addresses(self, target: Target, resolve=None) -> list[str]:
        """The addresses to connect to for ``target``, all allowed; Refused if the name or any address is not."""
        self.check_name(target)
        literal = _address(target.host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = (resolve or resolve_host)(target.host, target.port)
            except (OSError, UnicodeError, ValueError) as exc:  # ValueError: a NUL in the name
                raise Refused(f"{target.host} does not resolve ({exc}); check the URL") from None
            if not found:
                raise Refused(f"{target.host} does not resolve; check the URL")
        listed = target.host in self.hosts
        loopback_name = self._loopback_name(target.host)
        for text in found:
            address = _address(text)
            kind = kind_of(address) if address is not None else "unusable"
            allowed = {"loopback": loopback_name or listed, "private": listed,
                       "global": listed or self.any_host}.get(kind, False)
            if not allowed:
                raise Refused(self._why(target.host, text, kind))
        return found

    def _why(self, host: str, address: str, kind: str) -> str:
        where = host if host == address else f"{host} resolves to {address}, which"
        if kind in ("link-local", "unusable"):
            return (f"{where} is a {kind} address; webhooks never post there (cloud metadata services live "
                    f"at link-local addresses)")
        if kind == "global":
            return (f"{where} is a public address, but {host} is not in {HOSTS_SETTING}; ask the operator to "
                    f"add it (or to set {ANY_HOST_SETTING}=true)")
        return (f"{where} is a {kind} address; webhooks reach private and loopback addresses only through the "
                f"host names the operator lists in {HOSTS_SETTING} (a name that points there unasked may be "
                f"an attempt to reach the server's own network)")
