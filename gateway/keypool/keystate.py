"""A key's state in the in-process pool: its running leases, its exact RPM and TPM
windows, its health and cool-down (see :mod:`gateway.keypool.pool` for why a grant is
kept ``margin`` past the window)."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.keypool.keys import ProviderKey

if TYPE_CHECKING:
    from gateway.keypool.pool import Lease

log = logging.getLogger("gateway.keypool")
WINDOW = 60.0  # seconds: RPM and TPM are sliding one-minute windows
# Seconds a grant is kept past the window, for the spread of grant-to-vendor delays
# (the gateway's setting ``rate_limit_margin_ms``).
DEFAULT_MARGIN = 0.25


class MinuteCounts:
    """What happened in the last window (a minute), by the second: constant memory at any
    rate."""

    __slots__ = ("amounts", "seconds", "window")

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        slots = math.ceil(window) + 1
        self.seconds = [-1] * slots
        self.amounts = [0] * slots

    def add(self, now: float, amount: int = 1) -> None:
        second = int(now)
        slot = second % len(self.seconds)
        if self.seconds[slot] != second:
            self.seconds[slot], self.amounts[slot] = second, 0
        self.amounts[slot] += amount

    def recent(self, now: float) -> list[tuple[float, int]]:
        """(time, amount) per second of the last minute, each at its second's end, so that
        limits enforced from these never let more through than the exact times would."""
        return sorted((sec + 1.0, amount) for sec, amount in self._window(now) if amount)

    def total(self, now: float) -> int:
        return sum(amount for _, amount in self._window(now))

    def _window(self, now: float) -> Iterator[tuple[int, int]]:
        second = int(now)
        return ((sec, amount) for sec, amount in zip(self.seconds, self.amounts, strict=True)
                if second - self.window < sec <= second)


class TokenCharge:
    """A grant's tokens in a key's TPM window, corrected in place when the real count is
    known: the vendor counts a call's tokens at its arrival, not when it ends."""

    __slots__ = ("at", "counted", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at, self.tokens, self.counted = at, tokens, True


@dataclass(eq=False)
class KeyState:
    key: ProviderKey
    window: float = WINDOW
    margin: float = DEFAULT_MARGIN
    active: set[Lease] = field(default_factory=set)
    # Exact grant times and token charges in the window, kept only for the limits a key
    # has (bounded by them); ``seen_*`` count by the second for everything else.
    grants: deque[float] = field(default_factory=deque)
    token_log: deque[TokenCharge] = field(default_factory=deque)
    tokens_in_window: int = 0
    seen_requests: MinuteCounts = field(init=False)
    seen_tokens: MinuteCounts = field(init=False)
    healthy: bool = True
    health_reason: str | None = None
    cooldown_until: float = 0.0
    granted_total: int = 0

    def __post_init__(self) -> None:
        self.seen_requests = MinuteCounts(self.window)
        self.seen_tokens = MinuteCounts(self.window)

    @property
    def hold(self) -> float:
        """How long a grant counts: the window and the margin for dispatch jitter."""
        return self.window + self.margin

    def update_key(self, key: ProviderKey, now: float) -> None:
        """New settings for the same key (a file sync, an admin): a limit that appears
        starts from what the last minute really used."""
        old, self.key = self.key, key
        if key.rpm_limit is None:
            self.grants.clear()
        elif old.rpm_limit is None:
            self.grants = deque(t for t, n in self.seen_requests.recent(now) for _ in range(n))
        if key.tpm_limit is None:
            for charge in self.token_log:
                charge.counted = False
            self.token_log.clear()
            self.tokens_in_window = 0
        elif old.tpm_limit is None:
            self.token_log = deque(TokenCharge(t, n) for t, n in self.seen_tokens.recent(now))
            self.tokens_in_window = sum(charge.tokens for charge in self.token_log)

    def record_grant(self, now: float) -> None:
        self.seen_requests.add(now)
        if self.key.rpm_limit is not None:
            self.grants.append(now)
        self.granted_total += 1

    def rpm_used(self, now: float) -> int:
        return len(self.grants) if self.key.rpm_limit is not None \
            else self.seen_requests.total(now)

    def tpm_used(self, now: float) -> int:
        return self.tokens_in_window if self.key.tpm_limit is not None \
            else self.seen_tokens.total(now)

    def prune(self, now: float) -> None:
        horizon = now - self.hold
        while self.grants and self.grants[0] <= horizon:
            self.grants.popleft()
        while self.token_log and self.token_log[0].at <= horizon:
            charge = self.token_log.popleft()
            charge.counted = False
            self.tokens_in_window -= charge.tokens
        for lease in [lease for lease in self.active if lease.expires_at <= now]:
            log.warning("lease on key %s expired without renewal; reclaimed", self.key.name)
            lease.reclaimed = True
            self.active.discard(lease)

    def usable(self, now: float) -> bool:
        return self.key.is_active and self.healthy and self.cooldown_until <= now

    def fits(self, now: float, tokens: int) -> bool:
        key = self.key
        if key.concurrency_limit is not None and len(self.active) >= key.concurrency_limit:
            return False
        if key.rpm_limit is not None and len(self.grants) >= key.rpm_limit:
            return False
        if key.tpm_limit is not None and self.tokens_in_window > 0:
            # A call bigger than the whole budget may still run alone in an empty window.
            if self.tokens_in_window + tokens > key.tpm_limit:
                return False
        return True

    def headroom(self) -> float:
        key = self.key
        room = 1.0
        if key.concurrency_limit:
            room = min(room, 1 - len(self.active) / key.concurrency_limit)
        if key.rpm_limit:
            room = min(room, 1 - len(self.grants) / key.rpm_limit)
        if key.tpm_limit:
            room = min(room, 1 - self.tokens_in_window / key.tpm_limit)
        return room

    def next_opening(self, now: float) -> float | None:
        """When this key may fit again by the clock alone (releases wake the queue anyway)."""
        if not (self.key.is_active and self.healthy):
            return None
        key = self.key
        opening = max(now, self.cooldown_until)
        if key.rpm_limit is not None and len(self.grants) >= key.rpm_limit:
            opening = max(opening, self.grants[0] + self.hold)
        if key.tpm_limit is not None and self.token_log and self.tokens_in_window > 0:
            # a waiting call may need more tokens than are left: look again when some expire
            opening = max(opening, self.token_log[0].at + self.hold)
        if key.concurrency_limit is not None and len(self.active) >= key.concurrency_limit:
            opening = max(opening, min(lease.expires_at for lease in self.active))
        return opening if opening > now else None

    def charge_tokens(self, now: float, tokens: int) -> TokenCharge | None:
        """Charge tokens at ``now``; the window's entry for them (None: no TPM limit)."""
        if not tokens:
            return None
        self.seen_tokens.add(now, tokens)
        if self.key.tpm_limit is None:
            return None
        charge = TokenCharge(now, tokens)
        self.token_log.append(charge)
        self.tokens_in_window += tokens
        return charge

    def correct_tokens(self, charge: TokenCharge | None, now: float, delta: int) -> None:
        """A granted call's real tokens differ from its charge by ``delta``. The vendor
        counted the call when it arrived, so the correction goes to the grant's entry while
        that is in the window (an entry gone from it needs none); a call charged nothing
        at its grant is charged now."""
        if charge is None:
            if self.key.tpm_limit is None:
                self.seen_tokens.add(now, delta)
            elif delta > 0:
                self.charge_tokens(now, delta)
            return
        self.seen_tokens.add(now, delta)
        if charge.counted:
            charge.tokens += delta
            self.tokens_in_window += delta
