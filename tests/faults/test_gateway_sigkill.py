"""The gateway killed with SIGKILL in the middle of 20 streams: nothing stays stuck."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3

import httpx

STREAMS = 20


async def hold_stream(
    client: httpx.AsyncClient, url: str, token: str, i: int, streaming: asyncio.Queue
) -> None:
    """Open a stream, report once it carries content, then keep it open until killed."""
    body = {
        "model": "mock/lorem",
        "stream": True,
        "messages": [{"role": "user", "content": f"story {i}"}],
    }
    try:
        async with client.stream(
            "POST",
            url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            reported = False
            async for line in response.aiter_lines():
                if not reported and '"content":"' in line and '"content":""' not in line:
                    reported = True
                    streaming.put_nowait(i)
    except httpx.HTTPError:
        pass  # the gateway died under us: expected


def test_sigkill_mid_stream_then_restart(start_gateway, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text('[[mock]]\nname = "slow-mock"\nconcurrency_limit = 30\n')
    students = {
        f"kill-student-{i:02d}": {"name": f"k{i:02d}", "tenant": "school_a", "role": "student"}
        for i in range(STREAMS)
    }
    admin_token = "kill-admin-token"
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(
        json.dumps(
            {
                "tokens": {
                    **students,
                    admin_token: {"name": "root", "tenant": "default", "role": "admin"},
                }
            }
        )
    )
    env = {
        "CLASSROOM_MOCK_TOKENS_PER_SECOND": "2",
        "CLASSROOM_KEYS_FILE": str(keys),
        "CLASSROOM_AUTH_TOKENS_FILE": str(tokens_file),
    }
    first = start_gateway(**env)
    student_tokens = list(students)

    async def scenario() -> None:
        streaming: asyncio.Queue[int] = asyncio.Queue()
        async with httpx.AsyncClient(timeout=60) as client:
            tasks = [
                asyncio.create_task(hold_stream(client, first.url, student_tokens[i], i, streaming))
                for i in range(STREAMS)
            ]
            for _ in range(STREAMS):
                await asyncio.wait_for(streaming.get(), 60)
            # every stream is delivering: the gateway holds 20 leases and 20 reservations
            async with httpx.AsyncClient() as admin:
                pool = (
                    await admin.get(
                        first.url + "/api/pool", headers={"Authorization": f"Bearer {admin_token}"}
                    )
                ).json()
            assert sum(k["active_leases"] for k in pool["keys"]) == STREAMS
            os.kill(first.process.pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
        first.process.wait(timeout=10)

    asyncio.run(scenario())
    db = first.data_dir / "gateway.sqlite"
    with sqlite3.connect(db) as conn:
        running = conn.execute("select count(*) from runs where status = 'running'").fetchone()[0]
    assert running == STREAMS  # the crash left them mid-flight

    second = start_gateway(data_dir=first.data_dir, **env)
    headers = {"Authorization": f"Bearer {admin_token}"}
    with sqlite3.connect(db) as conn:
        statuses = dict(
            conn.execute("select status, count(*) from runs group by status").fetchall()
        )
        codes = {
            r[0] for r in conn.execute("select error_code from runs where status = 'interrupted'")
        }
        integrity = conn.execute("pragma integrity_check").fetchone()[0]
    assert statuses == {"interrupted": STREAMS}
    assert codes == {"gateway_restarted"}
    assert integrity == "ok"
    pool = httpx.get(second.url + "/api/pool", headers=headers).json()
    assert [k["active_leases"] for k in pool["keys"]] == [0]
    for token in student_tokens:
        me = httpx.get(second.url + "/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        # nothing reserved for the dead streams is still held against the students
        assert me["quota"]["requests_today"]["remaining"] == me["quota"]["requests_today"]["limit"]
        assert me["quota"]["concurrent"]["running"] == 0
        assert me["quota"]["budget_month"]["spent_usd"] == 0
    # and the gateway works again
    answer = httpx.post(
        second.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {student_tokens[0]}"},
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "back?"}]},
        timeout=30,
    )
    assert answer.json()["choices"][0]["message"]["content"] == "back?"
