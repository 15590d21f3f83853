"""Saved chat conversations (sessions), each a tree of messages (for branching), per user.

The owner creates, changes and deletes; a teacher of the school reads (the list with
``?user=``, one session, its tree and its chains) and never writes. ``POST
/{id}/send`` is stateful completion (:mod:`gateway.services.sessions`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.api.deps import DB_INT_MAX, CurrentUser, Offset, ServicesDep, call_source
from gateway.auth import Identity
from gateway.edge.asgi import SSE_HEADERS
from gateway.errors import Forbidden, InvalidRequest
from gateway.history import conversations as store
from gateway.services.sessions import Send, SessionService

T = TypeVar("T")
router = APIRouter(prefix="/api/conversations", tags=["Conversations"])

MAX_CONTENT = 200_000


def no_nul(value: str | None) -> str | None:
    # PostgreSQL cannot store U+0000 in text, and no real text needs it.
    if value is not None and "\x00" in value:
        raise ValueError("text must not contain the NUL character (U+0000)")
    return value


Text = Annotated[str, AfterValidator(no_nul)]


class Params(BaseModel):
    """A session's default call parameters (the request may override them)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    stop: list[Annotated[Text, Field(max_length=100)]] | None = Field(default=None, max_length=4)


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text | None = Field(default=None, max_length=200)
    alias: Text | None = Field(default=None, max_length=200)
    model: Text | None = Field(default=None, max_length=200)
    system_prompt: Text | None = Field(default=None, max_length=MAX_CONTENT)
    params: Params | None = None
    memory_mode: Literal["auto", "explicit", "disabled"] | None = None
    context_limit: int | None = Field(default=None, ge=16, le=10_000_000)

    def fields(self, *, unset: bool) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=unset)
        if self.params is not None:
            out["params"] = self.params.model_dump(exclude_none=True)
        return out


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Text = Field(min_length=1, max_length=200)
    mime: str = Field(min_length=3, max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")
    data: str = Field(max_length=14_000_000, description="The file, base64-encoded.")


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Text = Field(min_length=1, max_length=MAX_CONTENT)
    parent_message_id: str | None = Field(default=None, max_length=40)
    new_branch: bool = False
    model: Text | None = Field(default=None, max_length=200)
    stream: bool = False
    params: Params | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Text = Field(max_length=MAX_CONTENT)
    parent_message_id: str | None = Field(default=None, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    run_id: int | None = Field(default=None, ge=1, le=DB_INT_MAX)
    prompt_tokens: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    completion_tokens: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    cost_micro_usd: int | None = Field(default=None, ge=0, le=DB_INT_MAX)


def owner_of(identity: Identity) -> store.Owner:
    return store.Owner(identity.name, identity.tenant)


def _found(conversation_id: str, written: T | None) -> T:
    """What a write returned, checked before it (:func:`store.check_owned`): None or False
    means the conversation was deleted in between."""
    if written is None or written is False:
        raise store.not_found(conversation_id)
    return written


@router.post("", status_code=201, summary="Start a new conversation")
async def create_conversation(
    body: ConversationIn, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner = owner_of(identity)
    fields = body.fields(unset=False)
    return await services.history.write(lambda c: store.create(c, owner, **fields))


@router.get("", summary="Your conversations (or, for a teacher, the school's), newest first")
async def list_conversations(
    identity: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    school: Annotated[bool, Query(description="Teachers: every session of your school.")]
    = False,
    user: Annotated[str | None, Query(max_length=200,
                                      description="Teachers: one student's sessions.")] = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    owner = owner_of(identity)
    if school or (user is not None and user != identity.name) or tenant is not None:
        target = tenant or identity.tenant
        if not identity.can_teach(target):
            raise Forbidden("Only a teacher of the school can read its students' sessions.")
        items, total = await services.history.read(lambda c: store.list_school(
            c, target, user=user, limit=limit, offset=offset))
    else:
        items, total = await services.history.read(
            lambda c: store.list_owned(c, owner, limit=limit, offset=offset))
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{conversation_id}", summary="One conversation with every message of every branch")
async def get_conversation(
    conversation_id: str, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    return await services.history.read(lambda c: store.get(c, owner, conversation_id, teach))


@router.get("/{conversation_id}/tree", summary="The whole message tree of a session")
async def conversation_tree(
    conversation_id: str, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    return await services.history.read(lambda c: store.tree(c, owner, conversation_id, teach))


@router.get("/{conversation_id}/messages/{message_id}/chain",
            summary="A message's history chain: from the first message down to it")
async def message_chain(
    conversation_id: str, message_id: str, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    path = await services.history.read(
        lambda c: store.path_to(c, owner, conversation_id, message_id, teach))
    return {"items": path}


@router.get(
    "/{conversation_id}/path",
    summary="The messages from the first one to a leaf (default: the newest message)",
)
async def conversation_path(
    conversation_id: str,
    identity: CurrentUser,
    services: ServicesDep,
    leaf: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    path = await services.history.read(
        lambda c: store.path_to(c, owner, conversation_id, leaf, teach))
    return {"items": path}


@router.patch("/{conversation_id}", summary="Rename, or change the model or system prompt")
async def update_conversation(
    conversation_id: str, body: ConversationIn, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    fields = body.fields(unset=True)
    if not fields:
        raise InvalidRequest("Send at least one of " + ", ".join(store.SESSION_FIELDS) + ".")
    owner = owner_of(identity)
    await services.history.read(lambda c: store.check_owned(c, owner, conversation_id))
    return _found(conversation_id, await services.history.write(
        lambda c: store.update_fields(c, owner, conversation_id, fields)
    ))


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation")
async def delete_conversation(
    conversation_id: str, identity: CurrentUser, services: ServicesDep
) -> Response:
    owner = owner_of(identity)
    await services.history.read(lambda c: store.check_owned(c, owner, conversation_id))
    _found(conversation_id,
           await services.history.write(lambda c: store.remove(c, owner, conversation_id)))
    return Response(status_code=204)


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    summary="Add a message under a parent (another child of the same parent is a new branch)",
)
async def add_message(
    conversation_id: str, body: MessageIn, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner = owner_of(identity)
    said = store.Metering(body.model, body.prompt_tokens, body.completion_tokens,
                          body.cost_micro_usd)
    metering = await services.history.read(lambda c: store.check_message(
        c, owner, conversation_id, parent_message_id=body.parent_message_id,
        run_id=body.run_id, metering=said))
    return _found(conversation_id, await services.history.write(lambda c: store.add_message(
        c, owner, conversation_id, role=body.role, content=body.content,
        parent_message_id=body.parent_message_id, run_id=body.run_id, metering=metering)))


@router.post(
    "/{conversation_id}/send",
    summary="Send one user message to a session and get the model's reply (stateful)",
    response_model=None,
)
async def send_message(
    conversation_id: str, body: SendIn, request: Request, identity: CurrentUser,
    services: ServicesDep,
) -> Any:
    """The gateway builds the context (system prompt, memory, the branch, trimmed: see
    docs/sessions.md), calls the model through the same path as ``/v1/chat/completions``
    and stores both messages. ``parent_message_id`` replies to any earlier message (a
    new branch); without it the reply continues from the newest answered message;
    ``new_branch: true`` starts again from the top."""
    sessions = SessionService(services.chat, services.history, services.artifacts)
    send = Send(body.content, body.parent_message_id, body.new_branch, body.model, body.stream,
                body.params.model_dump(exclude_none=True) if body.params else {},
                [a.model_dump() for a in body.attachments])
    result = await sessions.send(identity, conversation_id, send, source=call_source(request))
    if isinstance(result, dict):
        return result
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)
