"""Memory entries: what the classroom keeps for a user and injects into their sessions.

An entry has a ``type`` (fact, preference, instruction, summary), a ``scope``
(``session``: one conversation's; ``shared``: every conversation of its user), its
``content``, the messages it came from, ``keywords`` and an ``importance`` from 1
to 5. ``origin`` says who made it: the user, ``auto`` extraction, or a ``summary``
of a branch.

Which entries are injected into a reply (:func:`relevant`), in this order, at most
:data:`MAX_INJECTED`: the session's own entries and the user's shared ones, by
``importance * 10 + 5 * (keywords shared with the new message)``, newest first among
equals. The rule is in docs/sessions.md; the reply records what was chosen.

Same conventions as :mod:`gateway.history.conversations`: plain functions on a
``Connection``; another user's entry looks exactly like a missing one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from gateway.errors import NotFound
from gateway.history.conversations import Owner
from gateway.history.models import memory_entries

TYPES = ("fact", "preference", "instruction", "summary")
SCOPES = ("session", "shared")
MAX_INJECTED = 8
MAX_KEYWORDS = 8
WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
STOPWORDS = frozenset(
    "about after again also always because been before being could does doing from have "
    "having here into just like make more most much must never only other over please "
    "really same should some such than that their them then there these they this those "
    "very want were what when where which while will with would your yours".split()
)


def keywords_of(text: str) -> list[str]:
    """Up to :data:`MAX_KEYWORDS` distinct words of four letters or more (any script),
    lower-cased, common English words left out, in order of first appearance."""
    seen: list[str] = []
    for word in WORD.findall(text.casefold()):
        if word not in STOPWORDS and word not in seen:
            seen.append(word)
            if len(seen) == MAX_KEYWORDS:
                break
    return seen


def entry_to_public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["user"],
        "session": row["conversation_id"],
        "scope": row["scope"],
        "type": row["type"],
        "content": row["content"],
        "source_message_ids": json.loads(row["source_message_ids"] or "[]"),
        "keywords": json.loads(row["keywords"] or "[]"),
        "importance": row["importance"],
        "origin": row["origin"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def not_found(entry_id: str) -> NotFound:
    return NotFound(f"You have no memory entry with id {entry_id!r}.")


def _mine(owner: Owner) -> tuple[Any, ...]:
    return (memory_entries.c.user == owner.user, memory_entries.c.tenant == owner.tenant)


def create(
    connection: Connection, owner: Owner, *, session: str | None, scope: str, type: str,
    content: str, source_message_ids: Iterable[str] = (), keywords: list[str] | None = None,
    importance: int = 3, origin: str = "user",
) -> dict[str, Any]:
    now = time.time()
    row = {
        "id": f"mem_{uuid.uuid4().hex[:24]}",
        "user": owner.user,
        "tenant": owner.tenant,
        "conversation_id": session,
        "scope": scope,
        "type": type,
        "content": content,
        "source_message_ids": json.dumps(list(source_message_ids)),
        "keywords": json.dumps(keywords if keywords is not None else keywords_of(content),
                               ensure_ascii=False),
        "importance": importance,
        "origin": origin,
        "created_at": now,
        "updated_at": now,
    }
    connection.execute(insert(memory_entries).values(**row))
    return entry_to_public(row)


def list_entries(
    connection: Connection, *, owner: Owner | None = None, tenant: str | None = None,
    user: str | None = None, session: str | None = None, scope: str | None = None,
    type: str | None = None, limit: int = 100, offset: int = 0,
) -> list[dict[str, Any]]:
    """Entries by filter, newest first. ``owner`` limits to one user's own; a teacher's
    view passes ``tenant`` (and maybe ``user``) instead."""
    where: list[Any] = list(_mine(owner)) if owner is not None else []
    if tenant is not None:
        where.append(memory_entries.c.tenant == tenant)
    if user is not None:
        where.append(memory_entries.c.user == user)
    if session is not None:
        where.append(memory_entries.c.conversation_id == session)
    if scope is not None:
        where.append(memory_entries.c.scope == scope)
    if type is not None:
        where.append(memory_entries.c.type == type)
    rows = connection.execute(
        select(memory_entries).where(*where)
        .order_by(memory_entries.c.created_at.desc(), memory_entries.c.id)
        .limit(limit).offset(offset)
    ).mappings().all()
    return [entry_to_public(dict(r)) for r in rows]


def check_owned(connection: Connection, owner: Owner, entry_id: str,
                may_teach: Callable[[str], bool] | None = None) -> dict[str, Any]:
    row = connection.execute(
        select(memory_entries).where(memory_entries.c.id == entry_id)
    ).mappings().first()
    if row is not None and (
        (row["user"] == owner.user and row["tenant"] == owner.tenant)
        or (may_teach is not None and may_teach(row["tenant"]))
    ):
        return entry_to_public(dict(row))
    raise not_found(entry_id)


def update_entry(connection: Connection, owner: Owner, entry_id: str,
                 fields: dict[str, Any]) -> dict[str, Any] | None:
    """A write (after :func:`check_owned`); None when the entry is gone."""
    values = {k: v for k, v in fields.items()
              if k in ("type", "content", "importance", "scope", "conversation_id")}
    if "keywords" in fields:
        values["keywords"] = json.dumps(fields["keywords"], ensure_ascii=False)
    elif "content" in fields:
        values["keywords"] = json.dumps(keywords_of(fields["content"]), ensure_ascii=False)
    values["updated_at"] = time.time()
    connection.execute(update(memory_entries).where(
        memory_entries.c.id == entry_id, *_mine(owner)).values(**values))
    row = connection.execute(select(memory_entries).where(
        memory_entries.c.id == entry_id, *_mine(owner))).mappings().first()
    return entry_to_public(dict(row)) if row is not None else None


def remove(connection: Connection, owner: Owner, entry_id: str) -> bool:
    result = connection.execute(delete(memory_entries).where(
        memory_entries.c.id == entry_id, *_mine(owner)))
    return bool(result.rowcount)


def relevant(connection: Connection, owner: Owner, session: str, text: str,
             limit: int = MAX_INJECTED) -> list[dict[str, Any]]:
    """The entries to inject into a reply to ``text`` in ``session`` (see the module doc)."""
    rows = connection.execute(
        select(memory_entries).where(*_mine(owner), or_(
            memory_entries.c.conversation_id == session, memory_entries.c.scope == "shared"))
    ).mappings().all()
    words = set(keywords_of(text))
    entries = [entry_to_public(dict(r)) for r in rows]

    def score(entry: dict[str, Any]) -> tuple[int, float, str]:
        overlap = len(words.intersection(entry["keywords"]))
        return (-(entry["importance"] * 10 + 5 * overlap), -entry["created_at"], entry["id"])

    return sorted(entries, key=score)[:limit]


def exists(connection: Connection, owner: Owner, session: str, content: str) -> bool:
    row = connection.execute(select(memory_entries.c.id).where(
        *_mine(owner), memory_entries.c.content == content,
        or_(memory_entries.c.conversation_id == session, memory_entries.c.scope == "shared"),
    )).first()
    return row is not None
