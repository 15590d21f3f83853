"""The network between the gateway and the vendors: proxies and trusted certificates.

Schools' networks often reach the internet only through an HTTP proxy, and some
inspect TLS with a certificate authority of their own. The gateway reads both
from the variables every other tool reads (curl, pip, requests, httpx):

- ``https_proxy``/``HTTPS_PROXY`` for ``https://`` vendors, ``http_proxy``/
  ``HTTP_PROXY`` for ``http://`` ones, ``all_proxy``/``ALL_PROXY`` for either
  when the first is unset. The lower-case name wins (an upper-case
  ``HTTP_PROXY`` can come from a request header under CGI: "httpoxy"). A proxy
  is ``http://[user:password@]host[:port]`` (no scheme means ``http://``); a
  TLS (``https://``) or SOCKS proxy is refused at start with words that say so.
- ``no_proxy``/``NO_PROXY``: a comma-separated list of hosts that are called
  directly: ``*`` (everything), a domain (``example.org`` or ``.example.org``:
  it and every host under it, on a dot boundary), ``host:port``, an IP address
  or an IP network (``10.0.0.0/8``). As with curl and httpx, nothing else is
  exempt: a vendor on ``localhost`` goes through the proxy unless listed.
- ``SSL_CERT_FILE``/``SSL_CERT_DIR``: the certificates trusted for vendors, in
  place of the system's (OpenSSL's own variables; point them at a bundle that
  holds the system's certificates and the school's CA to trust both). Unset:
  the system's trust store.

How a proxied call goes: an ``https://`` vendor is reached through a ``CONNECT``
tunnel (:func:`open_tunnel`), after which TLS to the vendor runs inside it and
the connection is the same :class:`gateway.providers.wire.Connection` as a
direct one; an ``http://`` vendor gets its request in absolute form from the
proxy. Doing the tunnel here rather than handing proxied origins to httpx keeps
one client with one set of limits (connection slots, answer size, deadlines),
one redirect rule (a key never follows a redirect to another host) and one
mapping of failures to errors, whether or not a proxy is in the way; the
tunnel costs one extra round trip per new connection, and kept-alive tunnels
are reused like any connection. A direct call pays nothing for it: the proxy
of an origin is looked up once per new connection, from a cache.

The multipart uploads that go through httpx are given the same decision and
the same TLS context (:meth:`Network.proxy_url`, :attr:`Network.ssl_context`),
never httpx's own reading of the environment.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpcore

# Everything this module reads; the hub passes these on to the gateway service.
NETWORK_VARIABLES = (
    "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
    "no_proxy", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
)
MAX_PROXY_HEAD = 16 * 1024  # a proxy's answer to CONNECT longer than this is not HTTP


class NetworkConfigError(ValueError):
    """A proxy or certificate variable that cannot be used (named in the message)."""


class ProxyError(OSError):
    """The proxy refused the tunnel or answered something that is not HTTP."""


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    url: str  # as httpx takes it (credentials included)
    authorization: str | None = None  # the Proxy-Authorization header value

    def __repr__(self) -> str:  # never print a proxy's password
        return f"Proxy({self.host}:{self.port})"


def parse_proxy(name: str, value: str) -> Proxy:
    raw = value.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme != "http":
        raise NetworkConfigError(
            f"{name}={parts.scheme}://…: only http:// proxies are supported (the call to the "
            "vendor is encrypted inside the proxy's tunnel already)")
    if not parts.hostname:
        raise NetworkConfigError(f"{name} names no proxy host")
    try:
        port = parts.port or 80
    except ValueError:
        raise NetworkConfigError(f"{name} has a port that is not a number") from None
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, raw, authorization)


@dataclass(frozen=True)
class Bypass:
    """``no_proxy``: which hosts are called directly."""

    everything: bool = False
    domains: tuple[str, ...] = ()
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Bypass:
        domains: list[str] = []
        host_ports: set[tuple[str, int]] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        everything = False
        for item in (part.strip().lower() for part in value.split(",")):
            if not item:
                continue
            if item == "*":
                everything = True
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host, sep, port = item.rpartition(":")
            if sep and port.isdigit() and "]" not in port:
                host_ports.add((host.strip("[]").lstrip("*").lstrip("."), int(port)))
                continue
            domains.append(item.lstrip("*").lstrip("."))
        return cls(everything, tuple(domains), frozenset(host_ports), tuple(networks))

    def matches(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        if self.everything or (host, port) in self.host_ports:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(host == d or host.endswith("." + d) for d in self.domains)
        return any(address in n for n in self.networks)


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


T = TypeVar("T")


@dataclass
class Network:
    """The proxies and the trust store of the gateway's calls to vendors."""

    https_proxy: Proxy | None = None
    http_proxy: Proxy | None = None
    bypass: Bypass = field(default_factory=Bypass)
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    _routes: dict[tuple[str, str, int], Proxy | None] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Network:
        environ = os.environ if environ is None else environ
        found_all = _first(environ, "all_proxy", "ALL_PROXY")
        proxies: list[Proxy | None] = []
        for names in (("https_proxy", "HTTPS_PROXY"), ("http_proxy", "HTTP_PROXY")):
            found = _first(environ, *names) or found_all
            proxies.append(parse_proxy(*found) if found else None)
        bypass = Bypass.parse((_first(environ, "no_proxy", "NO_PROXY") or ("", ""))[1])
        cafile = environ.get("SSL_CERT_FILE", "").strip() or None
        capath = environ.get("SSL_CERT_DIR", "").strip() or None
        try:
            context = ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            raise NetworkConfigError(
                f"SSL_CERT_FILE={cafile} / SSL_CERT_DIR={capath} cannot be loaded: {exc}"
            ) from None
        return cls(proxies[0], proxies[1], bypass, context)

    @property
    def proxied(self) -> bool:
        return self.https_proxy is not None or self.http_proxy is not None

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy a call to this origin goes through (None: directly); cached."""
        origin = (scheme, host, port)
        try:
            return self._routes[origin]
        except KeyError:
            pass
        proxy = self.https_proxy if scheme == "https" else self.http_proxy
        if proxy is not None and self.bypass.matches(host, port):
            proxy = None
        if len(self._routes) < 4096:
            self._routes[origin] = proxy
        return proxy

    def proxy_url(self, url: str) -> str | None:
        """The proxy of a whole URL, as httpx's ``proxy=`` takes it."""
        parts = urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        proxy = self.proxy_for(parts.scheme, parts.hostname or "", parts.port or default)
        return proxy.url if proxy else None


class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``, then nothing (TLS takes the socket over)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.head.set_result(self.buffer[:end])
        elif len(self.buffer) > MAX_PROXY_HEAD:
            self.head.set_exception(ProxyError("the proxy's answer to CONNECT is not HTTP"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ProxyError("the proxy closed the connection during CONNECT"))


async def open_tunnel(
    proxy: Proxy, host: str, port: int, context: ssl.SSLContext,
    protocol_factory: Callable[[], T], timeout: float,
) -> tuple[asyncio.Transport, T]:
    """A TLS connection to ``host:port`` through ``proxy``'s ``CONNECT`` tunnel.

    The returned protocol has not been told ``connection_made``: the caller hands it
    the transport (``loop.start_tls`` does not)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        raw, reply = await loop.create_connection(_ConnectReply, proxy.host, proxy.port)
        try:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
            if proxy.authorization:
                head += f"Proxy-Authorization: {proxy.authorization}\r\n"
            raw.write((head + "\r\n").encode("latin-1"))
            status_line = (await reply.head).split(b"\r\n", 1)[0].decode("latin-1")
            words = status_line.split(" ", 2)
            if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
                raise ProxyError("the proxy's answer to CONNECT is not HTTP")
            if not 200 <= int(words[1]) < 300:
                raise ProxyError(f"the proxy refused the tunnel ({' '.join(words[1:])})")
            protocol = protocol_factory()
            transport = await loop.start_tls(
                raw, protocol, context, server_hostname=host)  # type: ignore[arg-type]
        except BaseException:
            raw.close()
            raise
    if transport is None:  # the proxy closed the tunnel during the handshake
        raise ProxyError("the proxy closed the tunnel")
    return transport, protocol


# -- calls to addresses a user gives (MCP servers): the server-side request forgery guard ------
#
# A user may make the gateway call a URL of their choosing (an MCP server). Unchecked,
# that would let a student reach what only the gateway can: its own ports, the hub's
# API, a cloud's metadata service (169.254.169.254), the school's private network. So:
#
# - a URL must be ``http(s)://host[:port]/...`` without credentials in it, and must be on
#   the school's allow-list (:class:`AllowList`, an admin setting);
# - every address a host name resolves to is checked when the connection is opened, and
#   the connection goes to that checked address (:class:`GuardedBackend`): resolving
#   once to check and again to connect would let a name that answers a public address
#   first and ``127.0.0.1`` next (DNS rebinding) through;
# - an address that is not public (loopback, private, link-local, shared, reserved,
#   multicast, unspecified; IPv4 inside IPv6 judged as the IPv4) is refused unless an
#   admin listed that very host, URL or network: ``*`` on the list (any public server)
#   never opens a private one;
# - a redirect is a new request and passes the same checks.
#
# Numbers written oddly (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``[::ffff:7f00:1]``)
# are judged by the address they resolve to, so they gain nothing. These calls never go
# through the environment's HTTP proxy: behind one, the gateway could not see where a
# call really lands.

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class DestinationRefused(ValueError):
    """A URL or address the gateway will not call for a user (the reason in words)."""


def non_public(address: str) -> str | None:
    """Why an IP address is not a public one (None: it is)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = non_public(str(embedded))
            if inner:
                return inner
    for test, words in ((ip.is_loopback, "a loopback address (this machine)"),
                        (ip.is_link_local, "a link-local address"),
                        (ip.is_private, "a private network address"),
                        (ip.is_multicast, "a multicast address"),
                        (ip.is_unspecified, "an unspecified address"),
                        (ip.is_reserved, "a reserved address")):
        if test:
            return words
    if not ip.is_global:
        return "not a public internet address"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, no brackets, no trailing dot
    port: int
    path: str

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_target(url: str) -> Target:
    """A URL a user gave, checked for its shape (not yet for where it points)."""
    if not isinstance(url, str) or len(url) > 2000 or any(c in url for c in "\r\n\t "):
        raise DestinationRefused("The URL must be one line of text without spaces.")
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError:
        raise DestinationRefused("The URL cannot be read (a bracket too many or too few?).") \
            from None
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("The URL must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "The URL must not carry a user name or password; put a token in a header instead.")
    host = (hostname or "").rstrip(".").lower()
    if not host:
        raise DestinationRefused("The URL names no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("The URL's port is not a number from 1 to 65535.") from None
    if not 0 < port < 65536:
        raise DestinationRefused("The URL's port is not a number from 1 to 65535.")
    return Target(parts.scheme, host, port, parts.path or "/")


@dataclass(frozen=True)
class AllowEntry:
    """One line of an allow-list: ``*``, a URL (its origin and path prefix), a host or
    ``*.domain`` (optionally ``:port``), or an IP network (``10.0.0.0/8``)."""

    text: str
    target: Target | None = None
    host: str | None = None
    port: int | None = None
    domain: bool = False
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        item = text.strip()
        if item == "*":
            return cls(item)
        if "://" in item:
            return cls(item, target=parse_target(item))
        try:
            return cls(item, network=ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            pass
        host, sep, port = item.rpartition(":")
        if not sep or "]" in port or not port.isdigit():
            host, port = item, ""
        host = host.strip("[]").rstrip(".").lower()
        domain = host.startswith("*.")
        host = host.removeprefix("*.")
        if not host or any(c in host for c in "/?#@ "):
            raise DestinationRefused(f"{text!r} is not a URL, host, *.domain or IP network.")
        return cls(item, host=host, port=int(port) if port else None, domain=domain)

    @property
    def everything_public(self) -> bool:
        return self.text == "*"

    def covers(self, target: Target) -> bool:
        """The URL is one this entry lists (``*`` covers every URL, public ones only)."""
        if self.everything_public:
            return True
        if self.target is not None:
            mine = self.target
            prefix = mine.path.rstrip("/")
            return (mine.origin == target.origin
                    and (target.path == mine.path or target.path.startswith(prefix + "/")
                         or not prefix))
        if self.network is not None:
            try:
                return ipaddress.ip_address(target.host) in self.network
            except ValueError:
                return False
        assert self.host is not None
        if self.port is not None and self.port != target.port:
            return False
        return target.host == self.host or (self.domain and target.host.endswith(
            "." + self.host))

    def opens(self, host: str, port: int, address: str) -> bool:
        """This entry names the host (or the address) explicitly, so a non-public
        address is allowed for it."""
        if self.everything_public:
            return False
        if self.network is not None:
            return ipaddress.ip_address(address.split("%", 1)[0]) in self.network
        target = Target("http", host, port, "/")
        if self.target is not None:
            return self.target.host == host and self.target.port == port
        return self.covers(target)


@dataclass(frozen=True)
class AllowList:
    """Which servers users may make the gateway call (a school's setting plus the
    classroom's own, which is always on it)."""

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...]) -> AllowList:
        return cls(tuple(AllowEntry.parse(item) for item in items if item.strip()))

    def check_url(self, url: str) -> Target:
        """The URL's target, when the list allows it (its addresses are checked on connect)."""
        target = parse_target(url)
        if target.host in LOCAL_NAMES or target.host.endswith(".localhost"):
            if not any(e.opens(target.host, target.port, "127.0.0.1") for e in self.entries):
                raise DestinationRefused(
                    f"{target.host} is this machine; the gateway does not call it for a user.")
        if not any(entry.covers(target) for entry in self.entries):
            raise DestinationRefused(
                f"{target.origin} is not on your school's list of MCP servers; ask an admin "
                "to add it.")
        return target

    def check_address(self, host: str, port: int, address: str) -> None:
        reason = non_public(address)
        if reason and not any(e.opens(host, port, address) for e in self.entries):
            raise DestinationRefused(
                f"{host} resolves to {address}, {reason}; the gateway calls such addresses "
                "only when an admin has listed that server.")


async def resolve(host: str, port: int) -> list[str]:
    """Every address of a host, as the system resolver gives them (literals included)."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=1)  # SOCK_STREAM
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in it: a host is resolved once, each of
    its addresses checked, and the connection opened to a checked address (TLS still
    checks the certificate against the host name). ``refused`` keeps the last refusal,
    in words, for a client library that turns exceptions into its own."""

    def __init__(self, allow: AllowList,
                 resolver: Callable[[str, int], Awaitable[list[str]]] = resolve,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow = allow
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()
        self.refused: DestinationRefused | None = None

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        name = host.strip("[]").rstrip(".").lower()
        try:
            addresses = await self.resolver(name, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{name} cannot be resolved ({exc})") from None
        try:
            if not addresses:
                raise DestinationRefused(f"{name} resolves to no address.")
            for address in addresses:
                self.allow.check_address(name, port, address)
        except DestinationRefused as refusal:
            self.refused = refusal
            raise httpcore.ConnectError(str(refusal)) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are never called for a user.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
