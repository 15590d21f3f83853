"""The key pool: which provider key a call may use, and when.

Plain Python, no web framework. The pipeline asks for a lease around every
provider call::

    async with pool.lease("openai", tenant="school_a", user="stu1", tier=Tier.STUDENT,
                          tokens=estimate, exclude=tried) as lease:
        ... call the provider with lease.key (None for an unlimited mock) ...
        lease.used_tokens(actual)              # for TPM accounting
        lease.failed(status, retry_after)      # 401/403 → unhealthy, 429 → cool down

and ``pool.available(provider, tenant)`` says whether any key could serve.

The contract is :class:`PoolBackend`; :class:`KeyPool` keeps the state in this process,
:class:`gateway.keypool.redis_pool.RedisPool` in Redis for several replicas, and
:func:`gateway.keypool.setup.make_pool` picks one from the settings.
"""

from gateway.keypool.backend import LeaseLike, PoolBackend
from gateway.keypool.keys import (
    PROVIDERS,
    KeysFileError,
    ProviderKey,
    load_keys_file,
    load_keys_json,
    parse_keys,
)
from gateway.keypool.pool import KeyPool, Lease, Tier

__all__ = [
    "PROVIDERS",
    "KeyPool",
    "KeysFileError",
    "Lease",
    "LeaseLike",
    "PoolBackend",
    "ProviderKey",
    "Tier",
    "load_keys_file",
    "load_keys_json",
    "parse_keys",
]
