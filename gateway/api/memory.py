"""Memory entries: the owner's to create, filter, change and delete; a teacher reads the
school's. What each reply was given is on the reply itself (``context.memory``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.api.conversations import Text, owner_of
from gateway.api.deps import CurrentUser, Offset, ServicesDep
from gateway.errors import Forbidden, InvalidRequest
from gateway.history import conversations
from gateway.history import memory as store
from gateway.services.sessions import summarize

router = APIRouter(prefix="/api/memory", tags=["Memory"])

MAX_ENTRY = 2000
EntryType = Literal["fact", "preference", "instruction", "summary"]
Scope = Literal["session", "shared"]
Keyword = Annotated[Text, Field(min_length=1, max_length=60)]


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str | None = Field(default=None, max_length=40)
    scope: Scope = "session"
    type: EntryType = "fact"
    content: Text = Field(min_length=1, max_length=MAX_ENTRY)
    keywords: list[Keyword] | None = Field(default=None, max_length=store.MAX_KEYWORDS)
    importance: int = Field(default=3, ge=1, le=5)
    source_message_ids: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=50)

    @field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value


class EntryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EntryType | None = None
    content: Text | None = Field(default=None, min_length=1, max_length=MAX_ENTRY)
    keywords: list[Keyword] | None = Field(default=None, max_length=store.MAX_KEYWORDS)
    importance: int | None = Field(default=None, ge=1, le=5)


class SummarizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str = Field(max_length=40)
    message_id: str | None = Field(default=None, max_length=40)
    scope: Scope = "session"


@router.get("", summary="Your memory entries, newest first, filtered")
async def list_memory(
    identity: CurrentUser,
    services: ServicesDep,
    session: Annotated[str | None, Query(max_length=40)] = None,
    scope: Scope | None = None,
    type: EntryType | None = None,
    user: Annotated[str | None, Query(max_length=200,
                                      description="Teachers: one student's entries.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    filters = {"session": session, "scope": scope, "type": type}
    if user is not None and user != identity.name:
        if not identity.can_teach(identity.tenant):
            raise Forbidden("Only a teacher of the school can read its students' memory.")
        items = await services.history.read(lambda c: store.list_entries(
            c, tenant=identity.tenant, user=user, session=session, scope=scope, type=type,
            limit=limit, offset=offset))
    else:
        owner = owner_of(identity)
        items = await services.history.read(lambda c: store.list_entries(
            c, owner=owner, session=session, scope=scope, type=type, limit=limit,
            offset=offset))
    return {"items": items, "limit": limit, "offset": offset, "filters": filters}


@router.post("", status_code=201, summary="Add a memory entry")
async def create_memory(body: EntryIn, identity: CurrentUser, services: ServicesDep
                        ) -> dict[str, Any]:
    owner = owner_of(identity)
    if body.scope == "session" and body.session is None:
        raise InvalidRequest("A session entry needs the session it belongs to.",
                             param="session")
    if body.session is not None:
        session = body.session
        await services.history.read(lambda c: conversations.check_owned(c, owner, session))
    return await services.history.write(lambda c: store.create(
        c, owner, session=body.session, scope=body.scope, type=body.type, content=body.content,
        keywords=body.keywords, importance=body.importance,
        source_message_ids=body.source_message_ids))


@router.post("/summarize", status_code=201,
             summary="Summarise a branch (down to a message, default the newest) into an entry")
async def summarize_branch(body: SummarizeIn, identity: CurrentUser, services: ServicesDep
                           ) -> dict[str, Any]:
    owner = owner_of(identity)
    branch = await services.history.read(
        lambda c: conversations.path_to(c, owner, body.session, body.message_id))
    if not branch:
        raise InvalidRequest("The session has no messages to summarise yet.", param="session")
    content = summarize(branch)
    return await services.history.write(lambda c: store.create(
        c, owner, session=body.session, scope=body.scope, type="summary", content=content,
        source_message_ids=[m["id"] for m in branch], importance=3, origin="summary"))


@router.get("/{entry_id}", summary="One memory entry")
async def get_memory(entry_id: str, identity: CurrentUser, services: ServicesDep
                     ) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    return await services.history.read(lambda c: store.check_owned(c, owner, entry_id, teach))


@router.patch("/{entry_id}", summary="Edit a memory entry")
async def update_memory(entry_id: str, body: EntryPatch, identity: CurrentUser,
                        services: ServicesDep) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    if not fields:
        raise InvalidRequest("Send at least one of type, content, keywords, importance.")
    if "content" in fields and not fields["content"].strip():
        raise InvalidRequest("content must not be blank.", param="content")
    owner = owner_of(identity)
    await services.history.read(lambda c: store.check_owned(c, owner, entry_id))
    updated = await services.history.write(
        lambda c: store.update_entry(c, owner, entry_id, fields))
    if updated is None:
        raise store.not_found(entry_id)
    return updated


@router.delete("/{entry_id}", status_code=204, summary="Delete a memory entry")
async def delete_memory(entry_id: str, identity: CurrentUser, services: ServicesDep
                        ) -> Response:
    owner = owner_of(identity)
    await services.history.read(lambda c: store.check_owned(c, owner, entry_id))
    if not await services.history.write(lambda c: store.remove(c, owner, entry_id)):
        raise store.not_found(entry_id)
    return Response(status_code=204)
