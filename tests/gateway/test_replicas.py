"""Several gateway processes sharing one Redis and one PostgreSQL are one gateway.

Real parts: three ``classroom gateway serve`` processes (and one with ``--workers 2``),
one real Redis and one real PostgreSQL started here, the fake vendors in their own
process. Every limit is checked from the vendor's own request log (when each request
arrived and finished, with which key), never from the gateway's counters.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.providers.conftest import fake_vendors, fakes  # noqa: F401 - fixtures
from tests.support.procs import VENV_BIN, free_port, http_ok, stop_process, wait_until

CHAT = "/v1/chat/completions"


def keys_toml(base: str, *entries: str) -> str:
    return "".join(f'[[openai]]\napi_key = "sk-fake-replica-{i:04d}"\nbase_url = "{base}/v1"\n'
                   f"{entry}\n" for i, entry in enumerate(entries))


KEYS = (  # school_a's calls use the first two, school_b's the third
    'name = "two-at-once"\nconcurrency_limit = 2\npriority = 1\ntenant_scope = ["school_a"]',
    'name = "five-a-minute"\nrpm_limit = 5\ntenant_scope = ["school_a"]',
    'name = "one"\nconcurrency_limit = 1\ntenant_scope = ["school_b"]',
)


def shared_env(redis_url: str, database_url: str, **more: str) -> dict[str, str]:
    """What replicas share: the Redis, the database, the master key."""
    return {
        "CLASSROOM_REDIS_URL": redis_url,
        "CLASSROOM_REDIS_HEARTBEAT_S": "1",
        "CLASSROOM_DB_URL": database_url,
        "CLASSROOM_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "CLASSROOM_RETRY_BASE_SECONDS": "0.01",
        "CLASSROOM_CHAT_TIMEOUT_SECONDS": "30",
        "CLASSROOM_QUEUE_MAX_WAIT_S": "6",
        **more,
    }


def start_replicas(start_gateway, env: dict[str, str], keys_file: Path, n: int):
    with ThreadPoolExecutor(n) as pool:  # at the same moment: migrations run once
        return list(pool.map(lambda _: start_gateway(
            startup_timeout=240, CLASSROOM_KEYS_FILE=str(keys_file), **env), range(n)))


@pytest.fixture(scope="module")
def replicas(start_gateway, redis_server, postgres, fake_vendors, tmp_path_factory):  # noqa: F811
    """Three replicas on one Redis and one PostgreSQL database, for the module (a start
    takes up to a minute on a busy machine). The last test kills the first."""
    keys_file = tmp_path_factory.mktemp("replicas") / "keys.toml"
    keys_file.write_text(keys_toml(fake_vendors.base("openai"), *KEYS))
    env = shared_env(redis_server.url, postgres.create_database(),
                     CLASSROOM_REDIS_PREFIX=f"test:replicas:{os.urandom(4).hex()}")
    return start_replicas(start_gateway, env, keys_file, 3)


def call(url: str, token: str, content: str = "hi", stream: bool = False,
         timeout: float = 60) -> httpx.Response:
    return httpx.post(url + CHAT, headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                      json={"model": "gpt-4o-mini", "stream": stream, "max_tokens": 20,
                            "messages": [{"role": "user", "content": content}]})


def overlap(requests: list[dict[str, Any]]) -> int:
    events = sorted([(r["time"], 1) for r in requests] + [(r["finished"], -1) for r in requests])
    depth = best = 0
    for _, delta in events:
        depth += delta
        best = max(best, depth)
    return best


def by_key(requests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        out.setdefault(r["headers"]["authorization"][-4:], []).append(r)
    return out


def test_limits_hold_at_the_vendor_whichever_replica_a_call_lands_on(
        replicas, fakes, tokens):  # noqa: F811
    slow = "story [[words n=8 delay=0.05]]"
    users = [tokens["student_a"], tokens["student_a2"], tokens["teacher_a"]]

    def one(i: int) -> int:
        return call(replicas[i % 3].url, users[i % 3], slow, stream=i % 2 == 0).status_code

    with ThreadPoolExecutor(24) as threads:
        statuses = list(threads.map(one, range(24)))
    received = by_key([r for r in fakes.requests("openai") if r["path"].endswith(CHAT)])
    assert overlap(received["0000"]) <= 2
    assert len(received.get("0001", [])) <= 5  # within this minute, whichever replica sent
    # what the keys could not take in time was refused with queue_timeout, not sent
    assert statuses.count(200) == len(received["0000"]) + len(received.get("0001", []))
    assert set(statuses) <= {200, 429}
    assert len(received["0000"]) >= 4


def test_a_flood_on_one_replica_does_not_delay_a_student_on_another(
        replicas, fakes, tokens):  # noqa: F811
    a, b = replicas[1], replicas[2]
    slow = "[[words n=3 delay=0.3]]"  # ~1 s each: the flood lasts several seconds
    assert call(b.url, tokens["teacher_b"], "warm").status_code == 200  # b's first call
    fakes.reset()
    with ThreadPoolExecutor(12) as threads:
        flood = [threads.submit(call, a.url, tokens["student_b"], "flood " + slow, True)
                 for _ in range(8)]
        wait_until(lambda: len(fakes.requests("openai")) >= 1, 20, "the flood starts")
        polite = threads.submit(call, b.url, tokens["teacher_b"], "polite [[words n=1 delay=0.03]]")
        assert polite.result().status_code == 200
        statuses = [f.result().status_code for f in flood]
    order = [r["json"]["messages"][-1]["content"].split()[0]
             for r in sorted(fakes.requests("openai"), key=lambda r: r["time"])]
    # fair across users: the polite call waits for the one running and at most one more,
    # not for the flood queued before it on the other replica
    assert order.index("polite") <= 2, order
    assert statuses.count(200) >= 1


def test_a_frozen_replica_cannot_release_a_reclaimed_slot(
        replicas, fakes, tokens):  # noqa: F811
    a, b = replicas[0], replicas[1]
    with ThreadPoolExecutor(3) as threads:
        frozen = threads.submit(call, a.url, tokens["student_b"],
                                "frozen [[words n=6 delay=0.1]]", True)
        wait_until(lambda: len(fakes.requests("openai")) == 1, 20, "the first call holds it")
        a.process.send_signal(signal.SIGSTOP)
        try:
            second = threads.submit(call, b.url, tokens["teacher_b"],
                                    "second [[words n=6 delay=0.4]]", True)
            wait_until(lambda: len(fakes.requests("openai")) == 2, 20, "reclaimed after 1 s")
        finally:
            a.process.send_signal(signal.SIGCONT)
        frozen.result()  # the woken replica finishes its call and "releases" its lease
        third = threads.submit(call, b.url, tokens["student_b"], "third")
        assert second.result().status_code == 200 and third.result().status_code == 200
    received = {r["json"]["messages"][-1]["content"].split()[0]: r
                for r in fakes.requests("openai")}
    # the woken replica's release did not free the slot the second call held
    assert received["third"]["time"] >= received["second"]["finished"]


def test_a_killed_replica_gives_its_slot_back_within_the_heartbeat(
        replicas, fakes, tokens):  # noqa: F811
    a, b = replicas[0], replicas[1]
    with ThreadPoolExecutor(2) as threads:
        threads.submit(call, a.url, tokens["student_b"], "long [[words n=60 delay=1]]",
                       True, 10)
        wait_until(lambda: len(fakes.requests("openai")) == 1, 20, "the long call holds it")
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(10)
        started = time.monotonic()
        answer = call(b.url, tokens["teacher_b"], "after the kill")
        waited = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert waited < 5, waited  # a heartbeat of 1 s (and a poll), not the 300 s lease TTL


def test_redis_down_is_pool_unavailable_and_the_gateway_recovers_by_itself(
        start_gateway, tmp_path, fakes, tokens, postgres):  # noqa: F811
    from tests.support.redis import start_redis

    server = start_redis()
    try:
        keys_file = tmp_path / "keys.toml"
        keys_file.write_text(keys_toml(fakes.base("openai"), *KEYS))
        (gw,) = start_replicas(start_gateway, shared_env(server.url, postgres.create_database()),
                               keys_file, 1)
        assert call(gw.url, tokens["student_b"]).status_code == 200
        assert httpx.get(gw.url + "/health?ready=true").status_code == 200
        server.stop()
        refused = call(gw.url, tokens["student_b"])
        ready = httpx.get(gw.url + "/health?ready=true")
        sent_while_down = len(fakes.requests("openai"))
        server.start()
        wait_until(lambda: httpx.get(gw.url + "/health?ready=true").status_code == 200, 20,
                   "ready again")
        again = call(gw.url, tokens["student_b"])
    finally:
        server.close()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "pool_unavailable"
    assert ready.status_code == 503 and ready.json()["pool"]
    assert sent_while_down == 1  # nothing reached the vendor while the pool was down
    assert again.status_code == 200


def test_workers_need_redis_and_run_with_it(tmp_path, tokens_file, tokens, redis_server,
                                            redis_prefix, postgres):
    env = {**os.environ, "CLASSROOM_DATA_DIR": str(tmp_path),
           "CLASSROOM_AUTH_TOKENS_FILE": str(tokens_file)}
    refused = subprocess.run([str(VENV_BIN / "classroom"), "gateway", "serve", "--workers", "2"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "CLASSROOM_REDIS_URL" in refused.stderr
    port = free_port()
    env.update({"CLASSROOM_REDIS_URL": redis_server.url, "CLASSROOM_REDIS_PREFIX": redis_prefix,
                "CLASSROOM_DB_URL": postgres.create_database(),
                "CLASSROOM_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()})
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(VENV_BIN / "classroom"), "gateway", "serve", "--workers",
                                "2", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until(http_ok(f"http://127.0.0.1:{port}/health"), 240, "two workers", process)
        answer = httpx.post(f"http://127.0.0.1:{port}{CHAT}", timeout=30,
                            headers={"Authorization": f"Bearer {tokens['student_a']}"},
                            json={"model": "mock/echo", "messages": [
                                {"role": "user", "content": "two workers"}]})
    finally:
        stop_process(process)
        log.close()
    assert answer.status_code == 200, Path(tmp_path / "workers.log").read_text()[-2000:]
    assert "two workers" in answer.text
