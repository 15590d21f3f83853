"""Saved chat conversations, each a tree of messages (for branching), per user."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import DB_INT_MAX, CurrentUser, Offset, ServicesDep
from gateway.auth import Identity
from gateway.errors import InvalidRequest
from gateway.history import conversations as store

T = TypeVar("T")
router = APIRouter(prefix="/api/conversations", tags=["Conversations"])

MAX_CONTENT = 200_000


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=MAX_CONTENT)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_CONTENT)
    parent_message_id: str | None = Field(default=None, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    run_id: int | None = Field(default=None, ge=1, le=DB_INT_MAX)
    prompt_tokens: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    completion_tokens: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    cost_micro_usd: int | None = Field(default=None, ge=0, le=DB_INT_MAX)


def _owner(identity: Identity) -> store.Owner:
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
    owner = _owner(identity)
    return await services.history.write(
        lambda c: store.create(c, owner, **body.model_dump())
    )


@router.get("", summary="Your conversations, most recently changed first")
async def list_conversations(
    identity: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    owner = _owner(identity)
    items, total = await services.history.read(
        lambda c: store.list_owned(c, owner, limit=limit, offset=offset)
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{conversation_id}", summary="One conversation with every message of every branch")
async def get_conversation(
    conversation_id: str, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    owner = _owner(identity)
    return await services.history.read(lambda c: store.get(c, owner, conversation_id))


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
    owner = _owner(identity)
    path = await services.history.read(lambda c: store.path_to(c, owner, conversation_id, leaf))
    return {"items": path}


@router.patch("/{conversation_id}", summary="Rename, or change the model or system prompt")
async def update_conversation(
    conversation_id: str, body: ConversationIn, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise InvalidRequest("Send at least one of title, model, system_prompt.")
    owner = _owner(identity)
    await services.history.read(lambda c: store.check_owned(c, owner, conversation_id))
    return _found(conversation_id, await services.history.write(
        lambda c: store.update_fields(c, owner, conversation_id, fields)
    ))


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation")
async def delete_conversation(
    conversation_id: str, identity: CurrentUser, services: ServicesDep
) -> Response:
    owner = _owner(identity)
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
    owner = _owner(identity)
    said = store.Metering(body.model, body.prompt_tokens, body.completion_tokens,
                          body.cost_micro_usd)
    metering = await services.history.read(lambda c: store.check_message(
        c, owner, conversation_id, parent_message_id=body.parent_message_id,
        run_id=body.run_id, metering=said))
    return _found(conversation_id, await services.history.write(lambda c: store.add_message(
        c, owner, conversation_id, role=body.role, content=body.content,
        parent_message_id=body.parent_message_id, run_id=body.run_id, metering=metering)))
