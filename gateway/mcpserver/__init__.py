"""The classroom's own MCP server: safe tools that work offline (a calculator, unit
conversion, dates and times, a small encyclopedia), built with the official ``mcp``
SDK's FastMCP and served over streamable HTTP at ``/mcp``.

``classroom run`` starts it next to the gateway (``python -m gateway.mcpserver --host H
--port P``), and the gateway allows its URL for every school and offers it to every user
as the built-in connection ``classroom``. Every tool is a pure function of its arguments
(and the clock, for "now"), so it needs no network and no secrets.
"""

from gateway.mcpserver.server import build_server

__all__ = ["build_server"]
