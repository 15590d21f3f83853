"""The key pool on Redis: one pool shared by every worker and replica of the gateway.

Same contract as the in-process pool (:class:`gateway.keypool.backend.PoolBackend`), with
the shared state in Redis and every decision taken by one Lua script
(:mod:`gateway.keypool.redis_scripts`) on Redis's own clock, so limits hold whichever
replica a call lands on:

- a call asks with its candidate keys (those of its school, with their limits, as this
  replica loaded them from the shared database); the script queues it fairly (tier, then
  the user served least recently), grants what fits and answers at once;
- a replica's waiting calls are asked about by one poller per provider, woken by Redis
  pub/sub when any replica releases a slot, and by the script's hint of when a window
  slides or a cool-down ends;
- each replica beats every third of ``heartbeat``; a replica silent longer (SIGKILL,
  SIGSTOP) loses its leases and queued calls at the next decision on those keys;
- a lease carries a fencing token: once reclaimed, its release, renewal and token charge
  are refused by the script, so a replica waking from a freeze changes nothing;
- while Redis cannot be reached, calls are refused with ``pool_unavailable`` (503) and
  never served unlimited; when it answers again the pool carries on (see the epoch in
  :mod:`gateway.keypool.redis_scripts` for a Redis that lost its data).

What ``renew``, ``used_tokens``, ``failed`` and ``release`` report is sent in the
background (their callers are synchronous); ``async with pool.lease(...)`` awaits the
release itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import NoKeyAvailable, PoolUnavailable, QueueTimeout
from gateway.keypool.backend import HealthListener
from gateway.keypool.keys import ProviderKey
from gateway.keypool.pool import DEFAULT_COOLDOWN, WINDOW, Lease, Tier
from gateway.keypool.redis_scripts import LUA

log = logging.getLogger("gateway.keypool")
POLL_MAX = 0.25  # seconds: the longest a waiting call goes unasked (a reclaim, a freeze)


def _spec(key: ProviderKey) -> str:
    def n(value: int | None) -> str:
        return "-1" if value is None else str(value)

    return ",".join((key.name, n(key.concurrency_limit), n(key.rpm_limit), n(key.tpm_limit),
                     str(key.priority)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLease(Lease):
    """A granted slot on a key, with its fencing token (``key`` None: the unlimited mock).
    A :class:`Lease` to its callers; the in-process pool's fields stay unused."""

    def __init__(self, pool: RedisPool | None, key: ProviderKey | None, fence: str, user: str,
                 tier: Tier, tokens: int, waited: float) -> None:
        self.pool, self.state, self.charge = None, None, None
        self.id, self.ttl, self.expires_at, self.reclaimed = 0, 0.0, float("inf"), False
        self.backend, self.key, self.fence = pool, key, fence
        self.user, self.tier, self.tokens, self.waited = user, tier, tokens, waited
        self.granted_at = time.time()
        self.released_at: float | None = None
        self.released = False
        self.lost = False  # the pool reclaimed it (this replica was silent too long)
        self.failure: tuple[int, float | None] | None = None

    def renew(self) -> None:
        if self.backend is not None and self.key is not None and not self.released:
            self.backend._background(self.backend._renew(self))

    def used_tokens(self, tokens: int) -> None:
        if self.backend is not None and self.key is not None and tokens != self.tokens:
            delta, self.tokens = tokens - self.tokens, tokens
            self.backend._background(self.backend._charge(self, delta))

    def failed(self, status: int, retry_after: float | None = None) -> None:
        self.failure = (status, retry_after)
        if self.backend is not None and self.key is not None:
            self.backend._report(self, status, retry_after)

    def release(self) -> None:
        if self._ending():
            assert self.backend is not None
            self.backend._background(self.backend._release(self))

    async def aclose(self) -> None:
        """Release, and wait until Redis has it."""
        if self._ending():
            assert self.backend is not None
            await self.backend._release(self)

    def _ending(self) -> bool:
        """Marks the lease released; whether Redis must hear of it."""
        if self.released:
            return False
        self.released = True
        self.released_at = time.time()
        if self.backend is None or self.key is None:
            return False
        self.backend._forget(self)
        return True


class _Waiting:
    __slots__ = ("args", "enqueued", "future", "provider", "user", "tier", "tokens", "keys")

    def __init__(self, provider: str, args: list[str], keys: dict[str, ProviderKey], user: str,
                 tier: Tier, tokens: int) -> None:
        self.provider, self.args, self.keys = provider, args, keys
        self.user, self.tier, self.tokens = user, tier, tokens
        self.future: asyncio.Future[RedisLease] = asyncio.get_running_loop().create_future()
        self.enqueued = time.monotonic()


class RedisPool:
    """The Redis backend of :class:`gateway.keypool.backend.PoolBackend`."""

    def __init__(
        self,
        url: str,
        keys: Iterable[ProviderKey] = (),
        *,
        prefix: str = "classroom:pool",
        heartbeat: float = 3.0,
        max_wait: float = 120.0,
        lease_ttl: float = 300.0,
        window: float = WINDOW,
        margin: float = 0.25,
        on_health: HealthListener | None = None,
        client: aioredis.Redis | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.heartbeat = heartbeat
        self.max_wait = max_wait
        self.lease_ttl = lease_ttl
        self.window = window
        self.margin = margin
        self.on_health = on_health
        self.replica = uuid.uuid4().hex[:16]
        self.redis = client or aioredis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=5.0, max_connections=256)
        self._script = self.redis.register_script(LUA)
        self._keys: dict[tuple[str, str], ProviderKey] = {}
        self._ill: dict[tuple[str, str], str] = {}  # as last read from Redis or reported
        self._health_writes: dict[tuple[str, str], tuple[bool, str]] = {}
        self._leases: dict[str, RedisLease] = {}  # live leases of this replica, by fence
        self._waiting: dict[str, dict[str, _Waiting]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._epoch = ""
        self._state: dict[tuple[str, str], list[Any]] = {}
        self._down: str | None = None
        self._started = False
        self._beater: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.round_trips = 0  # script calls made (the benchmarks report them per call)
        self.set_keys(keys)

    # -- life -------------------------------------------------------------------------

    @property
    def hold_ms(self) -> int:
        return round((self.window + self.margin) * 1000)

    @property
    def hb_ms(self) -> int:
        return round(self.heartbeat * 1000)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self._beat()
            await self._write_health()
        except PoolUnavailable as error:
            log.warning("Redis is not reachable at start (%s); the pool refuses calls until "
                        "it is", error.details.get("reason"))
        self._beater = asyncio.get_running_loop().create_task(self._beat_forever())
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def aclose(self) -> None:
        for task in [self._beater, self._listener, *self._pollers.values()]:
            if task is not None:
                task.cancel()
        for lease in list(self._leases.values()):
            lease.release()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        await self.redis.aclose()

    async def problem(self) -> str | None:
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
        except (RedisError, OSError, TimeoutError) as exc:
            return f"Redis: {type(exc).__name__}"
        return None

    async def _call(self, op: str, *args: Any) -> Any:
        self.round_trips += 1
        try:
            try:
                result = await self._script(args=[self.prefix, op, self._epoch, *args])
            except (RedisConnectionError, RedisTimeoutError):
                # a connection broken by a Redis restart: once more, on a fresh one (every
                # operation may run twice: its effect is the same, or a larger charge)
                result = await self._script(args=[self.prefix, op, self._epoch, *args])
        except (RedisError, OSError) as exc:
            if self._down is None:
                log.warning("the key pool's Redis is unreachable: %s", type(exc).__name__)
            self._down = type(exc).__name__
            raise PoolUnavailable(
                "The classroom's key pool (its Redis server) cannot be reached, so no AI call "
                "can be scheduled safely right now. Try again in a few seconds.",
                retry_after=2, details={"reason": type(exc).__name__},
            ) from None
        if self._down is not None:
            log.warning("the key pool's Redis answers again")
            self._down = None
        return result

    def _seen_epoch(self, epoch: Any) -> None:
        epoch = _text(epoch)
        if self._epoch and epoch != self._epoch:
            self._epoch = epoch
            self._background(self._register())
        self._epoch = epoch

    async def _beat(self) -> None:
        known = self._epoch
        epoch = _text(await self._call("beat", self.replica, self.hb_ms, self.hold_ms))
        self._epoch = epoch
        if known and epoch != known:
            await self._register()

    async def _register(self) -> None:
        """Redis lost its state: this replica's running leases are registered again (before
        the script's calm period for leases ends, nothing is granted on their keys)."""
        log.warning("the key pool's Redis lost its state; this replica's %d running "
                    "lease(s) are registered again", len(self._leases))
        args: list[Any] = [self.replica, self.hb_ms, self.hold_ms]
        for lease in self._leases.values():
            assert lease.key is not None
            args += [lease.key.provider, lease.key.name, lease.fence,
                     round(self.lease_ttl * 1000)]
        await self._call("beat", *args)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat / 3)
            try:
                await self._beat()
                await self._read_state()
            except PoolUnavailable:
                pass
            except Exception:  # noqa: BLE001 - the heartbeat must survive anything
                log.exception("key pool heartbeat failed")

    async def _listen(self) -> None:
        """Wake this replica's pollers when any replica frees a slot or grants."""
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.psubscribe(f"{self.prefix}:wake:*")
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    provider = _text(message["channel"]).rsplit(":", 1)[-1]
                    event = self._wakes.get(provider)
                    if event is not None:
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: try again shortly
                await asyncio.sleep(0.5)

    def _background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except PoolUnavailable:
            pass  # logged once by _call; the lease's TTL or the heartbeat settles it

    # -- keys -------------------------------------------------------------------------

    @property
    def keys(self) -> list[ProviderKey]:
        return list(self._keys.values())

    def set_keys(self, keys: Iterable[ProviderKey]) -> None:
        self._keys = {(key.provider, key.name): key for key in keys}

    def upsert_key(self, key: ProviderKey) -> None:
        self._keys[(key.provider, key.name)] = key

    def set_health(self, provider: str, name: str, healthy: bool,
                   reason: str | None = None) -> None:
        if (provider, name) not in self._keys:
            raise KeyError(f"no {provider} key named {name!r}")
        if healthy:
            self._ill.pop((provider, name), None)
        else:
            self._ill[(provider, name)] = reason or "out of service"
        self._health_writes[(provider, name)] = (healthy, reason or "")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # set up before the loop runs: written at start
            return
        self._background(self._write_health())

    async def _write_health(self) -> None:
        """Health decided here (an admin, the stored state at start) goes to Redis."""
        while self._health_writes:
            (provider, name), (healthy, reason) = self._health_writes.popitem()
            await self._call("health", provider, name, "1" if healthy else "0", reason)

    def _active(self, provider: str, tenant: str | None = None) -> list[ProviderKey]:
        return [key for (p, _), key in self._keys.items()
                if p == provider and key.is_active and (tenant is None or key.serves(tenant))]

    def keys_for(self, provider: str, tenant: str) -> list[ProviderKey]:
        return sorted(self._active(provider, tenant), key=lambda key: -key.priority)

    def available(self, provider: str, tenant: str) -> bool:
        if provider == "mock" and not self._active("mock"):
            return True
        return any((key.provider, key.name) not in self._ill
                   for key in self._active(provider, tenant))

    # -- leases -----------------------------------------------------------------------

    def lease(self, provider: str, *, tenant: str, user: str, tier: Tier = Tier.STUDENT,
              tokens: int = 0, exclude: Iterable[str] = (),
              max_wait: float | None = None) -> RedisLeasing:
        return RedisLeasing(self, provider, tenant, user, tier, tokens, exclude, max_wait)

    async def acquire(self, provider: str, *, tenant: str, user: str,
                      tier: Tier = Tier.STUDENT, tokens: int = 0, exclude: Iterable[str] = (),
                      max_wait: float | None = None) -> RedisLease:
        if provider == "mock" and not self._active("mock"):
            return RedisLease(None, None, "", user, tier, tokens, 0.0)
        skip = set(exclude)
        candidates = [key for key in self._active(provider, tenant) if key.name not in skip]
        if not candidates:
            raise NoKeyAvailable(
                f"No {provider} key serves your school in this classroom. Ask your teacher, "
                "or practise with mock/echo.")
        if all((key.provider, key.name) in self._ill for key in candidates):
            raise self._all_ill(provider)
        if not self._started:
            await self.start()
        wid = f"{self.replica}:{next(self._ids)}"
        args = [str(v) for v in (
            self.replica, self.hb_ms, self.hold_ms, provider, wid, user, int(tier), tokens,
            ";".join(_spec(key) for key in candidates), round(self.lease_ttl * 1000))]
        by_name = {key.name: key for key in candidates}
        answer = await self._enqueue(provider, wid, args, by_name, user, tier, tokens)
        self._seen_epoch(answer[0])
        status = _text(answer[1])
        if status == "granted":
            return self._granted(by_name, answer[2], answer[3], answer[4], user, tier, tokens)
        if status == "unhealthy":
            for key in candidates:
                self._ill.setdefault((key.provider, key.name), "out of service")
            raise self._all_ill(provider)
        waiting = _Waiting(provider, args, by_name, user, tier, tokens)
        self._waiting.setdefault(provider, {})[wid] = waiting
        self._wake_soon(provider, float(_text(answer[2])))
        return await self._wait(wid, waiting, self.max_wait if max_wait is None else max_wait)

    async def _enqueue(self, provider: str, wid: str, args: list[str],
                       keys: dict[str, ProviderKey], user: str, tier: Tier,
                       tokens: int) -> Any:
        """The enqueue, safe against the caller leaving while it is in flight: Redis may
        queue (or grant) the call even though its answer is never read here, so a caller
        cancelled meanwhile waits for the answer and takes the call out again (or gives
        the grant back); otherwise the queue entry is orphaned and its later grant leaks
        a slot for the lease TTL (the replica stays alive)."""
        call = asyncio.ensure_future(self._call("enqueue", *args))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await asyncio.shield(self._quietly(self._undo_enqueue(
                call, provider, wid, keys, user, tier, tokens)))
            raise

    async def _undo_enqueue(self, call: asyncio.Future[Any], provider: str, wid: str,
                            keys: dict[str, ProviderKey], user: str, tier: Tier,
                            tokens: int) -> None:
        answer = await call
        if _text(answer[1]) == "granted":
            await self._granted(keys, answer[2], answer[3], answer[4], user, tier,
                                tokens).aclose()
        elif _text(answer[1]) == "waiting":
            await self._call("abandon", provider, wid, self.hold_ms)

    def _all_ill(self, provider: str) -> NoKeyAvailable:
        return NoKeyAvailable(
            f"Every {provider} key of your school is out of service (the provider refused "
            "it). An administrator has to check the keys; practise with mock/echo meanwhile.")

    def _granted(self, keys: dict[str, ProviderKey], fence: Any, name: Any, waited_ms: Any,
                 user: str, tier: Tier, tokens: int) -> RedisLease:
        lease = RedisLease(self, keys[_text(name)], _text(fence), user, tier, tokens,
                           float(_text(waited_ms)) / 1000)
        self._leases[lease.fence] = lease
        return lease

    async def _wait(self, wid: str, waiting: _Waiting, timeout: float) -> RedisLease:
        provider = waiting.provider
        if provider not in self._pollers or self._pollers[provider].done():
            self._pollers[provider] = asyncio.get_running_loop().create_task(
                self._poll(provider))
        try:
            # not asyncio.wait_for: on Python 3.11 it returns the result, swallowing the
            # cancellation, when the grant and the cancel land in the same instant
            async with asyncio.timeout(timeout):
                return await asyncio.shield(waiting.future)
        except (TimeoutError, asyncio.CancelledError) as exc:
            self._waiting.get(provider, {}).pop(wid, None)
            future = waiting.future
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().release()  # granted in the same instant: give it back
            else:
                future.cancel()
                # Out of the queue, and a grant made meanwhile given back (by the script).
                await asyncio.shield(self._quietly(self._call(
                    "abandon", provider, wid, self.hold_ms)))
            if isinstance(exc, asyncio.CancelledError):
                raise
            waited = time.monotonic() - waiting.enqueued
            raise QueueTimeout(
                f"Every {provider} key was busy for {waited:.0f} s, the longest a call "
                "may wait. The class is making many calls at once: try again in a minute.",
                retry_after=5, details={"waited_s": round(waited, 1)},
            ) from None

    def _wake_soon(self, provider: str, hint_ms: float) -> None:
        event = self._wakes.setdefault(provider, asyncio.Event())
        if 0 <= hint_ms <= 1:
            event.set()

    async def _poll(self, provider: str) -> None:
        """Ask Redis about this replica's waiting calls of one provider until none waits."""
        event = self._wakes.setdefault(provider, asyncio.Event())
        delay = 0.0
        while self._waiting.get(provider):
            try:
                await asyncio.wait_for(event.wait(), delay)
            except TimeoutError:
                pass
            event.clear()
            waiting = self._waiting.get(provider, {})
            if not waiting:
                break
            asked = dict(waiting)  # a call given up meanwhile still gets its grant back
            wids = list(asked)
            try:
                answer = await self._call("poll", self.replica, self.hb_ms, self.hold_ms,
                                          provider, *wids)
            except PoolUnavailable as error:
                for wid in wids:
                    entry = waiting.pop(wid, None)
                    if entry is not None and not entry.future.done():
                        entry.future.set_exception(error)
                break
            self._seen_epoch(answer[0])
            hint = float(_text(answer[1]))
            rows = answer[2:]
            for i in range(0, len(rows), 4):
                wid, fence, name, waited = (_text(v) for v in rows[i:i + 4])
                entry = asked.get(wid)
                if entry is None:
                    continue
                if fence == "gone":
                    # Gone from Redis: given up here meanwhile (nothing to do), or this
                    # replica was thought dead (ask again, at the back of the queue).
                    if waiting.get(wid) is entry and not entry.future.done():
                        await self._requeue(entry)
                    continue
                waiting.pop(wid, None)
                lease = self._granted(entry.keys, fence, name, waited, entry.user, entry.tier,
                                      entry.tokens)
                if entry.future.done():
                    lease.release()
                else:
                    entry.future.set_result(lease)
            delay = POLL_MAX if hint < 0 else min(POLL_MAX, max(0.002, hint / 1000 + 0.001))

    async def _requeue(self, entry: _Waiting) -> None:
        wid = entry.args[4]
        waiting = self._waiting.get(entry.provider, {})
        try:
            answer = await self._call("enqueue", *entry.args)
        except PoolUnavailable:
            return
        status = _text(answer[1])
        if status == "granted":
            waiting.pop(wid, None)
            lease = self._granted(entry.keys, answer[2], answer[3], answer[4], entry.user,
                                  entry.tier, entry.tokens)
            if entry.future.done():
                lease.release()
            else:
                entry.future.set_result(lease)
        elif status == "unhealthy":
            waiting.pop(wid, None)
            if not entry.future.done():
                entry.future.set_exception(self._all_ill(entry.provider))
        elif waiting.get(wid) is not entry:
            # Given up while this enqueue was in flight: its abandon may have reached Redis
            # first (finding nothing), so the entry queued again is taken out here.
            await self._quietly(self._call("abandon", entry.provider, wid, self.hold_ms))

    def _forget(self, lease: RedisLease) -> None:
        self._leases.pop(lease.fence, None)

    async def _release(self, lease: RedisLease) -> None:
        assert lease.key is not None
        done = await self._call("release", lease.key.provider, lease.key.name, lease.fence,
                                self.hold_ms)
        if not done:
            lease.lost = True

    async def _renew(self, lease: RedisLease) -> None:
        assert lease.key is not None
        done = await self._call("renew", lease.key.provider, lease.key.name, lease.fence,
                                round(self.lease_ttl * 1000))
        if not done:
            lease.lost = True
            log.warning("lease on key %s was reclaimed before its renewal (this replica was "
                        "silent longer than its heartbeat)", lease.key.name)

    async def _charge(self, lease: RedisLease, delta: int) -> None:
        assert lease.key is not None
        done = await self._call("tokens", lease.key.provider, lease.key.name, lease.fence,
                                delta, "1" if lease.key.tpm_limit is not None else "0")
        if not done:
            lease.lost = True

    def _report(self, lease: RedisLease, status: int, retry_after: float | None) -> None:
        key = lease.key
        assert key is not None
        if status in (401, 403):
            reason = f"the provider refused this key (HTTP {status})"
            self._ill[(key.provider, key.name)] = reason
            log.warning("key %s marked unhealthy: HTTP %s", key.label, status)
            if self.on_health:
                self.on_health(key, False, reason)
        elif status == 429:
            reason = ""
        else:
            return
        retry_ms = round((retry_after or DEFAULT_COOLDOWN) * 1000)
        self._background(self._call("report", key.provider, key.name, lease.fence, status,
                                    retry_ms, reason))

    # -- reporting --------------------------------------------------------------------

    async def _read_state(self) -> None:
        args: list[Any] = [self.hold_ms]
        idents = sorted(self._keys)
        for provider, name in idents:
            args += [provider, name, "", ""]
        if not idents:
            return
        rows = await self._call("state", *args)
        self._state = dict(zip(idents, rows, strict=True))
        for ident, row in self._state.items():
            reason = _text(row[0])
            if reason:
                self._ill[ident] = reason
            else:
                self._ill.pop(ident, None)

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/pool`` shows, as Redis had it at the last heartbeat (at most a
        third of ``heartbeat`` ago), for every replica. No secret, ever."""
        keys = []
        queues: dict[str, int] = {}
        for (provider, name), key in sorted(self._keys.items()):
            row = self._state.get((provider, name)) or ["", "0", 0, 0, 0, 0, 0]
            reason = _text(row[0]) or None
            queues[provider] = int(row[6])
            keys.append({
                "provider": provider, "name": name, "last4": key.last4,
                "is_active": key.is_active, "healthy": reason is None,
                "health_reason": reason,
                "cooldown_s": round(float(_text(row[1])) / 1000, 1),
                "active_leases": int(row[2]), "concurrency_limit": key.concurrency_limit,
                "rpm_used": int(row[3]), "rpm_limit": key.rpm_limit,
                "tpm_used": int(row[4]), "tpm_limit": key.tpm_limit,
                "priority": key.priority, "tenant_scope": list(key.tenant_scope),
                "queue_length": int(row[6]), "granted_total": int(row[5]),
            })
        running: dict[str, int] = {}
        for lease in self._leases.values():
            running[lease.user] = running.get(lease.user, 0) + 1
        waiting: dict[str, int] = {}
        for entries in self._waiting.values():
            for entry in entries.values():
                waiting[entry.user] = waiting.get(entry.user, 0) + 1
        users = sorted(set(waiting) | set(running))
        return {
            "keys": keys, "queues": dict(sorted(queues.items())),
            "users": [{"user": u, "waiting": waiting.get(u, 0), "running": running.get(u, 0)}
                      for u in users],
        }


class RedisLeasing:
    __slots__ = ("exclude", "lease", "max_wait", "pool", "provider", "tenant", "tier", "tokens",
                 "user")

    def __init__(self, pool: RedisPool, provider: str, tenant: str, user: str, tier: Tier,
                 tokens: int, exclude: Iterable[str], max_wait: float | None) -> None:
        self.pool, self.provider, self.tenant, self.user = pool, provider, tenant, user
        self.tier, self.tokens, self.exclude, self.max_wait = tier, tokens, exclude, max_wait

    async def __aenter__(self) -> RedisLease:
        self.lease = await self.pool.acquire(
            self.provider, tenant=self.tenant, user=self.user, tier=self.tier,
            tokens=self.tokens, exclude=self.exclude, max_wait=self.max_wait)
        return self.lease

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.lease.aclose()
        except PoolUnavailable:
            pass  # Redis is down: the heartbeat-less lease expires with its TTL
