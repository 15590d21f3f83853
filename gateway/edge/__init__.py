"""The HTTP edge: where a call arrives.

``app`` builds the FastAPI application and its ASGI edge (service prefix, body
limit), ``fastpath`` answers ``POST /v1/chat/completions`` before FastAPI, ``asgi``
holds the ASGI types and error responses both share, ``schemas``, ``formdata`` and
``images`` validate what a caller sent, ``origin`` bounds the notebook and cell a
kernel says a call came from. The routers are in :mod:`gateway.api`.
"""
