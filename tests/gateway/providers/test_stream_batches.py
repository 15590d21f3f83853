"""A vendor's stream is read in the batches the network delivers: lines split across
reads are joined, and the pieces of one read are marked so the pipeline sends them to
the caller in one write (``Piece.flush`` on the last of them). A real TCP server sends
the stream in separate writes, each released by the test, so the reads are known."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

from gateway.providers.http import SSEParser, Upstream
from gateway.providers.openai import OpenAIProvider


def event(data: dict | str) -> bytes:
    return b"data: " + (data if isinstance(data, str) else json.dumps(data)).encode() + b"\n\n"


def delta(content: str | None = None, finish: str | None = None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {} if content is None else {"content": content},
         "finish_reason": finish}]}


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(parts: list[bytes], gates: list[asyncio.Event]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for part, gate in zip(parts, gates, strict=True):
            await gate.wait()
            writer.write(chunked(part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_pieces_of_one_read_are_sent_together_and_split_lines_are_joined():
    first = event({"id": "c1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    first += event(delta("Hello")) + event(delta(" wor"))
    split = event(delta("ld, ünïcode"))
    parts = [
        first + split[:17],  # three events, and the start of a fourth
        split[17:] + event(delta(None, "stop")),
        event({"id": "c1", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        + event("[DONE]"),
    ]

    async def scenario() -> list[list[tuple[str, bool]]]:
        gates = [asyncio.Event() for _ in parts]
        server = await serve(parts, gates)
        port = server.sockets[0].getsockname()[1]
        upstream = Upstream()
        provider = OpenAIProvider(upstream)
        reads: list[list[tuple[str, bool]]] = []
        try:
            async with AsyncExitStack() as stack:
                streamed = await provider.http.open(
                    stack, "POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"stream": True}, timeout=10)
                pieces = provider._pieces(streamed)
                for gate in gates:
                    gate.set()  # the server sends the next part only now: one read each
                    batch: list[tuple[str, bool]] = []
                    while not batch or not batch[-1][1]:
                        piece = await anext(pieces)
                        batch.append((piece.text, piece.flush))
                        if piece.usage is not None:
                            assert piece.usage.total_tokens == 7 and piece.final
                        assert piece.raw is not None and json.loads(piece.raw) == piece.payload
                    reads.append(batch)
                assert [p async for p in pieces] == []  # [DONE] ends it
        finally:
            await upstream.aclose()
            server.close()
            await server.wait_closed()
        return reads

    reads = asyncio.run(scenario())
    assert reads == [
        [("", False), ("Hello", False), (" wor", True)],
        [("ld, ünïcode", False), ("", True)],
        [("", True)],  # [DONE] came in the same read: what precedes it is sent at once
    ]


def test_sse_parser_keeps_an_unfinished_event_until_its_blank_line():
    parser = SSEParser()
    assert parser.feed(["event: message_start", "data: {\"a\":"]) == []
    assert parser.feed(["data: 1}", "", ": a comment", "data:x"]) == [
        ("message_start", '{"a":\n1}')]
    assert parser.close() == [(None, "x")]
