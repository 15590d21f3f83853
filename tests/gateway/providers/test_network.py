"""Real networks: every call to a vendor goes through the school's HTTP proxy (Debian's
tinyproxy, started here) unless ``NO_PROXY`` names the vendor, and trusts a private
certificate authority from ``SSL_CERT_FILE`` (made here, with the fake vendors behind
TLS signed by it). Proof is the proxy's own log and the fake vendors' request logs.

Fixtures (module-scoped, each stopped by PID): ``ca`` (the private CA's files),
``tls_fakes`` (``python -m tests.fakes`` over HTTPS with the CA's certificate),
``proxy`` (tinyproxy on a free loopback port) and ``locked_proxy`` (one that asks for
Basic credentials).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.network import Bypass, Network, NetworkConfigError, parse_proxy
from gateway.errors import ProviderUnavailable
from gateway.providers.http import Upstream, Vendor
from hub.config import HubSettings
from tests.gateway.providers.conftest import Fakes, keys_toml
from tests.support.network import Tinyproxy, private_ca
from tests.support.procs import REPO, stop_process, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello proxy"}]}
AUTH = {"Authorization": "Bearer sk-fake-main-0001"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_fakes(ca: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    from tests.support.procs import free_port
    port = free_port()
    log = tmp_path_factory.mktemp("tls-fakes") / "fakes.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes", "--port", str(port),
             "--certfile", str(ca["cert"]), "--keyfile", str(ca["key"])],
            cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", verify=str(ca["ca"])).status_code == 200,
                   30, "fake vendors over TLS", process)
        yield TlsFakes(url, process, str(ca["ca"]))
    finally:
        stop_process(process)


class TlsFakes(Fakes):
    def __init__(self, url: str, process: subprocess.Popen[bytes], ca: str) -> None:
        super().__init__(url, process)
        self.ca = ca

    def requests(self, vendor: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/{vendor}/_control/requests", verify=self.ca)
        response.raise_for_status()
        return [r for r in response.json() if "/_control/" not in r["path"]]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    running = Tinyproxy(tmp_path_factory.mktemp("proxy")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def locked_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    running = Tinyproxy(tmp_path_factory.mktemp("locked"), basic_auth=("school", "s3cret")).start()
    try:
        yield running
    finally:
        running.stop()


def vendor(environ: dict[str, str]) -> Vendor:
    return Vendor("openai", "https://api.openai.com/v1", Upstream(Network.from_environ(environ)))


def authority(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the environment's variables ---------------------------------------------------------


def test_no_proxy_matches_domains_on_dot_boundaries_addresses_networks_and_ports():
    rules = Bypass.parse(" .school.example , vendor.test:8443, 10.0.0.0/8, ::1 ,, api.x")
    assert rules.matches("school.example", 443) and rules.matches("a.b.school.example", 443)
    assert not rules.matches("badschool.example", 443)
    assert rules.matches("vendor.test", 8443) and not rules.matches("vendor.test", 443)
    assert rules.matches("10.2.3.4", 80) and not rules.matches("11.2.3.4", 80)
    assert rules.matches("::1", 80) and rules.matches("API.X.", 443)
    assert not rules.matches("127.0.0.1", 80)  # nothing is exempt unless listed (as curl)
    assert Bypass.parse("*").matches("anything.example", 1)


def test_proxy_variables_are_read_as_other_tools_read_them(ca):
    network = Network.from_environ({
        "HTTPS_PROXY": "http://upper:1", "https_proxy": "proxy.school:3128",
        "ALL_PROXY": "http://all:8080", "no_proxy": "internal.school",
        "SSL_CERT_FILE": str(ca["ca"]),
    })
    assert network.https_proxy is not None and network.https_proxy.host == "proxy.school"
    assert network.https_proxy.port == 3128  # no scheme means http://
    assert network.http_proxy is not None and network.http_proxy.host == "all"
    assert network.proxy_for("https", "internal.school", 443) is None
    assert network.proxy_url("https://api.openai.com/v1/x") == "http://proxy.school:3128"
    stats = network.ssl_context.cert_store_stats()
    assert stats["x509_ca"] == 1  # the private CA in place of the system's store
    with pytest.raises(NetworkConfigError, match="only http:// proxies"):
        Network.from_environ({"HTTPS_PROXY": "socks5://p:1080"})
    with pytest.raises(NetworkConfigError, match="SSL_CERT_FILE"):
        Network.from_environ({"SSL_CERT_FILE": str(ca["ca"].parent / "missing.pem")})
    secret = parse_proxy("HTTPS_PROXY", "http://us%40er:p%3Ass@p:1")
    assert secret.authorization == "Basic dXNAZXI6cDpzcw=="  # base64 of us@er:p:ss
    assert "p%3Ass" not in repr(secret)


def test_the_hub_passes_the_network_variables_to_the_gateway(tmp_path):
    environ = {"CLASSROOM_DATA_DIR": str(tmp_path), "HTTPS_PROXY": "http://proxy:3128",
               "no_proxy": "hub,.svc", "SSL_CERT_FILE": "/etc/school/ca.pem",
               "SSL_CERT_DIR": "/etc/school/certs", "CLASSROOM_PORT": "8123",
               "UNRELATED": "x"}
    settings = HubSettings.from_environ(environ)
    managed = settings.gateway_environment()
    supervised = settings.gateway_process_environment("token")
    for env in (managed, supervised):
        assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["no_proxy"] == "hub,.svc"
        assert env["SSL_CERT_FILE"] == "/etc/school/ca.pem"
        assert env["SSL_CERT_DIR"] == "/etc/school/certs"
        assert "UNRELATED" not in env


# -- through a real proxy to a vendor behind a private CA --------------------------------


def test_https_calls_tunnel_through_the_proxy_and_trust_the_private_ca(tls_fakes, proxy, ca):
    before = len(proxy.requests())
    seen = len(tls_fakes.requests("openai"))
    client = vendor({"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca["ca"])})
    base = f"{tls_fakes.base('openai')}/v1"

    async def scenario() -> tuple[Any, list[str]]:
        try:
            reply = await client.send("POST", f"{base}/chat/completions", timeout=10,
                                      headers=AUTH, json=CHAT)
            async with AsyncExitStack() as stack:
                streamed = await client.open(stack, "POST", f"{base}/chat/completions",
                                             timeout=10, headers=AUTH,
                                             json={**CHAT, "stream": True})
                lines = [line async for batch in client.line_batches(streamed)
                         for line in batch if line.startswith("data:")]
            return reply, lines
        finally:
            await client.client.aclose()

    reply, lines = run(scenario())
    assert reply.status_code == 200 and "hello proxy" in reply.json()["choices"][0][
        "message"]["content"]
    assert lines[-1] == "data: [DONE]"
    tunnels = proxy.requests()[before:]
    # One tunnel, kept alive for the second call; the proxy saw only the tunnel's address.
    assert tunnels == [f"CONNECT {authority(tls_fakes.url)} HTTP/1.1"]
    received = tls_fakes.requests("openai")[seen:]
    assert [r["path"] for r in received] == ["/v1/chat/completions"] * 2


def test_no_proxy_calls_the_vendor_directly(tls_fakes, proxy, ca):
    before = len(proxy.requests())
    seen = len(tls_fakes.requests("openai"))
    client = vendor({"HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1",
                     "SSL_CERT_FILE": str(ca["ca"])})

    async def scenario() -> Any:
        try:
            return await client.send("POST", f"{tls_fakes.base('openai')}/v1/chat/completions",
                                     timeout=10, headers=AUTH, json=CHAT)
        finally:
            await client.client.aclose()

    assert run(scenario()).status_code == 200
    assert proxy.requests()[before:] == []
    assert len(tls_fakes.requests("openai")) == seen + 1


def test_without_the_private_ca_the_vendor_is_not_trusted(tls_fakes, proxy):
    client = vendor({"HTTPS_PROXY": proxy.url})  # the system's store: the CA is unknown

    async def scenario() -> None:
        try:
            await client.send("POST", f"{tls_fakes.base('openai')}/v1/chat/completions",
                              timeout=10, headers=AUTH, json=CHAT)
        finally:
            await client.client.aclose()

    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        run(scenario())


def test_plain_http_vendors_go_through_the_proxy_in_absolute_form(fakes, proxy):
    before = len(proxy.requests())
    client = vendor({"HTTP_PROXY": proxy.url})
    url = f"{fakes.base('openai')}/v1/chat/completions"

    async def scenario() -> Any:
        try:
            return await client.send("POST", url, timeout=10, headers=AUTH, json=CHAT)
        finally:
            await client.client.aclose()

    assert run(scenario()).status_code == 200
    assert proxy.requests()[before:] == [f"POST {url} HTTP/1.1"]
    assert fakes.requests("openai")[-1]["path"] == "/v1/chat/completions"


def test_multipart_uploads_take_the_same_proxy_and_ca(tls_fakes, proxy, ca):
    before = len(proxy.requests())
    seen = len(tls_fakes.requests("openai"))
    client = vendor({"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca["ca"])})
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
           b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe"
           b"\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

    async def scenario() -> Any:
        try:
            return await client.send(
                "POST", f"{tls_fakes.base('openai')}/v1/images/edits", timeout=10,
                headers=AUTH, data={"model": "gpt-image-1", "prompt": "a hat"},
                files={"image": ("cat.png", png, "image/png")})
        finally:
            await client.client.aclose()

    reply = run(scenario())
    assert reply.status_code == 200, reply.content
    assert proxy.requests()[before:] == [f"CONNECT {authority(tls_fakes.url)} HTTP/1.1"]
    assert [r["path"] for r in tls_fakes.requests("openai")[seen:]] == ["/v1/images/edits"]


def test_a_proxy_that_wants_credentials_gets_them_from_the_url(tls_fakes, locked_proxy, ca):
    base = f"{tls_fakes.base('openai')}/v1/chat/completions"

    async def call(proxy_url: str) -> Any:
        client = vendor({"HTTPS_PROXY": proxy_url, "SSL_CERT_FILE": str(ca["ca"])})
        try:
            return await client.send("POST", base, timeout=10, headers=AUTH, json=CHAT)
        finally:
            await client.client.aclose()

    with pytest.raises(ProviderUnavailable, match=r"proxy refused the tunnel \(407"):
        run(call(locked_proxy.url))
    with_credentials = locked_proxy.url.replace("http://", "http://school:s3cret@")
    assert run(call(with_credentials)).status_code == 200


def test_a_gateway_process_reads_the_proxy_and_ca_from_its_environment(
        start_gateway, tls_fakes, proxy, ca, tokens, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml(tls_fakes))
    gateway = start_gateway(CLASSROOM_KEYS_FILE=str(keys), HTTPS_PROXY=proxy.url,
                            NO_PROXY="", SSL_CERT_FILE=str(ca["ca"]))
    before = len(proxy.requests())
    seen = len(tls_fakes.requests("anthropic"))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {tokens['student_a']}"},
                          json={**CHAT, "model": "claude-haiku-4-5"})
    assert response.status_code == 200, response.text
    assert "hello proxy" in response.json()["choices"][0]["message"]["content"]
    assert proxy.requests()[before:] == [f"CONNECT {authority(tls_fakes.url)} HTTP/1.1"]
    received = tls_fakes.requests("anthropic")[seen:]
    assert [r["path"] for r in received] == ["/v1/messages"]
