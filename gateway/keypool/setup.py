"""Building the pool at start: declared keys → encrypted table → live pool."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from gateway.keypool.keys import KeysFileError, ProviderKey, load_keys_file, load_keys_json
from gateway.keypool.pool import KeyPool
from gateway.keypool.store import KeyStore, SecretBox, load_master_key
from gateway.settings import Settings

log = logging.getLogger("gateway.keypool")


def declared_keys(settings: Settings) -> list[ProviderKey]:
    try:
        if settings.keys_file is not None:
            return load_keys_file(settings.keys_file)
        if settings.key_pool_json:
            return load_keys_json(settings.key_pool_json)
    except KeysFileError as error:
        raise SystemExit(f"provider keys not loaded: {error}") from error
    return []


def build_pool(settings: Settings, engine: Engine) -> tuple[KeyPool, KeyStore]:
    declared = declared_keys(settings)
    master = load_master_key(
        settings.master_key, settings.data_dir, embedded=settings.db_url is None
    )
    store = KeyStore(engine, SecretBox(master))
    report = store.sync(declared)
    for verb, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("deactivated", report.deactivated),
    ):
        if names:
            log.info("key pool: %s %s", verb, ", ".join(names))
    pool = KeyPool(max_wait=settings.queue_max_wait_s, lease_ttl=settings.lease_ttl_s)
    for key, healthy, reason in store.load():
        pool.upsert_key(key)
        if not healthy:
            pool.set_health(key.provider, key.name, False, reason)
    return pool, store
