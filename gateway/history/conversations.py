"""Saved conversations: a tree of messages per conversation, owned by one user.

A message points at the message it answers (``parent_message_id``; ``None``
for the first one). Editing an earlier message of a chat does not overwrite
it: the new text becomes a sibling under the same parent, so every branch
stays readable. The path from the first message to a leaf is one version of
the conversation.

Plain functions on a SQLAlchemy ``Connection``, run through
``HistoryStore.read`` / ``HistoryStore.write``. Ownership is checked here, so
another user's conversation looks exactly like a missing one. A caller's mistake
(no such conversation, a parent from elsewhere) is found by a read before the
write (``check_owned``, ``check_message``), never raised inside a write: a write
function that raises fails its whole group commit, and runs again. The writes keep
the owner in their conditions and return ``None`` (``False``) when the conversation
went away between the check and the write.

A conversation is also a *session* (migration 0008): an ``alias``, default ``params``
(temperature, max_tokens, ...), a ``memory_mode`` (``auto``, ``explicit``,
``disabled``) and an optional ``context_limit``. What the gateway sent for a reply it
produced is kept on the reply as ``context`` (see :mod:`gateway.services.sessions`). The owner
reads and writes; a teacher of the school reads (``check_readable``), never writes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from gateway.errors import InvalidRequest, NotFound
from gateway.history.models import conversations, memory_entries, messages, runs

TITLE_LENGTH = 60
MESSAGE_ROLES = ("system", "user", "assistant")
MEMORY_MODES = ("auto", "explicit", "disabled")
SESSION_FIELDS = ("title", "model", "system_prompt", "alias", "params", "memory_mode",
                  "context_limit")


@dataclass(frozen=True)
class Owner:
    user: str
    tenant: str


def _iso(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value else None


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def conversation_to_public(row: dict[str, Any], message_count: int | None = None) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "user": row["user"],
        "title": row["title"],
        "alias": row.get("alias"),
        "model": row["model"],
        "system_prompt": row["system_prompt"],
        "params": _json(row.get("params")) or {},
        "memory_mode": row.get("memory_mode") or "explicit",
        "context_limit": row.get("context_limit"),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }
    if message_count is not None:
        out["message_count"] = message_count
    return out


def message_to_public(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: row[key] for key in (
        "id", "conversation_id", "parent_message_id", "role", "content", "model", "run_id",
        "prompt_tokens", "completion_tokens", "cost_micro_usd", "status", "error_code",
        "response_ms",
    )}
    out["context"] = _json(row.get("context"))
    out["attachments"] = public_attachments(_json(row.get("attachments")) or [])
    cost = row["cost_micro_usd"]
    out["cost_usd"] = cost / 1_000_000 if cost is not None else None
    out["created_at"] = _iso(row["created_at"])
    return out


def title_from(text: str) -> str:
    """A short title from a first message: its first line, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= TITLE_LENGTH:
        return line or "Untitled"
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut + "…"


def create(
    connection: Connection,
    owner: Owner,
    *,
    title: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    alias: str | None = None,
    params: dict[str, Any] | None = None,
    memory_mode: str | None = None,
    context_limit: int | None = None,
) -> dict[str, Any]:
    now = time.time()
    row = {
        "id": _new_id("conv"),
        "user": owner.user,
        "tenant": owner.tenant,
        "title": title,
        "model": model,
        "system_prompt": system_prompt,
        "alias": alias,
        "params": json.dumps(params) if params else None,
        "memory_mode": memory_mode or "explicit",
        "context_limit": context_limit,
        "created_at": now,
        "updated_at": now,
    }
    connection.execute(insert(conversations).values(**row))
    return conversation_to_public(row, 0)


def not_found(conversation_id: str) -> NotFound:
    return NotFound(f"You have no conversation with id {conversation_id!r}.")


def _mine(owner: Owner, conversation_id: str) -> tuple[Any, ...]:
    return (conversations.c.id == conversation_id, conversations.c.user == owner.user,
            conversations.c.tenant == owner.tenant)


def _find(connection: Connection, owner: Owner, conversation_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(conversations).where(*_mine(owner, conversation_id))
    ).mappings().first()
    return dict(row) if row is not None else None


def check_owned(connection: Connection, owner: Owner, conversation_id: str) -> dict[str, Any]:
    """The owner's conversation (a read); ``NotFound`` when there is none."""
    row = _find(connection, owner, conversation_id)
    if row is None:
        raise not_found(conversation_id)
    return row


def check_readable(
    connection: Connection, owner: Owner, conversation_id: str,
    may_teach: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """The conversation if it is the owner's, or of a school ``may_teach`` accepts (a
    teacher's read-only view); ``NotFound`` otherwise, exactly as for a missing one."""
    row = connection.execute(
        select(conversations).where(conversations.c.id == conversation_id)
    ).mappings().first()
    if row is not None and (
        (row["user"] == owner.user and row["tenant"] == owner.tenant)
        or (may_teach is not None and may_teach(row["tenant"]))
    ):
        return dict(row)
    raise not_found(conversation_id)


def list_school(
    connection: Connection, tenant: str, *, user: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A school's conversations (a teacher's read-only view), optionally one student's."""
    where = [conversations.c.tenant == tenant]
    if user is not None:
        where.append(conversations.c.user == user)
    return _listing(connection, where, limit=limit, offset=offset)


def list_owned(
    connection: Connection, owner: Owner, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The owner's conversations, most recently changed first, with message counts."""
    mine = [conversations.c.user == owner.user, conversations.c.tenant == owner.tenant]
    return _listing(connection, mine, limit=limit, offset=offset)


def _listing(
    connection: Connection, mine: list[Any], *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    counts = (
        select(messages.c.conversation_id, func.count().label("n"))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    query = (
        select(conversations, func.coalesce(counts.c.n, 0).label("message_count"))
        .outerjoin(counts, counts.c.conversation_id == conversations.c.id)
        .where(*mine)
        .order_by(conversations.c.updated_at.desc(), conversations.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = connection.execute(query).mappings().all()
    total = connection.execute(
        select(func.count()).select_from(conversations).where(*mine)
    ).scalar_one()
    items = [conversation_to_public(dict(r), int(r["message_count"])) for r in rows]
    return items, int(total)


def get(connection: Connection, owner: Owner, conversation_id: str,
        may_teach: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """One conversation with all its messages (every branch), oldest first, and the
    totals of every call made for it (failed ones too)."""
    row = check_readable(connection, owner, conversation_id, may_teach)
    rows = connection.execute(
        select(messages)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.created_at, messages.c.id)
    ).mappings().all()
    items = [message_to_public(dict(r)) for r in rows]
    out = conversation_to_public(row, len(items))
    out["messages"] = items
    out["current_leaf_id"] = items[-1]["id"] if items else None
    out["totals"] = totals(connection, conversation_id)
    return out


def session_runs(conversation_id: str) -> Any:
    """The ids of the calls made for a session's messages (a subquery)."""
    return select(messages.c.run_id).where(
        messages.c.conversation_id == conversation_id, messages.c.run_id.is_not(None))


def totals(connection: Connection, conversation_id: str) -> dict[str, Any]:
    """What a session's calls used: requests, errors, tokens and cost, from their runs."""
    row = connection.execute(
        select(
            func.count().label("requests"),
            func.coalesce(func.sum(runs.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(runs.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(runs.c.cost_micro_usd), 0).label("cost_micro_usd"),
            func.coalesce(func.sum(case((runs.c.status != "ok", 1), else_=0)), 0)
            .label("errors"),
        ).where(runs.c.id.in_(session_runs(conversation_id)))
    ).mappings().one()
    out: dict[str, Any] = {k: int(v) for k, v in row.items()}
    out["cost_usd"] = out["cost_micro_usd"] / 1_000_000
    return out


def tree(connection: Connection, owner: Owner, conversation_id: str,
         may_teach: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The session's messages as a tree: each node has its ``children``, oldest first."""
    full = get(connection, owner, conversation_id, may_teach)
    nodes = {m["id"]: {**m, "children": []} for m in full["messages"]}
    roots: list[dict[str, Any]] = []
    for message in full["messages"]:
        node = nodes[message["id"]]
        parent = nodes.get(message["parent_message_id"] or "")
        (parent["children"] if parent is not None else roots).append(node)
    full.pop("messages")
    full["roots"] = roots
    return full


def path_to(connection: Connection, owner: Owner, conversation_id: str, leaf_id: str | None,
            may_teach: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """The messages from the first one down to ``leaf_id`` (default: the newest)."""
    full = get(connection, owner, conversation_id, may_teach)
    by_id = {m["id"]: m for m in full["messages"]}
    leaf = leaf_id or full["current_leaf_id"]
    if leaf is None:
        return []
    if leaf not in by_id:
        raise NotFound(f"The conversation has no message with id {leaf!r}.")
    path: list[dict[str, Any]] = []
    current: str | None = leaf
    while current is not None and current in by_id:
        path.append(by_id[current])
        current = by_id[current]["parent_message_id"]
    return path[::-1]


def update_fields(
    connection: Connection, owner: Owner, conversation_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """A write (after :func:`check_owned`); None when the conversation is gone."""
    allowed = {k: v for k, v in fields.items() if k in SESSION_FIELDS}
    if "params" in allowed:
        allowed["params"] = json.dumps(allowed["params"]) if allowed["params"] else None
    allowed["updated_at"] = time.time()
    connection.execute(
        update(conversations).where(*_mine(owner, conversation_id)).values(**allowed)
    )
    row = _find(connection, owner, conversation_id)
    return conversation_to_public(row) if row is not None else None


def remove(connection: Connection, owner: Owner, conversation_id: str) -> bool:
    """A write (after :func:`check_owned`); False when the conversation was already gone."""
    if _find(connection, owner, conversation_id) is None:
        return False
    # Explicitly, not by ON DELETE CASCADE: that needs SQLite's foreign_keys pragma.
    connection.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
    connection.execute(delete(memory_entries).where(
        memory_entries.c.conversation_id == conversation_id))
    connection.execute(delete(conversations).where(conversations.c.id == conversation_id))
    return True


@dataclass(frozen=True)
class Metering:
    """A message's numbers: the gateway's own when it names a call (``run_id``)."""

    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_micro_usd: int | None = None


def check_message(
    connection: Connection,
    owner: Owner,
    conversation_id: str,
    *,
    parent_message_id: str | None,
    run_id: int | None,
    metering: Metering,
) -> Metering:
    """What :func:`add_message` may write (a read): the conversation is the owner's, the
    parent is one of its messages, and a named call is the owner's, whose recorded metering
    replaces what the caller said, so the numbers cannot be made up."""
    check_owned(connection, owner, conversation_id)
    if parent_message_id is not None:
        parent = connection.execute(
            select(messages.c.id).where(
                messages.c.id == parent_message_id,
                messages.c.conversation_id == conversation_id,
            )
        ).first()
        if parent is None:
            raise InvalidRequest(
                f"The parent message {parent_message_id!r} is not part of this conversation.",
                param="parent_message_id",
            )
    if run_id is None:
        return metering
    run = connection.execute(
        select(runs).where(runs.c.id == run_id, runs.c.user == owner.user)
    ).mappings().first()
    if run is None:
        raise InvalidRequest(f"You have no call with id {run_id}.", param="run_id")
    return Metering(metering.model or run["model"], run["prompt_tokens"],
                    run["completion_tokens"], run["cost_micro_usd"])


def add_message(
    connection: Connection,
    owner: Owner,
    conversation_id: str,
    *,
    role: str,
    content: str,
    parent_message_id: str | None,
    run_id: int | None = None,
    metering: Metering = Metering(),
    status: str = "ok",
    error_code: str | None = None,
    response_ms: float | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Append a message under ``parent_message_id`` (``None``: a new first message): a
    write, after :func:`check_message`; None when the conversation is gone."""
    conversation = _find(connection, owner, conversation_id)
    if conversation is None:
        return None
    last = connection.execute(
        select(func.max(messages.c.created_at)).where(
            messages.c.conversation_id == conversation_id
        )
    ).scalar_one()
    # Strictly increasing within a conversation, so "oldest first" is the order of writing.
    now = max(time.time(), (last or 0) + 1e-6)
    row = {
        "id": _new_id("msg"),
        "conversation_id": conversation_id,
        "parent_message_id": parent_message_id,
        "role": role,
        "content": content,
        "model": metering.model,
        "run_id": run_id,
        "prompt_tokens": metering.prompt_tokens,
        "completion_tokens": metering.completion_tokens,
        "cost_micro_usd": metering.cost_micro_usd,
        "created_at": now,
        "status": status,
        "error_code": error_code,
        "response_ms": response_ms,
        "context": json.dumps(context, ensure_ascii=False) if context is not None else None,
    }
    connection.execute(insert(messages).values(**row))
    changes: dict[str, Any] = {"updated_at": now}
    if conversation["title"] is None and role == "user" and content.strip():
        changes["title"] = title_from(content)
    if metering.model and role == "assistant":
        changes["model"] = metering.model
    connection.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(**changes)
    )
    return message_to_public(row)


def mark_failed(connection: Connection, message_id: str, run_id: int | None,
                error_code: str, context: dict[str, Any] | None = None) -> None:
    """A user message whose reply failed: it stays, saying why and what was to be sent
    (a write)."""
    connection.execute(update(messages).where(messages.c.id == message_id).values(
        status="error", error_code=error_code, run_id=run_id,
        context=json.dumps(context, ensure_ascii=False) if context is not None else None))


def public_attachments(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's files as the API shows them (their extracted text left out)."""
    return [{k: v for k, v in a.items() if k != "text"} for a in kept]


def set_attachments(connection: Connection, message_id: str,
                    kept: list[dict[str, Any]]) -> None:
    connection.execute(update(messages).where(messages.c.id == message_id).values(
        attachments=json.dumps(kept, ensure_ascii=False)))


def attachments_of(connection: Connection, conversation_id: str
                   ) -> dict[str, list[dict[str, Any]]]:
    """Every message's files with their text (for building later context)."""
    rows = connection.execute(select(messages.c.id, messages.c.attachments).where(
        messages.c.conversation_id == conversation_id, messages.c.attachments.is_not(None)))
    return {r.id: json.loads(r.attachments) for r in rows}
