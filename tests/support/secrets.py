"""The secrets the test suite used, and the check that none of them reached a log.

Fixtures and tests :func:`remember` every secret they create or hand to the system
(provider keys, master keys, passwords, hub API tokens; the static tokens of
``tests/conftest.py`` are test identities, not secrets) and :func:`watch` every log
file a process they start writes. At the end of the session ``tests/conftest.py``
calls :func:`scan` over those files, the hub logs kept in ``test-artifacts/logs`` and
the output captured from every test, and fails the session when a secret is found.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MIN_LENGTH = 8  # shorter values would match by chance; no real secret is that short
SESSION_STARTED = time.time()
KEY_FIELDS = re.compile(r'(?:api_key|access_key|secret_key)\s*=\s*"([^"]+)"')


@dataclass
class Registry:
    secrets: set[str] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)
    captured: list[tuple[str, str]] = field(default_factory=list)  # (where, text)


REGISTRY = Registry()


def remember(*secrets: str | None) -> None:
    """Secrets that must never appear in a log."""
    for secret in secrets:
        if secret and len(secret.strip()) >= MIN_LENGTH:
            REGISTRY.secrets.add(secret.strip())


def remember_keys_text(text: str) -> None:
    """Every api_key, access_key and secret_key of a keys file (TOML or its JSON twin)."""
    remember(*KEY_FIELDS.findall(text))
    remember(*re.findall(r'"(?:api_key|access_key|secret_key)"\s*:\s*"([^"]+)"', text))


def remember_file(path: Path) -> None:
    """A secret kept in a file (a generated master key), if the file is there."""
    try:
        remember(path.read_text().strip())
    except OSError:
        pass


def watch(path: Path) -> None:
    """A log file to scan at the end of the session (it must exist by then)."""
    REGISTRY.files.add(Path(path))


def captured(where: str, text: str) -> None:
    if text:
        REGISTRY.captured.append((where, text))


def hide(secret: str) -> str:
    return f"{secret[:3]}…({len(secret)} characters)"


@dataclass
class Finding:
    where: str
    secret: str

    def __str__(self) -> str:
        return f"{self.where}: contains the secret {hide(self.secret)}"


def scan_text(where: str, text: str | bytes, secrets: Iterable[str]) -> list[Finding]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [Finding(where, s) for s in sorted(secrets) if s.encode() in data]


def scan_files(paths: Iterable[Path], secrets: Iterable[str]) -> list[Finding]:
    wanted = sorted(set(secrets))
    found: list[Finding] = []
    for path in sorted(set(paths)):
        found += scan_text(str(path), path.read_bytes(), wanted)
    return found


def kept_logs(directory: Path, since: float = SESSION_STARTED) -> list[Path]:
    """The logs of this session kept in ``test-artifacts/logs``."""
    if not directory.is_dir():
        return []
    return [p for p in directory.rglob("*") if p.is_file() and p.stat().st_mtime >= since]


@dataclass
class Report:
    findings: list[Finding]
    missing: list[Path]
    files: int
    captured: int
    secrets: int

    @property
    def ok(self) -> bool:
        return not self.findings and not self.missing


def scan(artifacts: Path) -> Report:
    """Every watched log, every kept log and all captured output, for every secret."""
    secrets = set(REGISTRY.secrets)
    missing = sorted(p for p in REGISTRY.files if not p.is_file())
    files = {p for p in REGISTRY.files if p.is_file()} | set(kept_logs(artifacts))
    findings = scan_files(files, secrets)
    for where, text in REGISTRY.captured:
        findings += scan_text(where, text, secrets)
    return Report(findings, missing, len(files), len(REGISTRY.captured), len(secrets))
