"""Fixtures of the hub tests.

- ``fast_hasher``: an argon2id ``PasswordHasher`` with tiny costs, so tests
  that hash many passwords stay fast (the hashes are still real argon2id).
- ``tenant_ids``: the ids of the repository's tenant files.
- ``data_dir``: an empty ``CLASSROOM_DATA_DIR`` under ``tmp_path``.
- ``store``: an ``AccountStore`` in ``data_dir`` that knows the real tenants.
- ``fresh_start_queue`` (autouse): every test gets its own hub start queue
  (``LabStarts`` is one per hub process), so places taken by one test's
  spawners never make another test's wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from gateway.config.tenants import load_tenants
from hub.accounts import ACCOUNTS_FILE, AccountStore
from hub.startqueue import LabStarts
from tests.support.procs import REPO

TENANTS_DIR = REPO / "tenants"


@pytest.fixture(autouse=True)
def fresh_start_queue() -> Iterator[None]:
    LabStarts.clear_instance()
    yield
    LabStarts.clear_instance()


@pytest.fixture(scope="session")
def fast_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def tenant_ids() -> frozenset[str]:
    return frozenset(load_tenants(TENANTS_DIR))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path, tenant_ids: frozenset[str], fast_hasher: PasswordHasher) -> AccountStore:
    return AccountStore(data_dir / ACCOUNTS_FILE, tenants=tenant_ids, hasher=fast_hasher)
