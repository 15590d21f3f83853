"""Building the pool at start: declared keys → encrypted table → live pool."""

from __future__ import annotations

import base64
import logging
from collections.abc import Collection

from sqlalchemy import Engine

from gateway.config.settings import Settings
from gateway.keypool.backend import PoolBackend
from gateway.keypool.keys import KeysFileError, ProviderKey, load_keys_file, load_keys_json
from gateway.keypool.pool import WINDOW, KeyPool
from gateway.keypool.store import KeyStore, SecretBox, load_master_key
from gateway.logmask import mask_secrets

log = logging.getLogger("gateway.keypool")


def read_declared_keys(settings: Settings) -> list[ProviderKey]:
    """The keys the settings declare; :class:`KeysFileError` naming file, line and field."""
    if settings.keys_file is not None:
        return load_keys_file(settings.keys_file)
    if settings.key_pool_json:
        return load_keys_json(settings.key_pool_json)
    return []


def declared_keys(settings: Settings) -> list[ProviderKey]:
    try:
        return read_declared_keys(settings)
    except KeysFileError as error:
        raise SystemExit(f"provider keys not loaded: {error}") from error


def refresh_pool(pool: PoolBackend, stored: list[tuple[ProviderKey, bool, str | None]],
                 fresh: Collection[tuple[str, str]] = ()) -> None:
    """The pool made to hold the stored active keys (``KeyStore.load``): leases and windows
    of kept keys survive, ``fresh`` (added or changed) keys start healthy, stored ill health
    is applied."""
    mask_secrets(*(s for key, _, _ in stored for s in (key.secret, key.secret2)))
    pool.set_keys(key for key, _, _ in stored)
    for key, healthy, reason in stored:
        if not healthy:
            pool.set_health(key.provider, key.name, False, reason)
        elif (key.provider, key.name) in fresh:
            pool.set_health(key.provider, key.name, True)


def make_pool(settings: Settings, *, window: float = WINDOW) -> PoolBackend:
    """The pool backend the settings choose: on Redis with ``CLASSROOM_REDIS_URL`` (shared by
    every worker and replica), else in this process."""
    margin = settings.rate_limit_margin_ms / 1000
    if settings.redis_url:
        from gateway.keypool.redis_pool import RedisPool

        return RedisPool(settings.redis_url, prefix=settings.redis_prefix,
                         heartbeat=settings.redis_heartbeat_s, max_wait=settings.queue_max_wait_s,
                         lease_ttl=settings.lease_ttl_s, window=window, margin=margin)
    return KeyPool(max_wait=settings.queue_max_wait_s, lease_ttl=settings.lease_ttl_s,
                   window=window, margin=margin)


def build_pool(settings: Settings, engine: Engine, *, window: float = WINDOW
               ) -> tuple[PoolBackend, KeyStore]:
    """The key store and the live pool; ``window``: the length of the keys' RPM/TPM windows
    (the vendors' minute; tests shorten it to see several windows in a few seconds)."""
    declared = declared_keys(settings)
    master = load_master_key(
        settings.master_key, settings.data_dir, embedded=settings.db_url is None
    )
    mask_secrets(base64.urlsafe_b64encode(master).decode(), settings.master_key)
    store = KeyStore(engine, SecretBox(master))
    report = store.sync(declared)
    for verb, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("deactivated", report.deactivated),
    ):
        if names:
            log.info("key pool: %s %s", verb, ", ".join(names))
    pool = make_pool(settings, window=window)
    refresh_pool(pool, store.load())
    return pool, store
