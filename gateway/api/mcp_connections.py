"""MCP connections (the seed API's ``/mcp-connections/``), the school's allow-list of MCP
servers, tool calls, and the chat turn that may call tools.

- ``/api/mcp-connections``: the caller's own connections (CRUD); header values are
  write-only. ``0`` is the built-in ``classroom`` connection.
- ``GET /api/mcp-connections/{id}/tools``: the server's tools (MCP ``tools/list``).
- ``POST /api/mcp-connections/{id}/call``: call one tool yourself (an agent loop's step).
- ``POST /api/mcp-connections/{id}/chat``: one chat turn with at most one round of tool
  calls, answered with the calls and their results.
- ``GET /api/tool-calls``: the caller's tool calls, newest first.
- ``/api/mcp-allowlist``: which servers the school's users may add (admins change it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.edge.schemas import load_object
from gateway.errors import Forbidden, InvalidRequest
from gateway.history.audit import record_audit

router = APIRouter(prefix="/api", tags=["MCP connections and tools"])

class NewConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, max_length=2000, description="The server's streamable "
                     "HTTP endpoint, e.g. https://example.org/mcp")
    headers: dict[str, str] | None = Field(
        default=None, description="Sent with every request to the server (e.g. "
        "Authorization). Stored encrypted; never shown again, only their names.")


class ConnectionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=64,
                             pattern=r"^[A-Za-z0-9_.-]+$")
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    headers: dict[str, str] | None = Field(
        default=None, description="Replaces every header; {} removes them.")


class ToolCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)


class AllowListChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[str] = Field(max_length=200, description="URLs, hosts, *.domains, IP "
                               "networks, or * for any public server.")
    tenant: str | None = Field(default=None, max_length=64,
                               description="The school (default: the admin's own).")


def _id(connection_id: int) -> int:
    if not 0 <= connection_id < 2**63:
        raise InvalidRequest("A connection id is a whole number (0 is the classroom's own).",
                             param="connection_id")
    return connection_id


@router.get("/mcp-connections", summary="Your MCP connections (the classroom's first)")
async def list_connections(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    found = await services.mcp.owned(identity)
    return {"items": [c.public() for c in found]}


@router.post("/mcp-connections", status_code=201, summary="Add an MCP connection")
async def create_connection(body: NewConnection, identity: CurrentUser,
                            services: ServicesDep) -> dict[str, Any]:
    created = await services.mcp.create(identity, body.name, body.url, body.headers)
    return created.public()


@router.get("/mcp-connections/{connection_id}", summary="One of your MCP connections")
async def get_connection(connection_id: int, identity: CurrentUser,
                         services: ServicesDep) -> dict[str, Any]:
    return (await services.mcp.get(identity, _id(connection_id))).public()


@router.put("/mcp-connections/{connection_id}", summary="Change an MCP connection")
async def update_connection(connection_id: int, body: ConnectionChange, identity: CurrentUser,
                            services: ServicesDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    changed = await services.mcp.update(identity, _id(connection_id), changes)
    return changed.public()


@router.delete("/mcp-connections/{connection_id}", status_code=204,
               summary="Delete an MCP connection")
async def delete_connection(connection_id: int, identity: CurrentUser,
                            services: ServicesDep) -> Response:
    await services.mcp.delete(identity, _id(connection_id))
    return Response(status_code=204)


@router.get("/mcp-connections/{connection_id}/tools", summary="The server's tools")
async def list_tools(connection_id: int, identity: CurrentUser,
                     services: ServicesDep) -> dict[str, Any]:
    connection, tools = await services.tool_turns.tools(identity, _id(connection_id))
    return {"connection": connection.public(), "tools": [t.public() for t in tools]}


@router.post("/mcp-connections/{connection_id}/call", summary="Call one tool (recorded)")
async def call_tool(connection_id: int, body: ToolCallRequest, identity: CurrentUser,
                    services: ServicesDep) -> dict[str, Any]:
    connection = await services.mcp.get(identity, _id(connection_id), with_secrets=True)
    return await services.tool_turns.call(identity, connection, body.tool, body.arguments)


@router.post("/mcp-connections/{connection_id}/chat",
             summary="A chat turn that may call the server's tools (one round)")
async def chat_with_tools(connection_id: int, request: Request, identity: CurrentUser,
                          services: ServicesDep) -> dict[str, Any]:
    """Body: ``model`` and ``prompt`` (or ``messages``), optionally ``temperature``,
    ``max_tokens``, ``parallel_tool_calls``. The answer carries every tool call with its
    arguments, status, result or error, and duration, and the history rows of the model
    calls (``runs``)."""
    body = load_object(await request.body(), request.headers.get("content-type"))
    return await services.tool_turns.turn(identity, _id(connection_id), body,
                                          source=call_source(request))


@router.get("/tool-calls", summary="Your tool calls, newest first")
async def tool_calls(identity: CurrentUser, services: ServicesDep,
                     run_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    return {"items": await services.mcp.calls(identity, run_id=run_id, limit=limit)}


@router.get("/mcp-allowlist", summary="The MCP servers your school's users may add")
async def allowlist(identity: CurrentUser, services: ServicesDep,
                    tenant: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    school = tenant or identity.tenant
    if school != identity.tenant and not identity.is_admin:
        raise Forbidden("You can see only your own school's list.")
    return {"tenant": school, "entries": await services.mcp.allow_entries(school)}


@router.put("/mcp-allowlist", summary="Set your school's MCP allow-list (admins)")
async def set_allowlist(body: AllowListChange, identity: CurrentUser,
                        services: ServicesDep) -> dict[str, Any]:
    if not identity.is_admin:
        raise Forbidden("Only administrators choose which MCP servers a school may use.")
    school = body.tenant or identity.tenant
    if school not in services.tenants:
        raise InvalidRequest(f"There is no school '{school}'.", param="tenant")
    await services.mcp.set_allow_entries(school, body.entries, identity.name)
    await record_audit(services.history, identity, "mcp.allowlist", target=school,
                       tenant=school, details={"entries": body.entries})
    return {"tenant": school, "entries": await services.mcp.allow_entries(school)}
