"""A disabled or deleted account stops working at the hub at once (its next request
after at most a second) and at the gateway within the identity cache's lifetime
(≤ 60 s; 3 s here), on a real hub.

The tokens are the person's own hub tokens, as a lab holds (``CLASSROOM_API_TOKEN``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests

from gateway.config.settings import Settings
from tests.support.hub import Hub, start_hub
from tests.support.procs import ARTIFACTS

CACHE_SECONDS = 3
PASSWORD = "account-gone-pass-1"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_hub(
        tmp_path_factory.mktemp("accounts-gone") / "data",
        CLASSROOM_IDENTITY_CACHE_SECONDS=str(CACHE_SECONDS),
    )
    try:
        yield started
    finally:
        started.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "accounts-gone-hub.log").write_text(started.log())


def token_of(hub: Hub, name: str) -> str:
    hub.classroom("accounts", "add", "--tenant", "school_a", "--password", PASSWORD, name)
    return hub.token_for(hub.login(name, PASSWORD), name)


def status_at_hub(hub: Hub, token: str) -> int:
    return requests.get(f"{hub.api}/user", headers={"Authorization": f"token {token}"},
                        timeout=30).status_code


def status_at_gateway(hub: Hub, token: str) -> int:
    return requests.get(f"{hub.gateway_url}/api/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).status_code


def seconds_until_refused(status: Callable[[], int], limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if status() in (401, 403):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"the token is still accepted after {limit:.0f} s")


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_account_gone_stops_at_hub_at_once_and_at_gateway_within_cache(
    hub: Hub, action: str
) -> None:
    name = f"gone_{action}"
    token = token_of(hub, name)
    assert status_at_hub(hub, token) == 200
    assert status_at_gateway(hub, token) == 200  # now cached by the gateway

    hub.classroom("accounts", action, name)

    # The hub checks the accounts store at most once a second per person.
    assert seconds_until_refused(lambda: status_at_hub(hub, token), 10) <= 1.5
    assert seconds_until_refused(lambda: status_at_gateway(hub, token), 30) <= CACHE_SECONDS + 2
    with pytest.raises(AssertionError):  # nor can the person sign in again
        hub.login(name, PASSWORD)


def test_the_gateway_never_trusts_a_token_longer_than_a_minute() -> None:
    field = Settings.model_fields["identity_cache_seconds"]
    assert field.default <= 60
    with pytest.raises(ValueError):
        Settings(identity_cache_seconds=61)
