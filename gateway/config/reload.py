"""Configuration read again while the gateway runs: the tenant files, the keys file and
the admin's prices file.

``POST /api/admin/reload`` (admins) and ``SIGHUP`` to the gateway process both call
:meth:`ConfigReloader.reload`. Every file is read and checked first; a mistake in any
of them changes nothing (the running configuration is kept), is logged and audited,
and is answered as :class:`~gateway.errors.ConfigInvalid` naming the file, line and
field. Otherwise the keys are synced into the database (added, changed, deactivated;
admin-made keys left alone) and the pool, and the tenants are swapped in place: every
service holds the same dict, so none keeps a stale school.

Plain Python, no web framework.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.auth import Identity
from gateway.config.files import ConfigFileError
from gateway.config.settings import Settings
from gateway.config.tenants import Tenant, load_tenants
from gateway.errors import ConfigInvalid
from gateway.history import HistoryStore
from gateway.history.audit import record_audit
from gateway.keypool import PoolBackend, ProviderKey
from gateway.keypool.setup import read_declared_keys, refresh_pool
from gateway.keypool.store import KeyStore
from gateway.pricing import Catalog, ModelInfo, load_prices_file

log = logging.getLogger("gateway.config.reload")
SIGNAL_ACTOR = Identity(name="(SIGHUP)", tenant="default", role="admin", kind="service")


@dataclass
class Reloaded:
    tenants: list[str]
    keys: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"reloaded": True, "tenants": self.tenants, "keys": self.keys,
                "added": self.added, "updated": self.updated, "deactivated": self.deactivated}


class ConfigReloader:
    def __init__(self, settings: Settings, tenants: dict[str, Tenant], pool: PoolBackend,
                 keystore: KeyStore, history: HistoryStore,
                 catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.tenants = tenants
        self.pool = pool
        self.keystore = keystore
        self.history = history
        self._lock = asyncio.Lock()

    def _read(self) -> tuple[dict[str, Tenant], list[ProviderKey], dict[str, ModelInfo]]:
        prices: dict[str, ModelInfo] = {}
        if self.catalog is not None and self.settings.prices_file is not None:
            prices = load_prices_file(self.settings.prices_file, self.catalog)
        return load_tenants(self.settings.tenants_dir), read_declared_keys(self.settings), prices

    async def reload(self, actor: Identity) -> Reloaded:
        """Read and check every file, then apply them all; or apply nothing."""
        async with self._lock:
            try:
                tenants, declared, prices = await asyncio.to_thread(self._read)
            except ConfigFileError as error:
                log.error("configuration not reloaded (the running one is kept): %s", error)
                details = error.public()
                await record_audit(self.history, actor, "config.reload_refused",
                                   target=error.file, details=details)
                raise ConfigInvalid(
                    f"The configuration was not reloaded; the running one is kept. {error}",
                    details=details) from None
            result = Reloaded(sorted(tenants), len(declared))
            store = self.keystore
            report = await self.history.write(lambda c: store.sync_on(c, declared))
            stored = await self.history.read(lambda c: store.load_on(c))
            fresh = {(provider, name) for provider, name in
                     (label.split("/", 1) for label in report.added + report.updated)}
            refresh_pool(self.pool, stored, fresh)
            result.added, result.updated = report.added, report.updated
            result.deactivated = report.deactivated
            self.tenants.clear()
            self.tenants.update(tenants)
            if self.catalog is not None:
                self.catalog.set_local(prices)
            log.info("configuration reloaded: %d school(s), %d declared key(s); keys added %s, "
                     "updated %s, deactivated %s", len(tenants), len(declared),
                     result.added or "none", result.updated or "none",
                     result.deactivated or "none")
            await record_audit(self.history, actor, "config.reload", details=result.public())
            return result
