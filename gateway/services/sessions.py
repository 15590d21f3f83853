"""Stateful completion: one user message sent to a session, answered with its context.

The gateway builds what the model sees, in this order:

1. the session's system prompt (if any);
2. the memory block: one system message listing the injected entries (see
   :func:`gateway.history.memory.relevant`), when the memory mode is not ``disabled``
   and there is anything to inject;
3. the branch from the first message down to the message replied to (failed user
   messages included only when they are on that branch);
4. the new user message.

**Trimming rule.** The prompt may use ``budget = min(context_limit, window - reserve)``
tokens, where ``window`` is the model's context window, ``reserve`` the session's
``max_tokens`` (default :data:`DEFAULT_RESERVE`) and ``context_limit`` the session's
own cap (none by default). Parts 1, 2 and 4 are always sent; when they alone exceed
the budget the call is refused (``context_length_exceeded``). Part 3 is then filled
from the newest message backwards; the first message that does not fit, and every
older one, is left out. The reply records exactly what was sent (``context``).

The call itself is an ordinary ``/v1/chat/completions`` body handed to
:class:`gateway.services.chat.ChatService`, so identity, policy, the key pool, metering and
the history row are the same as for any SDK call. The user message is written first, so
a refused or failed call still leaves it (``status: error``) next to its run's row.

**Auto memory.** In ``auto`` mode, after each answered exchange the user message is read
by :func:`extract` (deterministic rules: "my name is", "I prefer", "always", "remember
that", ...) and each match becomes a ``session`` entry with ``origin: auto``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.errors import ClassroomError, ContextLengthExceeded, InvalidRequest
from gateway.history import HistoryStore, memory
from gateway.history import conversations as store
from gateway.history.artifacts import ArtifactStore
from gateway.history.models import messages, runs
from gateway.pricing import ModelInfo
from gateway.pricing.tokens import prompt_upper_bound
from gateway.services import attachments as files
from gateway.services.chat import ChatService

DEFAULT_RESERVE = 1024
DEFAULT_MODEL = "mock/echo"
MEMORY_HEADER = "Memory the classroom keeps for this user (they can see and delete it):"


@dataclass
class Context:
    """What the model is sent for one reply, and why."""

    model: str
    messages: list[dict[str, Any]]
    included: list[str]
    dropped: list[str]
    injected: list[dict[str, Any]]
    memory_text: str | None
    prompt_tokens_estimate: int
    budget: int

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [_without_images(m) for m in self.messages],
            "included_message_ids": self.included,
            "dropped_message_ids": self.dropped,
            "memory": [{k: e[k] for k in ("id", "type", "scope", "content")}
                       for e in self.injected],
            "memory_text": self.memory_text,
            "prompt_tokens_estimate": self.prompt_tokens_estimate,
            "budget_tokens": self.budget,
        }


def _without_images(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the reply records it: an image's bytes are kept as an artifact, so the
    record says ``[image]`` in their place."""
    content = message["content"]
    if not isinstance(content, list):
        return message
    parts = [{"type": "image_url", "image_url": {"url": "[image]"}}
             if p.get("type") == "image_url" else p for p in content]
    return {**message, "content": parts}


def memory_block(entries: list[dict[str, Any]]) -> str | None:
    if not entries:
        return None
    lines = [MEMORY_HEADER] + [f"- [{e['type']}] {e['content']}" for e in entries]
    return "\n".join(lines)


def _tokens(model: ModelInfo | None, items: list[dict[str, Any]]) -> int:
    if model is None:
        return sum(len(str(m.get("content", ""))) // 4 + 4 for m in items)
    return prompt_upper_bound(model, {"messages": items})


def build(
    model: ModelInfo | None, model_name: str, session: dict[str, Any],
    branch: list[dict[str, Any]], text: str, injected: list[dict[str, Any]],
    attached: list[files.Attachment] | None = None,
) -> Context:
    """The context of one reply by the rule in the module docstring."""
    params = session["params"]
    reserve = int(params.get("max_tokens") or DEFAULT_RESERVE)
    window = (model.context_window if model is not None else None) or 128_000
    budget = max(window - reserve, 0)
    if session.get("context_limit"):
        budget = min(budget, int(session["context_limit"]))
    head: list[dict[str, Any]] = []
    if session.get("system_prompt"):
        head.append({"role": "system", "content": session["system_prompt"]})
    memory_text = memory_block(injected)
    if memory_text:
        head.append({"role": "system", "content": memory_text})
    content: Any = text
    if attached:
        content = [{"type": "text", "text": text}] + [a.part() for a in attached]
    tail = [{"role": "user", "content": content}]
    fixed = _tokens(model, head + tail)
    if fixed > budget:
        raise ContextLengthExceeded(
            f"The system prompt, memory and your message need about {fixed} tokens, more than "
            f"the {budget} this session may send to {model_name}. Shorten them, delete memory "
            "entries, or raise the session's context_limit.", param="content")
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    total = fixed
    for message in reversed(branch):
        if dropped:
            dropped.append(message["id"])
            continue
        item = _earlier(message)
        cost = _tokens(model, [item]) - _tokens(model, [])
        if total + cost > budget:
            dropped.append(message["id"])
            continue
        total += cost
        kept.append(message)
    kept.reverse()
    sent = head + [_earlier(m) for m in kept] + tail
    return Context(model_name, sent, [m["id"] for m in kept], dropped[::-1], injected,
                   memory_text, total, budget)


def _earlier(message: dict[str, Any]) -> dict[str, Any]:
    return {"role": message["role"], "content": files.earlier_content(
        message["content"] or "", message.get("_attachments"))}


# -- auto memory --------------------------------------------------------------------------

RULES: tuple[tuple[re.Pattern[str], str, int, str], ...] = (
    (re.compile(r"\bmy name is ([^.!?\n]{1,80})", re.I), "fact", 4, "The user's name is {}."),
    (re.compile(r"\bremember(?: that|:)? ([^.!?\n]{3,300})", re.I), "fact", 4, "{}."),
    (re.compile(r"\bi (?:prefer|like|love) ([^.!?\n]{3,200})", re.I), "preference", 3,
     "The user prefers {}."),
    (re.compile(r"\b(?:please )?(always|never) ([^.!?\n]{3,200})", re.I), "instruction", 4,
     "{} {}."),
    (re.compile(r"\bfrom now on,? ([^.!?\n]{3,200})", re.I), "instruction", 4, "{}."),
)


def extract(text: str) -> list[tuple[str, int, str]]:
    """``(type, importance, content)`` proposals from one user message, deterministic."""
    found: list[tuple[str, int, str]] = []
    for pattern, kind, importance, template in RULES:
        for match in pattern.finditer(text):
            groups = [g.strip() for g in match.groups()]
            if len(groups) == 2:
                groups[0] = groups[0].capitalize()
            content = template.format(*groups)
            content = content[0].upper() + content[1:]
            if content not in [f[2] for f in found]:
                found.append((kind, importance, content))
    return found


def store_auto(connection: Connection, owner: store.Owner, session: str, message_id: str,
               text: str) -> list[dict[str, Any]]:
    added = []
    for kind, importance, content in extract(text):
        if not memory.exists(connection, owner, session, content):
            added.append(memory.create(
                connection, owner, session=session, scope="session", type=kind,
                content=content, source_message_ids=[message_id], importance=importance,
                origin="auto"))
    return added


def summarize(branch: list[dict[str, Any]], limit: int = 600) -> str:
    """An extractive summary of a branch (deterministic): each user turn and the last reply,
    cut to fit ``limit`` characters."""
    asked = [" ".join((m["content"] or "").split()) for m in branch if m["role"] == "user"]
    replies = [m for m in branch if m["role"] == "assistant"]
    parts = ["Asked: " + " | ".join(asked)] if asked else []
    if replies:
        parts.append("Last answer: " + " ".join((replies[-1]["content"] or "").split()))
    text = ". ".join(parts) or "An empty conversation."
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- sending --------------------------------------------------------------------------------


@dataclass
class Send:
    content: str
    parent_message_id: str | None = None
    new_branch: bool = False
    model: str | None = None
    stream: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)


def _answer_text(body: bytes) -> str:
    data = json.loads(body)
    choices = data.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


class SessionService:
    def __init__(self, chat: ChatService, history: HistoryStore,
                 artifacts: ArtifactStore | None = None) -> None:
        self.chat = chat
        self.history = history
        self.artifacts = artifacts

    def _lookup(self, name: str) -> ModelInfo | None:
        try:
            model: ModelInfo = self.chat.registry.lookup(name)
            return model
        except ClassroomError:
            return None  # the chat path refuses it, and records the refusal

    async def _prepare(self, identity: Identity, session_id: str, send: Send
                       ) -> tuple[dict[str, Any], Context, dict[str, Any]]:
        owner = store.Owner(identity.name, identity.tenant)

        def read(c: Connection) -> tuple[dict[str, Any], list[dict[str, Any]],
                                         list[dict[str, Any]]]:
            full = store.get(c, owner, session_id)
            by_id = {m["id"]: m for m in full["messages"]}
            for message_id, kept in store.attachments_of(c, session_id).items():
                by_id[message_id]["_attachments"] = kept
            parent = send.parent_message_id
            if parent is not None and parent not in by_id:
                raise InvalidRequest(
                    f"The message {parent!r} is not part of this session.",
                    param="parent_message_id")
            if parent is None and not send.new_branch:
                ok = [m for m in full["messages"] if m["status"] == "ok"]
                parent = ok[-1]["id"] if ok else None
            branch: list[dict[str, Any]] = []
            while parent is not None:
                branch.append(by_id[parent])
                parent = by_id[parent]["parent_message_id"]
            injected = [] if full["memory_mode"] == "disabled" else \
                memory.relevant(c, owner, session_id, send.content)
            return full, branch[::-1], injected

        session, branch, injected = await self.history.read(read)
        model_name = send.model or session["model"] or DEFAULT_MODEL
        merged = {**session, "params": {**session["params"], **send.params}}
        model = self._lookup(model_name)
        attached = files.decode(send.attachments, model, model_name) if send.attachments \
            else []
        if attached and self.artifacts is None:
            raise InvalidRequest("This gateway keeps no files.", param="attachments")
        context = build(model, model_name, merged, branch, send.content, injected, attached)
        body = {**merged["params"], "model": model_name, "messages": context.messages,
                "stream": send.stream}
        if send.stream:
            body["stream_options"] = {"include_usage": True}
        parent_id = branch[-1]["id"] if branch else None
        user = await self.history.write(lambda c: store.add_message(
            c, owner, session_id, role="user", content=send.content,
            parent_message_id=parent_id))
        if user is None:
            raise store.not_found(session_id)
        if attached:
            assert self.artifacts is not None
            kept = await files.keep(self.artifacts, attached, user=owner.user,
                                    tenant=owner.tenant, session=session_id,
                                    message_id=user["id"])
            await self.history.write(lambda c: store.set_attachments(c, user["id"], kept))
            user["attachments"] = store.public_attachments(kept)
        return session, context, {"body": body, "user": user, "owner": owner}

    async def send(self, identity: Identity, session_id: str, send: Send, *, source: str
                   ) -> dict[str, Any] | AsyncIterator[bytes]:
        """The reply (non-streamed) or the SSE stream whose last data frame before
        ``[DONE]`` is the stored pair of messages (``object: classroom.session.reply``)."""
        session, context, parts = await self._prepare(identity, session_id, send)
        user, owner = parts["user"], parts["owner"]
        started = time.monotonic()
        raw = json.dumps(parts["body"], ensure_ascii=False).encode()
        try:
            prepared = await self.chat.prepare(identity, raw, source=source,
                                               content_type="application/json")
        except ClassroomError as error:
            await self._failed(user["id"], None, error.code, context)
            raise
        if not send.stream:
            try:
                answer = await self.chat.complete_body(prepared)
            except ClassroomError as error:
                await self._failed(user["id"], prepared.run_id, error.code, context)
                raise
            return await self._finish(owner, session, user, prepared.run_id,
                                      _answer_text(answer), context, started)
        stream = await self._open(prepared, user, context)
        return self._relay(stream, owner, session, user, prepared.run_id, context, started)

    async def _open(self, prepared: Any, user: dict[str, Any], context: Context
                    ) -> AsyncIterator[bytes]:
        try:
            stream: AsyncIterator[bytes] = await self.chat.open_stream(prepared)
        except ClassroomError as error:
            await self._failed(user["id"], prepared.run_id, error.code, context)
            raise
        return stream

    async def _relay(self, stream: AsyncIterator[bytes], owner: store.Owner,
                     session: dict[str, Any], user: dict[str, Any], run_id: int,
                     context: Context, started: float) -> AsyncIterator[bytes]:
        text: list[str] = []
        error_code: str | None = None
        done = False
        try:
            async for chunk in stream:
                if chunk.strip() == b"data: [DONE]":
                    reply = await self._finish(owner, session, user, run_id, "".join(text),
                                               context, started)
                    done = True
                    yield b"data: " + json.dumps(
                        {"object": "classroom.session.reply", **reply}, ensure_ascii=False
                    ).encode() + b"\n\n"
                    yield chunk
                    continue
                for line in chunk.split(b"\n"):
                    if not line.startswith(b"data: "):
                        continue
                    try:
                        data = json.loads(line[6:])
                    except ValueError:
                        continue
                    if isinstance(data, dict) and "error" in data:
                        error_code = str((data["error"] or {}).get("code") or "provider_error")
                    for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
                        piece = (choice.get("delta") or {}).get("content")
                        if isinstance(piece, str):
                            text.append(piece)
                yield chunk
        finally:
            if not done:
                self.chat.calls.spawn(self._failed(
                    user["id"], run_id, error_code or "client_disconnected", context))

    async def _failed(self, message_id: str, run_id: int | None, code: str,
                      context: Context) -> None:
        await self.history.write(
            lambda c: store.mark_failed(c, message_id, run_id, code, context.public()))

    async def _finish(self, owner: store.Owner, session: dict[str, Any], user: dict[str, Any],
                      run_id: int, text: str, context: Context, started: float
                      ) -> dict[str, Any]:
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)

        def write(c: Connection) -> dict[str, Any]:
            run = c.execute(select(runs).where(runs.c.id == run_id)).mappings().one()
            c.execute(messages.update().where(messages.c.id == user["id"]).values(
                run_id=run_id, prompt_tokens=run["prompt_tokens"]))
            reply = store.add_message(
                c, owner, session["id"], role="assistant", content=text,
                parent_message_id=user["id"], run_id=run_id,
                metering=store.Metering(run["model"], run["prompt_tokens"],
                                        run["completion_tokens"], run["cost_micro_usd"]),
                status="ok" if run["status"] == "ok" else "error",
                error_code=run["error_code"], response_ms=elapsed_ms,
                context=context.public())
            added = store_auto(c, owner, session["id"], user["id"], user["content"]) \
                if session["memory_mode"] == "auto" else []
            return {"user_message": {**user, "run_id": run_id,
                                     "prompt_tokens": run["prompt_tokens"]},
                    "assistant_message": reply, "memory_added": added}

        return await self.history.write(write)
