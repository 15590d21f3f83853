"""A deliberately cheap fake OpenAI upstream for overhead benchmarks.

Raw asyncio, HTTP/1.1 keep-alive, fixed answers: it should cost almost nothing,
so that what a benchmark measures is the proxy in front of it. Non-streaming
``/v1/chat/completions`` returns one completion with usage; ``stream: true``
returns ten content chunks, a usage chunk and ``[DONE]`` with chunked encoding.

    python -m benchmarks.upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import json

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
).encode()


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": []
        if usage
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage:
        body["usage"] = usage
    data = b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM = b"".join(
    [_chunk({"role": "assistant", "content": ""})]
    + [_chunk({"content": f" word{i}"}) for i in range(10)]
    + [
        _chunk({}, "stop"),
        _chunk({}, usage={"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22}),
    ]
    + [b"e\r\ndata: [DONE]\n\n\r\n", b"0\r\n\r\n"]
)
MODELS = json.dumps(
    {
        "object": "list",
        "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "bench", "created": 1}],
    }
).encode()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            if method == "GET" and path.endswith("/models"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(MODELS), MODELS)
                )
            elif b'"stream":true' in body.replace(b" ", b""):
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                    + STREAM
                )
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(COMPLETION), COMPLETION)
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
