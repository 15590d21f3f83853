"""``classroom gateway ...``: run the gateway alone, or as the hub's service."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gateway.config.settings import get_settings


def parser() -> argparse.ArgumentParser:
    """The command's parser (also the source of its section of docs/cli.md)."""
    top = argparse.ArgumentParser(prog="classroom gateway",
                                  description="Run the gateway alone, or as the hub's service.")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8010, help="port to listen on")
    serve.add_argument(
        "--workers", type=int, default=None,
        help="worker processes (default: CLASSROOM_WORKERS, 1); more than 1 needs "
        "CLASSROOM_REDIS_URL, where the key pool's state is shared",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn's and the gateway's level")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    settings = get_settings()
    workers = args.workers or settings.workers
    if workers < 1 or (workers != 1 and not settings.redis_url):
        print(
            f"classroom gateway: refusing to start {workers} workers: without "
            "CLASSROOM_REDIS_URL the key pool and its limits live in one process, and several "
            "workers would each apply every limit. Run one worker, or share the pool in Redis "
            "(CLASSROOM_REDIS_URL=redis://...).",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    from gateway.logmask import configure_logging

    configure_logging(args.log_level)
    os.environ["CLASSROOM_LOG_LEVEL"] = args.log_level  # for the workers' own set-up
    app: Any = "gateway.cli:worker_app"
    if workers == 1:
        try:
            app = worker_app(args.log_level)
        except SystemExit as exc:
            print(f"classroom gateway: {exc}", file=sys.stderr)
            return 2
    uvicorn.run(
        app,
        factory=workers != 1,
        workers=workers if workers != 1 else None,
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


def worker_app(log_level: str | None = None) -> Any:
    """The app one worker serves (uvicorn calls this in each worker it starts)."""
    from gateway.edge.app import create_asgi
    from gateway.logmask import configure_logging, mask_secrets

    settings = get_settings()
    if log_level is None:  # a worker process of several
        configure_logging(os.environ.get("CLASSROOM_LOG_LEVEL", "info"))
    mask_secrets(settings.master_key, settings.hub_api_token)
    return create_asgi(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
