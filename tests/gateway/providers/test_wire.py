"""The gateway's HTTP/1.1 client against raw TCP (and TLS) servers that write exact bytes:
keep-alive reuse, chunked and compressed answers, bodies that end with the connection,
redirects (credentials never leave the origin), timeouts, a server that hangs up, an
answer left halfway, the bound on requests in flight, and header injection; the limits
(how long a request waits for a connection slot, the largest answer, a download's total
deadline) and the errors they become."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from gateway.providers.http import Upstream, Vendor
from gateway.providers.wire import (
    AnswerTooLarge,
    DeadlineExceeded,
    Limits,
    ServerDisconnected,
    SlotTimeout,
    WireError,
    WirePool,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Request:
    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = lines[0].split(" ")
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        self.body = body


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request = Request(head, b"")
    request.body = await reader.readexactly(int(request.headers.get("content-length", "0")))
    return request


def reply(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Server:
    """Counts connections and keeps every request it read."""

    def __init__(self, answer: Callable[[Request, Server], Awaitable[bytes | None]]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[Request] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                data = await self.answer(request, self)
                if data is None:  # the answer closes the connection itself
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def one_shot(data: bytes) -> tuple[asyncio.Server, str]:
    """A server that answers each connection's first request with ``data`` and hangs up."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await writer.drain()
        writer.close()

    served = await asyncio.start_server(handle, "127.0.0.1", 0)
    return served, f"http://127.0.0.1:{served.sockets[0].getsockname()[1]}"


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given():
    async def answer(request: Request, server: Server) -> bytes:
        return reply(b'{"n": %d}' % len(server.requests), "content-type: application/json")

    async def scenario() -> None:
        server = Server(answer)
        base = await server.start()
        pool = WirePool()
        try:
            bodies = []
            for i in range(3):
                response = await pool.request(
                    "POST", f"{base}/v1/chat?x=1", headers={"Authorization": "Bearer k"},
                    body=b'{"i": %d}' % i, timeout=5, params={"alt": "sse"})
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json"
                bodies.append(await response.read())
        finally:
            await pool.aclose()
            await server.stop()
        assert bodies == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
        assert server.connections == 1
        first = server.requests[0]
        assert (first.method, first.target) == ("POST", "/v1/chat?x=1&alt=sse")
        assert first.headers["host"] == base.removeprefix("http://")
        assert first.headers["authorization"] == "Bearer k"
        assert [r.body for r in server.requests] == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']

    run(scenario)


def test_chunked_and_compressed_answers_are_decoded_whole_and_as_they_come():
    text = b"data: " + b"x" * 3000 + b"\n\n"
    packed = gzip.compress(text)
    deflated = zlib.compress(text)

    async def answer(request: Request, server: Server) -> bytes:
        data = packed if request.target == "/gzip" else deflated
        encoding = "gzip" if request.target == "/gzip" else "deflate"
        chunks = [data[i:i + 500] for i in range(0, len(data), 500)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        return (f"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                f"content-encoding: {encoding}\r\n\r\n").encode() + body

    async def scenario() -> None:
        server = Server(answer)
        base = await server.start()
        pool = WirePool()
        try:
            whole = await (await pool.request("GET", f"{base}/gzip", headers={}, body=None,
                                              timeout=5)).read()
            streamed = [part async for part in (await pool.request(
                "GET", f"{base}/deflate", headers={}, body=None, timeout=5)).iter_any()]
        finally:
            await pool.aclose()
            await server.stop()
        assert whole == text
        assert b"".join(streamed) == text
        assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"
        assert server.connections == 1  # both read to the end: the connection was reused

    run(scenario)


def test_a_body_without_length_ends_with_the_connection_which_is_not_reused():
    async def scenario() -> None:
        served, base = await one_shot(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        pool = WirePool()
        try:
            first = await pool.request("GET", f"{base}/a", headers={}, body=None, timeout=5)
            assert await first.read() == b"until the end"
            second = await pool.request("GET", f"{base}/b", headers={}, body=None, timeout=5)
            assert await second.read() == b"until the end"
            assert not pool._idle.get(("http", "127.0.0.1", served.sockets[0].getsockname()[1]))
        finally:
            await pool.aclose()
            served.close()

    run(scenario)


def test_redirects_are_followed_and_credentials_never_leave_the_origin():
    async def other_answer(request: Request, server: Server) -> bytes:
        return reply(b"elsewhere")

    async def scenario() -> None:
        other = Server(other_answer)
        other_base = await other.start()

        async def answer(request: Request, server: Server) -> bytes:
            if request.target == "/moved":  # same origin, method and body kept
                return reply(b"", "location: /kept", status="307 Temporary Redirect")
            if request.target == "/kept":
                return reply(b"kept:" + request.body)
            if request.target == "/see-other":
                return reply(b"", "location: /result", status="303 See Other")
            if request.target == "/result":
                return reply(request.method.encode())
            return reply(b"", f"location: {other_base}/file", status="302 Found")

        server = Server(answer)
        base = await server.start()
        pool = WirePool()
        secrets = {"Authorization": "Bearer sk-secret", "x-api-key": "sk-ant-secret",
                   "x-goog-api-key": "AIza-secret", "Content-Type": "application/json"}
        try:
            kept = await pool.request("POST", f"{base}/moved", headers=secrets, body=b"{}",
                                      timeout=5)
            assert await kept.read() == b"kept:{}"
            seen = await pool.request("POST", f"{base}/see-other", headers=secrets, body=b"{}",
                                      timeout=5)
            assert await seen.read() == b"GET"
            away = await pool.request("GET", f"{base}/away", headers=secrets, body=None,
                                      timeout=5)
            assert await away.read() == b"elsewhere"
        finally:
            await pool.aclose()
            await server.stop()
            await other.stop()
        assert server.requests[1].headers["authorization"] == "Bearer sk-secret"  # same host
        assert server.requests[3].body == b"" and server.requests[3].method == "GET"
        moved_away = other.requests[0].headers
        assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(moved_away)
        assert moved_away["host"] == other_base.removeprefix("http://")

    run(scenario)


def test_a_server_that_stops_answering_times_out_and_its_connection_is_dropped():
    async def scenario() -> None:
        release = asyncio.Event()

        async def answer(request: Request, server: Server) -> bytes | None:
            if request.target == "/headers-only":
                return b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
            if request.target == "/silent":
                await release.wait()
                return None
            return reply(b"fine")

        server = Server(answer)
        base = await server.start()
        vendor = Vendor("openai", base, Upstream())
        try:
            with pytest.raises(ProviderTimeout, match="did not answer in time"):
                await vendor.send("POST", f"{base}/silent", json={}, timeout=0.2)
            with pytest.raises(ProviderTimeout):
                await vendor.send("POST", f"{base}/headers-only", json={}, timeout=0.2)
            assert (await vendor.send("POST", f"{base}/ok", json={}, timeout=5)).content == b"fine"
        finally:
            release.set()
            await vendor.client.aclose()
            await server.stop()
        assert server.connections == 3  # neither half-read connection was used again

    run(scenario)


def test_a_server_that_hangs_up_mid_answer_is_provider_unavailable():
    async def scenario() -> None:
        served, base = await one_shot(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        pool = WirePool()
        vendor = Vendor("anthropic", base, Upstream())
        try:
            response = await pool.request("GET", base + "/", headers={}, body=None, timeout=5)
            with pytest.raises(ServerDisconnected):
                await response.read()
            with pytest.raises(ProviderUnavailable, match="Anthropic could not be reached"):
                await vendor.send("POST", base + "/v1/messages", json={}, timeout=5)
        finally:
            await pool.aclose()
            await vendor.client.aclose()
            served.close()

    run(scenario)


def test_an_answer_left_halfway_closes_its_connection():
    async def scenario() -> None:
        left = asyncio.Event()
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            request = await read_request(reader)
            assert request is not None
            if request.target == "/half":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nfirst ten.")
                await writer.drain()
                await left.wait()
                writer.write(b"second ten")
            else:
                writer.write(reply(b"whole"))
            await writer.drain()
            writer.close()

        served = await asyncio.start_server(handle, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{served.sockets[0].getsockname()[1]}"
        pool = WirePool()
        try:
            response = await pool.request("GET", base + "/half", headers={}, body=None,
                                          timeout=5)
            parts = response.iter_any()
            assert await anext(parts) == b"first ten."
            await parts.aclose()  # the caller went away
            left.set()
            assert pool._busy == 0 and not any(pool._idle.values())
            again = await pool.request("GET", base + "/", headers={}, body=None, timeout=5)
            assert await again.read() == b"whole"
        finally:
            await pool.aclose()
            served.close()
        assert connections == 2

    run(scenario)


def test_requests_beyond_the_limit_wait_for_a_connection():
    async def scenario() -> None:
        gate, full = asyncio.Event(), asyncio.Event()
        in_flight = peak = 0

        async def answer(request: Request, server: Server) -> bytes:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight == 2:
                full.set()
            await gate.wait()
            in_flight -= 1
            return reply(request.target.encode())

        server = Server(answer)
        base = await server.start()
        pool = WirePool(limit=2)

        async def call(i: int) -> bytes:
            return await (await pool.request("GET", f"{base}/{i}", headers={}, body=None,
                                             timeout=5)).read()

        try:
            calls = [asyncio.ensure_future(call(i)) for i in range(5)]
            await full.wait()  # the first two reached the server
            assert pool._busy == 2 and len(pool._queue) == 3
            gate.set()
            answers = await asyncio.gather(*calls)
        finally:
            await pool.aclose()
            await server.stop()
        assert answers == [f"/{i}".encode() for i in range(5)]
        assert peak == 2 and pool._busy == 0
        assert server.connections == 2

    run(scenario)


def test_idle_connections_expire_and_header_injection_is_refused():
    async def answer(request: Request, server: Server) -> bytes:
        return reply(b"ok")

    async def scenario() -> None:
        server = Server(answer)
        base = await server.start()
        pool = WirePool(keepalive=0)
        try:
            for _ in range(2):
                assert await (await pool.request("GET", base, headers={}, body=None,
                                                 timeout=5)).read() == b"ok"
            with pytest.raises(WireError, match="line break"):
                await pool.request("GET", base, headers={"x-a": "1\r\nx-b: 2"}, body=None,
                                   timeout=5)
        finally:
            await pool.aclose()
            await server.stop()
        assert server.connections == 2  # the idle one had outlived keepalive=0
        assert len(server.requests) == 2 and pool._busy == 0

    run(scenario)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_is_verified_against_the_trust_store(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def answer(request: Request, server: Server) -> bytes:
        return reply(b"secure")

    async def scenario() -> None:
        server = Server(answer)
        base = await server.start(server_tls)
        trusting = WirePool(ssl_context=ssl.create_default_context(cafile=str(cert)))
        default = WirePool()  # the system's trust store does not know this certificate
        try:
            response = await trusting.request("GET", base, headers={}, body=None, timeout=5)
            assert await response.read() == b"secure"
            with pytest.raises(ssl.SSLCertVerificationError):
                await default.request("GET", base, headers={}, body=None, timeout=5)
        finally:
            await trusting.aclose()
            await default.aclose()
            await server.stop()
        assert default._busy == 0

    run(scenario)


def test_a_request_waits_for_a_connection_slot_only_as_long_as_the_limit():
    async def scenario() -> None:
        gate, holding = asyncio.Event(), asyncio.Event()

        async def answer(request: Request, server: Server) -> bytes:
            holding.set()
            await gate.wait()
            return reply(b"late")

        server = Server(answer)
        base = await server.start()
        upstream = Upstream(limits=Limits(connections=1, slot_wait=0.2))
        vendor = Vendor("openai", base, upstream)
        try:
            first = asyncio.ensure_future(vendor.send("GET", f"{base}/a", timeout=5))
            await holding.wait()
            with pytest.raises(SlotTimeout, match="all 1 connections"):
                await upstream.wire.request("GET", f"{base}/b", headers={}, body=None,
                                            timeout=5)
            with pytest.raises(ProviderUnavailable, match="too many calls") as refused:
                await vendor.send("GET", f"{base}/c", timeout=5)
            assert refused.value.code == "provider_unavailable"
            assert not upstream.wire._queue  # the timed-out waiters left the queue
            gate.set()
            assert (await first).content == b"late"
            # The slot came back: the next request gets it at once.
            assert (await vendor.send("GET", f"{base}/d", timeout=5)).content == b"late"
        finally:
            await upstream.aclose()
            await server.stop()
        assert [r.target for r in server.requests] == ["/a", "/d"]

    run(scenario)


def test_an_answer_past_the_size_limit_is_dropped_also_when_it_is_compressed():
    plain = reply(b"x" * 5000)
    bomb = gzip.compress(b"\0" * 200_000)  # 200 kB once decompressed, tiny on the wire
    packed = reply(bomb, "content-encoding: gzip")

    async def scenario() -> None:
        for data in (plain, packed):
            served, base = await one_shot(data)
            upstream = Upstream(limits=Limits(max_answer_bytes=4096))
            try:
                with pytest.raises(AnswerTooLarge):
                    await (await upstream.wire.request("GET", base, headers={}, body=None,
                                                       timeout=5)).read()
                with pytest.raises(ProviderError, match="larger than the classroom accepts"):
                    await Vendor("kling", base, upstream).send("GET", base, timeout=5)
            finally:
                await upstream.aclose()
                served.close()
            assert upstream.wire._busy == 0 and not upstream.wire._idle.get(
                ("http", "127.0.0.1", int(base.rsplit(":", 1)[1])))

    run(scenario)


def test_a_download_has_a_total_deadline_beyond_the_wait_between_reads():
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        try:
            while True:  # a byte every 20 ms: never silent for the 5 s read timeout
                writer.write(b"v")
                await writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass

    async def scenario() -> None:
        served = await asyncio.start_server(trickle, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{served.sockets[0].getsockname()[1]}"
        upstream = Upstream(download_deadline=0.3)
        try:
            with pytest.raises(DeadlineExceeded):
                await (await upstream.wire.request("GET", base, headers={}, body=None,
                                                   timeout=5, deadline=0.3)).read()
            with pytest.raises(ProviderTimeout, match="did not finish downloading within 0.3 s"):
                await Vendor("kling", base, upstream).download(f"{base}/video.mp4", timeout=5)
        finally:
            await upstream.aclose()
            served.close()
        assert upstream.wire._busy == 0

    run(scenario)
