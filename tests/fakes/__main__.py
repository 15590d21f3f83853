"""``python -m tests.fakes --port P``: every fake vendor on one loopback port, under
``/openai``, ``/anthropic``, ``/google``, ``/elevenlabs``, ``/kling`` and ``/legnext``.
With ``--certfile``/``--keyfile`` they speak HTTPS (a vendor behind a private CA)."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from tests.fakes import (
    anthropic_fake,
    elevenlabs_fake,
    google_fake,
    kling_fake,
    legnext_fake,
    openai_fake,
)

VENDORS = {"openai": openai_fake, "anthropic": anthropic_fake, "google": google_fake,
           "elevenlabs": elevenlabs_fake, "kling": kling_fake, "legnext": legnext_fake}


async def health(_: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    routes: list[Route | Mount] = [Route("/health", health)]
    routes += [Mount(f"/{name}", app=module.app) for name, module in VENDORS.items()]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning",
                ssl_certfile=args.certfile, ssl_keyfile=args.keyfile)


if __name__ == "__main__":
    main()
