"""The server-side request forgery guard (gateway/config/network.py): attacked with addresses in
every spelling, local names, DNS answers that point inside, rebinding, and redirects.

Addresses in odd spellings go through the machine's real resolver (getaddrinfo), which is
what would turn ``2130706433`` into 127.0.0.1 for an attacker."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.network import (
    AllowEntry,
    AllowList,
    DestinationRefused,
    GuardedBackend,
    non_public,
    parse_target,
)
from gateway.tooluse.client import guarded_client

INSIDE = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
          "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]
INSIDE6 = ["::1/128", "fe80::/10", "fc00::/7", "ff00::/8"]
ANY_PUBLIC = AllowList.parse(["*"])


def spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Ways to write one IPv4 address that resolvers accept."""
    n = int(address)
    a, b, c, d = address.packed
    return [str(address), str(n), hex(n), f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
            f"{a}.{(b << 16) | (c << 8) | d}", f"[::ffff:{address}]",
            f"[::ffff:{(n >> 16):x}:{(n & 0xFFFF):x}]", f"[64:ff9b::{address}]"]


class Recorder(httpcore.AsyncNetworkBackend):
    """Where the guard really connects (and it connects nowhere)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None,
                          socket_options=None):
        self.asked.append(host)
        raise httpcore.ConnectError("recorded")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def connect(backend: GuardedBackend, host: str, port: int = 80) -> None:
    asyncio.run(backend.connect_tcp(host, port))


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1",
                                     "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                                     "2002:7f00:1::1", "64:ff9b::a00:1", "::"])
def test_inside_addresses_are_named_as_such(address):
    assert non_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert non_public(address) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(INSIDE).flatmap(lambda net: st.ip_addresses(network=net)),
       st.data())
def test_every_spelling_of_an_inside_ipv4_address_is_refused(address, data):
    written = data.draw(st.sampled_from(spellings(address)))
    recorder = Recorder()
    backend = GuardedBackend(ANY_PUBLIC, inner=recorder)
    host = written.strip("[]")
    with pytest.raises(httpcore.ConnectError) as refused:
        connect(backend, host)
    # refused by the guard (not merely unresolvable), and never connected
    assert recorder.asked == []
    if backend.refused is not None:
        assert "only when an admin has listed" in str(backend.refused)
    else:  # the system resolver itself rejected this spelling: nothing to connect to
        assert "cannot be resolved" in str(refused.value)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(INSIDE6).flatmap(lambda net: st.ip_addresses(network=net)))
def test_inside_ipv6_addresses_are_refused(address):
    recorder = Recorder()
    backend = GuardedBackend(ANY_PUBLIC, inner=recorder)
    with pytest.raises(httpcore.ConnectError):
        connect(backend, str(address))
    assert recorder.asked == [] and backend.refused is not None


@pytest.mark.parametrize("url", ["http://localhost/mcp", "http://LOCALHOST./mcp",
                                 "http://app.localhost:8000/", "http://ip6-localhost/"])
def test_local_names_are_refused_even_on_an_open_list(url):
    with pytest.raises(DestinationRefused, match="this machine"):
        ANY_PUBLIC.check_url(url)


@pytest.mark.parametrize("url,words", [
    ("ftp://example.org/", "http:// or https://"), ("http://user:pw@example.org/", "password"),
    ("http:///nohost", "no host"), ("http://example.org:99999/", "port"),
    ("http://exa mple.org/", "one line"), ("javascript:alert(1)", "http:// or https://")])
def test_malformed_urls_are_refused_in_words(url, words):
    with pytest.raises(DestinationRefused, match=words):
        parse_target(url)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_target_or_a_refusal(text):
    try:
        target = parse_target("http://" + text)
    except DestinationRefused:
        return
    assert 0 < target.port < 65536 and target.host == target.host.lower()


def test_a_name_resolving_inside_is_refused_and_rebinding_gains_nothing():
    answers = {"evil.example": [["93.184.216.34", "127.0.0.1"]],
               "rebind.example": [["93.184.216.34"], ["127.0.0.1"]]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]

    recorder = Recorder()
    backend = GuardedBackend(ANY_PUBLIC, resolver=resolver, inner=recorder)
    with pytest.raises(httpcore.ConnectError, match="127.0.0.1"):
        connect(backend, "evil.example")
    assert recorder.asked == []
    # the first connection goes to the address that was checked, never to the name
    with pytest.raises(httpcore.ConnectError, match="recorded"):
        connect(backend, "rebind.example")
    assert recorder.asked == ["93.184.216.34"]
    # the second resolution answers 127.0.0.1: checked again, refused
    with pytest.raises(httpcore.ConnectError, match="loopback"):
        connect(backend, "rebind.example")
    assert recorder.asked == ["93.184.216.34"]


def test_an_admin_listing_opens_exactly_what_it_names():
    listed = AllowList.parse(["http://127.0.0.1:8765/mcp", "10.9.0.0/16",
                              "*.school.internal", "tools.example.org:8443", "*"])
    assert listed.check_url("http://127.0.0.1:8765/mcp").port == 8765
    listed.check_address("127.0.0.1", 8765, "127.0.0.1")
    with pytest.raises(DestinationRefused):
        listed.check_address("127.0.0.1", 8766, "127.0.0.1")  # another port on loopback
    with pytest.raises(DestinationRefused):
        listed.check_url("http://localhost:8765/mcp")
    listed.check_address("10.9.3.4", 80, "10.9.3.4")
    with pytest.raises(DestinationRefused):
        listed.check_address("10.8.3.4", 80, "10.8.3.4")
    listed.check_address("mcp.school.internal", 443, "192.168.4.4")
    with pytest.raises(DestinationRefused):
        listed.check_address("school.internal.evil.org", 443, "192.168.4.4")
    with pytest.raises(DestinationRefused):
        listed.check_address("tools.example.org", 443, "10.0.0.1")  # listed port is 8443
    only = AllowList.parse(["https://tools.example.org/mcp"])
    only.check_url("https://tools.example.org/mcp/")
    for outside in ("https://tools.example.org/admin", "https://other.example.org/mcp",
                    "http://tools.example.org/mcp"):
        with pytest.raises(DestinationRefused, match="not on your school's list"):
            only.check_url(outside)
    with pytest.raises(DestinationRefused):
        AllowEntry.parse("has space/x")


class Redirector(BaseHTTPRequestHandler):
    target = ""
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        if self.path == "/go":
            self.send_response(302)
            self.send_header("Location", self.target)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"inside")

    def log_message(self, *args) -> None:
        pass


def test_a_redirect_to_an_unlisted_address_is_refused():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        Redirector.hits = []
        allow = AllowList.parse([f"http://127.0.0.1:{port}/go"])

        async def follow(target: str) -> httpx.Response:
            Redirector.target = target
            backend = GuardedBackend(allow)
            async with guarded_client(allow, backend) as client:
                return await client.get(f"http://127.0.0.1:{port}/go")

        for target in (f"http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest",
                       f"http://localhost:{port}/secret"):
            with pytest.raises(httpx.ConnectError, match="list|machine"):
                asyncio.run(follow(target))
        assert Redirector.hits == ["/go"] * 3  # the redirect's target was never called
    finally:
        server.shutdown()
        server.server_close()
