"""Logging set-up with a filter that masks secrets, whatever logs them.

One handler on the root logger carries :class:`MaskSecrets`; every other logger of
the process (uvicorn's included: ``classroom gateway serve`` runs uvicorn without
its own logging configuration) propagates to it. The filter masks what looks like a
key or a bearer token, and, exactly, every secret the gateway was given (provider
keys, the master key, its hub token): in messages, arguments, tracebacks and stacks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

SECRET = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_-]{12,}|AIza[0-9A-Za-z_-]{20,}"
    r"|(?i:bearer|token)\s+[A-Za-z0-9._~+/-]{16,}=*)"
)
MIN_KNOWN = 8  # shorter values would mask ordinary words


def mask(text: str, known: Iterable[str] = ()) -> str:
    for secret in known:
        text = text.replace(secret, "[masked]")
    return SECRET.sub(lambda m: m.group(0)[:4] + "…[masked]", text)


class MaskSecrets(logging.Filter):
    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known: set[str] = set()
        self.add(*known)

    def add(self, *secrets: str | None) -> None:
        self.known |= {s for s in secrets if s and len(s) >= MIN_KNOWN}

    def mask(self, text: str) -> str:
        # Longest first, so a secret containing another is masked whole.
        return mask(text, sorted(self.known, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def mask_secrets(*secrets: str | None) -> None:
    """Mask these exact values from now on, on every handler that masks (no-op without
    :func:`configure_logging`, e.g. in-process tests, whose logs are checked instead)."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, MaskSecrets):
                found.add(*secrets)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname).1s %(asctime)s %(name)s] %(message)s"))
    handler.addFilter(MaskSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
