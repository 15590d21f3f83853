"""Users' MCP connections, each school's allow-list of MCP servers, and the tool-call rows.

A connection is a name, a URL and optional headers (a bearer token, an API key).
Header values are sealed with the gateway's master key, as provider keys are
(:class:`gateway.keypool.store.SecretBox`, the connection's owner as associated data),
and never leave the gateway: an owner sees only the header names.

Which servers may be added is the school's allow-list (an admin setting, in the
``mcp_allowlist`` table) plus the gateway-wide entries of the settings, where the
classroom's own MCP server always is. The classroom server is also offered to
everyone as the built-in connection ``classroom`` (id 0), which nobody can edit.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection as DB
from sqlalchemy.exc import IntegrityError

from gateway.auth import Identity
from gateway.config.network import AllowEntry, AllowList, DestinationRefused, Target
from gateway.errors import Conflict, InvalidRequest, NotFound, ServerNotAllowed
from gateway.history import HistoryStore
from gateway.history.mcp_tables import mcp_allowlist, mcp_connections, tool_calls
from gateway.keypool.store import SecretBox

BUILTIN_ID = 0
BUILTIN_NAME = "classroom"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade",
                     "te", "trailer", "keep-alive", "proxy-authorization", "cookie",
                     "mcp-session-id", "mcp-protocol-version"}
MAX_HEADERS = 20
MAX_RESULT_CHARS = 20_000  # of a tool's answer kept in its history row


@dataclass
class Connection:
    id: int
    tenant: str
    owner: str
    name: str
    url: str
    header_names: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # decrypted, in memory only

    @property
    def builtin(self) -> bool:
        return self.id == BUILTIN_ID

    def public(self) -> dict[str, Any]:
        """What the owner may see: never a header's value."""
        return {"id": self.id, "name": self.name, "url": self.url,
                "header_names": self.header_names, "builtin": self.builtin,
                "created_at": self.created_at, "updated_at": self.updated_at}


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequest("A connection's name is 1 to 64 letters, digits, dots, dashes or "
                             "underscores.", param="name")
    if name == BUILTIN_NAME:
        raise InvalidRequest(f"'{BUILTIN_NAME}' is the classroom's own connection; pick "
                             "another name.", param="name")
    return name


def check_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        raise InvalidRequest(f"'headers' is an object of at most {MAX_HEADERS} header names "
                             "and values.", param="headers")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not HEADER_NAME.match(str(name)) or name.lower() in FORBIDDEN_HEADERS:
            raise InvalidRequest(f"The header name {str(name)[:64]!r} cannot be sent (use a "
                                 "name such as Authorization or X-Api-Key).", param="headers")
        if not isinstance(value, str) or len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise InvalidRequest(f"The header {name} needs a value of one line of text "
                                 "(at most 4096 characters).", param="headers")
        checked[name] = value
    return checked


def _row(row: Any) -> Connection:
    return Connection(row.id, row.tenant, row.owner, row.name, row.url,
                      json.loads(row.header_names or "[]"), row.created_at, row.updated_at)


class ConnectionStore:
    def __init__(self, history: HistoryStore, box: SecretBox, builtin_url: str | None,
                 allowed: tuple[str, ...] = (), clock: Any = time.time) -> None:
        self.history = history
        self.box = box
        self.builtin_url = builtin_url
        self.allowed = tuple(allowed) + ((builtin_url,) if builtin_url else ())
        self.clock = clock

    # -- the allow-list -----------------------------------------------------------------------

    async def allow_entries(self, tenant: str) -> list[dict[str, Any]]:
        def read(db: DB) -> list[dict[str, Any]]:
            rows = db.execute(select(mcp_allowlist).where(mcp_allowlist.c.tenant == tenant)
                              .order_by(mcp_allowlist.c.id)).all()
            return [{"entry": r.entry, "added_by": r.added_by, "created_at": r.created_at,
                     "source": "school"} for r in rows]

        school = await self.history.read(read)
        return [{"entry": e, "added_by": None, "created_at": None, "source": "gateway"}
                for e in self.allowed] + school

    async def allow_list(self, tenant: str) -> AllowList:
        entries = await self.allow_entries(tenant)
        return AllowList.parse([e["entry"] for e in entries])

    async def set_allow_entries(self, tenant: str, entries: list[str], actor: str) -> None:
        clean: list[str] = []
        for index, entry in enumerate(entries):
            try:
                AllowEntry.parse(entry)
            except DestinationRefused as refused:
                raise InvalidRequest(f"Entry {index + 1}: {refused}",
                                     param=f"entries[{index}]") from None
            if entry.strip() and entry.strip() not in clean:
                clean.append(entry.strip())
        now = self.clock()

        def write(db: DB) -> None:
            db.execute(delete(mcp_allowlist).where(mcp_allowlist.c.tenant == tenant))
            for entry in clean:
                db.execute(insert(mcp_allowlist).values(tenant=tenant, entry=entry,
                                                        added_by=actor, created_at=now))

        await self.history.write(write)

    async def check_url(self, tenant: str, url: str) -> Target:
        """The URL, when the school's list allows it (its address is checked on connect)."""
        allow = await self.allow_list(tenant)
        try:
            return allow.check_url(url)
        except DestinationRefused as refused:
            raise ServerNotAllowed(str(refused), param="url") from None

    # -- connections --------------------------------------------------------------------------

    def builtin(self, identity: Identity) -> Connection | None:
        if not self.builtin_url:
            return None
        return Connection(BUILTIN_ID, identity.tenant, identity.name, BUILTIN_NAME,
                          self.builtin_url)

    def _aad(self, tenant: str, owner: str) -> str:
        return f"mcp/{tenant}/{owner}"

    async def owned(self, identity: Identity) -> list[Connection]:
        def read(db: DB) -> list[Connection]:
            rows = db.execute(select(mcp_connections).where(
                mcp_connections.c.tenant == identity.tenant,
                mcp_connections.c.owner == identity.name).order_by(mcp_connections.c.id)).all()
            return [_row(r) for r in rows]

        builtin = self.builtin(identity)
        return ([builtin] if builtin else []) + await self.history.read(read)

    async def get(self, identity: Identity, connection_id: int, *,
                  with_secrets: bool = False) -> Connection:
        """The caller's own connection (another user's is "not found", not "forbidden")."""
        if connection_id == BUILTIN_ID:
            builtin = self.builtin(identity)
            if builtin is None:
                raise NotFound("This gateway runs no classroom MCP server.")
            return builtin

        def read(db: DB) -> Any:
            return db.execute(select(mcp_connections).where(
                mcp_connections.c.id == connection_id,
                mcp_connections.c.tenant == identity.tenant,
                mcp_connections.c.owner == identity.name)).first()

        row = await self.history.read(read)
        if row is None:
            raise NotFound(f"You have no MCP connection {connection_id}.")
        found = _row(row)
        if with_secrets and row.headers_enc:
            found.headers = json.loads(self.box.open(row.headers_enc,
                                                     self._aad(found.tenant, found.owner)))
        return found

    async def create(self, identity: Identity, name: Any, url: Any,
                     headers: Any = None) -> Connection:
        name, headers = check_name(name), check_headers(headers)
        if not isinstance(url, str):
            raise InvalidRequest("'url' is required: the MCP server's address.", param="url")
        await self.check_url(identity.tenant, url)
        now = self.clock()
        sealed = (self.box.seal(json.dumps(headers), self._aad(identity.tenant, identity.name))
                  if headers else None)

        def write(db: DB) -> int:
            result = db.execute(insert(mcp_connections).values(
                tenant=identity.tenant, owner=identity.name, name=name, url=url.strip(),
                header_names=json.dumps(sorted(headers)), headers_enc=sealed,
                created_at=now, updated_at=now))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

        try:
            new_id = await self.history.write(write)
        except IntegrityError:
            raise Conflict(f"You already have a connection named '{name}'.",
                           param="name") from None
        return await self.get(identity, new_id)

    async def update(self, identity: Identity, connection_id: int, changes: dict[str, Any]) -> \
            Connection:
        if connection_id == BUILTIN_ID:
            raise InvalidRequest("The classroom connection is built in and cannot be changed.")
        current = await self.get(identity, connection_id)
        values: dict[str, Any] = {"updated_at": self.clock()}
        if "name" in changes:
            values["name"] = check_name(changes["name"])
        if "url" in changes:
            if not isinstance(changes["url"], str):
                raise InvalidRequest("'url' must be the MCP server's address.", param="url")
            await self.check_url(identity.tenant, changes["url"])
            values["url"] = changes["url"].strip()
        if "headers" in changes:  # replaces them all; {} or null removes them
            headers = check_headers(changes["headers"])
            values["header_names"] = json.dumps(sorted(headers))
            values["headers_enc"] = (self.box.seal(json.dumps(headers),
                                                   self._aad(current.tenant, current.owner))
                                     if headers else None)

        def write(db: DB) -> None:
            db.execute(update(mcp_connections).where(mcp_connections.c.id == connection_id)
                       .values(**values))

        try:
            await self.history.write(write)
        except IntegrityError:
            raise Conflict(f"You already have a connection named '{values.get('name')}'.",
                           param="name") from None
        return await self.get(identity, connection_id)

    async def delete(self, identity: Identity, connection_id: int) -> None:
        if connection_id == BUILTIN_ID:
            raise InvalidRequest("The classroom connection is built in and cannot be deleted.")
        await self.get(identity, connection_id)

        def write(db: DB) -> None:
            db.execute(delete(mcp_connections).where(mcp_connections.c.id == connection_id))

        await self.history.write(write)

    # -- tool-call rows -------------------------------------------------------------------------

    async def start_call(self, identity: Identity, connection: Connection, tool: str,
                         arguments: str, run_id: int | None) -> int:
        now = self.clock()

        def write(db: DB) -> int:
            result = db.execute(insert(tool_calls).values(
                run_id=run_id, user=identity.name, tenant=identity.tenant,
                connection_id=connection.id, connection_name=connection.name, tool=tool[:128],
                arguments=arguments, status="running", started_at=now))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

        return int(await self.history.write(write))

    async def finish_call(self, call_id: int, *, status: str, result: str | None,
                          error: str | None, started_at: float) -> dict[str, Any]:
        now = self.clock()
        values = {"status": status, "result": (result or "")[:MAX_RESULT_CHARS] if result
                  is not None else None, "error_message": error, "finished_at": now,
                  "duration_ms": max(0, round((now - started_at) * 1000))}

        def write(db: DB) -> None:
            db.execute(update(tool_calls).where(tool_calls.c.id == call_id).values(**values))

        await self.history.write(write)
        return values

    async def calls(self, identity: Identity, *, run_id: int | None = None,
                    limit: int = 50) -> list[dict[str, Any]]:
        def read(db: DB) -> list[dict[str, Any]]:
            query = select(tool_calls).where(tool_calls.c.tenant == identity.tenant,
                                             tool_calls.c.user == identity.name)
            if run_id is not None:
                query = query.where(tool_calls.c.run_id == run_id)
            rows = db.execute(query.order_by(tool_calls.c.id.desc()).limit(limit)).all()
            return [dict(r._mapping) for r in rows]

        return await self.history.read(read)
