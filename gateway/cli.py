"""``classroom gateway ...``: run the gateway alone, or as the hub's service."""

from __future__ import annotations

import argparse
import sys

from gateway.settings import get_settings


def parser() -> argparse.ArgumentParser:
    """The command's parser (also the source of its section of docs/cli.md)."""
    top = argparse.ArgumentParser(prog="classroom gateway",
                                  description="Run the gateway alone, or as the hub's service.")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8010, help="port to listen on")
    serve.add_argument(
        "--workers", type=int, default=None, help="must be 1 (pool state is per process)"
    )
    serve.add_argument("--log-level", default="info", help="uvicorn's and the gateway's level")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    settings = get_settings()
    workers = args.workers or settings.workers
    if workers != 1:
        print(
            f"classroom gateway: refusing to start {workers} workers: the key pool and its "
            "limits live in one process, and several workers would each apply every limit. "
            "Run one worker (scale-out needs the shared store).",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    from gateway.app import create_asgi
    from gateway.logging import configure_logging, mask_secrets

    configure_logging(args.log_level)
    mask_secrets(settings.master_key, settings.hub_api_token)
    try:
        app = create_asgi(settings)
    except SystemExit as exc:
        print(f"classroom gateway: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,  # uvicorn's loggers propagate to the root handler, which masks
        access_log=False,
        proxy_headers=False,  # the gateway never uses client addresses: no per-request parsing
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
