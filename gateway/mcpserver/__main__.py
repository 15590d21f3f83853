"""``python -m gateway.mcpserver --host 127.0.0.1 --port 8765``: the classroom MCP server."""

from __future__ import annotations

import argparse

import uvicorn

from gateway.mcpserver.server import build_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The classroom's MCP server (streamable "
                                     "HTTP at /mcp).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = build_server(args.host, args.port)
    uvicorn.run(server.streamable_http_app(), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
