"""MCP tables: users' connections, each school's allow-list, and every tool call.

Defined on the history metadata (imported at the end of :mod:`gateway.history.models`);
migration 0009 creates them."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.history.models import metadata

mcp_connections = Table(
    "mcp_connections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("name", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("header_names", Text, nullable=False, default="[]"),  # JSON list, shown to the owner
    Column("headers_enc", Text),  # the header values, AES-GCM sealed; never returned
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant", "owner", "name", name="uq_mcp_connections_owner_name"),
)

mcp_allowlist = Table(
    "mcp_allowlist",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("entry", String(2000), nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant", "entry", name="uq_mcp_allowlist_entry"),
)

tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id")),  # the chat turn that asked for it
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("connection_id", Integer),
    Column("connection_name", String(64)),
    Column("tool", String(128), nullable=False),
    Column("arguments", Text),  # JSON text, as the model wrote it
    Column("result", Text),  # the tool's answer as text (cut to a bound)
    Column("status", String(16), nullable=False),  # running, ok, error, timeout, refused
    Column("error_message", Text),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("duration_ms", Integer),
)

Index("ix_tool_calls_user_id", tool_calls.c.user, tool_calls.c.id)
Index("ix_tool_calls_run", tool_calls.c.run_id)
