"""Provider keys at rest: AES-GCM encrypted in the history DB, synced from the keys file.

At start the declared keys (file or JSON) are synced into the ``provider_keys``
table: new keys are added, changed ones updated, keys no longer declared are
deactivated (never deleted: history refers to them). Admin changes made
through the API live in the same table (``source = 'admin'``) and are left
alone by the sync. The pool is then built from the active rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from gateway.history.models import provider_keys
from gateway.keypool.keys import ProviderKey

log = logging.getLogger("gateway.keypool")
MASTER_KEY_FILE = "master.key"


class MasterKeyError(SystemExit):
    """No usable master key: the gateway refuses to start."""


def _decode_master(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise MasterKeyError(
            "CLASSROOM_MASTER_KEY must be 32 random bytes in URL-safe base64. Make one with: "
            'python3 -c "import base64,secrets;'
            'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
        )
    return raw


def load_master_key(configured: str | None, data_dir: Path, *, embedded: bool) -> bytes:
    """The configured master key; in the embedded set-up, one generated into the data dir."""
    if configured:
        return _decode_master(configured)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return _decode_master(path.read_text())
    if not embedded:
        raise MasterKeyError(
            "CLASSROOM_MASTER_KEY is not set. With an external database (CLASSROOM_DB_URL) the "
            "gateway will not invent one: set it, and keep it safe (it decrypts the provider keys)."
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    log.info("generated a master key in %s (mode 0600)", path)
    return _decode_master(text)


class SecretBox:
    """AES-256-GCM with the key's identity as associated data (a row cannot be swapped)."""

    def __init__(self, master: bytes) -> None:
        self._aead = AESGCM(master)

    def seal(self, secret: str, aad: str) -> str:
        nonce = secrets.token_bytes(12)
        return base64.b64encode(
            nonce + self._aead.encrypt(nonce, secret.encode(), aad.encode())
        ).decode()

    def open(self, sealed: str, aad: str) -> str:
        blob = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(blob[:12], blob[12:], aad.encode()).decode()
        except InvalidTag as exc:
            raise MasterKeyError(
                "A stored provider key cannot be decrypted: CLASSROOM_MASTER_KEY is not the one "
                "the keys were stored with."
            ) from exc


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)


def _aad(provider: str, name: str) -> str:
    return f"{provider}/{name}"


def _row_values(key: ProviderKey, box: SecretBox) -> dict[str, Any]:
    aad = _aad(key.provider, key.name)
    return {
        "secret_enc": box.seal(key.secret, aad) if key.secret else None,
        "secret2_enc": box.seal(key.secret2, aad + "#2") if key.secret2 else None,
        "last4": key.last4,
        "base_url": key.base_url,
        "concurrency_limit": key.concurrency_limit,
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "priority": key.priority,
        "tenant_scope": json.dumps(list(key.tenant_scope)),
        "is_active": key.is_active,
    }


class KeyStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def _same(self, row: Any, key: ProviderKey) -> bool:
        current = self._to_key(row)
        return current == key and current.secret == key.secret and current.secret2 == key.secret2

    def sync(self, declared: list[ProviderKey]) -> SyncReport:
        """Make the table match the declared keys (file-sourced rows only)."""
        with self.engine.begin() as conn:
            return self.sync_on(conn, declared)

    def sync_on(self, conn: Connection, declared: list[ProviderKey]) -> SyncReport:
        """:meth:`sync` inside the caller's transaction (the history's writer, at a reload)."""
        report = SyncReport()
        now = time.time()
        wanted = {(k.provider, k.name): k for k in declared}
        rows = {(r.provider, r.name): r for r in conn.execute(select(provider_keys))}
        for ident, key in wanted.items():
            row = rows.get(ident)
            label = f"{key.provider}/{key.name}"
            if row is None:
                self._write(conn, None, key, "file", now)
                report.added.append(label)
            elif not self._same(row, key) or row.source != "file":
                self._write(conn, row, key, "file", now)
                report.updated.append(label)
        for ident, row in rows.items():
            if ident not in wanted and row.source == "file" and row.is_active:
                conn.execute(
                    update(provider_keys)
                    .where(provider_keys.c.id == row.id)
                    .values(is_active=False, updated_at=now)
                )
                report.deactivated.append(f"{row.provider}/{row.name}")
        return report

    def _to_key(self, row: Any) -> ProviderKey:
        aad = _aad(row.provider, row.name)
        return ProviderKey(
            provider=row.provider,
            name=row.name,
            secret=self.box.open(row.secret_enc, aad) if row.secret_enc else None,
            secret2=self.box.open(row.secret2_enc, aad + "#2") if row.secret2_enc else None,
            base_url=row.base_url,
            concurrency_limit=row.concurrency_limit,
            rpm_limit=row.rpm_limit,
            tpm_limit=row.tpm_limit,
            priority=row.priority,
            tenant_scope=tuple(json.loads(row.tenant_scope or '["*"]')),
            is_active=bool(row.is_active),
        )

    def load(self) -> list[tuple[ProviderKey, bool, str | None]]:
        """Every active key with its health."""
        with self.engine.connect() as conn:
            return self.load_on(conn)

    def load_on(self, conn: Connection) -> list[tuple[ProviderKey, bool, str | None]]:
        rows = conn.execute(select(provider_keys).where(provider_keys.c.is_active.is_(True)))
        return [(self._to_key(r), r.health == "ok", r.health_reason) for r in rows]

    def listing(self) -> list[dict[str, Any]]:
        """Every key as admins see it: no secret, only the last four characters."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(provider_keys).order_by(provider_keys.c.provider, provider_keys.c.name)
            )
            return [
                {
                    "provider": r.provider,
                    "name": r.name,
                    "last4": r.last4,
                    "base_url": r.base_url,
                    "concurrency_limit": r.concurrency_limit,
                    "rpm_limit": r.rpm_limit,
                    "tpm_limit": r.tpm_limit,
                    "priority": r.priority,
                    "tenant_scope": json.loads(r.tenant_scope or '["*"]'),
                    "is_active": bool(r.is_active),
                    "health": r.health,
                    "health_reason": r.health_reason,
                    "source": r.source,
                }
                for r in rows
            ]

    def upsert_admin_key(self, conn: Connection, key: ProviderKey) -> bool:
        """Add or replace a key from the admin API; True when it was new."""
        row = conn.execute(
            select(provider_keys).where(
                provider_keys.c.provider == key.provider, provider_keys.c.name == key.name
            )
        ).first()
        self._write(conn, row, key, "admin", time.time())
        return row is None

    def _write(self, conn: Connection, row: Any, key: ProviderKey, source: str,
               now: float) -> None:
        """Store a key (a new row, or ``row`` replaced), healthy, with its secrets sealed."""
        values = {"source": source, "health": "ok", "updated_at": now,
                  **_row_values(key, self.box)}
        if row is None:
            conn.execute(provider_keys.insert().values(
                provider=key.provider, name=key.name, created_at=now, **values))
        else:
            conn.execute(update(provider_keys).where(provider_keys.c.id == row.id)
                         .values(health_reason=None, **values))

    def set_state(
        self,
        conn: Connection,
        provider: str,
        name: str,
        *,
        is_active: bool | None = None,
        healthy: bool | None = None,
        reason: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"updated_at": time.time()}
        if is_active is not None:
            values["is_active"] = is_active
        if healthy is not None:
            values["health"] = "ok" if healthy else "unhealthy"
            values["health_reason"] = None if healthy else reason
        result = conn.execute(
            update(provider_keys)
            .where(provider_keys.c.provider == provider, provider_keys.c.name == name)
            .values(**values)
        )
        return bool(result.rowcount)

    def get(self, conn: Connection, provider: str, name: str) -> ProviderKey | None:
        row = conn.execute(
            select(provider_keys).where(
                provider_keys.c.provider == provider, provider_keys.c.name == name
            )
        ).first()
        return self._to_key(row) if row is not None else None
