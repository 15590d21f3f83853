"""Closed-loop HTTP load: ``concurrency`` clients each send requests back to back.

Run in its own process (``python -m benchmarks.loadgen``) so it does not share
an event loop with what it measures; prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp


async def one(
    session: aiohttp.ClientSession, url: str, headers: dict, body: bytes, stream: bool
) -> tuple[float, float | None, bool]:
    start = time.perf_counter()
    first: float | None = None
    async with session.post(url, data=body, headers=headers) as response:
        ok = response.status == 200
        if stream:
            async for chunk in response.content.iter_any():
                if first is None and b"content" in chunk:
                    first = time.perf_counter() - start
        else:
            await response.read()
    return time.perf_counter() - start, first, ok


async def run(
    url: str, token: str, model: str, concurrency: int, duration: float, stream: bool, warmup: float
) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
    }
    if stream:
        payload["stream"] = True
    body = json.dumps(payload).encode()
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        begin = time.perf_counter()
        measure_from = begin + warmup
        stop_at = measure_from + duration

        urls = url.split(",")  # several: the load spread across them (replicas)

        async def worker(index: int) -> None:
            nonlocal errors
            target = urls[index % len(urls)]
            while time.perf_counter() < stop_at:
                try:
                    latency, first, ok = await one(session, target, headers, body, stream)
                except (TimeoutError, aiohttp.ClientError):
                    latency, first, ok = 0.0, None, False
                if time.perf_counter() >= measure_from:
                    if ok:
                        latencies.append(latency)
                        if first is not None:
                            ttfts.append(first)
                    else:
                        errors += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"latencies": latencies, "ttfts": ttfts, "errors": errors, "duration": duration}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="none")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run(args.url, args.token, args.model, args.concurrency, args.duration, args.stream,
            args.warmup)
    )
    lat, ttft = sorted(result["latencies"]), sorted(result["ttfts"])

    def pct(values: list[float], q: float) -> float | None:
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    summary = {
        "n": len(lat), "errors": result["errors"], "duration": result["duration"],
        "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "mean": sum(lat) / len(lat) if lat else None,
        "ttft_p50": pct(ttft, 0.5),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
