"""Logging set-up with a filter that masks secrets, whatever logs them."""

from __future__ import annotations

import logging
import re

SECRET = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_-]{12,}|AIza[0-9A-Za-z_-]{20,}"
    r"|(?i:bearer|token)\s+[A-Za-z0-9._~+/-]{16,}=*)"
)


def mask(text: str) -> str:
    return SECRET.sub(lambda m: m.group(0)[:4] + "…[masked]", text)


class MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname).1s %(asctime)s %(name)s] %(message)s"))
    handler.addFilter(MaskSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
