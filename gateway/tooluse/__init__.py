"""Tools a model may call through the gateway: users' MCP connections (:mod:`.store`), the
gateway as an MCP client (:mod:`.client`) and the one round of tool calls of a chat turn
(:mod:`.turn`)."""

from gateway.tooluse.client import McpClient, McpTool, ToolOutcome
from gateway.tooluse.store import BUILTIN_ID, Connection, ConnectionStore
from gateway.tooluse.turn import ToolTurns

__all__ = ["BUILTIN_ID", "Connection", "ConnectionStore", "McpClient", "McpTool", "ToolOutcome",
           "ToolTurns"]
