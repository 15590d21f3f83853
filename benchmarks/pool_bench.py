"""Benchmark 1: pool efficiency and fairness, through the whole gateway.

Keys with known limits serve the ``mock`` provider with a fixed latency, and N
simulated students hammer it (each keeps ``per_student`` calls in flight). From
the gateway's own history (lease grant = ``started_at``, release = ``finished_at``,
the key's name) the benchmark reconstructs every key's concurrency and every
sliding 60-second window, and reports:

- throughput ÷ the theoretical bound min(Σconcurrency ÷ latency, ΣRPM ÷ 60)  (target ≥ 0.95)
- limit violations (target 0)
- Jain's fairness index over students' completed calls (target ≥ 0.95)
- queue wait p50 / p99 (``started_at - queued_at``)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks._common import REPO, VENV_BIN, free_port, jain, percentile, start, stop_process

EDGE = 0.002  # s: clock tolerance when reconstructing windows from stored timestamps


@dataclass
class Scenario:
    name: str
    keys: int
    concurrency: int
    rpm: int
    latency_s: float
    students: int
    per_student: int
    duration_s: float


SCENARIOS = [
    Scenario(
        "concurrency-bound",
        keys=3,
        concurrency=2,
        rpm=6000,
        latency_s=0.2,
        students=40,
        per_student=2,
        duration_s=20,
    ),
    Scenario(
        "rpm-bound",
        keys=3,
        concurrency=2,
        rpm=60,
        latency_s=0.05,
        students=40,
        per_student=2,
        duration_s=60,
    ),
]


def _files(tmp: Path, sc: Scenario) -> dict[str, str]:
    keys = "\n".join(
        f'[[mock]]\nname = "k{i}"\nconcurrency_limit = {sc.concurrency}\nrpm_limit = {sc.rpm}\n'
        for i in range(sc.keys)
    )
    (tmp / "keys.toml").write_text(keys)
    tokens = {
        f"bench-student-{i:03d}": {"name": f"s{i:03d}", "tenant": "school_a", "role": "student"}
        for i in range(sc.students)
    }
    (tmp / "tokens.json").write_text(json.dumps({"tokens": tokens}))
    return {
        "CLASSROOM_DATA_DIR": str(tmp / "data"),
        "CLASSROOM_KEYS_FILE": str(tmp / "keys.toml"),
        "CLASSROOM_AUTH_TOKENS_FILE": str(tmp / "tokens.json"),
        "CLASSROOM_MOCK_TTFT_MS": str(sc.latency_s * 1000),
        "CLASSROOM_MOCK_TOKENS_PER_SECOND": "0",
        "CLASSROOM_QUEUE_MAX_WAIT_S": "600",
    }


async def _hammer(url: str, sc: Scenario) -> tuple[float, float]:
    body = json.dumps(
        {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=900)
    ) as session:
        began = time.time()
        stop_at = began + sc.duration_s

        async def student(i: int) -> None:
            headers = {
                "Authorization": f"Bearer bench-student-{i:03d}",
                "Content-Type": "application/json",
            }
            while time.time() < stop_at:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

        await asyncio.gather(
            *(student(i) for i in range(sc.students) for _ in range(sc.per_student))
        )
        return began, began + sc.duration_s


def _violations(rows: list[tuple], sc: Scenario) -> int:
    count = 0
    by_key: dict[str, list[tuple[float, float]]] = {}
    for key, began, ended in rows:
        by_key.setdefault(key, []).append((began, ended))
    for intervals in by_key.values():
        events = sorted([(s + EDGE, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
        depth = 0
        for _, delta in events:
            depth += delta
            if depth > sc.concurrency:
                count += 1
        starts = sorted(s for s, _ in intervals)
        j = 0
        for i, s in enumerate(starts):
            while starts[j] <= s - 60 + EDGE:
                j += 1
            if i - j + 1 > sc.rpm:
                count += 1
    return count


def run_scenario(sc: Scenario) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmpdir:
        tmp = Path(tmpdir)
        env = _files(tmp, sc)
        port = free_port()
        proc = start(
            [str(VENV_BIN / "classroom"), "gateway", "serve", "--port", str(port)],
            env,
            tmp / "gateway.log",
            f"http://127.0.0.1:{port}/health",
        )
        try:
            began, ended = asyncio.run(_hammer(f"http://127.0.0.1:{port}/v1/chat/completions", sc))
        finally:
            stop_process(proc)
        with sqlite3.connect(tmp / "data" / "gateway.sqlite") as db:
            rows = db.execute(
                "select user, key_name, queued_at, started_at, finished_at, status from runs"
            ).fetchall()
    ok = [r for r in rows if r[5] == "ok"]
    errors = len(rows) - len(ok)
    in_window = [r for r in ok if r[4] <= ended]
    throughput = len(in_window) / (ended - began)
    bound = min(sc.keys * sc.concurrency / sc.latency_s, sc.keys * sc.rpm / 60)
    per_student: dict[str, int] = {}
    for r in in_window:
        per_student[r[0]] = per_student.get(r[0], 0) + 1
    counts = [per_student.get(f"s{i:03d}", 0) for i in range(sc.students)]
    waits = [r[3] - r[2] for r in ok]
    return {
        "scenario": sc.name,
        "setup": f"{sc.keys} keys × conc {sc.concurrency}, RPM {sc.rpm}; {sc.latency_s * 1000:.0f} ms; "
        f"{sc.students} students × {sc.per_student}",
        "throughput_rps": throughput,
        "bound_rps": bound,
        "efficiency": throughput / bound,
        "violations": _violations([(r[1], r[3], r[4]) for r in ok], sc),
        "fairness": jain(counts),
        "wait_p50_s": percentile(waits, 0.5),
        "wait_p99_s": percentile(waits, 0.99),
        "errors": errors,
        "calls": len(ok),
    }


def run(quick: bool = False) -> list[dict]:
    scenarios = SCENARIOS[:1] if quick else SCENARIOS
    return [run_scenario(sc) for sc in scenarios]


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))
    for result in run():
        print(result)
