"""Benchmark 2: what the gateway adds on top of the provider, against LiteLLM's proxy.

One fake OpenAI upstream (``benchmarks.upstream``), reached three ways in one
run, interleaved per setting: directly, through our gateway (identity, pool
admission and history all on), and through LiteLLM's proxy (installed only for
this, in ``.bench/litellm-venv``, one worker, no database, pointed at the same
upstream). For each target, concurrency and streaming mode: requests per
second, p50/p99 latency, time to first token, errors, and RSS.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    REPO,
    VENV_BIN,
    free_port,
    rss_mib,
    run_loadgen,
    start,
    stop_process,
)

LITELLM_VERSION = "1.103.7"  # newest release whose pins install from this registry (1.103.8+ need certifi>=2026.10.19)
LITELLM_VENV = REPO / ".bench" / "litellm-venv"
BENCH_TOKEN = "bench-admin-token"


def ensure_litellm() -> Path | None:
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists():
        return binary
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (benchmark only)…")
    base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    subprocess.run([base, "-m", "venv", str(LITELLM_VENV)], check=True)
    result = subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print("litellm could not be installed; comparing without it:\n" + result.stderr[-1500:])
        return None
    return binary


def _gateway(tmp: Path, upstream: str, name: str = "gateway",
             extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    (tmp / "keys.toml").write_text(
        f'[[openai]]\nname = "bench"\napi_key = "sk-bench-upstream-000000000000"\nbase_url = "{upstream}/v1"\n'
    )
    (tmp / "tokens.json").write_text(
        json.dumps(
            {"tokens": {BENCH_TOKEN: {"name": "bench", "tenant": "default", "role": "admin"}}}
        )
    )
    port = free_port()
    env = {
        "CLASSROOM_DATA_DIR": str(tmp / f"{name}-data"),
        "CLASSROOM_KEYS_FILE": str(tmp / "keys.toml"),
        "CLASSROOM_AUTH_TOKENS_FILE": str(tmp / "tokens.json"),
        **(extra or {}),
    }
    proc = start(
        [
            str(VENV_BIN / "classroom"),
            "gateway",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env,
        tmp / f"{name}.log",
        f"http://127.0.0.1:{port}/health",
    )
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def _litellm(binary: Path, tmp: Path, upstream: str) -> tuple[subprocess.Popen, str]:
    (tmp / "litellm.yaml").write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-bench-upstream-000000000000\n"
        "general_settings:\n"
        f"  master_key: sk-{BENCH_TOKEN}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  drop_params: true\n"
    )
    port = free_port()
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "NO_DOCS": "True",
        "DISABLE_ADMIN_UI": "True",
        "LITELLM_TELEMETRY": "False",
    }
    proc = start(
        [
            str(binary),
            "--config",
            str(tmp / "litellm.yaml"),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ],
        env,
        tmp / "litellm.log",
        f"http://127.0.0.1:{port}/health/liveliness",
        timeout=180,
    )
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def run(quick: bool = False) -> list[dict]:
    concurrencies = [1, 16] if quick else [1, 16, 64]
    duration = 3.0 if quick else 8.0
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmpdir:
        tmp = Path(tmpdir)
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        procs: list[subprocess.Popen] = []
        try:
            up = start(
                [str(VENV_BIN / "python"), "-m", "benchmarks.upstream", "--port", str(up_port)],
                {"PYTHONPATH": str(REPO)},
                tmp / "upstream.log",
                f"{upstream}/v1/models",
            )
            procs.append(up)
            gw, gw_url = _gateway(tmp, upstream)
            procs.append(gw)
            targets: dict[str, tuple[str, str, int | None]] = {
                "direct": (f"{upstream}/v1/chat/completions", "none", None),
                "gateway": (gw_url, BENCH_TOKEN, gw.pid),
            }
            shared = _shared_state(tmp, procs)
            if shared is not None:
                replicas = []
                for i in range(3):
                    replica, replica_url = _gateway(tmp, upstream, f"replica{i}", shared)
                    procs.append(replica)
                    replicas.append((replica, replica_url))
                targets["gw redis+pg ×1"] = (replicas[0][1], BENCH_TOKEN, replicas[0][0].pid)
                targets["gw redis+pg ×3"] = (",".join(u for _, u in replicas), BENCH_TOKEN,
                                             replicas[0][0].pid)
            binary = ensure_litellm()
            if binary is not None:
                ll, ll_url = _litellm(binary, tmp, upstream)
                procs.append(ll)
                targets["litellm"] = (ll_url, f"sk-{BENCH_TOKEN}", ll.pid)
            idle = {name: rss_mib(pid) for name, (_, _, pid) in targets.items() if pid}
            for stream in (False, True):
                for concurrency in concurrencies:
                    for name, (url, token, pid) in targets.items():  # interleaved
                        before = _redis_calls(shared) if "redis" in name else 0
                        figures = run_loadgen(
                            url, token, "gpt-4o-mini", concurrency, duration, stream
                        )
                        if "redis" in name:  # warm-up calls included: an upper bound
                            calls = figures["n"]
                            figures["redis_per_call"] = (
                                (_redis_calls(shared) - before) / calls if calls else float("nan"))
                        figures.update(
                            target=name,
                            stream=stream,
                            concurrency=concurrency,
                            rss_mib=rss_mib(pid) if pid else float("nan"),
                            idle_rss_mib=idle.get(name, float("nan")),
                        )
                        results.append(figures)
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    return results


def _shared_state(tmp: Path, procs: list[Any]) -> dict[str, str] | None:
    """A real Redis and PostgreSQL for the replicas' rows (None: not installed here)."""
    from tests.support.postgres import postgres_bin, start_postgres
    from tests.support.redis import redis_server_bin, start_redis

    if redis_server_bin() is None or postgres_bin() is None:
        print("redis-server or PostgreSQL missing: no rows for replicas (make install-test)")
        return None
    redis, postgres = start_redis(), start_postgres()
    procs.append(_Stopper(redis.close))
    procs.append(_Stopper(postgres.stop))
    return {"CLASSROOM_REDIS_URL": redis.url, "CLASSROOM_DB_URL": postgres.create_database(),
            "CLASSROOM_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "_REDIS_PORT": str(redis.port)}


class _Stopper:
    """Stops a server of tests/support like the benchmark's processes (by PID inside)."""

    def __init__(self, stop: Any) -> None:
        self.stop = stop

    def poll(self) -> int:
        self.stop()
        return 0


def _redis_calls(shared: dict[str, str] | None) -> int:
    """Scripts Redis has run so far (each is one round trip of the pool)."""
    import redis

    if shared is None:
        return 0
    stats = redis.Redis(port=int(shared["_REDIS_PORT"])).info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha",
                                                                 "cmdstat_eval"))


def litellm_version() -> str:
    return LITELLM_VERSION


if __name__ == "__main__":
    os.chdir(REPO)
    for row in run(quick=True):
        print(row)
