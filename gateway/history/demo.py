"""A made-up but realistic history: for demos, the admin notebooks and the tests.

``seed(connection, now=...)`` writes two weeks of calls by the students and
teachers of two schools (school hours, a few models, some errors, latencies
that depend on the model), a few conversations, calls running right now and
some audit entries. Deterministic for a given ``seed``. Every piece of text a
person wrote carries ``note-<user>-`` so that tests can tell whose it is.

Run ``python -m gateway.history.demo sqlite:///data/gateway.sqlite`` to fill a
development database (the schema must exist: start the gateway once).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from gateway.history.models import audit_log, conversations, messages, runs
from gateway.pricing import Catalog, TokenUsage, token_cost

# school -> [(user, role)]: the same names as the tests' static tokens.
PEOPLE: dict[str, list[tuple[str, str]]] = {
    "school_a": [("stu_a", "student"), ("stu_a2", "student"), ("teach_a", "teacher")],
    "school_b": [("stu_b", "student"), ("stu_b2", "student"), ("teach_b", "teacher")],
    "default": [("root_admin", "admin")],
}
# model -> (weight, median latency s)
MODELS: dict[str, tuple[float, float]] = {
    "mock/echo": (4, 0.05),
    "gpt-4o-mini": (5, 1.2),
    "claude-haiku-4-5": (2, 1.6),
    "gemini-2.5-flash": (2, 1.0),
    "gpt-4.1": (1, 3.5),
}
ERRORS = [
    ("error", 429, "quota_exceeded"),
    ("error", 502, "provider_error"),
    ("error", 429, "provider_rate_limited"),
    ("error", 403, "model_not_allowed"),
    ("interrupted", None, "client_disconnected"),
]
DAY = 86400
# The lessons the calls come from (runs.notebook), with their code cells: a class moves
# through them, one every two days.
LESSONS: list[tuple[str, int]] = [
    ("lessons/01_first_chat.ipynb", 11), ("lessons/02_parameters_and_sampling.ipynb", 9),
    ("lessons/03_conversations_and_system_prompts.ipynb", 10),
    ("lessons/04_comparing_providers.ipynb", 8), ("lessons/05_images.ipynb", 9),
    ("lessons/06_speech_and_video.ipynb", 8), ("lessons/07_embeddings_and_search.ipynb", 9),
    ("lessons/08_tokens_cost_and_rate_limits.ipynb", 10),
]


def marker(user: str) -> str:
    """The prefix of every text written by or for ``user``."""
    return f"note-{user}-"


def _school_hour(rng: random.Random) -> float:
    # Most calls in lessons (9-16 UTC here), some homework in the evening.
    if rng.random() < 0.8:
        return rng.uniform(9, 16)
    return rng.uniform(17, 22)


def seed(
    connection: Connection,
    *,
    now: float | None = None,
    days: int = 14,
    seed: int = 7,
    people: Mapping[str, Sequence[tuple[str, str]]] = PEOPLE,
    calls_per_day: int = 6,
    catalog: Catalog | None = None,
) -> dict[str, int]:
    """Write the history; returns how many rows went into each table."""
    rng = random.Random(seed)
    catalog = catalog or Catalog.load()
    now = time.time() if now is None else now
    today = math.floor(now / DAY) * DAY
    names, weights = zip(*[(m, w) for m, (w, _) in MODELS.items()], strict=True)
    rows: list[dict[str, Any]] = []
    counter = 0
    where = random.Random(seed + 1)  # its own draws: the rest of the history stays the same
    for tenant, members in people.items():
        for user, role in members:
            activity = {"student": 1.0, "teacher": 0.4, "admin": 0.2, "viewer": 0.1}[role]
            for day in range(days, -1, -1):
                start_of_day = today - day * DAY
                for _ in range(rng.randint(0, round(calls_per_day * activity * 2))):
                    at = start_of_day + _school_hour(rng) * 3600
                    if at >= now - 15 * 60:  # the live activity window shows live calls only
                        continue
                    model = rng.choices(names, weights)[0]
                    info = catalog.get(model)
                    counter += 1
                    row: dict[str, Any] = {
                        "user": user, "tenant": tenant, "role": role,
                        "source": rng.choice(["sdk", "sdk", "widget"]), "kind": "chat",
                        "api": "openai", "provider": info.provider if info else None,
                        "model": model, "stream": rng.random() < 0.5, "queued_at": at,
                        "started_at": at + 0.002,
                        "request_text": f"{marker(user)}{counter}: what is a token?",
                    }
                    if role == "student" and where.random() < 0.85:
                        lesson, cells = LESSONS[min(len(LESSONS) - 1, (days - day) // 2)]
                        position = where.randint(1, cells)
                        row.update(notebook=lesson, cell=f"cell-{position:02d}",
                                   cell_position=position, cell_count=cells)
                    if rng.random() < 0.08:
                        status, http_status, code = rng.choice(ERRORS)
                        row.update(status=status, http_status=http_status, error_code=code,
                                   error_message=f"demo {code}", finished_at=at + 0.3)
                    else:
                        latency = MODELS[model][1] * math.exp(rng.gauss(0, 0.35))
                        prompt, completion = rng.randint(20, 600), rng.randint(10, 400)
                        cost = token_cost(info, TokenUsage(prompt, completion)) if info else None
                        row.update(
                            status="ok", http_status=200, finished_at=at + latency,
                            first_token_at=at + latency * 0.2, prompt_tokens=prompt,
                            completion_tokens=completion,
                            cost_micro_usd=cost.micro_usd if cost else None,
                            cost_status=cost.status if cost else "unpriced",
                            response_text=f"{marker(user)}{counter}: a token is a piece of text",
                        )
                    rows.append(row)
    # Calls running right now.
    running = 0
    for tenant, members in people.items():
        for user, role in members[:1]:
            rows.append({
                "user": user, "tenant": tenant, "role": role, "source": "widget", "kind": "chat",
                "api": "openai", "provider": "openai", "model": "gpt-4o-mini", "stream": True,
                "status": "running", "queued_at": now - 3, "started_at": now - 2.9,
                "request_text": f"{marker(user)}live: still thinking",
            })
            running += 1
    columns = {key for row in rows for key in row}
    connection.execute(insert(runs), [{key: row.get(key) for key in columns} for row in rows])

    # Conversations: one per student, a few messages each.
    conversation_rows, message_rows = [], []
    for tenant, members in people.items():
        for user, role in members:
            if role != "student":
                continue
            conv_id = f"conv_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
            created = today - 2 * DAY + 10 * 3600
            conversation_rows.append({
                "id": conv_id, "user": user, "tenant": tenant,
                "title": f"{marker(user)}chat", "model": "gpt-4o-mini",
                "system_prompt": None, "created_at": created, "updated_at": created + 120,
            })
            parent = None
            for index, speaker in enumerate(["user", "assistant", "user", "assistant"]):
                msg_id = f"msg_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
                message_rows.append({
                    "id": msg_id, "conversation_id": conv_id, "parent_message_id": parent,
                    "role": speaker, "content": f"{marker(user)}message {index}",
                    "model": "gpt-4o-mini" if speaker == "assistant" else None,
                    "created_at": created + index * 30,
                })
                parent = msg_id
    if conversation_rows:
        connection.execute(insert(conversations), conversation_rows)
        connection.execute(insert(messages), message_rows)

    # Audit: teachers pausing their class, an admin changing a key.
    audit_rows = []
    for tenant, members in people.items():
        for user, role in members:
            if role == "teacher":
                audit_rows.append({
                    "at": today - DAY + 11 * 3600, "actor": user, "actor_role": role,
                    "tenant": tenant, "action": "pause.create", "target": "(class)",
                    "details": json.dumps({"reason": f"{marker(user)}quiz time"}),
                })
            if role == "admin":
                audit_rows.append({
                    "at": today - 3 * DAY + 8 * 3600, "actor": user, "actor_role": role,
                    "tenant": tenant, "action": "key.add", "target": "openai/demo-1",
                    "details": json.dumps({"note": f"{marker(user)}rotated"}),
                })
    if audit_rows:
        connection.execute(insert(audit_log), audit_rows)
    return {
        "runs": len(rows), "running": running, "conversations": len(conversation_rows),
        "messages": len(message_rows), "audit_log": len(audit_rows),
    }


def main(argv: Sequence[str]) -> int:  # pragma: no cover - development aid
    from gateway.history.store import make_engine

    if len(argv) != 1:
        print("usage: python -m gateway.history.demo DATABASE_URL", file=sys.stderr)
        return 2
    engine = make_engine(argv[0])
    with engine.begin() as connection:
        print(seed(connection))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
