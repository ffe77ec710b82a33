"""Which hosts a webhook may reach: the operator's list, or any public host if the operator says so.

A webhook makes the server send requests where a project owner points it, so a careless policy turns
the server into a proxy into its own network (SSRF): a hook on ``http://127.0.0.1:PORT/admin/...`` posts
to whatever listens on this machine, and its delivery log would show the answer. So nothing of this
machine (loopback, its own interfaces' addresses, the unspecified address) and nothing private,
link-local or otherwise special is reachable unless the operator lists the host in
``ASSAY_WEBHOOK_HOSTS`` (``host`` or ``host:port``, comma-separated); ``ASSAY_WEBHOOK_ANY_HOST`` adds only
hosts whose every address is public and not this machine's. Link-local, multicast and unspecified
addresses are never reached, listed or not (cloud metadata services live at link-local addresses).

The host's name is checked, then every address it resolves to, IPv6 forms that carry an IPv4 address
(NAT64, 6to4, Teredo, ISATAP, IPv4-compatible and -translated) judged by the IPv4 address they carry
too. The check runs when the webhook is registered and again before every attempt, and the sender
connects to the very addresses checked, so a name that changes its answer meanwhile (DNS rebinding)
gains nothing.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from assay.errors import BadRequest, ConfigurationError

SCHEMES = ("http", "https")
HOSTS_SETTING = "ASSAY_WEBHOOK_HOSTS"
ANY_HOST_SETTING = "ASSAY_WEBHOOK_ANY_HOST"
THIS_MACHINE = "this machine's"

# How bad a kind of address is, worst first: an address that carries another (an IPv4 address inside an
# IPv6 one) takes the worse kind of the two.
KINDS = ("unusable", "link-local", "loopback", THIS_MACHINE, "private", "global")
NEVER = frozenset({"unusable", "link-local"})  # not even a listed host reaches these

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local prefixes, where the IPv4 address may sit anywhere
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT's IPv4-translated ::ffff:0:a.b.c.d
_ISATAP_ID = 0x00005EFE  # an interface id 0000:5efe:a.b.c.d (or 0200:5efe, the u bit set) carries a.b.c.d


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

    @property
    def where(self) -> str:
        """host:port, as ASSAY_WEBHOOK_HOSTS would list it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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
    return Target(url.strip(), scheme, _host(parts.hostname), port or (443 if scheme == "https" else 80), path)


def _host(name: str) -> str:
    """A host as the policy compares it: lower case, no trailing dot, an address literal in its short form."""
    name = name.strip().lower().rstrip(".")
    literal = _literal(name)
    return str(literal) if literal is not None else name


def _literal(text: str):
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _address(text: str):
    address = _literal(text)
    if address is not None and address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address) -> list:
    """The IPv4 addresses an IPv6 address carries, by the forms that say so in the address itself."""
    if address.version == 4:
        return []
    found = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _NAT64 or address in _TRANSLATED or (address in _COMPATIBLE and int(address) > 1):
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the Teredo server and the (de-obfuscated) client
    if (int(address) >> 32) & 0xFDFFFFFF == _ISATAP_ID:
        found.append(low32)
    return found


def _own_kind(address) -> str:
    if address.is_unspecified or address.is_multicast:
        return "unusable"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.version == 6 and address in _NAT64_LOCAL:
        return "private"  # where the IPv4 address sits is the network's own choice: judge it unknown
    if address.is_global:
        return "global"
    return "private"


def kind_of(address) -> str:
    """``unusable`` (unspecified, multicast), ``link-local``, ``loopback``, ``global`` or ``private`` (the rest:
    RFC 1918, unique-local, carrier-grade NAT, documentation and reserved ranges); an IPv6 address that carries
    an IPv4 address takes the worse kind of the two. Addresses of this machine's interfaces are told apart
    by :func:`on_this_machine`, which asks the system."""
    kinds = [_own_kind(address)] + [_own_kind(v4) for v4 in embedded_ipv4(address)]
    return min(kinds, key=KINDS.index)


def on_this_machine(address) -> bool:
    """Whether ``address`` is one of this machine's own (an interface's): the system lets a socket bind only
    to those. A system set to let sockets bind anywhere (``ip_nonlocal_bind``) makes every address count as
    this machine's, which refuses too much, never too little."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(address), 0))
    except OSError:
        return False
    return True


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (the system's resolver), in its order. Tests replace this."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def parse_hosts(value) -> frozenset:
    """``ASSAY_WEBHOOK_HOSTS`` (comma-separated, or a list in config.py) as ``(host, port or None)`` pairs.

    An entry is ``host``, ``host:port``, an IPv6 address, or ``[IPv6]:port``. Anything else stops the
    server at start with what to write instead: a URL listed by mistake would otherwise allow nothing.
    """
    if value is None:
        return frozenset()
    entries = value.split(",") if isinstance(value, str) else value
    out = set()
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        out.add(_entry(text))
    return frozenset(out)


def _entry(text: str) -> tuple[str, int | None]:
    how = (f"{HOSTS_SETTING} holds {text!r}, which is not a host or host:port; list entries like "
           "hooks.example.com, ci.internal:8080, 127.0.0.1:9000 or [::1]:9000, separated by commas")
    if any(c.isspace() for c in text) or any(c in text for c in "/@?#"):
        raise ConfigurationError(how)
    host, port = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ConfigurationError(how)
        if rest:
            if not rest.startswith(":"):
                raise ConfigurationError(how)
            port = rest[1:]
        if _literal(host) is None or _literal(host).version != 6:
            raise ConfigurationError(how)
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.count(":") > 1 and _literal(text) is None:
        raise ConfigurationError(how)
    if port is not None:
        if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(how)
        port = int(port)
    host = _host(host)
    if not host:
        raise ConfigurationError(how)
    return host, port


@dataclass(frozen=True)
class HostPolicy:
    hosts: frozenset = frozenset()  # (host, port or None): what the operator lists, whatever it resolves to
    any_host: bool = False  # also any other host whose addresses are all public and not this machine's

    @classmethod
    def from_config(cls, config) -> "HostPolicy":
        from assay.config import flag

        return cls(parse_hosts(config.get("WEBHOOK_HOSTS")), flag(config, "WEBHOOK_ANY_HOST"))

    def listed(self, target: Target) -> bool:
        """Whether the operator listed this host (on any port, or on the target's)."""
        return (target.host, None) in self.hosts or (target.host, target.port) in self.hosts

    def check_name(self, target: Target) -> None:
        """Refuse a host the policy never allows, before asking any resolver about it."""
        if self.listed(target) or self.any_host:
            return
        ports = sorted(str(p) for h, p in self.hosts if h == target.host and p is not None)
        on = f" (it is listed on port{'s' if len(ports) > 1 else ''} {', '.join(ports)} only)" if ports else ""
        raise Refused(f"webhooks post only to the hosts the operator lists in {HOSTS_SETTING} (comma-separated "
                      f"host or host:port; this machine and private networks too only when listed); "
                      f"{target.where} is not listed{on}. Ask the operator to add it, or to set "
                      f"{ANY_HOST_SETTING}=true to allow any public host")

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
        listed = self.listed(target)
        for text in found:
            address = _address(text)
            kind = self.kind(address) if address is not None else "unusable"
            allowed = kind not in NEVER and (listed or (kind == "global" and self.any_host))
            if not allowed:
                raise Refused(self._why(target, text, kind))
        return found

    @staticmethod
    def kind(address) -> str:
        """:func:`kind_of`, with the addresses of this machine's interfaces told apart from public ones."""
        kind = kind_of(address)
        if kind == "global" and any(on_this_machine(a) for a in [address, *embedded_ipv4(address)]):
            return THIS_MACHINE
        return kind

    def _why(self, target: Target, address: str, kind: str) -> str:
        host = target.host
        where = host if host == address else f"{host} resolves to {address}, which"
        if kind in NEVER:
            return (f"{where} is a {kind} address; webhooks never post there (cloud metadata services live "
                    f"at link-local addresses)")
        if kind == "global":
            return (f"{where} is a public address, but {target.where} is not in {HOSTS_SETTING}; ask the operator "
                    f"to add it (or to set {ANY_HOST_SETTING}=true)")
        what = "an address of this machine" if kind == THIS_MACHINE else f"a {kind} address"
        return (f"{where} is {what}; webhooks reach this machine and private networks only at the hosts the "
                f"operator lists in {HOSTS_SETTING} (e.g. {HOSTS_SETTING}={target.where}); a name that points "
                f"there unasked may be an attempt to reach the server's own network")
