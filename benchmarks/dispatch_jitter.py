"""How long after its lease's grant a call reaches the vendor (dispatch jitter).

The pool's RPM/TPM windows are exact on its own clock at the grant; the vendor counts a
request when it arrives. Two requests ``rpm_limit`` grants apart are a window apart at the
vendor only if their grant-to-arrival delays differ by less than the pool's margin
(``CLASSROOM_RATE_LIMIT_MARGIN_MS``), so this measures those delays under load:

- a gateway served by uvicorn (``classroom gateway serve``) with one OpenAI key pointing
  at the fake vendor of the tests (``python -m tests.fakes``), no limits on the key, so
  every call is granted at once and the delay is the gateway's own;
- each call carries a nonce; its grant is its run's ``started_at`` in the gateway's
  history (a pooled run's start is its lease's grant), its arrival is the time the fake
  recorded when the request came in (``time.monotonic()``, the clock the pool runs on:
  one clock for every process of the machine);
- scenarios: calls one at a time (idle), bursts of calls sent at once (a class pressing
  Run together), bursts queued behind a key's cool-down and granted in one turn of the
  loop (as when the window slides past a burst: the grants are dispatched one after the
  other), and a steady load of many clients in a loop, streamed and not.

    python -m benchmarks.dispatch_jitter [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._common import REPO, VENV_BIN, free_port, percentile, start, stop_process

TOKEN = "bench-jitter-student"


def _env(tmp: Path, fakes_url: str) -> dict[str, str]:
    (tmp / "keys.toml").write_text(
        f'[[openai]]\nname = "jitter"\napi_key = "sk-fake-jitter-0001"\n'
        f'base_url = "{fakes_url}/openai/v1"\n'
    )
    (tmp / "tokens.json").write_text(json.dumps({"tokens": {
        TOKEN: {"name": "jitter", "tenant": "default", "role": "admin"},
    }}))
    return {
        "CLASSROOM_DATA_DIR": str(tmp / "data"),
        "CLASSROOM_KEYS_FILE": str(tmp / "keys.toml"),
        "CLASSROOM_AUTH_TOKENS_FILE": str(tmp / "tokens.json"),
        "CLASSROOM_TENANTS_DIR": str(REPO / "tenants"),
        "CLASSROOM_QUEUE_MAX_WAIT_S": "600",
    }


async def _call(client: httpx.AsyncClient, url: str, nonce: str, stream: bool) -> None:
    body = {"model": "gpt-4o-mini", "stream": stream, "max_tokens": 8,
            "messages": [{"role": "user", "content": f"jitter {nonce}"}]}
    response = await client.post(url, json=body)
    await response.aread()
    response.raise_for_status()


async def _scenarios(url: str, fakes_url: str, rounds: int) -> dict[str, list[str]]:
    """Run every scenario; the nonces each one used."""
    nonces: dict[str, list[str]] = {}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=120, limits=limits) as client:
        async def run(name: str, batch: list[tuple[str, bool]]) -> None:
            nonces.setdefault(name, []).extend(n for n, _ in batch)
            await asyncio.gather(*(_call(client, url, n, s) for n, s in batch))

        for i in range(10 * rounds):
            await run("idle, one at a time", [(f"idle-{i}", False)])
        for size in (20, 50, 100):
            for r in range(rounds):
                await run(f"burst of {size} at once",
                          [(f"burst{size}-{r}-{j}", j % 2 == 1) for j in range(size)])
                await asyncio.sleep(0.2)
        for size in (20, 50, 100):
            for r in range(rounds):
                # A 429 cools the key down for 1 s; the burst queues behind it and is granted
                # in one turn of the loop when the cool-down ends, as when a window slides
                # past a burst: the grants are dispatched one after the other.
                (await client.post(f"{fakes_url}/openai/_control/fail", json={
                    "times": 1, "status": 429, "retry_after": 1})).raise_for_status()
                await run(f"burst of {size} granted together (after a cool-down)",
                          [(f"queued{size}-{r}-{j}", j % 2 == 1) for j in range(size + 1)])
        stop = time.monotonic() + 5 * rounds
        steady: list[str] = []
        nonces["steady: 64 clients in a loop, half streamed"] = steady

        async def client_loop(c: int) -> None:
            k = 0
            while time.monotonic() < stop:
                nonce = f"steady-{c}-{k}"
                steady.append(nonce)
                await _call(client, url, nonce, c % 2 == 1)
                k += 1

        await asyncio.gather(*(client_loop(c) for c in range(64)))
    return nonces


def measure(rounds: int = 3) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-jitter-") as tmpdir:
        tmp = Path(tmpdir)
        fakes_port, port = free_port(), free_port()
        fakes = start([str(VENV_BIN / "python"), "-m", "tests.fakes", "--port", str(fakes_port)],
                      {}, tmp / "fakes.log", f"http://127.0.0.1:{fakes_port}/health")
        fakes_url = f"http://127.0.0.1:{fakes_port}"
        try:
            gateway = start([str(VENV_BIN / "classroom"), "gateway", "serve", "--port", str(port)],
                            _env(tmp, fakes_url), tmp / "gateway.log",
                            f"http://127.0.0.1:{port}/health")
            try:
                nonces = asyncio.run(
                    _scenarios(f"http://127.0.0.1:{port}/v1/chat/completions", fakes_url,
                               rounds))
                received = httpx.get(f"{fakes_url}/openai/_control/requests", timeout=60).json()
            finally:
                stop_process(gateway)
        finally:
            stop_process(fakes)
        # time.time() - time.monotonic(), sampled now: both clocks are the machine's
        offset = min((time.time() - time.monotonic()) for _ in range(1000))
        with sqlite3.connect(tmp / "data" / "gateway.sqlite") as db:
            granted = {text.removeprefix("jitter "): started - offset for text, started in
                       db.execute("select request_text, started_at from runs")}
    arrived = {}
    for request in received:
        messages = (request.get("json") or {}).get("messages") or []
        if messages:
            arrived[str(messages[-1]["content"]).removeprefix("jitter ")] = request["time"]
    results = []
    for name, used in nonces.items():
        delays = [1000 * (arrived[n] - granted[n]) for n in used if n in arrived and n in granted]
        results.append({
            "scenario": name, "calls": len(delays), "missing": len(used) - len(delays),
            "p50_ms": percentile(delays, 0.5), "p99_ms": percentile(delays, 0.99),
            "max_ms": max(delays, default=float("nan")),
            "spread_ms": (max(delays) - min(delays)) if delays else float("nan"),
        })
    everything = [r for r in results if r["calls"]]
    results.append({
        "scenario": "all", "calls": sum(r["calls"] for r in everything),
        "missing": sum(r["missing"] for r in results),
        "p50_ms": float("nan"), "p99_ms": max(r["p99_ms"] for r in everything),
        "max_ms": max(r["max_ms"] for r in everything),
        "spread_ms": max(r["max_ms"] for r in everything)
        - min(r["max_ms"] - r["spread_ms"] for r in everything),
    })
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    for row in measure(parser.parse_args().rounds):
        print(json.dumps(row))
