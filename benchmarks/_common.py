"""What every benchmark shares: processes on free loopback ports, stats, RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.procs import REPO, VENV_BIN, free_port, http_ok, stop_process, wait_until

__all__ = [
    "REPO",
    "VENV_BIN",
    "free_port",
    "http_ok",
    "stop_process",
    "wait_until",
    "percentile",
    "rss_mib",
    "jain",
    "start",
    "run_loadgen",
]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index: 1.0 when everyone got the same."""
    if not values or not any(values):
        return float("nan")
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (a proxy may fork workers)."""
    total = 0
    pids = [pid] + _children(pid)
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    from tests.support.hub import descendants

    return sorted(descendants(pid))


def start(
    cmd: list[str], env: dict[str, str], log: Path, ready_url: str, timeout: float = 90
) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(http_ok(ready_url), timeout, " ".join(cmd[:3]), proc)
    except Exception:
        stop_process(proc)
        sys.stderr.write(log.read_text(errors="replace")[-3000:])
        raise
    return proc


def run_loadgen(
    url: str,
    token: str,
    model: str,
    concurrency: int,
    duration: float,
    stream: bool,
    warmup: float = 1.0,
) -> dict:
    cmd = [
        str(VENV_BIN / "python"),
        "-m",
        "benchmarks.loadgen",
        "--url",
        url,
        "--token",
        token,
        "--model",
        model,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    if stream:
        cmd.append("--stream")
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=str(REPO), timeout=duration + warmup + 120
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    nan = float("nan")

    def ms(value: float | None) -> float:
        return value * 1000 if value is not None else nan

    return {
        "rps": result["n"] / duration,
        "p50_ms": ms(result["p50"]),
        "p99_ms": ms(result["p99"]),
        "ttft_p50_ms": ms(result["ttft_p50"]),
        "errors": result["errors"],
        "n": result["n"],
        "mean_ms": ms(result["mean"]),
    }
